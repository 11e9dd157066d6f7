package netres

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func newFake() *Fake {
	f := NewFake()
	f.AddLink("eth0", "02:00:00:00:00:01", "10.0.0.1/24", "fd00::1/64")
	f.AddLink("eth1", "02:00:00:00:00:02", "10.1.0.1/24")
	return f
}

func addr(p, dev string) Address { return Address{Prefix: netip.MustParsePrefix(p), Interface: dev} }

// TestTransitions applies a sequence of changes, each twice, and compares
// the rendered state after each with the golden text.
func TestTransitions(t *testing.T) {
	f := newFake()
	m := NewManager(f, Config{Announce: AnnounceConfig{Count: 1}})
	ctx := context.Background()
	route := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.1.0.254"), Table: 7, Metric: 5}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"add v4", func() error { return m.AddAddress(ctx, addr("10.0.0.50/24", "eth0")) }, `ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.0.0.50/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip addr add fd00::1/64 dev eth0`},
		{"add v6 by subnet", func() error {
			return m.AddAddress(ctx, Address{Prefix: netip.MustParsePrefix("fd00::50/64"), Subnet: netip.MustParsePrefix("fd00::/64")})
		}, `ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.0.0.50/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip addr add fd00::1/64 dev eth0
ip addr add fd00::50/64 dev eth0`},
		{"add route", func() error { return m.AddRoute(ctx, route) }, `ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.0.0.50/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip addr add fd00::1/64 dev eth0
ip addr add fd00::50/64 dev eth0
ip route add 0.0.0.0/0 via 10.1.0.254 table 7 metric 5`},
		{"remove v4", func() error { return m.RemoveAddress(ctx, addr("10.0.0.50/24", "eth0")) }, `ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip addr add fd00::1/64 dev eth0
ip addr add fd00::50/64 dev eth0
ip route add 0.0.0.0/0 via 10.1.0.254 table 7 metric 5`},
		{"remove route", func() error { return m.RemoveRoute(ctx, route) }, `ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.1.0.1/24 dev eth1
ip addr add fd00::1/64 dev eth0
ip addr add fd00::50/64 dev eth0`},
	}
	for _, s := range steps {
		for i := 0; i < 2; i++ {
			if err := s.do(); err != nil {
				t.Fatalf("%s (#%d): %v", s.name, i+1, err)
			}
			if got := f.Render(); got != s.want {
				t.Fatalf("%s (#%d):\n--- got\n%s\n--- want\n%s", s.name, i+1, got, s.want)
			}
		}
	}
}

func TestConflicts(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	m := NewManager(f, Config{})
	f.SetOther("10.0.0.60", "02:00:00:00:00:99")
	err := m.AddAddress(ctx, addr("10.0.0.60/24", "eth0"))
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.HardwareAddr.String() != "02:00:00:00:00:99" || !strings.Contains(err.Error(), "02:00:00:00:00:99") {
		t.Fatalf("IPv4 conflict: %v", err)
	}
	f.SetOther("fd00::60", "02:00:00:00:00:98")
	err = m.AddAddress(ctx, addr("fd00::60/64", "eth0"))
	if !errors.As(err, &ce) || ce.Addr.String() != "fd00::60" {
		t.Fatalf("IPv6 DAD failure: %v", err)
	}
	if strings.Contains(f.Render(), "10.0.0.60") || strings.Contains(f.Render(), "fd00::60") {
		t.Errorf("a conflicting address was left:\n%s", f.Render())
	}
	// A different prefix length for an address already there is an
	// error, not a silent second address.
	if err := m.AddAddress(ctx, addr("10.0.0.1/16", "eth0")); err == nil {
		t.Error("10.0.0.1/16 accepted over 10.0.0.1/24")
	}
	// A route with the same key through another gateway is refused.
	r := Route{Dst: netip.MustParsePrefix("192.168.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.254")}
	if err := m.AddRoute(ctx, r); err != nil {
		t.Fatal(err)
	}
	r2 := r
	r2.Gateway = netip.MustParseAddr("10.1.0.254")
	if err := m.AddRoute(ctx, r2); err == nil || !strings.Contains(err.Error(), "10.0.0.254") {
		t.Errorf("route through another gateway: %v", err)
	}
	// ... and removing it leaves the other one alone.
	if err := m.RemoveRoute(ctx, r2); err != nil || !strings.Contains(f.Render(), "via 10.0.0.254") {
		t.Errorf("RemoveRoute of a route with another gateway: %v\n%s", err, f.Render())
	}
}

func TestLinkProblems(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	m := NewManager(f, Config{})
	f.SetLinkUp("eth1", false)
	if err := m.AddAddress(ctx, addr("10.1.0.50/24", "eth1")); !errors.Is(err, ErrLinkDown) {
		t.Errorf("address on a down link: %v", err)
	}
	if err := m.AddAddress(ctx, addr("10.2.0.50/24", "eth9")); !errors.Is(err, ErrNoSuchLink) {
		t.Errorf("address on a missing link: %v", err)
	}
	sub := Address{Prefix: netip.MustParsePrefix("10.9.0.50/24"), Subnet: netip.MustParsePrefix("10.9.0.0/24")}
	if err := m.AddAddress(ctx, sub); !errors.Is(err, ErrNoSubnetLink) {
		t.Errorf("address in a subnet no link has: %v", err)
	}
	// Removing from a missing link is done already.
	if err := m.RemoveAddress(ctx, addr("10.2.0.50/24", "eth9")); err != nil {
		t.Errorf("RemoveAddress on a missing link: %v", err)
	}
}

// The first announcement is sent before Announce returns, the rest in the
// background; removing the address stops the series.
func TestAnnounceSeries(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	m := NewManager(f, Config{Announce: AnnounceConfig{Count: 4, Interval: time.Millisecond}})
	a := addr("10.0.0.50/24", "eth0")
	if err := m.AddAddress(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := m.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := f.Announced("10.0.0.50"); n < 1 {
		t.Fatalf("%d announcements when Announce returned", n)
	}
	m.WaitAnnounced()
	if n := f.Announced("10.0.0.50"); n != 4 {
		t.Errorf("%d announcements, want 4", n)
	}
	slow := NewManager(f, Config{Announce: AnnounceConfig{Count: 1000, Interval: time.Hour}})
	if err := slow.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- slow.RemoveAddress(ctx, a) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RemoveAddress did not stop the series")
	}
	if n := f.Announced("10.0.0.50"); n != 5 {
		t.Errorf("%d announcements, want 5 (4 + the first of the stopped series)", n)
	}
}

func TestFakeLinkWatcher(t *testing.T) {
	f := newFake()
	m := NewManager(f, Config{})
	names, err := m.LinksOf([]Address{addr("10.0.0.50/24", "eth0"), {Prefix: netip.MustParsePrefix("fd00::50/64"), Subnet: netip.MustParsePrefix("fd00::/64")}})
	if err != nil || len(names) != 1 || names[0] != "eth0" {
		t.Fatalf("LinksOf: %q %v", names, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, err := f.WatchLinks(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	f.SetLinkUp("eth1", false) // not watched
	f.SetLinkUp("eth0", false)
	f.SetLinkUp("eth0", false) // no change, no event
	f.RemoveLink("eth0")
	var got []string
	for i := 0; i < 3; i++ {
		got = append(got, (<-evs).String())
	}
	if strings.Join(got, ", ") != "eth0 up, eth0 down, eth0 removed" {
		t.Errorf("events %q", got)
	}
	select {
	case ev := <-evs:
		t.Errorf("extra event %s", ev)
	default:
	}
}
