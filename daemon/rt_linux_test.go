package daemon

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/test/testutil"
	"golang.org/x/sys/unix"
)

// realtimeThread either raises the thread to SCHED_RR or says why not;
// it never fails silently.
func TestRealtimeThreadRaisesOrExplains(t *testing.T) {
	var logs testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	done := make(chan int)
	go func() {
		realtimeThread(log, "test")
		attr, err := unix.SchedGetAttr(0, 0)
		policy := -1
		if err == nil {
			policy = int(attr.Policy)
		}
		// Give the thread back to normal scheduling before it is reused.
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: 0 /* SCHED_OTHER */}, 0)
		done <- policy
	}()
	policy := <-done
	out := logs.String()
	switch {
	case policy == unix.SCHED_RR:
		if !strings.Contains(out, "real-time thread") {
			t.Fatalf("raised to SCHED_RR without a log line:\n%s", out)
		}
	case strings.Contains(out, "cannot give the test thread real-time priority"):
		t.Logf("system refused SCHED_RR (expected without CAP_SYS_NICE): %s", out)
	default:
		t.Fatalf("thread policy %d and no explanation in the log:\n%s", policy, out)
	}
}
