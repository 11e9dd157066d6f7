package nethb

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch bounds how many datagrams from unknown sources Recv takes
// between two looks at the peers' sockets: under a flood, a peer's
// heartbeat waits behind at most this many refused datagrams.
const udpBatch = 32

// Recv takes at most udpSlicePackets datagrams from the shared socket per
// udpSlice (20,000 a second): nothing on it is a peer's heartbeat, so a
// flood costs the receiving thread a bounded share of a CPU (a few
// percent, refusals at a MAC check of about 2 us each) whatever its rate;
// the kernel drops the rest, counted in QueueDrops.
const (
	udpSlice        = 10 * time.Millisecond
	udpSlicePackets = 200
)

// UDP is a Transport over UDP sockets bound to one local address: one
// socket that sends and receives from any source, and one connected socket
// per peer, bound to the same address and port. The kernel delivers a
// datagram to the connected socket whose peer address matches its source
// and only the rest to the first socket, so each peer's heartbeats have a
// receive queue of their own: a flood from other addresses fills and
// overflows the shared queue without touching them. Recv serves the
// peers' sockets first and takes at most udpBatch datagrams from the
// shared one between two looks at them. (A flood that spoofs a peer's own
// address and port lands in that peer's queue; nothing at this layer can
// tell those datagrams apart before their MAC is checked.)
//
// All sockets share the port with SO_REUSEPORT, which the kernel only
// allows among sockets of the same user, and match a peer's datagrams to
// its connected socket (Linux 5.7 and later).
type UDP struct {
	local netip.AddrPort
	wild  int   // bound, unconnected: sends, and receives from any source
	peers []int // connected to one peer each
	wake  int   // eventfd: Close wakes a blocked Recv

	// mu is held shared by Send and Recv while they use the sockets, and
	// exclusively by Close to release them.
	mu     sync.RWMutex
	closed atomic.Bool

	// Recv's state, used by one goroutine at a time (recvMu).
	recvMu    sync.Mutex
	pfds      []unix.PollFd // peers..., wild, wake
	peerReady []bool
	wildReady bool
	budget    int
	// The shared socket's rate bound: datagrams taken in the slice that
	// began at sliceStart. now is the clock, replaced by tests.
	now        func() time.Time
	sliceStart time.Time
	sliceTaken int
}

var _ Transport = (*UDP)(nil)

// ListenUDP binds the heartbeat sockets to addr (for example
// 10.0.0.1:5405): the shared socket, and one connected to each of peers
// (their addresses and ports on this network). Binding the node's own
// address on each heartbeat network makes the source address of its
// packets that of the network they travel on. `ss -uanp 'sport = :5405'`
// lists the sockets: the shared one UNCONN, one ESTAB per peer address.
func ListenUDP(addr netip.AddrPort, peers ...netip.AddrPort) (*UDP, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	u := &UDP{wild: -1, wake: -1, now: time.Now}
	fail := func(err error) (*UDP, error) {
		u.release()
		return nil, err
	}
	var err error
	if addr.Port() != 0 {
		// SO_REUSEPORT would let a second daemon of this node share the
		// port: first make sure that nobody holds it.
		probe, err := udpSocket(addr, netip.AddrPort{}, false)
		if err != nil {
			return fail(fmt.Errorf("bind heartbeat socket %s: %w (is the address configured on this node, and the port free? is another mtc daemon running?)", addr, err))
		}
		unix.Close(probe)
	}
	if u.wild, err = udpSocket(addr, netip.AddrPort{}, true); err != nil {
		return fail(fmt.Errorf("bind heartbeat socket %s: %w (is the address configured on this node, and the port free?)", addr, err))
	}
	sa, err := unix.Getsockname(u.wild)
	if err != nil {
		return fail(fmt.Errorf("heartbeat socket %s: %w", addr, err))
	}
	u.local = fromSockaddr(sa)
	for _, p := range peers {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		fd, err := udpSocket(u.local, p, true)
		if err != nil {
			return fail(fmt.Errorf("heartbeat socket %s for peer %s: %w", u.local, p, err))
		}
		u.peers = append(u.peers, fd)
	}
	if u.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(fmt.Errorf("heartbeat socket %s: eventfd: %w", addr, err))
	}
	for _, fd := range u.peers {
		u.pfds = append(u.pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	u.pfds = append(u.pfds, unix.PollFd{Fd: int32(u.wild), Events: unix.POLLIN}, unix.PollFd{Fd: int32(u.wake), Events: unix.POLLIN})
	u.peerReady = make([]bool, len(u.peers))
	return u, nil
}

// udpSocket opens a non-blocking UDP socket bound to local, with
// SO_REUSEPORT when reuse is set, connected to peer when peer is valid.
func udpSocket(local, peer netip.AddrPort, reuse bool) (int, error) {
	family := unix.AF_INET
	if local.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("SO_REUSEPORT: %w", err)
		}
	}
	if err := unix.Bind(fd, toSockaddr(local)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if peer.IsValid() {
		if err := unix.Connect(fd, toSockaddr(peer)); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("connect: %w", err)
		}
	}
	return fd, nil
}

func toSockaddr(a netip.AddrPort) unix.Sockaddr {
	if a.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: a.Addr().As4(), Port: int(a.Port())}
	}
	return &unix.SockaddrInet6{Addr: a.Addr().As16(), Port: int(a.Port())}
}

func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// Send implements Transport.
func (u *UDP) Send(to netip.AddrPort, b []byte) error {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed.Load() {
		return ErrClosed
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	return unix.Sendto(u.wild, b, 0, toSockaddr(to))
}

// Recv implements Transport. It allocates nothing.
func (u *UDP) Recv(buf []byte) (int, netip.AddrPort, error) {
	u.recvMu.Lock()
	defer u.recvMu.Unlock()
	u.mu.RLock()
	defer u.mu.RUnlock()
	for {
		if u.closed.Load() {
			return 0, netip.AddrPort{}, ErrClosed
		}
		for i, fd := range u.peers {
			for u.peerReady[i] {
				n, from, err := recvFrom(fd, buf)
				switch {
				case err == nil:
					return n, from, nil
				case errors.Is(err, unix.ECONNREFUSED):
					// An ICMP error for our sends to a peer that is down,
					// reported on its connected socket: not a datagram.
				case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
					u.peerReady[i] = false
				default:
					return 0, netip.AddrPort{}, err
				}
			}
		}
		if u.wildReady && u.budget > 0 && u.sharedAllowed() {
			n, from, err := recvFrom(u.wild, buf)
			switch {
			case err == nil:
				u.budget--
				u.sliceTaken++
				return n, from, nil
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
				u.wildReady = false
			default:
				return 0, netip.AddrPort{}, err
			}
		}
		if err := u.poll(); err != nil {
			return 0, netip.AddrPort{}, err
		}
	}
}

// sharedAllowed reports whether the shared socket's rate bound lets Recv
// take another datagram from it now.
func (u *UDP) sharedAllowed() bool {
	if now := u.now(); now.Sub(u.sliceStart) >= udpSlice || now.Before(u.sliceStart) {
		u.sliceStart, u.sliceTaken = now, 0
	}
	return u.sliceTaken < udpSlicePackets
}

// poll waits until a socket is readable (or Close) and records which.
// While the shared socket's rate bound is reached it waits on the peers'
// sockets only, until the slice ends.
func (u *UDP) poll() error {
	np := len(u.peers)
	var timeout *unix.Timespec
	u.pfds[np].Events = unix.POLLIN
	if !u.sharedAllowed() {
		u.pfds[np].Events = 0
		ts := unix.NsecToTimespec(int64(max(u.sliceStart.Add(udpSlice).Sub(u.now()), 0)))
		timeout = &ts
	}
	for {
		for i := range u.pfds {
			u.pfds[i].Revents = 0
		}
		_, err := unix.Ppoll(u.pfds, timeout, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll heartbeat sockets: %w", err)
		}
		break
	}
	for i := range u.peers {
		u.peerReady[i] = u.pfds[i].Revents != 0
	}
	u.wildReady = u.pfds[np].Revents != 0 || u.pfds[np].Events == 0
	u.budget = udpBatch
	return nil
}

// QueueDrops is how many datagrams the kernel dropped because one of the
// heartbeat sockets' receive queues was full, since ListenUDP: a flood
// beyond the rate Recv takes from the shared socket, or a receiving
// thread that does not keep up.
func (u *UDP) QueueDrops() uint64 {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed.Load() {
		return 0
	}
	var total uint64
	for _, fd := range append([]int{u.wild}, u.peers...) {
		var mi [unix.SK_MEMINFO_VARS]uint32
		l := uint32(unsafe.Sizeof(mi))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mi)), uintptr(unsafe.Pointer(&l)), 0)
		if errno == 0 {
			total += uint64(mi[unix.SK_MEMINFO_DROPS])
		}
	}
	return total
}

// recvFrom reads one datagram from a non-blocking socket without
// allocating (unix.Recvfrom allocates a Sockaddr per call).
func recvFrom(fd int, buf []byte) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	rsaLen := uint32(unix.SizeofSockaddrAny)
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(buf)), unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rsaLen)))
	if errno != 0 {
		return 0, netip.AddrPort{}, errno
	}
	var from netip.AddrPort
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		pp := (*[2]byte)(unsafe.Pointer(&sa.Port))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(pp[0])<<8|uint16(pp[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		pp := (*[2]byte)(unsafe.Pointer(&sa.Port))
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(pp[0])<<8|uint16(pp[1]))
	}
	return int(n), from, nil
}

// LocalAddr implements Transport.
func (u *UDP) LocalAddr() netip.AddrPort { return u.local }

// Close implements Transport: it wakes a blocked Recv and closes the
// sockets once no Send or Recv uses them.
func (u *UDP) Close() error {
	if u.closed.Swap(true) {
		return nil
	}
	var one [8]byte
	one[0] = 1 // an eventfd counter increment, any byte order > 0
	_, _ = unix.Write(u.wake, one[:])
	u.mu.Lock()
	defer u.mu.Unlock()
	u.release()
	return nil
}

func (u *UDP) release() {
	for _, fd := range append([]int{u.wild, u.wake}, u.peers...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	u.wild, u.wake, u.peers = -1, -1, nil
}
