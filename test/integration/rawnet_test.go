package integration

import (
	wire "encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs f on an OS thread moved into the named network namespace.
// Sockets f opens belong to that namespace for their whole life, whichever
// goroutine uses them later. The thread is never moved back: it ends with
// the goroutine (a locked thread that exits is discarded by the runtime).
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// appendSpoofedUDP appends an IPv4 datagram carrying payload from src to
// dst, for a raw IPPROTO_RAW socket: the kernel fills in the header
// checksum and the packet id; the UDP checksum is left out (zero), which
// IPv4 allows.
func appendSpoofedUDP(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	total := 20 + 8 + len(payload)
	b = append(b, 0x45, 0)
	b = wire.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0x40, 0, 64, unix.IPPROTO_UDP, 0, 0) // id, DF, ttl, proto, checksum
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = wire.BigEndian.AppendUint16(b, src.Port())
	b = wire.BigEndian.AppendUint16(b, dst.Port())
	b = wire.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0)
	return append(b, payload...)
}

// floodSource is the i-th spoofed source: consecutive addresses in
// 100.64.0.0/10 (4,194,304 of them, none on the heartbeat networks), so
// every packet of a flood of up to that many has its own address.
func floodSource(i int, rnd *rand.Rand) netip.AddrPort {
	v := (uint32(100)<<24 | 64<<16) + uint32(i)
	var a [4]byte
	wire.BigEndian.PutUint32(a[:], v)
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+rnd.IntN(64000)))
}

// floodResult is what a spoofed flood sent.
type floodResult struct {
	sent    int
	retries int // sends the kernel refused for want of buffer, retried
	elapsed time.Duration
}

// spoofFlood sends count datagrams to dst from the namespace ns, as fast
// as the kernel takes them, from senders threads at once, each datagram
// from its own spoofed source address (floodSource). Each datagram is
// size random bytes or, when template is set, the template with its last
// 32 bytes (a heartbeat's MAC) random. It stops early after limit.
func spoofFlood(ns string, dst netip.AddrPort, count, size int, template []byte, senders int, limit time.Duration) (floodResult, error) {
	results := make([]floodResult, senders)
	errs := make(chan error, senders)
	start := time.Now()
	for k := range senders {
		go func() {
			errs <- inNetns(ns, func() error {
				return floodFrom(&results[k], dst, k, senders, count, size, template, start.Add(limit))
			})
		}()
	}
	var r floodResult
	var err error
	for range senders {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	r.elapsed = time.Since(start)
	for _, x := range results {
		r.sent += x.sent
		r.retries += x.retries
	}
	return r, err
}

// floodFrom sends datagrams k, k+step, k+2*step, ... below count.
func floodFrom(r *floodResult, dst netip.AddrPort, k, step, count, size int, template []byte, deadline time.Time) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Addr: dst.Addr().As4()}
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(k)))
	payload := make([]byte, size) // the tail past a multiple of 8 keeps its first random bytes
	for j := range payload {
		payload[j] = byte(rnd.Uint32())
	}
	random := payload
	if template != nil {
		payload = append([]byte(nil), template...)
		random = payload[max(0, len(payload)-32):]
	}
	pkt := make([]byte, 0, 28+len(payload))
	for i := k; i < count; i += step {
		if (i/step)%1024 == 0 && time.Now().After(deadline) {
			break
		}
		for j := 0; j+8 <= len(random); j += 8 {
			wire.LittleEndian.PutUint64(random[j:j+8], rnd.Uint64())
		}
		pkt = appendSpoofedUDP(pkt[:0], floodSource(i, rnd), dst, payload)
		for {
			err := unix.Sendto(fd, pkt, 0, to)
			if err == nil {
				break
			}
			if err != unix.ENOBUFS && err != unix.EAGAIN {
				return fmt.Errorf("send spoofed packet %d: %w", i, err)
			}
			r.retries++
			time.Sleep(50 * time.Microsecond)
		}
		r.sent++
	}
	return nil
}

// datagram is one captured UDP payload and when it arrived, from the start
// of the capture.
type datagram struct {
	at      time.Duration
	payload []byte
}

// captureUDP records, for dur, the payload of every UDP datagram from src
// to port dport that arrives in namespace ns, as the node there receives
// it: a raw IPPROTO_UDP socket gets a copy of each, IP header included,
// beside the socket it is addressed to.
func captureUDP(ns string, src netip.Addr, dport uint16, dur time.Duration) ([]datagram, error) {
	var out []datagram
	err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return fmt.Errorf("raw capture socket: %w", err)
		}
		defer unix.Close(fd)
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		buf := make([]byte, 65536)
		want := src.As4()
		start := time.Now()
		for time.Since(start) < dur {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			at := time.Since(start)
			if n < 20 {
				continue
			}
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl+8 || [4]byte(buf[12:16]) != want || wire.BigEndian.Uint16(buf[ihl+2:]) != dport {
				continue
			}
			out = append(out, datagram{at: at, payload: append([]byte(nil), buf[ihl+8:n]...)})
		}
		return nil
	})
	return out, err
}

// replayUDP sends the captured datagrams from the address from (bound in
// namespace ns) to to, each at its original offset from the first.
func replayUDP(ns string, from, to netip.AddrPort, pkts []datagram) (int, error) {
	sent := 0
	err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: from.Addr().As4(), Port: int(from.Port())}); err != nil {
			return fmt.Errorf("bind %s: %w", from, err)
		}
		dst := &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}
		start := time.Now()
		for _, p := range pkts {
			time.Sleep(time.Until(start.Add(p.at - pkts[0].at)))
			if err := unix.Sendto(fd, p.payload, 0, dst); err != nil {
				return fmt.Errorf("replay datagram %d: %w", sent, err)
			}
			sent++
		}
		return nil
	})
	return sent, err
}
