package timing

import (
	"time"
)

// Timing holds the four timing bases of a cluster. Every other timeout in
// MT-Cluster is derived from these by Derive; nothing else is configurable,
// so the relations between timeouts hold by construction and the few that
// depend on the operator's choice are checked by Validate.
//
// Timeline of a node failure with the defaults (H=200ms, F=1s, W=3s):
//
//	t0            last heartbeat of X seen to change (net and disk)
//	t0+F/2        X suspected (logged, nothing acted on)
//	t0+F          X declared dead or partitioned away: membership changes,
//	              fencing of X may start; X's packages wait for fencing
//	t0+F+F+W+m    X's self-fence deadline has certainly passed on our clock:
//	              takeover allowed even if fencing was not possible
type Timing struct {
	// HeartbeatInterval is how often a node sends network heartbeats and
	// writes its quorum-disk slot, and how often it reads its peers' slots.
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	// IOTimeout is the deadline of one quorum-disk I/O. An I/O that has not
	// completed by then counts as failed.
	IOTimeout time.Duration `toml:"io_timeout"`
	// FailureTimeout is how long a peer's heartbeat counters may stay
	// unchanged on a path before that path declares it gone, and how long a
	// node may go without a successful write of its own slot (or without
	// quorum) before it stops its packages and stops feeding its watchdog.
	FailureTimeout time.Duration `toml:"failure_timeout"`
	// WatchdogTimeout is the time after the last feed at which the watchdog
	// resets the node.
	WatchdogTimeout time.Duration `toml:"watchdog_timeout"`
}

// Default timing bases. With these a dead node is declared dead about
// 1.0-1.2 s after its last heartbeat.
const (
	// DefaultHeartbeatInterval: five heartbeats per failure timeout.
	DefaultHeartbeatInterval = 200 * time.Millisecond
	// DefaultIOTimeout: a quorum-disk I/O slower than this counts as failed.
	DefaultIOTimeout = 400 * time.Millisecond
	// DefaultFailureTimeout: a peer silent on a path this long is gone on it.
	DefaultFailureTimeout = 1 * time.Second
	// DefaultWatchdogTimeout: most hardware watchdogs count in whole seconds.
	DefaultWatchdogTimeout = 3 * time.Second
)

// DefaultTiming returns the default timing bases.
func DefaultTiming() Timing {
	return Timing{
		HeartbeatInterval: DefaultHeartbeatInterval,
		IOTimeout:         DefaultIOTimeout,
		FailureTimeout:    DefaultFailureTimeout,
		WatchdogTimeout:   DefaultWatchdogTimeout,
	}
}

// AggressiveTiming is a documented profile for low-latency networks and
// storage: a dead node is declared dead in about 0.3 s.
func AggressiveTiming() Timing {
	return Timing{
		HeartbeatInterval: 50 * time.Millisecond,
		IOTimeout:         100 * time.Millisecond,
		FailureTimeout:    300 * time.Millisecond,
		WatchdogTimeout:   1 * time.Second,
	}
}

// MaxClockDrift is the largest rate difference between two nodes' monotonic
// clocks that the derived timeouts tolerate (5%: far above the few parts per
// million of real oscillators, so it also covers scheduling jitter).
const MaxClockDrift = 0.05

// Derived are the timeouts computed from the bases. All are durations on the
// local monotonic clock; none is ever compared with another node's clock.
type Derived struct {
	Timing

	// SuspectAfter: a peer whose counters have not changed for this long
	// is suspected (reported, not acted on).
	SuspectAfter time.Duration
	// DeadAfter: a peer whose counters have not changed for this long on a
	// path is gone on that path; gone on both paths means dead.
	DeadAfter time.Duration
	// SelfFenceAfter: a node that has not completed a write of its own slot,
	// or has not held quorum, for this long stops its packages and stops
	// feeding its watchdog.
	SelfFenceAfter time.Duration
	// WatchdogFeedInterval: how often a healthy node feeds its watchdog.
	WatchdogFeedInterval time.Duration
	// Margin absorbs clock-rate drift between nodes and message delay.
	Margin time.Duration
	// TakeoverAfter: measured from the moment a peer is declared dead or
	// partitioned away, the time after which its self-fence (watchdog reset)
	// has certainly happened, so its packages may be taken over even without
	// successful fencing: F (its own loss detection) + W + Margin.
	TakeoverAfter time.Duration
	// EndorseGuard: after a node drops a peer from its member set, how
	// long (from the last receipt of that peer's counter) the peer may still
	// count on the node's earlier endorsement: the peer's lease is
	// DeadAfter on its own clock from a send that preceded our receipt,
	// stretched by the clock-rate drift between the two. Until it has run
	// out, the node does not publish its smaller member set as settled.
	EndorseGuard time.Duration
	// SettleGrace: how much longer than SelfFenceAfter a node whose member
	// set still holds a majority keeps its packages while the membership
	// change in progress completes (its own shrink guard, EndorseGuard
	// after the last endorsement it gave a dropped peer, and its members'
	// agreement; package quorum, "Transitions", bounds that gap by
	// EndorseGuard + HeartbeatInterval and a few network delays). It is
	// all the room TakeoverAfter leaves: TakeoverAfter shrunk by the clock
	// drift, less SelfFenceAfter and WatchdogTimeout, less 1ms, so a
	// partition that takes over this node's packages after TakeoverAfter
	// on its own clock still finds it reset (SelfFenceAfter + SettleGrace
	// + WatchdogTimeout, stretched by the drift, <= TakeoverAfter, by
	// construction). About 0.05 x FailureTimeout + 1.9 x HeartbeatInterval.
	SettleGrace time.Duration
	// LockSettle: after writing a claim to the tie-break lock, how long to
	// wait before reading it back to see who won: two I/O timeouts (a racing
	// claimer's deciding read and its claim write, each bounded by its
	// IOTimeout), stretched by the clock-rate drift between the two nodes,
	// so a racing claim issued before ours has landed.
	LockSettle time.Duration
	// TieHold: how long after issuing its claim, or its last successful
	// renewal, the holder of the tie-break lock may count on it:
	// LockSettle + 3 x IOTimeout + 2 x HeartbeatInterval, which covers the
	// claim write, the settle wait, the slot write and read-back of the next
	// heartbeat round and the first renewal, with one heartbeat interval to
	// spare. A holder renews every HeartbeatInterval; one that cannot renew
	// for TieHold stops counting on the lock and must claim it again.
	TieHold time.Duration
	// TieClaimAfter: how long the tie-break lock must have been seen
	// unchanged before a node may claim it: (TieHold + IOTimeout +
	// DeadAfter) stretched by MaxClockDrift, plus Margin. The old holder's
	// last successful write landed before the silence began (at most
	// IOTimeout after its issue), so its hold ended TieHold later, and its
	// partition mates stop believing its "holder" flag at most DeadAfter
	// after that, each on its own clock.
	TieClaimAfter time.Duration
	// TiePending: how long a node whose partition holds exactly half of
	// the votes, and agrees on it, keeps its packages while the tie-break
	// lock is being decided: TieClaimAfter + LockSettle + 2 x IOTimeout +
	// 2 x HeartbeatInterval, the longest claim (wait for silence, claim
	// write, settle, read-back, next round). The grace ends at once when the
	// node sees another node's claim or renewal of the lock.
	TiePending time.Duration
	// RejoinHoldDown: a peer dropped from a node's member set re-enters
	// only once its views have held that node, both ways, continuously
	// for a hold-down: RejoinHoldDown after its second drop in a row (a
	// drop within FlapQuiet of its last re-admission is one more in a
	// row; a drop of a peer still heard both ways, and for a moment
	// after, counts half), doubled
	// for each further one, at most RejoinHoldDownMax (route-flap
	// damping; package quorum, "Damping"). It is EndorseGuard: a peer
	// re-admitted sooner would leave again before the shrink guard of its
	// last drop had run out, and the majority would never settle.
	RejoinHoldDown time.Duration
	// RejoinHoldDownMax caps the doubling hold-down: 8 x RejoinHoldDown
	// (the fifth drop in a row and later).
	RejoinHoldDownMax time.Duration
	// FlapQuiet: a peer that stays a member this long after its
	// re-admission is forgiven, its next drop counting as a first one
	// again: RejoinHoldDownMax, so a peer damped to the cap must stay put
	// once as long as it was kept out.
	FlapQuiet time.Duration
}

// Derive computes the derived timeouts. It does not validate; call Validate.
func (t Timing) Derive() Derived {
	d := Derived{Timing: t}
	d.SuspectAfter = t.FailureTimeout / 2
	d.DeadAfter = t.FailureTimeout
	d.SelfFenceAfter = t.FailureTimeout
	d.WatchdogFeedInterval = t.HeartbeatInterval
	d.Margin = 2*t.HeartbeatInterval + time.Duration(MaxClockDrift*float64(2*t.FailureTimeout+t.WatchdogTimeout))
	d.TakeoverAfter = t.FailureTimeout + t.WatchdogTimeout + d.Margin
	d.EndorseGuard = d.DeadAfter + time.Duration(MaxClockDrift*float64(d.DeadAfter)) + time.Millisecond
	d.SettleGrace = time.Duration(float64(d.TakeoverAfter)/(1+MaxClockDrift)) - d.SelfFenceAfter - t.WatchdogTimeout - time.Millisecond
	d.LockSettle = time.Duration(float64(2*t.IOTimeout)*(1+MaxClockDrift)/(1-MaxClockDrift)) + time.Millisecond
	d.TieHold = d.LockSettle + 3*t.IOTimeout + 2*t.HeartbeatInterval
	tie := d.TieHold + t.IOTimeout + d.DeadAfter
	d.TieClaimAfter = tie + time.Duration(MaxClockDrift*float64(tie)) + d.Margin
	d.TiePending = d.TieClaimAfter + d.LockSettle + 2*t.IOTimeout + 2*t.HeartbeatInterval
	d.RejoinHoldDown = d.EndorseGuard
	d.RejoinHoldDownMax = 8 * d.RejoinHoldDown
	d.FlapQuiet = d.RejoinHoldDownMax
	return d
}
