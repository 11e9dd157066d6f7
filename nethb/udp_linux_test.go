package nethb

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recvWithin calls u.Recv, failing the test if it blocks for 10 s.
func recvWithin(t *testing.T, u *UDP) ([]byte, netip.AddrPort) {
	t.Helper()
	type res struct {
		b    []byte
		from netip.AddrPort
		err  error
	}
	c := make(chan res, 1)
	go func() {
		buf := make([]byte, MaxPacket+1)
		n, from, err := u.Recv(buf)
		c <- res{buf[:n], from, err}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("Recv: %v", r.err)
		}
		return r.b, r.from
	case <-time.After(10 * time.Second):
		t.Fatal("Recv blocked for 10 s")
	}
	return nil, netip.AddrPort{}
}

// A peer's datagram reaches Recv ahead of a queue full of datagrams from
// another source: the kernel queues it on the peer's connected socket.
func TestUDPPeerQueueAheadOfFlood(t *testing.T) {
	peer, err := ListenUDP(netip.MustParseAddrPort("127.0.0.2:0"))
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2 (no loopback /8 here): %v", err)
	}
	defer peer.Close()
	u, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), peer.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	flood, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.3:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	junk := bytes.Repeat([]byte{0xee}, 100)
	for range 5000 { // far more than the socket buffer holds
		if _, err := flood.WriteToUDPAddrPort(junk, u.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if err := peer.Send(u.LocalAddr(), []byte("heartbeat")); err != nil {
		t.Fatal(err)
	}
	if u.QueueDrops() == 0 {
		t.Error("5,000 datagrams overflowed the shared queue, but QueueDrops counts none")
	}
	b, from := recvWithin(t, u)
	if string(b) != "heartbeat" || from != peer.LocalAddr() {
		t.Fatalf("first datagram %q from %v, want the peer's heartbeat from %v", b, from, peer.LocalAddr())
	}
	// The flood is still delivered, with its source.
	b, from = recvWithin(t, u)
	if !bytes.Equal(b, junk) || from.Addr() != netip.MustParseAddr("127.0.0.3") {
		t.Fatalf("then %q from %v, want the flood", b, from)
	}
	// Receiving allocates nothing.
	buf := make([]byte, MaxPacket+1)
	if a := testing.AllocsPerRun(100, func() {
		if _, _, err := u.Recv(buf); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("Recv allocates %v times per datagram", a)
	}
	// Between two looks at the peer's socket, at most udpBatch others.
	if err := peer.Send(u.LocalAddr(), []byte("second")); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		b, _ := recvWithin(t, u)
		if string(b) == "second" {
			break
		}
		if i > udpBatch {
			t.Fatalf("the peer's datagram waited behind more than %d others", udpBatch)
		}
	}
}

// When a peer is down our heartbeats to it draw ICMP port-unreachable
// errors, which the kernel reports on its connected socket: Recv carries
// on.
func TestUDPPeerDownIsNotAnError(t *testing.T) {
	peer, err := ListenUDP(netip.MustParseAddrPort("127.0.0.2:0"))
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	peerAddr := peer.LocalAddr()
	peer.Close()
	u, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), peerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for range 3 {
		if err := u.Send(peerAddr, []byte("hb")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	other, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.3:0")))
	defer other.Close()
	other.WriteToUDPAddrPort([]byte("still here"), u.LocalAddr())
	if b, _ := recvWithin(t, u); string(b) != "still here" {
		t.Fatalf("got %q", b)
	}
}

// Close wakes a blocked Recv, which returns ErrClosed; Send after Close
// returns ErrClosed too.
func TestUDPCloseWakesRecv(t *testing.T) {
	u, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := u.Recv(make([]byte, 64))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	u.Close()
	select {
	case err := <-done:
		if err != ErrClosed {
			t.Fatalf("Recv after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake Recv")
	}
	if err := u.Send(netip.MustParseAddrPort("127.0.0.1:9"), []byte("x")); err != ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
}

// A port another socket holds is refused, even though the heartbeat
// sockets share their port among themselves.
func TestUDPPortInUse(t *testing.T) {
	u, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if v, err := ListenUDP(u.LocalAddr()); err == nil {
		v.Close()
		t.Fatal("a second ListenUDP on the same address and port succeeded")
	}
}

// The shared socket gives Recv at most udpSlicePackets datagrams per
// udpSlice, while the peers' sockets are served all the time.
func TestUDPSharedSocketRateBound(t *testing.T) {
	peer, err := ListenUDP(netip.MustParseAddrPort("127.0.0.2:0"))
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer peer.Close()
	u, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), peer.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	u.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	flood, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.3:0")))
	defer flood.Close()
	for range 2 * udpSlicePackets {
		flood.WriteToUDPAddrPort([]byte("junk"), u.LocalAddr())
	}
	time.Sleep(20 * time.Millisecond) // let loopback deliver them all
	for i := range udpSlicePackets {
		if b, _ := recvWithin(t, u); string(b) != "junk" {
			t.Fatalf("datagram %d: %q", i, b)
		}
	}
	// The slice's budget is spent and the clock stands still: the shared
	// queue (still full) waits, a peer's datagram does not.
	peer.Send(u.LocalAddr(), []byte("heartbeat"))
	if b, _ := recvWithin(t, u); string(b) != "heartbeat" {
		t.Fatalf("got %q, want the peer's heartbeat while the shared socket is held back", b)
	}
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _, _ := u.Recv(buf)
		got <- string(buf[:n])
	}()
	select {
	case b := <-got:
		t.Fatalf("Recv returned %q beyond the slice's budget", b)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	clock = clock.Add(udpSlice)
	mu.Unlock()
	select {
	case b := <-got:
		if b != "junk" {
			t.Fatalf("next slice: got %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shared socket stayed held back in the next slice")
	}
}

// IPv6 heartbeat networks work the same way, sources included.
func TestUDPIPv6(t *testing.T) {
	peer, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer peer.Close()
	u, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"), peer.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := peer.Send(u.LocalAddr(), []byte("v6")); err != nil {
		t.Fatal(err)
	}
	if b, from := recvWithin(t, u); string(b) != "v6" || from != peer.LocalAddr() {
		t.Fatalf("got %q from %v, want \"v6\" from %v", b, from, peer.LocalAddr())
	}
	if err := u.Send(peer.LocalAddr(), []byte("back")); err != nil {
		t.Fatal(err)
	}
	if b, from := recvWithin(t, peer); string(b) != "back" || from != u.LocalAddr() {
		t.Fatalf("got %q from %v", b, from)
	}
}
