package guest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/test/lab/labkit"
	"github.com/mtcluster/mtc/watchdog"
)

// EnvWatchdogPhase is set to 1 by the guest's init in the watchdog phase,
// the last part of a lab run: TestWatchdogResetsNode runs there alone,
// since it ends the run by resetting the guest.
const EnvWatchdogPhase = "MTC_LAB_WATCHDOG"

// Marks written to the kernel log, which the console carries to the host
// with the kernel's timestamps (test/lab/run.sh reads them). Level 3
// (err) passes the console's loglevel=4.
const (
	kmsgFault = "mtc-lab: watchdog phase: hanging node3's quorum path"
	kmsgFed   = "mtc-lab: node3 fed the watchdog"
)

// kmsg writes one line to the kernel log at level err.
type kmsg struct {
	mu sync.Mutex
	f  *os.File
}

func (k *kmsg) printf(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fmt.Fprintf(k.f, "<3>"+format+"\n", args...)
}

// markedWatchdog passes every call to the daemon's real watchdog and
// writes each successful feed to the kernel log once loud is set, so the
// host sees the last feed before the reset on the kernel's clock.
type markedWatchdog struct {
	inner watchdog.Watchdog
	k     *kmsg

	mu    sync.Mutex
	loud  bool
	feeds int
	last  time.Time
}

func (w *markedWatchdog) Feed() error {
	err := w.inner.Feed()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.k.printf("mtc-lab: node3's watchdog feed failed: %v", err)
		return err
	}
	w.feeds++
	w.last = time.Now()
	if w.feeds == 1 {
		w.k.printf("mtc-lab: node3 armed the watchdog (first feed)")
	}
	if w.loud {
		w.k.printf("%s (feed %d)", kmsgFed, w.feeds)
	}
	return nil
}

func (w *markedWatchdog) Disarm() error {
	w.k.printf("mtc-lab: node3 disarms the watchdog")
	return w.inner.Disarm()
}

func (w *markedWatchdog) Close() error {
	w.k.printf("mtc-lab: node3 closes the watchdog (it stays armed)")
	return w.inner.Close()
}

func (w *markedWatchdog) state() (feeds int, last time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.feeds, w.last
}

// TestWatchdogResetsNode: the real watchdog path. Three daemons as in
// TestDaemonFencesCrashedNode (without PR); node3's watchdog is the
// kernel's softdog at /dev/watchdog, opened as mtc daemon opens it
// ([watchdog] mode "device": daemon.NewWatchdog behind daemon.Lazy, armed
// at the first feed, WDIOC_SETTIMEOUT to watchdog_timeout). node3's dm map
// to the quorum LUN is suspended, so its slot writes hang: it stops
// feeding, and softdog must reset the guest watchdog_timeout after the
// last feed. The reset ends the run (QEMU runs with -no-reboot); the host
// checks the console for softdog's "Initiating system reboot" after the
// fault mark and reports the times from the kernel log's timestamps. This
// test fails only if it is still running long after the watchdog should
// have fired.
//
// It runs only in the watchdog phase (MTC_LAB_WATCHDOG=1), alone, after
// the other tests.
func TestWatchdogResetsNode(t *testing.T) {
	labkit.Require(t)
	if os.Getenv(EnvWatchdogPhase) != "1" {
		t.Skipf("resets the guest: runs alone in the lab's watchdog phase, after the other tests (%s=1; test/lab/README.md)", EnvWatchdogPhase)
	}
	san, ctx := lab(t)
	// A reservation left on a LUN would refuse the slot writes.
	cleanLUNs(t, ctx, append([]string{"quorum"}, fenceLUNs...)...)
	if _, err := os.Stat(watchdog.DefaultDevice); err != nil {
		t.Fatalf("no watchdog device: %v (the guest loads softdog: MODS in test/lab/image/mkbase.sh)", err)
	}
	kf, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	k := &kmsg{f: kf}

	wd := &markedWatchdog{k: k}
	nodes, dms := startLabDaemons(t, ctx, san, false, map[string]func(*config.Cluster) watchdog.Watchdog{
		"node3": func(cl *config.Cluster) watchdog.Watchdog {
			c := *cl
			c.Watchdog = config.Watchdog{Mode: config.WatchdogDevice, Device: watchdog.DefaultDevice}
			log := testLogger(t).With("component", "watchdog", "node", "node3")
			wd.inner = daemon.Lazy(func() (watchdog.Watchdog, error) {
				return daemon.NewWatchdog(&c, log, nil, nil, os.Stderr)
			})
			return wd
		},
	})
	n3 := nodes["node3"]
	if !waitFor(ctx, func() bool { n, _ := wd.state(); return n >= 4 }) {
		n, _ := wd.state()
		t.Fatalf("node3 fed its watchdog %d times: %+v", n, n3.d.Status())
	}

	wd.mu.Lock()
	wd.loud = true
	feeds := wd.feeds
	wd.mu.Unlock()
	k.printf("%s %s (dmsetup suspend); %d feeds so far; watchdog_timeout %v", kmsgFault, dms["node3"].Dev(), feeds, labTiming.WatchdogTimeout)
	fault := time.Now()
	t.Logf("node3 fed %s %d times; hanging its quorum path %s", watchdog.DefaultDevice, feeds, dms["node3"].Dev())
	if err := dms["node3"].Hang(ctx); err != nil {
		t.Fatal(err)
	}

	// From here on the guest is expected to end. What node3 does on the
	// way is logged for the reader of the watchdog log. Generous: only a
	// watchdog that does not fire at all reaches the deadline.
	deadline := labTiming.FailureTimeout + 6*labTiming.WatchdogTimeout
	wctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if waitFor(wctx, func() bool { return n3.d.Status().Stopped }) {
		_, last := wd.state()
		t.Logf("node3 stopped (self-fence) %v after the fault; last feed %v after the fault", time.Since(fault).Round(time.Millisecond), last.Sub(fault).Round(time.Millisecond))
	}
	<-wctx.Done()
	n, last := wd.state()
	k.printf("mtc-lab: watchdog phase: still running %v after the fault", deadline)
	t.Fatalf("the guest was not reset: %v after node3's quorum path hung and %v after its last feed (feed %d; watchdog_timeout %v); node3: %+v",
		time.Since(fault).Round(time.Millisecond), time.Since(last).Round(time.Millisecond), n, labTiming.WatchdogTimeout, n3.d.Status())
}
