package nethb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// ErrClosed is returned by Recv and Send on a closed transport.
var ErrClosed = errors.New("heartbeat transport closed")

// Transport is the network edge of the heartbeat: datagrams to and from
// one local address on one heartbeat network. Implementations: UDP (the
// real socket) and MemTransport (an in-memory network with per-link
// faults for tests).
type Transport interface {
	// Send sends one datagram to the address. It does not block on the
	// peer; a full local buffer or an unreachable peer is an error.
	Send(to netip.AddrPort, b []byte) error
	// Recv blocks until a datagram arrives, copies it into buf and returns
	// its length and source. After Close it returns ErrClosed.
	Recv(buf []byte) (int, netip.AddrPort, error)
	// LocalAddr is the bound address.
	LocalAddr() netip.AddrPort
	// Close unblocks Recv and releases the socket.
	Close() error
}

var (
	_ Transport = (*UDP)(nil)
	_ Transport = (*MemTransport)(nil)
)

// LinkFault describes what the in-memory network does to datagrams on one
// direction of a link.
type LinkFault struct {
	// Cut drops every datagram (a partition).
	Cut bool
	// Drop is the probability of losing each datagram (0 to 1).
	Drop float64
	// Delay holds each datagram back before delivery.
	Delay time.Duration
}

// memQueueLen is the receive queue of one MemTransport, like a socket
// buffer: datagrams beyond it are lost.
const memQueueLen = 256

type memDatagram struct {
	from netip.AddrPort
	b    []byte
}

// MemNetwork is an in-memory datagram network for tests. Faults are set
// per direction between two addresses (ports ignored). It is safe for
// concurrent use.
type MemNetwork struct {
	mu     sync.Mutex
	eps    map[netip.AddrPort]*MemTransport
	faults map[[2]netip.Addr]LinkFault
	rnd    *rand.Rand
}

// NewMemNetwork returns an empty network whose random drops follow seed.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{
		eps:    make(map[netip.AddrPort]*MemTransport),
		faults: make(map[[2]netip.Addr]LinkFault),
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Listen binds a transport to addr on the network.
func (n *MemNetwork) Listen(addr netip.AddrPort) (*MemTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.eps[addr]; ok {
		return nil, fmt.Errorf("bind %s: address already in use", addr)
	}
	t := &MemTransport{net: n, local: addr, q: make(chan memDatagram, memQueueLen), done: make(chan struct{})}
	n.eps[addr] = t
	return t, nil
}

// SetFault sets the fault on datagrams from one address to another.
func (n *MemNetwork) SetFault(from, to netip.Addr, f LinkFault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == (LinkFault{}) {
		delete(n.faults, [2]netip.Addr{from, to})
		return
	}
	n.faults[[2]netip.Addr{from, to}] = f
}

// Partition cuts both directions between every address of a and every
// address of b.
func (n *MemNetwork) Partition(a, b []netip.Addr) {
	for _, x := range a {
		for _, y := range b {
			n.SetFault(x, y, LinkFault{Cut: true})
			n.SetFault(y, x, LinkFault{Cut: true})
		}
	}
}

// Heal removes every fault.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.faults)
}

func (n *MemNetwork) deliver(from, to netip.AddrPort, b []byte) error {
	n.mu.Lock()
	dst, ok := n.eps[to]
	f := n.faults[[2]netip.Addr{from.Addr(), to.Addr()}]
	lost := f.Cut || (f.Drop > 0 && n.rnd.Float64() < f.Drop)
	n.mu.Unlock()
	if !ok || lost {
		return nil // like UDP: a lost datagram is not the sender's error
	}
	d := memDatagram{from: from, b: append([]byte(nil), b...)}
	if f.Delay > 0 {
		time.AfterFunc(f.Delay, func() { dst.enqueue(d) })
		return nil
	}
	dst.enqueue(d)
	return nil
}

// MemTransport is one endpoint of a MemNetwork.
type MemTransport struct {
	net   *MemNetwork
	local netip.AddrPort
	q     chan memDatagram
	once  sync.Once
	done  chan struct{}
}

func (t *MemTransport) enqueue(d memDatagram) {
	select {
	case <-t.done:
	case t.q <- d:
	default: // queue full: lost, like an overflowing socket buffer
	}
}

// Send implements Transport.
func (t *MemTransport) Send(to netip.AddrPort, b []byte) error {
	select {
	case <-t.done:
		return ErrClosed
	default:
	}
	return t.net.deliver(t.local, to, b)
}

// Recv implements Transport.
func (t *MemTransport) Recv(buf []byte) (int, netip.AddrPort, error) {
	select {
	case <-t.done:
		return 0, netip.AddrPort{}, ErrClosed
	default:
	}
	select {
	case <-t.done:
		return 0, netip.AddrPort{}, ErrClosed
	case d := <-t.q:
		return copy(buf, d.b), d.from, nil
	}
}

// LocalAddr implements Transport.
func (t *MemTransport) LocalAddr() netip.AddrPort { return t.local }

// Close implements Transport.
func (t *MemTransport) Close() error {
	t.once.Do(func() {
		close(t.done)
		t.net.mu.Lock()
		delete(t.net.eps, t.local)
		t.net.mu.Unlock()
	})
	return nil
}
