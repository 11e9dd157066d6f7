package sdnotify

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen opens a datagram socket as the service manager does and returns
// what arrives on it.
func listen(t *testing.T, name string) (*net.UnixConn, func() string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
}

func TestNotifyPathSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	_, recv := listen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	n, err := FromEnv()
	if err != nil || n == nil {
		t.Fatalf("FromEnv = %v, %v", n, err)
	}
	defer n.Close()
	if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Fatalf("NOTIFY_SOCKET=%q left in the environment for children", v)
	}
	if err := n.Notify(Ready, Status("quorate\nwith 3 nodes")); err != nil {
		t.Fatal(err)
	}
	if got, want := recv(), "READY=1\nSTATUS=quorate with 3 nodes"; got != want {
		t.Fatalf("datagram %q, want %q", got, want)
	}
	if err := n.Notify(Watchdog); err != nil {
		t.Fatal(err)
	}
	if got := recv(); got != Watchdog {
		t.Fatalf("datagram %q, want %q", got, Watchdog)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := "@mtc-sdnotify-test-" + strconv.Itoa(os.Getpid())
	_, recv := listen(t, name)
	n, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	if got := recv(); got != Stopping {
		t.Fatalf("datagram %q, want %q", got, Stopping)
	}
}

func TestNotifyRedialsAfterManagerRestart(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, _ := listen(t, sock)
	n, err := New(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	c.Close()
	os.Remove(sock)
	if err := n.Notify(Watchdog); err == nil {
		t.Fatal("a send to a vanished manager succeeded")
	}
	_, recv := listen(t, sock)
	if err := n.Notify(Watchdog); err != nil {
		t.Fatalf("no redial after the manager came back: %v", err)
	}
	if got := recv(); got != Watchdog {
		t.Fatalf("datagram %q, want %q", got, Watchdog)
	}
}

func TestNilNotifierAndNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := FromEnv()
	if n != nil || err != nil {
		t.Fatalf("FromEnv without NOTIFY_SOCKET = %v, %v; want nil, nil", n, err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatalf("nil notifier: %v", err)
	}
	if _, err := New("vsock:2:1234"); !errors.Is(err, ErrUnsupportedSocket) {
		t.Fatalf("vsock address: %v, want ErrUnsupportedSocket", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		ok, err   bool
	}{
		{"", "", 0, false, false},
		{"20000000", "", 20 * time.Second, true, false},
		{"20000000", strconv.Itoa(os.Getpid()), 20 * time.Second, true, false},
		{"20000000", strconv.Itoa(os.Getpid() + 1), 0, false, false},
		{"0", "", 0, false, true},
		{"x", "", 0, false, true},
		{"1000", "y", 0, false, true},
	} {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		got, ok, err := WatchdogInterval()
		if got != c.want || ok != c.ok || (err != nil) != c.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v %v %v, want %v %v err=%v", c.usec, c.pid, got, ok, err, c.want, c.ok, c.err)
		}
	}
}
