package timing

import (
	"testing"
	"time"
)

// The tests below check the disk tolerances against a step-by-step model
// of the heartbeat rounds, written from the machine's rules rather than
// from the formulas: rounds of DiskIOsPerRound I/Os one after the other,
// a round started at a heartbeat tick or at once when the previous one
// overran the tick it was due at, every I/O with its own IOTimeout
// deadline, a device that refuses I/O while a timed-out one is still in
// the kernel, and a node that self-fences once no write issued in the last
// SelfFenceAfter has succeeded.

// diskModel is the quorum-disk behaviour the model runs against: when an
// I/O issued at `at` completes, and whether it succeeded.
type diskModel func(at time.Duration) (done time.Duration, ok bool)

// survives runs rounds until horizon and reports whether the node never
// self-fenced, and when it did.
func survives(d Derived, disk diskModel, horizon time.Duration) (bool, time.Duration) {
	h := d.HeartbeatInterval
	lastOK := time.Duration(0) // a write issued at 0 succeeded
	start := h                 // the next round starts at the first tick
	for start < horizon {
		nextTick := (start/h + 1) * h
		now := start
		for i := 0; i < DiskIOsPerRound; i++ {
			done, ok := disk(now)
			deadline := lastOK + d.SelfFenceAfter
			switch {
			case i == 0 && ok && done <= deadline:
				lastOK = now // the write of the node's own slot
			case done > deadline:
				return false, deadline
			}
			now = done
		}
		start = max(nextTick, now)
	}
	return true, 0
}

// steady is a disk whose every I/O takes lat (failing at IOTimeout).
func steady(d Derived, lat time.Duration) diskModel {
	return func(at time.Duration) (time.Duration, bool) {
		if lat >= d.IOTimeout {
			return at + d.IOTimeout, false
		}
		return at + lat, true
	}
}

// stall is a disk whose I/Os take fast, except that nothing completes
// between from and from+length. An I/O that times out in the stall stays
// in the kernel until the stall ends, and the device refuses every I/O
// meanwhile (diskhb.ErrBusy).
func stall(d Derived, from, length, fast time.Duration) diskModel {
	end := from + length
	stuckUntil := time.Duration(-1)
	return func(at time.Duration) (time.Duration, bool) {
		switch {
		case at < stuckUntil:
			return at, false
		case at >= end || at+fast <= from:
			return at + fast, true
		case end+fast <= at+d.IOTimeout:
			return end + fast, true // held by the stall, then completes
		}
		stuckUntil = end + fast
		return at + d.IOTimeout, false
	}
}

func toleranceTimings() map[string]Timing {
	return map[string]Timing{
		"default":    DefaultTiming(),
		"aggressive": AggressiveTiming(),
		"lab":        {250 * time.Millisecond, time.Second, 3 * time.Second, 5 * time.Second},
		"short io":   {200 * time.Millisecond, 100 * time.Millisecond, time.Second, 3 * time.Second},
		"tight":      {100 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, time.Second},
	}
}

func TestDiskLatencyTolerance(t *testing.T) {
	for name, tm := range toleranceTimings() {
		d := tm.Derive()
		tol := d.DiskLatencyTolerance()
		horizon := 100 * d.SelfFenceAfter
		if ok, at := survives(d, steady(d, tol-time.Microsecond), horizon); !ok {
			t.Errorf("%s: latency just below the tolerance %v self-fences at %v", name, tol, at)
		}
		// Just above the tolerance the node self-fences, unless the
		// tolerance is io_timeout (then I/O just above it fails).
		if ok, _ := survives(d, steady(d, tol+tol/50), horizon); ok {
			t.Errorf("%s: latency 2%% above the tolerance %v does not self-fence: the tolerance is too low", name, tol)
		}
	}
	if got := DefaultTiming().Derive().DiskLatencyTolerance(); got != 200*time.Millisecond {
		t.Errorf("default tolerance %v, want 200ms (docs/config.md)", got)
	}
	if got := AggressiveTiming().Derive().DiskLatencyTolerance(); got != 60*time.Millisecond {
		t.Errorf("aggressive tolerance %v, want 60ms (docs/config.md)", got)
	}
}

func TestDiskStallTolerance(t *testing.T) {
	const fast = 100 * time.Microsecond
	for name, tm := range toleranceTimings() {
		d := tm.Derive()
		tol := d.DiskStallTolerance()
		slack := DiskIOsPerRound * fast
		bestFail := time.Duration(-1)
		// Every start within a heartbeat (the worst is just as a write is
		// issued), every length up to twice the tolerance.
		for from := d.HeartbeatInterval * 3; from < d.HeartbeatInterval*4; from += d.HeartbeatInterval / 8 {
			for length := time.Millisecond; length < 2*tol; length += time.Millisecond {
				ok, _ := survives(d, stall(d, from, length, fast), from+length+10*d.SelfFenceAfter)
				if !ok && length <= tol-slack {
					t.Fatalf("%s: a stall of %v at %v self-fences, below the tolerance %v", name, length, from, tol)
				}
				if !ok && (bestFail < 0 || length < bestFail) {
					bestFail = length
				}
			}
		}
		// The tolerance is tight: some stall not much longer fails.
		if bestFail < 0 || bestFail > tol+2*time.Millisecond {
			t.Errorf("%s: the shortest stall that self-fences is %v, the tolerance %v is too low", name, bestFail, tol)
		}
	}
	if got := DefaultTiming().Derive().DiskStallTolerance(); got != 600*time.Millisecond {
		t.Errorf("default stall tolerance %v, want 600ms (docs/config.md)", got)
	}
	if got := AggressiveTiming().Derive().DiskStallTolerance(); got != 200*time.Millisecond {
		t.Errorf("aggressive stall tolerance %v, want 200ms (docs/config.md)", got)
	}
}
