// Package sdnotify tells the service manager about the daemon's state with
// the sd_notify protocol: newline-separated VAR=VALUE assignments in one
// datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
// abstract name written with a leading '@'), and the service watchdog
// interval from $WATCHDOG_USEC and $WATCHDOG_PID.
//
// It is the whole protocol as the daemon uses it, kept here rather than
// taken from a library: the daemon needs READY=1, STATUS=, WATCHDOG=1 and
// STOPPING=1, and must take the variables out of its environment so the
// package services it starts do not inherit them.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocol states the daemon sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Status is the STATUS= assignment for a one-line description.
func Status(s string) string {
	return "STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// Notifier sends states to the service manager. The zero of *Notifier
// (nil) sends nothing: a daemon not started by a service manager.
type Notifier struct {
	addr *net.UnixAddr

	mu   sync.Mutex
	conn *net.UnixConn
}

// ErrUnsupportedSocket is returned for a NOTIFY_SOCKET this package cannot
// reach (vsock addresses).
var ErrUnsupportedSocket = errors.New("NOTIFY_SOCKET is not an AF_UNIX socket path or abstract name")

// FromEnv returns the notifier for $NOTIFY_SOCKET, or nil when the variable
// is unset (not run by a service manager, or Type= is not notify). It
// removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the process
// environment once read; call WatchdogInterval first.
func FromEnv() (*Notifier, error) {
	s := os.Getenv("NOTIFY_SOCKET")
	for _, v := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		_ = os.Unsetenv(v)
	}
	if s == "" {
		return nil, nil
	}
	return New(s)
}

// New returns a notifier for the socket s, as NOTIFY_SOCKET names it.
func New(s string) (*Notifier, error) {
	if s == "" || !(s[0] == '/' || s[0] == '@') {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedSocket, s)
	}
	// Go's unix addresses take a leading '@' as the abstract namespace.
	return &Notifier{addr: &net.UnixAddr{Name: s, Net: "unixgram"}}, nil
}

// Notify sends the states in one datagram. A nil notifier does nothing.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || len(states) == 0 {
		return nil
	}
	msg := []byte(strings.Join(states, "\n"))
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		c, err := net.DialUnix("unixgram", nil, n.addr)
		if err != nil {
			return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
		}
		n.conn = c
	}
	if _, err := n.conn.Write(msg); err != nil {
		// The manager may have been re-executed: dial again next time.
		_ = n.conn.Close()
		n.conn = nil
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Close releases the socket.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil
	}
	err := n.conn.Close()
	n.conn = nil
	return err
}

// WatchdogInterval returns the service watchdog's timeout
// ($WATCHDOG_USEC), when it is set for this process ($WATCHDOG_PID unset
// or this pid). A service pings at half of it or more often.
func WatchdogInterval() (time.Duration, bool, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, false, nil
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, false, fmt.Errorf("WATCHDOG_PID=%q: %w", p, err)
		}
		if pid != os.Getpid() {
			return 0, false, nil
		}
	}
	v, err := strconv.ParseUint(us, 10, 63)
	if err != nil || v == 0 {
		return 0, false, fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds", us)
	}
	return time.Duration(v) * time.Microsecond, true, nil
}
