package quorum

import (
	"math/rand"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
)

// stretch is the most a duration on one node's clock can last on another's:
// their rates differ by at most config.MaxClockDrift.
func stretch(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + config.MaxClockDrift))
}

// timingRelations lists the relations between derived timeouts that the
// package's safety arguments (see doc.go) rely on, and whether d meets them.
func timingRelations(d config.Derived) map[string]bool {
	return map[string]bool{
		// A dropped peer's lease (DeadAfter on its clock) ends within the guard.
		"EndorseGuard >= DeadAfter stretched": d.EndorseGuard >= stretch(d.DeadAfter),
		// A racing claim lands before the read-back.
		"LockSettle >= 2 x IOTimeout stretched": d.LockSettle >= stretch(2*d.IOTimeout),
		// Every belief in an old holder has ended before a new claim.
		"TieClaimAfter >= (TieHold + IOTimeout + DeadAfter) stretched": d.TieClaimAfter >= stretch(d.TieHold+d.IOTimeout+d.DeadAfter),
		// The holder can renew before its hold runs out.
		"TieHold > LockSettle + 3 x IOTimeout + HeartbeatInterval": d.TieHold > d.LockSettle+3*d.IOTimeout+d.HeartbeatInterval,
		// A settling node's extra grace fits in TakeoverAfter's margin.
		"SelfFenceAfter + SettleGrace + WatchdogTimeout, stretched, <= TakeoverAfter": stretch(d.SelfFenceAfter+d.SettleGrace+d.WatchdogTimeout) <= d.TakeoverAfter,
		// A dead node's self-fence and reset precede the takeover.
		"SelfFenceAfter + WatchdogTimeout, stretched, <= TakeoverAfter": stretch(d.SelfFenceAfter+d.WatchdogTimeout) <= d.TakeoverAfter,
	}
}

func TestTimingRelationsOfProfiles(t *testing.T) {
	for name, tm := range map[string]config.Timing{"default": config.DefaultTiming(), "aggressive": config.AggressiveTiming()} {
		for rel, ok := range timingRelations(tm.Derive()) {
			if !ok {
				t.Errorf("%s timing: %s does not hold", name, rel)
			}
		}
	}
}

// TestTimingRelationsOfValidTimings samples valid timings with a heartbeat
// of at least 20ms and a failure timeout of at most 100 heartbeats, the
// range the safety arguments are stated for.
func TestTimingRelationsOfValidTimings(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	checked := 0
	for i := 0; i < 20000 && checked < 2000; i++ {
		h := time.Duration(20+rng.Intn(500)) * time.Millisecond
		tm := config.Timing{
			HeartbeatInterval: h,
			IOTimeout:         h/2 + time.Duration(rng.Int63n(int64(4*h))),
			FailureTimeout:    3*h + time.Duration(rng.Int63n(int64(97*h))),
			WatchdogTimeout:   time.Second + time.Duration(rng.Int63n(int64(59*time.Second))),
		}
		if len(tm.Validate()) > 0 {
			continue
		}
		checked++
		for rel, ok := range timingRelations(tm.Derive()) {
			if !ok {
				t.Fatalf("%+v: %s does not hold", tm, rel)
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d valid timings sampled", checked)
	}
}
