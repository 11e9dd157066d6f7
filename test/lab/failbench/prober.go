package failbench

import (
	"errors"
	"math"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The answers the observer records.
const (
	Refused   = iota + 1 // RST: the VIP is up, nothing listens
	Connected            // SYN-ACK
	Served               // the service's answer line
)

// Event is one answer to one probe.
type Event struct {
	Sent, At time.Time
	Kind     int
	Line     string
}

// Prober opens a non-blocking TCP connection to an address from an
// observer's network namespace every Every, each waiting at most Timeout
// for its answer, and records every answer.
type Prober struct {
	every, timeout time.Duration
	mu             sync.Mutex
	events         []Event
	stop           chan struct{}
	done           chan struct{}
	err            error
}

// StartProber starts probing ip:port from the namespace at nsPath.
func StartProber(nsPath string, ip netip.Addr, port int, every, timeout time.Duration) *Prober {
	p := &Prober{every: every, timeout: timeout, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// The thread stays in the observer's namespace and ends with
		// the goroutine (it is never unlocked).
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			p.err = err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			p.err = err
			return
		}
		p.loop(&unix.SockaddrInet4{Port: port, Addr: ip.As4()})
	}()
	return p
}

type pendingProbe struct {
	fd        int
	sent      time.Time
	connected bool
	buf       []byte
}

func (p *Prober) record(ev Event) {
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.mu.Unlock()
}

func (p *Prober) loop(sa *unix.SockaddrInet4) {
	var pending []*pendingProbe
	defer func() {
		for _, q := range pending {
			unix.Close(q.fd)
		}
	}()
	next := time.Now()
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		now := time.Now()
		if !now.Before(next) {
			next = next.Add(p.every)
			if next.Before(now) {
				next = now.Add(p.every)
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				p.err = err
				return
			}
			sent := time.Now()
			switch err := unix.Connect(fd, sa); {
			case err == nil:
				p.record(Event{Sent: sent, At: time.Now(), Kind: Connected})
				pending = append(pending, &pendingProbe{fd: fd, sent: sent, connected: true})
			case errors.Is(err, unix.EINPROGRESS):
				pending = append(pending, &pendingProbe{fd: fd, sent: sent})
			case errors.Is(err, unix.ECONNREFUSED):
				p.record(Event{Sent: sent, At: time.Now(), Kind: Refused})
				unix.Close(fd)
			default:
				unix.Close(fd)
			}
		}
		// Give up on the probes past their timeout.
		kept := pending[:0]
		for _, q := range pending {
			if now.Sub(q.sent) > p.timeout {
				unix.Close(q.fd)
				continue
			}
			kept = append(kept, q)
		}
		pending = kept
		fds := make([]unix.PollFd, len(pending))
		for i, q := range pending {
			fds[i] = unix.PollFd{Fd: int32(q.fd), Events: unix.POLLOUT}
			if q.connected {
				fds[i].Events = unix.POLLIN
			}
		}
		wait := int(math.Ceil(float64(time.Until(next)) / float64(time.Millisecond)))
		n, err := unix.Poll(fds, max(wait, 0))
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.err = err
			return
		}
		if n <= 0 {
			continue
		}
		at := time.Now()
		kept = pending[:0]
		for i, q := range pending {
			if fds[i].Revents == 0 {
				kept = append(kept, q)
				continue
			}
			if !q.connected {
				soerr, err := unix.GetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				switch {
				case err == nil && soerr == 0:
					q.connected = true
					p.record(Event{Sent: q.sent, At: at, Kind: Connected})
					kept = append(kept, q)
				case err == nil && syscall.Errno(soerr) == unix.ECONNREFUSED:
					p.record(Event{Sent: q.sent, At: at, Kind: Refused})
					unix.Close(q.fd)
				default: // unreachable: no answer
					unix.Close(q.fd)
				}
				continue
			}
			var buf [128]byte
			n, err := unix.Read(q.fd, buf[:])
			if n > 0 {
				q.buf = append(q.buf, buf[:n]...)
			}
			if errors.Is(err, unix.EAGAIN) && !strings.Contains(string(q.buf), "\n") {
				kept = append(kept, q)
				continue
			}
			line, _, _ := strings.Cut(string(q.buf), "\n")
			if line != "" {
				p.record(Event{Sent: q.sent, At: at, Kind: Served, Line: strings.TrimSpace(line)})
			}
			unix.Close(q.fd)
		}
		pending = kept
	}
}

// Stop ends the probing.
func (p *Prober) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// Err is why the probing ended on its own (nil while it runs).
func (p *Prober) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// First returns, among the probes sent after since, the time of the first
// answer, and (with service) of the first service answer and its line; ok
// when those are there.
func (p *Prober) First(since time.Time, service bool) (answer, served time.Time, line string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.events {
		if ev.Sent.Before(since) {
			continue
		}
		if answer.IsZero() || ev.At.Before(answer) {
			answer = ev.At
		}
		if ev.Kind == Served && (served.IsZero() || ev.At.Before(served)) {
			served, line = ev.At, ev.Line
		}
	}
	return answer, served, line, !answer.IsZero() && (!service || !served.IsZero())
}

// WaitAnswer waits up to bound for an answer to a probe sent after since.
func (p *Prober) WaitAnswer(since time.Time, bound time.Duration, service bool) bool {
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(p.every) {
		if _, _, _, ok := p.First(since, service); ok {
			return true
		}
		select {
		case <-p.done:
			return false
		default:
		}
	}
	return false
}
