package timing

import (
	"fmt"
	"strings"
	"time"
)

// This file holds the validation of the timing bases: the range of each
// base, the relations between bases that the operator chooses, and the
// relations between derived timeouts that the quorum package's safety
// arguments (quorum/doc.go) rely on. Derive (timing.go) computes; this file
// only checks, so a change to a formula there is caught here without a
// change here.

// MaxFailureHeartbeats bounds failure_timeout in heartbeat intervals.
// SettleGrace is the room TakeoverAfter leaves beyond SelfFenceAfter and
// the watchdog, which grows with the heartbeat (Margin); a survivor's
// transition needs the drift part of EndorseGuard, which grows with
// failure_timeout. Far beyond 100 intervals the first no longer covers the
// second (see SettleGrace); 100 keeps a wide safety factor.
const MaxFailureHeartbeats = 100

// Limits of the individual timing bases.
const (
	MinHeartbeatInterval = 10 * time.Millisecond
	MinIOTimeout         = 10 * time.Millisecond
	MinFailureTimeout    = 100 * time.Millisecond
	MinWatchdogTimeout   = time.Second
	// MaxWatchdogTimeout: a longer watchdog delays every takeover without
	// fencing by as much.
	MaxWatchdogTimeout = 60 * time.Second
)

// TimingError is a violated range or relation of the timing bases. It
// names both fields of a relation, so the operator knows which pair to
// adjust, and the values of each that would satisfy it.
type TimingError struct {
	// Field is the base reported first (the one the message is about) and
	// Other the second base of the relation, "" for a single base.
	Field, Other string
	// Msg says what is wrong, with the values, and why it matters.
	Msg string
	// Hint says what to do: "set failure_timeout <= 5s or
	// heartbeat_interval >= 300ms".
	Hint string
	// Fixes are the changes of one base each that satisfy the violated
	// relation, the other bases unchanged; Hint lists them. Each keeps its
	// base within its own range, but may violate another relation.
	Fixes []TimingFix
}

// TimingFix is a change of one timing base that satisfies a relation.
type TimingFix struct {
	Field string
	// Op is ">=" (raise the base to at least Value) or "<=" (lower it to
	// at most Value).
	Op    string
	Value time.Duration
}

func (f TimingFix) String() string { return fmt.Sprintf("%s %s %s", f.Field, f.Op, durString(f.Value)) }

// durString writes d as time.Duration does, without the empty seconds of
// a whole minute ("1m", not "1m0s").
func durString(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

func (e *TimingError) Error() string {
	var b strings.Builder
	if e.Other == "" {
		fmt.Fprintf(&b, "timing.%s: %s", e.Field, e.Msg)
	} else {
		fmt.Fprintf(&b, "timing.%s and timing.%s: %s", e.Field, e.Other, e.Msg)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// timingField returns the base called name in t (a file key).
func timingField(t *Timing, name string) *time.Duration {
	switch name {
	case "heartbeat_interval":
		return &t.HeartbeatInterval
	case "io_timeout":
		return &t.IOTimeout
	case "failure_timeout":
		return &t.FailureTimeout
	case "watchdog_timeout":
		return &t.WatchdogTimeout
	}
	panic("config: no timing field " + name)
}

// timingBound is the range of one base.
type timingBound struct {
	field          string
	min, max       time.Duration // max 0: none
	whyMin, whyMax string
}

var timingBounds = []timingBound{
	{"heartbeat_interval", MinHeartbeatInterval, 0, "shorter intervals only add load: the quorum-disk round and the watchdog cannot keep up", ""},
	{"io_timeout", MinIOTimeout, 0, "healthy storage answers slower than that now and then", ""},
	{"failure_timeout", MinFailureTimeout, 0, "a scheduling pause of a healthy node would count as a failure", ""},
	{"watchdog_timeout", MinWatchdogTimeout, MaxWatchdogTimeout, "most hardware watchdogs count in whole seconds",
		"a longer watchdog delays every takeover without fencing by as much"},
}

func (b timingBound) holds(v time.Duration) bool {
	return v >= b.min && (b.max == 0 || v <= b.max)
}

// stretch is the most a duration on one node's clock can last on
// another's: their rates differ by at most MaxClockDrift.
func stretch(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + MaxClockDrift))
}

// timingRelation is one relation the timing must satisfy.
type timingRelation struct {
	// rule states the relation and why it is needed, for docs/config.md
	// (config/docs_test.go keeps the table there equal to these).
	rule, why string
	// fields are the bases the relation is reported on (and fixes are
	// searched for), the first as TimingError.Field; the second may be "".
	fields [2]string
	// derived: the relation is between derived timeouts, which hold by
	// construction when the base relations do. It is checked only when
	// every base relation holds, so that a base problem is reported once,
	// in the operator's terms; it catches a formula in Derive that no
	// longer gives what the proofs assume.
	derived bool
	holds   func(t Timing, d Derived) bool
	// what states the violation with t's values and why it matters.
	what func(t Timing, d Derived) string
}

// timingRelations are the relations between the timing bases, then those
// between the derived timeouts that the quorum package's safety and
// liveness arguments rely on (quorum/doc.go), each with where it is used.
var timingRelations = []timingRelation{
	{
		rule:   "`failure_timeout` ≥ 3 × `heartbeat_interval`",
		why:    "One lost packet or one slow write is not a failure.",
		fields: [2]string{"failure_timeout", "heartbeat_interval"},
		holds:  func(t Timing, _ Derived) bool { return t.FailureTimeout >= 3*t.HeartbeatInterval },
		what: func(t Timing, _ Derived) string {
			return fmt.Sprintf("failure_timeout = %v is less than 3 x heartbeat_interval (%v): one lost packet or one slow write would count as a failure",
				t.FailureTimeout, t.HeartbeatInterval)
		},
	},
	{
		rule:   "`failure_timeout` ≤ 100 × `heartbeat_interval`",
		why:    "A survivor's transition grows with the clock drift over `failure_timeout`, the settle grace that covers it with the heartbeat; 100 heartbeats keep the grace well ahead (`SettleGrace` below).",
		fields: [2]string{"failure_timeout", "heartbeat_interval"},
		holds: func(t Timing, _ Derived) bool {
			return t.FailureTimeout <= MaxFailureHeartbeats*t.HeartbeatInterval
		},
		what: func(t Timing, _ Derived) string {
			return fmt.Sprintf("failure_timeout = %v is more than %d x heartbeat_interval (%v): the settle grace of a node that dropped a live peer, which grows with the clock drift over failure_timeout, would no longer fit in the takeover margin, and its packages could be taken over while it still runs them",
				t.FailureTimeout, MaxFailureHeartbeats, t.HeartbeatInterval)
		},
	},
	{
		rule:   "`failure_timeout` ≥ 2 × `io_timeout`",
		why:    "A node can retry a timed-out slot write before it must self-fence.",
		fields: [2]string{"failure_timeout", "io_timeout"},
		holds:  func(t Timing, _ Derived) bool { return t.FailureTimeout >= 2*t.IOTimeout },
		what: func(t Timing, _ Derived) string {
			return fmt.Sprintf("failure_timeout = %v is less than 2 x io_timeout (%v): a node could not retry a timed-out write of its slot before it must self-fence",
				t.FailureTimeout, t.IOTimeout)
		},
	},
	{
		rule:   "`io_timeout` ≥ `heartbeat_interval` / 2",
		why:    "Slow but healthy storage does not count as failed.",
		fields: [2]string{"io_timeout", "heartbeat_interval"},
		holds:  func(t Timing, _ Derived) bool { return 2*t.IOTimeout >= t.HeartbeatInterval },
		what: func(t Timing, _ Derived) string {
			return fmt.Sprintf("io_timeout = %v is less than half of heartbeat_interval (%v): slow but healthy storage would count as failed",
				t.IOTimeout, t.HeartbeatInterval)
		},
	},
	{
		rule:   "`watchdog_timeout` ≥ 4 × `heartbeat_interval`",
		why:    "The watchdog is fed every heartbeat interval; a few late feeds must not reset a healthy node.",
		fields: [2]string{"watchdog_timeout", "heartbeat_interval"},
		holds:  func(t Timing, _ Derived) bool { return t.WatchdogTimeout >= 4*t.HeartbeatInterval },
		what: func(t Timing, _ Derived) string {
			return fmt.Sprintf("watchdog_timeout = %v is less than 4 x heartbeat_interval (%v), the watchdog feed interval: a few late feeds would reset a healthy node",
				t.WatchdogTimeout, t.HeartbeatInterval)
		},
	},

	// Derived relations, in the order of quorum/doc.go.
	{
		// Shrink guard: a dropped peer's endorsement lease (DeadAfter on
		// its clock) has ended when the guard ends on ours.
		rule:   "`EndorseGuard` ≥ `DeadAfter` × (1 + drift)",
		why:    "Shrink guard: a dropped peer's endorsement lease, `DeadAfter` on its clock, has ended when the guard ends on ours.",
		fields: [2]string{"failure_timeout"}, derived: true,
		holds: func(_ Timing, d Derived) bool { return d.EndorseGuard >= stretch(d.DeadAfter) },
		what: func(_ Timing, d Derived) string {
			return fmt.Sprintf("EndorseGuard (%v) is less than DeadAfter (%v) stretched by the clock drift: a dropped peer could still count on this node's endorsement when the smaller member set is published as settled",
				d.EndorseGuard, d.DeadAfter)
		},
	},
	{
		// Settle grace (liveness): a survivor's longest membership
		// transition (a deaf or one-way member: its own shrink guard, one
		// heartbeat for the members' settled flags) ends before its stop
		// deadline (quorum/doc.go, "Transitions").
		rule:   "`SelfFenceAfter` + `SettleGrace` > `EndorseGuard` + `heartbeat_interval`",
		why:    "A survivor that drops a faulty peer (deaf, one-way, crashed) waits out its shrink guard and one heartbeat for its members to agree again before its stop deadline, so one node's fault never self-fences the majority.",
		fields: [2]string{"failure_timeout", "heartbeat_interval"}, derived: true,
		holds: func(t Timing, d Derived) bool {
			return d.SelfFenceAfter+d.SettleGrace > d.EndorseGuard+t.HeartbeatInterval
		},
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("SelfFenceAfter + SettleGrace (%v) is not more than EndorseGuard + heartbeat_interval (%v): a survivor that dropped a faulty peer would self-fence before its members agree again",
				d.SelfFenceAfter+d.SettleGrace, d.EndorseGuard+t.HeartbeatInterval)
		},
	},
	{
		// Re-admission damping (liveness): a re-admitted peer cannot
		// leave again before the shrink guard of its last drop has run
		// out, and the damping has room to grow and decays only after a
		// quiet period at least as long as the longest hold-down
		// (quorum/doc.go, "Damping").
		rule:   "`EndorseGuard` ≤ `RejoinHoldDown` ≤ `RejoinHoldDownMax` ≤ `FlapQuiet`",
		why:    "A dropped peer stays out at least as long as the shrink guard of its drop, so a node that comes and goes costs the majority one transition per hold-down instead of a transition that never settles; the hold-down doubles up to its cap, and is forgotten only after a quiet period as long as the cap.",
		fields: [2]string{"failure_timeout"}, derived: true,
		holds: func(_ Timing, d Derived) bool {
			return d.EndorseGuard <= d.RejoinHoldDown && d.RejoinHoldDown <= d.RejoinHoldDownMax && d.RejoinHoldDownMax <= d.FlapQuiet
		},
		what: func(_ Timing, d Derived) string {
			return fmt.Sprintf("the re-admission hold-down (RejoinHoldDown %v, RejoinHoldDownMax %v, FlapQuiet %v) is not ordered after EndorseGuard (%v): a peer that comes and goes could be re-admitted before the shrink guard of its last drop has run out",
				d.RejoinHoldDown, d.RejoinHoldDownMax, d.FlapQuiet, d.EndorseGuard)
		},
	},
	{
		// Tie-break, two racing claimers: a racing claim (deciding read
		// plus claim write, each within IOTimeout) lands before the
		// earlier claimer's read-back.
		rule:   "`LockSettle` ≥ 2 × `io_timeout` × (1 + drift)",
		why:    "Tie-break race: a racing claim (a read and a write, each within `io_timeout`) lands before the earlier claimer reads back.",
		fields: [2]string{"io_timeout"}, derived: true,
		holds: func(t Timing, d Derived) bool { return d.LockSettle >= stretch(2*t.IOTimeout) },
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("LockSettle (%v) is less than 2 x io_timeout (%v) stretched by the clock drift: a racing tie-break claim could land after the read-back, and both claimers win",
				d.LockSettle, t.IOTimeout)
		},
	},
	{
		// Tie-break, the holder: it can renew (claim write, settle,
		// read-back, the next round's slot write and read, the renewal)
		// before its hold runs out.
		rule:   "`TieHold` > `LockSettle` + 3 × `io_timeout` + `heartbeat_interval`",
		why:    "The tie-break holder renews before its hold runs out.",
		fields: [2]string{"io_timeout", "heartbeat_interval"}, derived: true,
		holds: func(t Timing, d Derived) bool {
			return d.TieHold > d.LockSettle+3*t.IOTimeout+t.HeartbeatInterval
		},
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("TieHold (%v) is not more than LockSettle + 3 x io_timeout + heartbeat_interval (%v): the tie-break holder could lose its hold before its first renewal",
				d.TieHold, d.LockSettle+3*t.IOTimeout+t.HeartbeatInterval)
		},
	},
	{
		// Tie-break, an old holder: its hold (TieHold from its last write,
		// which landed within IOTimeout) and its partition's belief in it
		// (DeadAfter more) have ended, on every clock, before a new claim.
		rule:   "`TieClaimAfter` ≥ (`TieHold` + `io_timeout` + `DeadAfter`) × (1 + drift)",
		why:    "An old holder's hold, and its partition's belief in it, have ended on every clock before a new claim.",
		fields: [2]string{"io_timeout", "failure_timeout"}, derived: true,
		holds: func(t Timing, d Derived) bool {
			return d.TieClaimAfter >= stretch(d.TieHold+t.IOTimeout+d.DeadAfter)
		},
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("TieClaimAfter (%v) is less than TieHold + io_timeout + DeadAfter (%v) stretched by the clock drift: a node could claim the tie-break lock while its old holder's partition still counts on it",
				d.TieClaimAfter, d.TieHold+t.IOTimeout+d.DeadAfter)
		},
	},
	{
		// Pending tie (liveness): the grace covers the longest claim: the
		// wait for silence, the claim write, the settle wait, the
		// read-back and the next round.
		rule:   "`TiePending` ≥ `TieClaimAfter` + `LockSettle` + 2 × `io_timeout` + `heartbeat_interval`",
		why:    "In an exact split, nodes keep their packages until the longest claim is decided.",
		fields: [2]string{"io_timeout", "heartbeat_interval"}, derived: true,
		holds: func(t Timing, d Derived) bool {
			return d.TiePending >= d.TieClaimAfter+d.LockSettle+2*t.IOTimeout+t.HeartbeatInterval
		},
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("TiePending (%v) is less than TieClaimAfter + LockSettle + 2 x io_timeout + heartbeat_interval (%v): in an exact split both halves would self-fence before the tie-break lock is decided",
				d.TiePending, d.TieClaimAfter+d.LockSettle+2*t.IOTimeout+t.HeartbeatInterval)
		},
	},
	{
		// Takeover: a node that lost quorum, or its disk, stops within
		// SelfFenceAfter and is reset WatchdogTimeout later, on its own
		// clock; TakeoverAfter on ours covers both.
		rule:   "(`SelfFenceAfter` + `watchdog_timeout`) × (1 + drift) ≤ `TakeoverAfter`",
		why:    "A node taken over without fencing has stopped and been reset by its watchdog.",
		fields: [2]string{"failure_timeout", "watchdog_timeout"}, derived: true,
		holds: func(t Timing, d Derived) bool {
			return stretch(d.SelfFenceAfter+t.WatchdogTimeout) <= d.TakeoverAfter
		},
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("SelfFenceAfter + watchdog_timeout stretched by the clock drift (%v) is more than TakeoverAfter (%v): a dead node's packages could be taken over without fencing before its watchdog has reset it",
				stretch(d.SelfFenceAfter+t.WatchdogTimeout), d.TakeoverAfter)
		},
	},
	{
		// Takeover of a settling node: the settle grace, with the drift
		// over all of it, fits in Margin.
		rule:   "(`SelfFenceAfter` + `SettleGrace` + `watchdog_timeout`) × (1 + drift) ≤ `TakeoverAfter`",
		why:    "The same for a node that waits out its shrink guard after dropping a live peer.",
		fields: [2]string{"failure_timeout", "heartbeat_interval"}, derived: true,
		holds: func(t Timing, d Derived) bool {
			return stretch(d.SelfFenceAfter+d.SettleGrace+t.WatchdogTimeout) <= d.TakeoverAfter
		},
		what: func(t Timing, d Derived) string {
			return fmt.Sprintf("SelfFenceAfter + SettleGrace + watchdog_timeout stretched by the clock drift (%v) is more than TakeoverAfter (%v): a node waiting out its shrink guard could still run its packages when they are taken over without fencing",
				stretch(d.SelfFenceAfter+d.SettleGrace+t.WatchdogTimeout), d.TakeoverAfter)
		},
	},
}

// Validate checks each base's range and every relation of timingRelations,
// and returns one *TimingError per violation. It neither changes t nor
// fills in defaults. When a base is out of its range, the relations are
// not checked (their fixes would rest on a value that must change anyway).
func (t Timing) Validate() []error {
	return t.validate(t.Derive())
}

// validate checks t with the derived timeouts d (t.Derive(), or a planted
// one in tests).
func (t Timing) validate(d Derived) []error {
	var errs []error
	for _, b := range timingBounds {
		v := *timingField(&t, b.field)
		switch {
		case v < b.min:
			errs = append(errs, &TimingError{Field: b.field,
				Msg:   fmt.Sprintf("%s = %s is less than %s: %s", b.field, durString(v), durString(b.min), b.whyMin),
				Hint:  fmt.Sprintf("set %s >= %s", b.field, durString(b.min)),
				Fixes: []TimingFix{{b.field, ">=", b.min}}})
		case b.max != 0 && v > b.max:
			errs = append(errs, &TimingError{Field: b.field,
				Msg:   fmt.Sprintf("%s = %s is more than %s: %s", b.field, durString(v), durString(b.max), b.whyMax),
				Hint:  fmt.Sprintf("set %s <= %s", b.field, durString(b.max)),
				Fixes: []TimingFix{{b.field, "<=", b.max}}})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	baseOK := true
	for _, r := range timingRelations {
		if r.derived && !baseOK {
			break
		}
		if r.holds(t, d) {
			continue
		}
		if !r.derived {
			baseOK = false
		}
		te := &TimingError{Field: r.fields[0], Other: r.fields[1], Msg: r.what(t, d)}
		if r.derived {
			// Say which bases the derived values come from.
			var with []string
			for _, f := range r.fields {
				if f != "" {
					with = append(with, fmt.Sprintf("%s = %s", f, durString(*timingField(&t, f))))
				}
			}
			te.Msg = "with " + strings.Join(with, " and ") + ", " + te.Msg
		}
		for _, f := range r.fields {
			if f == "" {
				continue
			}
			if fix, ok := t.fixFor(r, f); ok {
				te.Fixes = append(te.Fixes, fix)
			}
		}
		hints := make([]string, len(te.Fixes))
		for i, f := range te.Fixes {
			hints[i] = f.String()
		}
		if len(hints) > 0 {
			te.Hint = "set " + strings.Join(hints, " or ")
		} else {
			te.Hint = "choose other timing bases; the defaults and config.AggressiveTiming satisfy every relation"
		}
		errs = append(errs, te)
	}
	return errs
}

// fixFor finds the value of field nearest to t's that satisfies r with
// the other bases unchanged and within the field's own range, rounded
// in the safe direction to a readable precision. Relations are monotonic
// in each of their bases over the ranges concerned, so the search brackets
// the boundary by doubling (or halving) and then bisects it.
func (t Timing) fixFor(r timingRelation, field string) (TimingFix, bool) {
	var bound timingBound
	for _, b := range timingBounds {
		if b.field == field {
			bound = b
		}
	}
	ok := func(v time.Duration) bool {
		if !bound.holds(v) {
			return false
		}
		u := t
		*timingField(&u, field) = v
		return r.holds(u, u.Derive())
	}
	x := *timingField(&t, field)
	if ok(x) {
		// The violation was found on derived values Derive does not give
		// for t (a planted Derived): no base change to propose.
		return TimingFix{}, false
	}
	const limit = 24 * time.Hour
	// Up: the first doubling that holds.
	upFail, upOK, up := x, time.Duration(0), false
	for v := x; v <= limit; v = max(2*v, v+time.Millisecond) {
		if ok(v) {
			upOK, up = v, true
			break
		}
		upFail = v
	}
	downFail, downOK, down := x, time.Duration(0), false
	for v := x; v >= time.Millisecond; v /= 2 {
		if ok(v) {
			downOK, down = v, true
			break
		}
		downFail = v
	}
	if up && down {
		// Both ways work: take the smaller relative change.
		if float64(upOK)/float64(x) <= float64(x)/float64(downOK) {
			down = false
		} else {
			up = false
		}
	}
	switch {
	case up:
		lo, hi := upFail, upOK // ok(hi), !ok(lo)
		for hi-lo > 1 {
			if m := lo + (hi-lo)/2; ok(m) {
				hi = m
			} else {
				lo = m
			}
		}
		v := roundSafe(hi, true, ok)
		return TimingFix{field, ">=", v}, true
	case down:
		lo, hi := downOK, downFail // ok(lo), !ok(hi)
		for hi-lo > 1 {
			if m := lo + (hi-lo)/2; ok(m) {
				lo = m
			} else {
				hi = m
			}
		}
		v := roundSafe(lo, false, ok)
		return TimingFix{field, "<=", v}, true
	}
	return TimingFix{}, false
}

// roundSafe rounds the boundary value b (which satisfies ok) to a
// precision of about 1% of it, at least 1ms, at most 1s, away from the
// violation (up when up), so that the suggested bound itself satisfies
// ok. If the rounded value does not, it returns b to the millisecond (or
// b itself).
func roundSafe(b time.Duration, up bool, ok func(time.Duration) bool) time.Duration {
	for g := time.Second; g >= time.Millisecond; g /= 10 {
		if g > b/100 && g > time.Millisecond {
			continue
		}
		v := b.Truncate(g)
		if up && v < b {
			v += g
		}
		if ok(v) {
			return v
		}
	}
	return b
}
