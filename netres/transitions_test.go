package netres

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestRandomTransitions applies random sequences of adds and removes of a
// few addresses and routes, in any order and repeated, and checks after
// each that the namespace holds exactly what a plain set of the applied
// changes says it should: every transition is clean, whatever came before.
func TestRandomTransitions(t *testing.T) {
	addrs := []Address{
		{Prefix: netip.MustParsePrefix("10.0.0.50/24"), Interface: "eth0"},
		{Prefix: netip.MustParsePrefix("10.0.0.51/24"), Interface: "eth0"},
		{Prefix: netip.MustParsePrefix("10.1.0.50/24"), Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{Prefix: netip.MustParsePrefix("fd00::50/64"), Interface: "eth0"},
	}
	routes := []Route{
		{Dst: netip.MustParsePrefix("192.168.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.254")},
		{Dst: netip.MustParsePrefix("192.168.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.254"), Metric: 10},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.1.0.254"), Table: 100},
		{Dst: netip.MustParsePrefix("172.16.0.0/12"), Interface: "eth1", Table: 100, Metric: 3},
	}
	fixed := []string{"ip addr add 10.0.0.1/24 dev eth0", "ip addr add 10.1.0.1/24 dev eth1", "ip addr add fd00::1/64 dev eth0"}
	rapid.Check(t, func(rt *rapid.T) {
		f := newFake()
		m := NewManager(f, Config{Announce: AnnounceConfig{Count: 1}})
		ctx := context.Background()
		want := map[string]bool{}
		for _, l := range fixed {
			want[l] = true
		}
		n := rapid.IntRange(1, 40).Draw(rt, "ops")
		for i := 0; i < n; i++ {
			add := rapid.Bool().Draw(rt, "add")
			if rapid.Bool().Draw(rt, "address") {
				a := addrs[rapid.IntRange(0, len(addrs)-1).Draw(rt, "which")]
				dev := a.Interface
				if dev == "" {
					dev = "eth1"
				}
				line := "ip addr add " + a.Prefix.String() + " dev " + dev
				var err error
				if add {
					err = m.AddAddress(ctx, a)
					want[line] = true
				} else {
					err = m.RemoveAddress(ctx, a)
					delete(want, line)
				}
				if err != nil {
					rt.Fatalf("address %s add=%v: %v", a, add, err)
				}
			} else {
				r := routes[rapid.IntRange(0, len(routes)-1).Draw(rt, "which")]
				line := "ip route add " + r.String()
				var err error
				if add {
					err = m.AddRoute(ctx, r)
					want[line] = true
				} else {
					err = m.RemoveRoute(ctx, r)
					delete(want, line)
				}
				if err != nil {
					rt.Fatalf("route %s add=%v: %v", r, add, err)
				}
			}
			var lines []string
			for l := range want {
				lines = append(lines, l)
			}
			sort.Slice(lines, func(i, j int) bool {
				// Render lists the addresses before the routes.
				ai, aj := strings.HasPrefix(lines[i], "ip addr"), strings.HasPrefix(lines[j], "ip addr")
				if ai != aj {
					return ai
				}
				return lines[i] < lines[j]
			})
			if got, exp := f.Render(), strings.Join(lines, "\n"); got != exp {
				rt.Fatalf("after op %d:\n--- got\n%s\n--- want\n%s", i, got, exp)
			}
		}
	})
}
