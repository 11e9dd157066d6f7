package timing

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The relations below are written out again from quorum/doc.go and
// docs/config.md, independently of timingRelations, so that the checks in
// Validate are tested against the statement of what the proofs need, not
// against themselves.

// minChecks is how many timings each rapid property draws unless
// -rapid.checks says otherwise: as many as the sampled test it replaces
// checked, at a cost of a fraction of a second.
const minChecks = "2000"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", minChecks); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// stretched is d as long as it can last on another node's clock.
func stretched(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + MaxClockDrift))
}

// proofRelations are the relations between derived timeouts that the
// quorum package's safety and liveness arguments rely on.
func proofRelations(d Derived) map[string]bool {
	return map[string]bool{
		// A dropped peer's lease (DeadAfter on its clock) ends within the guard.
		"EndorseGuard >= DeadAfter stretched": d.EndorseGuard >= stretched(d.DeadAfter),
		// A settling node keeps its packages until its guard has ended.
		"SelfFenceAfter + SettleGrace >= EndorseGuard": d.SelfFenceAfter+d.SettleGrace >= d.EndorseGuard,
		// A re-admitted peer cannot leave before its last drop's guard
		// ran out; the damping grows and decays in order.
		"EndorseGuard <= RejoinHoldDown <= RejoinHoldDownMax <= FlapQuiet": d.EndorseGuard <= d.RejoinHoldDown && d.RejoinHoldDown <= d.RejoinHoldDownMax && d.RejoinHoldDownMax <= d.FlapQuiet,
		// A racing claim lands before the read-back.
		"LockSettle >= 2 x IOTimeout stretched": d.LockSettle >= stretched(2*d.IOTimeout),
		// The holder can renew before its hold runs out.
		"TieHold > LockSettle + 3 x IOTimeout + HeartbeatInterval": d.TieHold > d.LockSettle+3*d.IOTimeout+d.HeartbeatInterval,
		// Every belief in an old holder has ended before a new claim.
		"TieClaimAfter >= (TieHold + IOTimeout + DeadAfter) stretched": d.TieClaimAfter >= stretched(d.TieHold+d.IOTimeout+d.DeadAfter),
		// An exact split waits for the longest claim.
		"TiePending >= TieClaimAfter + LockSettle + 2 x IOTimeout + HeartbeatInterval": d.TiePending >= d.TieClaimAfter+d.LockSettle+2*d.IOTimeout+d.HeartbeatInterval,
		// A dead node's self-fence and reset precede the takeover.
		"SelfFenceAfter + WatchdogTimeout, stretched, <= TakeoverAfter": stretched(d.SelfFenceAfter+d.WatchdogTimeout) <= d.TakeoverAfter,
		// A settling node's extra grace fits in TakeoverAfter's margin.
		"SelfFenceAfter + SettleGrace + WatchdogTimeout, stretched, <= TakeoverAfter": stretched(d.SelfFenceAfter+d.SettleGrace+d.WatchdogTimeout) <= d.TakeoverAfter,
		// The node's own loss of quorum is detected before it self-fences,
		// and a suspect is only a suspect.
		"SuspectAfter < DeadAfter <= SelfFenceAfter": d.SuspectAfter < d.DeadAfter && d.DeadAfter <= d.SelfFenceAfter,
		// The watchdog is fed often enough.
		"WatchdogFeedInterval <= WatchdogTimeout / 4": 4*d.WatchdogFeedInterval <= d.WatchdogTimeout,
	}
}

// baseRule is a documented range or relation of the bases (docs/config.md),
// with the fields a violation must be reported on.
type baseRule struct {
	name   string
	fields []string
	holds  func(Timing) bool
}

var boundRules = []baseRule{
	{"heartbeat_interval >= 10ms", []string{"heartbeat_interval"}, func(t Timing) bool { return t.HeartbeatInterval >= 10*time.Millisecond }},
	{"io_timeout >= 10ms", []string{"io_timeout"}, func(t Timing) bool { return t.IOTimeout >= 10*time.Millisecond }},
	{"failure_timeout >= 100ms", []string{"failure_timeout"}, func(t Timing) bool { return t.FailureTimeout >= 100*time.Millisecond }},
	{"watchdog_timeout >= 1s", []string{"watchdog_timeout"}, func(t Timing) bool { return t.WatchdogTimeout >= time.Second }},
	{"watchdog_timeout <= 60s", []string{"watchdog_timeout"}, func(t Timing) bool { return t.WatchdogTimeout <= 60*time.Second }},
}

var relationRules = []baseRule{
	{"failure_timeout >= 3 x heartbeat_interval", []string{"failure_timeout", "heartbeat_interval"}, func(t Timing) bool { return t.FailureTimeout >= 3*t.HeartbeatInterval }},
	{"failure_timeout <= 100 x heartbeat_interval", []string{"failure_timeout", "heartbeat_interval"}, func(t Timing) bool { return t.FailureTimeout <= 100*t.HeartbeatInterval }},
	{"failure_timeout >= 2 x io_timeout", []string{"failure_timeout", "io_timeout"}, func(t Timing) bool { return t.FailureTimeout >= 2*t.IOTimeout }},
	{"io_timeout >= heartbeat_interval / 2", []string{"io_timeout", "heartbeat_interval"}, func(t Timing) bool { return 2*t.IOTimeout >= t.HeartbeatInterval }},
	{"watchdog_timeout >= 4 x heartbeat_interval", []string{"watchdog_timeout", "heartbeat_interval"}, func(t Timing) bool { return t.WatchdogTimeout >= 4*t.HeartbeatInterval }},
}

// violated lists the rules t breaks, as Validate reports them: the
// ranges first, and the relations only when every base is in range.
func violated(t Timing) []baseRule {
	var out []baseRule
	for _, r := range boundRules {
		if !r.holds(t) {
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, r := range relationRules {
		if !r.holds(t) {
			out = append(out, r)
		}
	}
	return out
}

func TestTimingRelationsOfProfiles(t *testing.T) {
	for name, tm := range map[string]Timing{
		"default":    DefaultTiming(),
		"aggressive": AggressiveTiming(),
		// test/lab/guest's heartbeat test.
		"lab": {250 * time.Millisecond, time.Second, 3 * time.Second, 5 * time.Second},
	} {
		if errs := tm.Validate(); len(errs) > 0 {
			t.Errorf("%s timing rejected: %v", name, errs)
		}
		for rel, ok := range proofRelations(tm.Derive()) {
			if !ok {
				t.Errorf("%s timing: %s does not hold", name, rel)
			}
		}
	}
}

// edgy draws a duration in [lo, hi], often exactly at or within a few
// nanoseconds to a millisecond of either end, else spread evenly on a
// logarithmic scale, so both the extremes and the middle of each range
// are drawn.
func edgy(t *rapid.T, label string, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	near := min(hi-lo, time.Millisecond)
	switch rapid.IntRange(0, 5).Draw(t, label+"-kind") {
	case 0:
		return lo
	case 1:
		return hi
	case 2:
		return lo + time.Duration(rapid.Int64Range(0, int64(near)).Draw(t, label+"-above-lo"))
	case 3:
		return hi - time.Duration(rapid.Int64Range(0, int64(near)).Draw(t, label+"-below-hi"))
	}
	f := rapid.Float64Range(0, 1).Draw(t, label+"-log")
	v := time.Duration(float64(lo) * math.Pow(float64(hi)/float64(lo), f))
	return min(max(v, lo), hi)
}

// drawAccepted draws from the whole space the documented rules accept:
// heartbeat_interval from 10ms up to 15s (60s / 4, the watchdog bound),
// then each other base between the bounds the rules give it.
func drawAccepted(t *rapid.T) Timing {
	ms := time.Millisecond
	var tm Timing
	tm.HeartbeatInterval = edgy(t, "heartbeat", 10*ms, 15*time.Second)
	h := tm.HeartbeatInterval
	ioMin := max(10*ms, (h+1)/2)
	fMin := max(100*ms, 3*h, 2*ioMin)
	tm.FailureTimeout = edgy(t, "failure", fMin, 100*h)
	tm.IOTimeout = edgy(t, "io", ioMin, tm.FailureTimeout/2)
	tm.WatchdogTimeout = edgy(t, "watchdog", max(time.Second, 4*h), 60*time.Second)
	return tm
}

// TestTimingRelations draws timings from the whole space validation
// accepts, extremes included, and checks every relation the quorum
// proofs rely on (quorum/doc.go cites it).
func TestTimingRelations(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawAccepted(t)
		if errs := tm.Validate(); len(errs) > 0 {
			t.Fatalf("%+v is within every documented rule but rejected: %v", tm, errs)
		}
		d := tm.Derive()
		for rel, ok := range proofRelations(d) {
			if !ok {
				t.Fatalf("%+v is accepted but %s does not hold: %+v", tm, rel, d)
			}
		}
	})
}

// drawAny draws from a box around the accepted space, from 1ms to beyond
// every bound: every base independently, an accepted timing, or an
// accepted timing with one or two bases redrawn from the box (most of
// those just outside).
func drawAny(t *rapid.T) Timing {
	ms := time.Millisecond
	box := map[string]func() time.Duration{
		"heartbeat_interval": func() time.Duration { return edgy(t, "box-heartbeat", ms, 30*time.Second) },
		"io_timeout":         func() time.Duration { return edgy(t, "box-io", ms, 60*time.Second) },
		"failure_timeout":    func() time.Duration { return edgy(t, "box-failure", ms, 2000*time.Second) },
		"watchdog_timeout":   func() time.Duration { return edgy(t, "box-watchdog", ms, 120*time.Second) },
	}
	fields := []string{"heartbeat_interval", "io_timeout", "failure_timeout", "watchdog_timeout"}
	switch rapid.IntRange(0, 3).Draw(t, "draw") {
	case 3:
		return drawAccepted(t)
	case 0:
		var tm Timing
		for _, f := range fields {
			*timingField(&tm, f) = box[f]()
		}
		return tm
	default:
		tm := drawAccepted(t)
		for _, f := range rapid.SliceOfNDistinct(rapid.SampledFrom(fields), 1, 2, rapid.ID).Draw(t, "redraw") {
			*timingField(&tm, f) = box[f]()
		}
		return tm
	}
}

// TestTimingAcceptedHoldsRelations: whatever Validate accepts, anywhere
// in the box, meets every proof relation and every documented rule.
func TestTimingAcceptedHoldsRelations(t *testing.T) {
	accepted := 0
	rapid.Check(t, func(t *rapid.T) {
		tm := drawAny(t)
		errs := tm.Validate()
		if v := violated(tm); len(v) == 0 != (len(errs) == 0) {
			t.Fatalf("%+v: documented rules broken %v, but Validate says %v", tm, names(v), errs)
		}
		if len(errs) > 0 {
			return
		}
		accepted++
		for rel, ok := range proofRelations(tm.Derive()) {
			if !ok {
				t.Fatalf("%+v is accepted but %s does not hold", tm, rel)
			}
		}
	})
	if accepted == 0 {
		t.Errorf("no accepted timing drawn: the box misses the accepted space")
	}
	t.Logf("%d drawn timings were accepted (including rapid's shrinking runs)", accepted)
}

func names(rs []baseRule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}

// TestTimingRejections draws timings from outside the accepted space and
// checks that each broken rule is reported once, as a *TimingError naming
// its fields, and that every fix it proposes satisfies that rule.
func TestTimingRejections(t *testing.T) {
	rejected, fixes := 0, 0
	defer func() { t.Logf("%d drawn timings rejected; %d fixes checked", rejected, fixes) }()
	rapid.Check(t, func(t *rapid.T) {
		tm := drawAny(t)
		want := violated(tm)
		errs := tm.Validate()
		if len(errs) > 0 {
			rejected++
		}
		if len(errs) != len(want) {
			t.Fatalf("%+v: want %d errors for %v, got %d: %v", tm, len(want), names(want), len(errs), errs)
		}
		for _, err := range errs {
			var te *TimingError
			if !errors.As(err, &te) {
				t.Fatalf("%T is not a *TimingError: %v", err, err)
			}
			fields := []string{te.Field}
			if te.Other != "" {
				fields = append(fields, te.Other)
			}
			i := slices.IndexFunc(want, func(r baseRule) bool { return slices.Equal(r.fields, fields) })
			if i < 0 {
				t.Fatalf("%+v: error on %v matches no broken rule of %v: %v", tm, fields, names(want), err)
			}
			r := want[i]
			want = slices.Delete(want, i, i+1)
			msg := err.Error()
			for _, f := range fields {
				if !strings.Contains(te.Msg, f) || !strings.Contains(msg, "timing."+f) {
					t.Fatalf("%q does not name %s", msg, f)
				}
			}
			if len(te.Fixes) == 0 {
				t.Fatalf("%+v: no fix proposed: %v", tm, err)
			}
			for _, fix := range te.Fixes {
				fixes++
				if !slices.Contains(fields, fix.Field) {
					t.Fatalf("fix %v changes a field the error does not name: %v", fix, err)
				}
				if !strings.Contains(te.Hint, fix.String()) {
					t.Fatalf("hint %q does not state fix %v", te.Hint, fix)
				}
				u := tm
				*timingField(&u, fix.Field) = fix.Value
				if !r.holds(u) {
					t.Fatalf("%+v: fix %v does not satisfy %s", tm, fix, r.name)
				}
				// The fix is the nearest readable value: going 1% or 1ms
				// (whichever is more) past it back toward the original
				// breaks the rule again.
				step := max(fix.Value/100, time.Millisecond)
				if fix.Op == "<=" {
					*timingField(&u, fix.Field) = fix.Value + step
				} else {
					*timingField(&u, fix.Field) = fix.Value - step
				}
				if r.holds(u) && boundsHold(u) {
					t.Fatalf("%+v: fix %v is not the nearest: %v also satisfies %s", tm, fix, *timingField(&u, fix.Field), r.name)
				}
			}
		}
	})
}

func boundsHold(t Timing) bool {
	for _, r := range boundRules {
		if !r.holds(t) {
			return false
		}
	}
	return true
}

// TestTimingRelationsCatchPlantedViolations: each relation between
// derived timeouts is checked, on purpose broken one at a time in a
// Derived that Derive did not compute, and must be reported on the
// fields it concerns.
func TestTimingRelationsCatchPlantedViolations(t *testing.T) {
	tm := DefaultTiming()
	for _, tc := range []struct {
		name  string
		plant func(d *Derived)
		want  [][2]string // (Field, Other) of each expected error
	}{
		{"shrink guard without drift", func(d *Derived) { d.EndorseGuard = d.DeadAfter },
			[][2]string{{"failure_timeout", ""}}},
		{"no settle grace", func(d *Derived) { d.SettleGrace = 0 },
			[][2]string{{"failure_timeout", "heartbeat_interval"}}},
		{"settle grace three times too long", func(d *Derived) { d.SettleGrace *= 3 },
			[][2]string{{"failure_timeout", "heartbeat_interval"}}},
		{"hold-down shorter than the shrink guard", func(d *Derived) { d.RejoinHoldDown = d.DeadAfter },
			[][2]string{{"failure_timeout", ""}}},
		{"damping forgotten before its cap", func(d *Derived) { d.FlapQuiet = d.RejoinHoldDown },
			[][2]string{{"failure_timeout", ""}}},
		{"lock settle without drift", func(d *Derived) { d.LockSettle = 2 * d.IOTimeout },
			[][2]string{{"io_timeout", ""}}},
		{"tie hold too short to renew", func(d *Derived) { d.TieHold = d.LockSettle + 3*d.IOTimeout + d.HeartbeatInterval },
			[][2]string{{"io_timeout", "heartbeat_interval"}}},
		{"tie claim without drift or margin", func(d *Derived) { d.TieClaimAfter = d.TieHold + d.IOTimeout + d.DeadAfter },
			[][2]string{{"io_timeout", "failure_timeout"}}},
		{"tie pending shorter than a claim", func(d *Derived) { d.TiePending = d.TieClaimAfter },
			[][2]string{{"io_timeout", "heartbeat_interval"}}},
		{"takeover without margin", func(d *Derived) { d.TakeoverAfter = d.FailureTimeout + d.WatchdogTimeout },
			[][2]string{{"failure_timeout", "watchdog_timeout"}, {"failure_timeout", "heartbeat_interval"}}},
		{"takeover at 0.9", func(d *Derived) { d.TakeoverAfter = d.TakeoverAfter * 9 / 10 },
			[][2]string{{"failure_timeout", "watchdog_timeout"}, {"failure_timeout", "heartbeat_interval"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tm.Derive()
			tc.plant(&d)
			errs := tm.validate(d)
			var got [][2]string
			for _, err := range errs {
				var te *TimingError
				if !errors.As(err, &te) {
					t.Fatalf("%T: %v", err, err)
				}
				got = append(got, [2]string{te.Field, te.Other})
				if te.Hint == "" {
					t.Errorf("no hint: %v", err)
				}
				for _, f := range []string{te.Field, te.Other} {
					if f != "" && !strings.Contains(te.Msg, f+" = ") {
						t.Errorf("message does not give %s: %v", f, err)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("planted violation reported on %v, want %v: %v", got, tc.want, errs)
			}
		})
	}
	if errs := tm.validate(tm.Derive()); len(errs) != 0 {
		t.Fatalf("the default timing itself is rejected: %v", errs)
	}
}

// TestTimingErrorExamples pins the messages of the examples in the issue
// and in docs/config.md.
func TestTimingErrorExamples(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		tm   Timing
		want string
	}{
		{Timing{50 * ms, 50 * ms, 30 * time.Second, time.Second},
			"timing.failure_timeout and timing.heartbeat_interval: failure_timeout = 30s is more than 100 x heartbeat_interval (50ms): "},
		{Timing{50 * ms, 50 * ms, 30 * time.Second, time.Second}, "; set failure_timeout <= 5s or heartbeat_interval >= 300ms"},
		{Timing{10 * ms, 10 * ms, 10 * time.Second, time.Second}, "; set failure_timeout <= 1s or heartbeat_interval >= 100ms"},
		{Timing{400 * ms, 400 * ms, time.Second, 3 * time.Second}, "failure_timeout = 1s is less than 3 x heartbeat_interval (400ms): one lost packet or one slow write would count as a failure; set failure_timeout >= 1.2s or heartbeat_interval <= 333ms"},
		{Timing{200 * ms, 60 * ms, time.Second, 3 * time.Second}, "io_timeout = 60ms is less than half of heartbeat_interval (200ms): slow but healthy storage would count as failed; set io_timeout >= 100ms or heartbeat_interval <= 120ms"},
		{Timing{200 * ms, 400 * ms, time.Second, 90 * time.Second}, "timing.watchdog_timeout: watchdog_timeout = 1m30s is more than 1m: a longer watchdog delays every takeover without fencing by as much; set watchdog_timeout <= 1m"},
		{Timing{time.Second, 400 * ms, 5 * time.Second, 3 * time.Second}, "watchdog_timeout = 3s is less than 4 x heartbeat_interval (1s), the watchdog feed interval: a few late feeds would reset a healthy node; set watchdog_timeout >= 4s or heartbeat_interval <= 750ms"},
	} {
		var msgs []string
		for _, err := range tc.tm.Validate() {
			msgs = append(msgs, err.Error())
		}
		if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
			t.Errorf("%+v: errors\n  %s\nlack %q", tc.tm, strings.Join(msgs, "\n  "), tc.want)
		}
	}
}

// TestValidateHasNoSideEffects: Validate leaves the timing as it was,
// and gives the same answer twice.
func TestValidateHasNoSideEffects(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tm := drawAny(t)
		before := tm
		a := fmt.Sprint(tm.Validate())
		if tm != before {
			t.Fatalf("Validate changed %+v to %+v", before, tm)
		}
		if b := fmt.Sprint(tm.Validate()); a != b {
			t.Fatalf("Validate gave %s, then %s", a, b)
		}
	})
}
