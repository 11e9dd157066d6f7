// Package liveness judges a peer alive or dead on one path (the network or
// the quorum disk) by whether its (incarnation, counter) pair changes, on
// the observer's own monotonic clock. It is pure: no clock, no I/O; the
// decision core (package quorum) and the disk tools share it.
package liveness

import "time"

// Liveness is what one path (the quorum disk, or the network) says about a
// peer.
type Liveness uint8

const (
	// Unknown: no valid record seen yet, or seen but not yet watched long
	// enough to tell. A peer seen once is unknown, never live and never dead.
	Unknown Liveness = iota
	// Live: the peer's counter changed within SuspectAfter.
	Live
	// Suspect: the counter has not changed for SuspectAfter; reported only.
	Suspect
	// Dead: the counter has not changed for DeadAfter of observation. On
	// one path this means "gone on this path"; a node is dead only when
	// every path says so.
	Dead
)

func (l Liveness) String() string {
	switch l {
	case Unknown:
		return "unknown"
	case Live:
		return "live"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	}
	return "invalid"
}

// Observation is one reading of a peer's heartbeat counter on one path.
type Observation struct {
	// Valid is false when the record could not be trusted (bad checksum,
	// torn write, foreign cluster): such a reading proves nothing.
	Valid       bool
	Incarnation uint64
	Seq         uint64
}

// Change is what an observation revealed beyond plain liveness.
type Change uint8

const (
	// NoChange: nothing worth reporting.
	NoChange Change = iota
	// FirstSeen: the first valid record of this peer.
	FirstSeen
	// Restarted: the incarnation changed: the peer's daemon restarted.
	Restarted
	// Resurrected: the counter changed again, same incarnation, after the
	// peer had been judged dead: a node that froze and came back. It may act
	// on stale state and must be fenced or must fence itself.
	Resurrected
	// Regressed: same incarnation, lower sequence number than already seen:
	// a second writer on the slot (two daemons with one node id) or a
	// restored disk image. Reported; the reading counts as a change.
	Regressed
)

func (c Change) String() string {
	return [...]string{"none", "first-seen", "restarted", "resurrected", "regressed"}[c]
}

// Tracker judges one peer on one path. It is a pure value: every method
// takes the local monotonic time `now` (a duration since an arbitrary
// origin); it never reads a clock. A peer is alive only while its
// (incarnation, seq) pair changes; clocks of other nodes are never used.
type Tracker struct {
	// SuspectAfter and DeadAfter are config.Derived's values.
	SuspectAfter, DeadAfter time.Duration
	// NeedCoverage makes Dead require successful reads spanning DeadAfter
	// without a change (the disk path: if our own reads fail we know
	// nothing and the peer stays Suspect; a read that returned a corrupt
	// record does count, as our path worked). Without it, silence alone
	// for DeadAfter means Dead (the network path, where the absence of
	// packets is the only signal).
	NeedCoverage bool

	seen       bool
	changed    bool // a change has been seen since first observation
	inc, seq   uint64
	firstSeen  time.Duration
	lastChange time.Duration
	lastRead   time.Duration // last observation, valid or not, once seen
	invalid    bool          // the most recent observation was invalid
	wasDead    bool
}

// Observe records a reading taken at now and reports what it revealed.
func (t *Tracker) Observe(now time.Duration, o Observation) Change {
	if !o.Valid {
		// Our read worked but the record proves nothing (torn, corrupt):
		// it covers time without a change, never counts as one.
		t.invalid = true
		if t.seen {
			t.lastRead = now
		}
		return NoChange
	}
	t.invalid = false
	if !t.seen {
		t.seen = true
		t.inc, t.seq = o.Incarnation, o.Seq
		t.firstSeen, t.lastChange, t.lastRead = now, now, now
		return FirstSeen
	}
	deadBefore := t.State(now) == Dead || t.wasDead
	t.lastRead = now
	switch {
	case o.Incarnation != t.inc:
		t.inc, t.seq = o.Incarnation, o.Seq
		t.changed, t.lastChange, t.wasDead = true, now, false
		return Restarted
	case o.Seq == t.seq:
		if t.stateAt(now) == Dead {
			t.wasDead = true
		}
		return NoChange
	case o.Seq < t.seq:
		t.seq = o.Seq
		t.changed, t.lastChange, t.wasDead = true, now, false
		return Regressed
	default:
		t.seq = o.Seq
		t.changed, t.lastChange = true, now
		t.wasDead = false
		if deadBefore {
			return Resurrected
		}
		return NoChange
	}
}

// State is the peer's liveness on this path at now.
func (t *Tracker) State(now time.Duration) Liveness { return t.stateAt(now) }

func (t *Tracker) stateAt(now time.Duration) Liveness {
	if !t.seen {
		return Unknown
	}
	quiet := now - t.lastChange
	if t.NeedCoverage {
		// Dead only if our own successful reads span DeadAfter without
		// a change.
		if t.lastRead-t.lastChange >= t.DeadAfter {
			return Dead
		}
	} else if quiet >= t.DeadAfter {
		return Dead
	}
	if !t.changed {
		// Seen, never seen to change, not yet watched long enough.
		return Unknown
	}
	if quiet >= t.SuspectAfter {
		return Suspect
	}
	return Live
}

// Incarnation and Seq are the last valid values seen; ok is false before
// the first valid observation.
func (t *Tracker) Incarnation() (inc, seq uint64, ok bool) { return t.inc, t.seq, t.seen }

// SinceChange is how long the counter has been unchanged at now (since the
// first observation if it never changed); ok is false before the first.
func (t *Tracker) SinceChange(now time.Duration) (d time.Duration, ok bool) {
	if !t.seen {
		return 0, false
	}
	return now - t.lastChange, true
}

// LastReadInvalid reports whether the most recent reading could not be
// trusted (checksum, torn write), for display.
func (t *Tracker) LastReadInvalid() bool { return t.invalid }
