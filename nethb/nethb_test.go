package nethb

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

var (
	testCluster = uuid.MustParse("6b1f3c1e-2d4a-4f55-9a51-0c7d2f0e8a10")
	testKey     = bytes.Repeat([]byte{0x5a}, 32)
	addrA       = netip.MustParseAddrPort("10.213.0.1:5405")
	addrB       = netip.MustParseAddrPort("10.213.0.2:5405")
	addrC       = netip.MustParseAddrPort("10.213.0.3:5405")
)

func testPeers() []Peer {
	return []Peer{
		{ID: 1, Name: "a", Addrs: []netip.Addr{addrA.Addr()}},
		{ID: 2, Name: "b", Addrs: []netip.Addr{addrB.Addr()}},
		{ID: 3, Name: "c", Addrs: []netip.Addr{addrC.Addr()}},
	}
}

func newRecv(t *testing.T, self uint32) *Receiver {
	t.Helper()
	var peers []Peer
	for _, p := range testPeers() {
		if p.ID != self {
			peers = append(peers, p)
		}
	}
	r, err := NewReceiver(ReceiverConfig{Cluster: testCluster, Key: testKey, Self: self, Peers: peers, Generation: basePacket().Generation})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func encode(t *testing.T, p Packet, key []byte) []byte {
	t.Helper()
	b, err := p.AppendEncode(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func basePacket() Packet {
	return Packet{Network: 0, Cluster: testCluster, From: 1, Incarnation: 77, Seq: 1, Generation: 3, View: 0b1110, Payload: []byte("members=1,2,3 epoch=9")}
}

func TestRoundTrip(t *testing.T) {
	p := basePacket()
	b := encode(t, p, testKey)
	if len(b) != HeaderLen+len(p.Payload)+MACLen {
		t.Fatalf("encoded length %d, want %d", len(b), HeaderLen+len(p.Payload)+MACLen)
	}
	got, err := Decode(b, testCluster, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if got.Network != p.Network || got.Cluster != p.Cluster || got.From != p.From || got.Incarnation != p.Incarnation ||
		got.Seq != p.Seq || got.Generation != p.Generation || got.View != p.View || !bytes.Equal(got.Payload, p.Payload) {
		t.Fatalf("decoded %+v, want %+v", got, p)
	}
}

// TestWireLayout pins the byte offsets documented in the package doc.
func TestWireLayout(t *testing.T) {
	p := Packet{Network: 2, Cluster: testCluster, From: 0x01020304, Incarnation: 0x1112131415161718,
		Seq: 0x2122232425262728, Generation: 0x3132333435363738, View: 0x4142434445464748, Payload: []byte{0xee, 0xff}}
	b := encode(t, p, testKey)
	checks := []struct {
		off  int
		want []byte
	}{
		{0, []byte("MTHB")}, {4, []byte{1}}, {5, []byte{2}}, {6, []byte{0, 2}}, {8, testCluster[:]},
		{24, []byte{1, 2, 3, 4}}, {28, []byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}},
		{36, []byte{0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28}},
		{44, []byte{0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38}},
		{52, []byte{0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48}}, {60, []byte{0xee, 0xff}},
	}
	for _, c := range checks {
		if got := b[c.off : c.off+len(c.want)]; !bytes.Equal(got, c.want) {
			t.Errorf("offset %d: % x, want % x", c.off, got, c.want)
		}
	}
}

func dropReason(t *testing.T, err error) Reason {
	t.Helper()
	var de *DropError
	if !errors.As(err, &de) {
		t.Fatalf("want a *DropError, got %v", err)
	}
	return de.Reason
}

func TestDropReasons(t *testing.T) {
	otherCluster := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	mut := func(f func(*Packet)) Packet { p := basePacket(); f(&p); return p }
	good := encode(t, basePacket(), testKey)
	cases := []struct {
		name   string
		data   []byte
		net    uint8
		from   netip.AddrPort
		reason Reason
		source string
	}{
		{"truncated", good[:HeaderLen], 0, addrA, ReasonMalformed, "a"},
		{"bad magic", append([]byte("XXXX"), good[4:]...), 0, addrA, ReasonMalformed, "a"},
		{"bad version", append(append(append([]byte{}, good[:4]...), 9), good[5:]...), 0, addrA, ReasonMalformed, "a"},
		{"length mismatch", append(append([]byte{}, good...), 0), 0, addrA, ReasonMalformed, "a"},
		{"foreign cluster", encode(t, mut(func(p *Packet) { p.Cluster = otherCluster }), testKey), 0, addrA, ReasonForeignCluster, "a"},
		{"forged", encode(t, basePacket(), bytes.Repeat([]byte{1}, 32)), 0, addrA, ReasonForged, "a"},
		{"unknown sender", encode(t, mut(func(p *Packet) { p.From = 9 }), testKey), 0, netip.MustParseAddrPort("10.213.0.9:5405"), ReasonUnknownSender, "10.213.0.9"},
		{"self", encode(t, mut(func(p *Packet) { p.From = 2 }), testKey), 0, addrB, ReasonSelf, "10.213.0.2"},
		{"wrong network", good, 1, addrA, ReasonWrongNetwork, "a"},
		{"other configuration", encode(t, mut(func(p *Packet) { p.Generation++ }), testKey), 0, addrA, ReasonConfigMismatch, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRecv(t, 2)
			_, err := r.Accept(c.net, c.from, c.data)
			if got := dropReason(t, err); got != c.reason {
				t.Fatalf("reason %v, want %v (%v)", got, c.reason, err)
			}
			if !errors.Is(err, ErrDropped) {
				t.Fatalf("%v does not wrap ErrDropped", err)
			}
			st := r.Stats()
			if n := st.Dropped[c.source][c.reason.String()]; n != 1 {
				t.Fatalf("counter dropped[%s][%s] = %d, want 1; stats %+v", c.source, c.reason, n, st)
			}
			if len(st.Accepted) != 0 {
				t.Fatalf("accepted counters %v after a drop", st.Accepted)
			}
		})
	}
}

func TestReplayAndIncarnations(t *testing.T) {
	r := newRecv(t, 2)
	send := func(inc, seq uint64, network uint8) error {
		p := basePacket()
		p.Incarnation, p.Seq, p.Network = inc, seq, network
		_, err := r.Accept(network, addrA, encode(t, p, testKey))
		return err
	}
	hb, err := r.Accept(0, addrA, encode(t, basePacket(), testKey))
	if err != nil || !hb.NewIncarnation || hb.Peer != "a" {
		t.Fatalf("first packet: %+v %v", hb, err)
	}
	if err := send(77, 1, 0); dropReason(t, err) != ReasonReplayed {
		t.Fatalf("same packet twice: %v", err)
	}
	if err := send(77, 5, 0); err != nil {
		t.Fatalf("seq 5: %v", err)
	}
	if err := send(77, 3, 0); dropReason(t, err) != ReasonReplayed {
		t.Fatalf("old seq 3 after 5: %v", err)
	}
	// The second network has its own sequence.
	if err := send(77, 1, 1); err != nil {
		t.Fatalf("seq 1 on network 1: %v", err)
	}
	// A restart: new incarnation, sequence starts again.
	p := basePacket()
	p.Incarnation, p.Seq = 78, 1
	hb, err = r.Accept(0, addrA, encode(t, p, testKey))
	if err != nil || !hb.NewIncarnation || hb.PrevIncarnation != 77 {
		t.Fatalf("new incarnation: %+v %v", hb, err)
	}
	// A replay from the replaced incarnation is refused.
	if err := send(77, 6, 0); dropReason(t, err) != ReasonReplayed {
		t.Fatalf("packet of replaced incarnation: %v", err)
	}
	st := r.Stats()
	if st.Accepted["a"] != 4 || st.Dropped["a"]["replayed"] != 3 || st.Restarts["a"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSenderSequencesAndFakeNetwork(t *testing.T) {
	mem := NewMemNetwork(1)
	ta, _ := mem.Listen(addrA)
	tb, _ := mem.Listen(addrB)
	tc, _ := mem.Listen(addrC)
	s, err := NewSender(SenderConfig{Cluster: testCluster, Key: testKey, Self: 1, Generation: 3,
		Links: []Link{{Network: 0, Name: "lan", Transport: ta, Dests: []netip.AddrPort{addrB, addrC}}}})
	if err != nil {
		t.Fatal(err)
	}
	mem.Partition([]netip.Addr{addrA.Addr()}, []netip.Addr{addrC.Addr()})
	for i := 0; i < 3; i++ {
		if err := s.Send(1<<2, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rb := newRecv(t, 2)
	buf := make([]byte, MaxPacket)
	for want := uint64(1); want <= 3; want++ {
		n, from, err := tb.Recv(buf)
		if err != nil {
			t.Fatal(err)
		}
		hb, err := rb.Accept(0, from, buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if hb.Seq != want || hb.Incarnation != s.Incarnation() || hb.View != 1<<2 || hb.Payload[0] != byte(want-1) {
			t.Fatalf("heartbeat %+v, want seq %d", hb, want)
		}
	}
	select {
	case d := <-tc.q:
		t.Fatalf("partitioned node received %v", d)
	default:
	}
	if st := s.Stats(); st.Sent["lan"] != 6 {
		t.Fatalf("sent %v, want 6 (lost datagrams are not send errors)", st.Sent)
	}
	mem.Heal()
	if err := s.Send(0, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.Recv(buf); err != nil {
		t.Fatal(err)
	}
	tb.Close()
	if _, _, err := tb.Recv(buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
}

func TestUDPLoopback(t *testing.T) {
	ua, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	ub, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSender(SenderConfig{Cluster: testCluster, Key: testKey, Self: 1,
		Links: []Link{{Name: "lo", Transport: ua, Dests: []netip.AddrPort{ub.LocalAddr()}}}})
	r, _ := NewReceiver(ReceiverConfig{Cluster: testCluster, Key: testKey, Self: 2,
		Peers: []Peer{{ID: 1, Name: "a", Addrs: []netip.Addr{ua.LocalAddr().Addr()}}}})
	got := make(chan Heartbeat, 1)
	done := make(chan error, 1)
	go func() { done <- r.Serve(0, ub, func(hb Heartbeat) { got <- hb }) }()
	if err := s.Send(0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case hb := <-got:
		if hb.Peer != "a" || string(hb.Payload) != "x" {
			t.Fatalf("heartbeat %+v", hb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat over loopback UDP within 10s")
	}
	ub.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func writeKey(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	good := writeKey(t, testKey, 0o600)
	if k, err := LoadKey(good); err != nil || !bytes.Equal(k, testKey) {
		t.Fatalf("LoadKey(0600) = %x, %v", k, err)
	}
	if _, err := LoadKey(writeKey(t, testKey, 0o400)); err != nil {
		t.Fatalf("LoadKey(0400): %v", err)
	}
	link := filepath.Join(t.TempDir(), "link.key")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	// A FIFO with no writer: opening it must not wait for one.
	fifo := filepath.Join(t.TempDir(), "fifo.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
	}{
		{"group readable", writeKey(t, testKey, 0o640), "chmod 600"},
		{"world readable", writeKey(t, testKey, 0o644), "chmod 600"},
		{"short", writeKey(t, testKey[:16], 0o600), "fewer than the minimum 32"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "head -c 32 /dev/urandom"},
		{"directory", t.TempDir(), "not a regular file"},
		{"symlink", link, "symbolic link"},
		{"fifo", fifo, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadKey(c.path)
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("want ErrKeyFile, got %v", err)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q should name %s and say %q", err, c.path, c.want)
			}
		})
	}
}
