package daemon

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/internal/sdnotify"
)

// recordingNotifier keeps every datagram, as the service manager would
// receive them.
type recordingNotifier struct {
	mu   sync.Mutex
	msgs [][]string
}

func (r *recordingNotifier) Notify(states ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, append([]string(nil), states...))
	return nil
}

// count returns how many states equal to s were sent, and the STATUS=
// lines in order.
func (r *recordingNotifier) count(s string) (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	var status []string
	for _, m := range r.msgs {
		for _, st := range m {
			if st == s {
				n++
			}
			if strings.HasPrefix(st, "STATUS=") {
				status = append(status, strings.TrimPrefix(st, "STATUS="))
			}
		}
	}
	return n, status
}

// A node tells the service manager READY=1 once it holds quorum, keeps a
// one-line STATUS= up to date, pings the service watchdog from its event
// loop, and says STOPPING=1 when it shuts down.
func TestServiceNotification(t *testing.T) {
	rec := &recordingNotifier{}
	tc := newTestClusterWith(t, 2, func(tc *testCluster) {
		tc.options = func(name string, o *Options) {
			if name == "n1" {
				o.Notify, o.NotifyWatchdog = rec, 20*time.Millisecond
			}
		}
	})
	a := tc.nodes[0]
	tc.waitFor("n1 quorate and READY sent", func() bool {
		n, _ := rec.count(sdnotify.Ready)
		return quorateWith(a, "n1", "n2") && n == 1
	})
	tc.waitFor("service watchdog pinged repeatedly", func() bool {
		n, _ := rec.count(sdnotify.Watchdog)
		return n >= 3
	})
	_, status := rec.count("")
	if !slices.Contains(status, "quorate, members n1,n2 (epoch "+itoa(a.d.Status().Epoch)+")") {
		t.Fatalf("no quorate STATUS= line; lines sent: %q", status)
	}
	a.stop()
	n, status := rec.count(sdnotify.Stopping)
	if n != 1 {
		t.Fatalf("STOPPING=1 sent %d times, want 1", n)
	}
	if r, _ := rec.count(sdnotify.Ready); r != 1 {
		t.Fatalf("READY=1 sent %d times, want once", r)
	}
	for i := 1; i < len(status); i++ {
		if status[i] == status[i-1] {
			t.Fatalf("STATUS= %q repeated without a change: %q", status[i], status)
		}
	}
}

// A node that cannot gain quorum (its peers never start) still declares
// itself ready once it has waited DeadAfter, with a status that says why
// it is not quorate: `systemctl start` returns, and `systemctl status`
// shows the reason.
func TestServiceReadyWithoutQuorum(t *testing.T) {
	rec := &recordingNotifier{}
	tc := newTestClusterWith(t, 3, func(tc *testCluster) {
		tc.absent = map[string]bool{"n2": true, "n3": true}
		tc.options = func(name string, o *Options) { o.Notify = rec }
	})
	a := tc.nodes[0]
	tc.waitFor("n1 ready", func() bool { n, _ := rec.count(sdnotify.Ready); return n == 1 })
	if a.d.Status().Quorate {
		t.Fatal("n1 alone of three is quorate")
	}
	if n, _ := rec.count(sdnotify.Watchdog); n != 0 {
		t.Fatalf("WATCHDOG=1 sent %d times without a service watchdog", n)
	}
	tc.waitFor("n1 not quorate, status says so", func() bool {
		_, status := rec.count("")
		return len(status) > 0 && strings.HasPrefix(status[len(status)-1], "not quorate: ")
	})
	_, status := rec.count("")
	for _, s := range status {
		if strings.HasPrefix(s, "quorate") {
			t.Fatalf("n1 alone of three reported %q; lines sent: %q", s, status)
		}
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
