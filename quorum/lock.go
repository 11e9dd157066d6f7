package quorum

import (
	"fmt"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// lockState follows the quorum disk's tie-break lock: a delta lease in
// the style of sanlock's delta_lease.c (see the package documentation).
type lockState struct {
	// What our reads show: the record, and the completion time of the
	// first read that showed it (the start of its observed silence).
	seen  bool
	rec   LockRecord
	since time.Duration
	// otherSince: completion time of the latest read that showed a write
	// by a node outside our member set (or an unreadable record).
	otherSince time.Duration

	// Our claim: written (claimed) at claimIssue, completed at claimDone.
	claiming   bool
	claimed    bool
	claimRec   LockRecord
	claimIssue time.Duration
	claimDone  time.Duration

	// Our hold: valid for TieHold after the issue of the claim or of the
	// last successful renewal.
	holding   bool
	renewing  bool
	holdRec   LockRecord
	holdIssue time.Duration

	// The fence as arbiter (two-node clusters, Config.FenceArbiter):
	// arbAt is when the last verified fence of the peer arrived; arbWon:
	// a lock read issued after it showed the lock quiet, at arbWonAt, and
	// the node then takes the lock at once (arbClaim: that write).
	arbAt    time.Duration
	arbWon   bool
	arbWonAt time.Duration
	arbClaim bool
}

// quietAt reports whether a read issued at r showed the lock free of any
// live claim or hold by a node outside our member set: the latest read
// that showed such a write (or an unreadable record) completed at least
// quiet before r. A claim seen once stays a threat after the read that
// showed it: its claimer wins LockSettle later and renews from then on,
// so only a record left unchanged for a whole hold proves nothing of it
// is live. (Comparing with the start of the pending tie instead, as an
// earlier version did, let a claim seen just before the tie began extend
// the grace past the moment the claimer could win.)
func (l *lockState) quietAt(r, quiet time.Duration) bool {
	return l.otherSince == 0 || r >= l.otherSince+quiet
}

func (l *lockState) holdValid(now, hold time.Duration) bool {
	return l.holding && now < l.holdIssue+hold
}

// tieQuiet is how long after a read that showed another node's lock
// write that node may still win or hold the lock without a write we
// would see: TieHold (its claim's settle and read-back, or its last
// renewal's hold) stretched by the clock drift, plus one I/O timeout for
// the read that would show its next write.
func (n *Node) tieQuiet() time.Duration {
	return time.Duration(float64(n.t.TieHold)*(1+timing.MaxClockDrift)) + n.t.IOTimeout
}

// memberHolds reports whether a member of our set advertises the lock.
func (n *Node) memberHolds() bool {
	for _, p := range n.peers {
		if p != nil && n.members.Has(p.id) && p.haveLatest && p.latest.Flags&FlagTieHolder != 0 {
			return true
		}
	}
	return false
}

func (n *Node) expireLock() {
	l := &n.lock
	if l.arbWon && (!n.arbiterFenced() || n.tally != VotePending) {
		// The peer is back (or left again, unfenced): the win was for
		// an earlier departure.
		l.arbWon = false
	}
	if l.holding && n.now >= l.holdIssue+n.t.TieHold {
		l.holding = false
		if n.tally == VotePending {
			n.decide(Decision{Kind: TieLost, Reason: "lock renewals failed"})
		}
	}
}

// lockAfterRead takes the lock as read by the read issued at issued, and
// starts the lock write this round needs, if any.
func (n *Node) lockAfterRead(issued time.Duration, obs LockObservation) {
	l := &n.lock
	now := n.now
	switch {
	case !obs.Valid:
		// Unknown, never free: possibly a torn claim by someone.
		l.seen = false
		l.otherSince = now
	case !l.seen || obs.Record != l.rec:
		l.seen, l.rec, l.since = true, obs.Record, now
		if o := obs.Record.Owner; o != 0 && !n.members.Has(o) {
			l.otherSince = now
		}
	}
	mine := obs.Valid && obs.Record.Owner == n.self && obs.Record.Inc == n.inc
	if l.holding && obs.Valid && !mine {
		l.holding = false
		n.decide(Decision{Kind: TieLost, Reason: fmt.Sprintf("lock taken by node %d", obs.Record.Owner)})
	}
	if l.claimed && issued >= l.claimDone+n.t.LockSettle {
		l.claimed = false
		if obs.Valid && obs.Record == l.claimRec {
			l.holding, l.holdIssue, l.holdRec = true, l.claimIssue, l.claimRec
			n.decide(Decision{Kind: TieWon})
		} else {
			reason := "claim unreadable"
			if obs.Valid {
				reason = fmt.Sprintf("claim overwritten by node %d", obs.Record.Owner)
			}
			n.decide(Decision{Kind: TieLost, Reason: reason})
		}
	}
	if !l.arbWon && n.arbiterFenced() && n.tally == VotePending && issued >= l.arbAt && l.quietAt(issued, n.tieQuiet()) {
		// The peer's incarnation is verified cut off the quorum LUN, and
		// this read, issued after the fence, shows no lock write of it
		// that could still be a live claim or hold: the tie is ours.
		l.arbWon, l.arbWonAt = true, now
		n.decide(Decision{Kind: TieWon, Reason: "peer fenced"})
	}
	switch {
	case l.arbWon && !l.holding && !l.claiming && !l.claimed && n.tally == VotePending:
		// Take the lock at once, so that a later incarnation of the
		// peer, registered again, finds it held and renewed.
		rec := LockRecord{Owner: n.self, Inc: n.inc, Gen: l.rec.Gen + 1}
		l.claiming, l.claimRec, l.arbClaim = true, rec, true
		n.issue(DiskRequest{Kind: DiskWriteLock, Lock: rec})
	case l.holdValid(now, n.t.TieHold) && n.tally == VotePending:
		rec := LockRecord{Owner: n.self, Inc: n.inc, Gen: l.holdRec.Gen + 1}
		l.renewing = true
		n.issue(DiskRequest{Kind: DiskWriteLock, Lock: rec})
	case n.shouldClaim(issued):
		rec := LockRecord{Owner: n.self, Inc: n.inc, Gen: l.rec.Gen + 1}
		l.claiming, l.claimRec = true, rec
		n.issue(DiskRequest{Kind: DiskWriteLock, Lock: rec})
		n.decide(Decision{Kind: TieClaimStarted})
	}
}

func (n *Node) shouldClaim(issued time.Duration) bool {
	l := &n.lock
	return !l.holding && !l.claimed && !l.claiming &&
		n.tally == VotePending && n.agreed &&
		n.wroteOK && n.now < n.lastWriteOK+n.t.SelfFenceAfter &&
		l.seen && issued >= l.since+n.t.TieClaimAfter &&
		!n.memberHolds()
}

func (n *Node) lockWritten(issued time.Duration, res IOResult) {
	l := &n.lock
	switch {
	case l.claiming && l.arbClaim:
		l.claiming, l.arbClaim = false, false
		if res == IOOK {
			// Nobody else is registered to write the lock: no
			// read-back to wait for.
			l.holding, l.holdIssue, l.holdRec = true, issued, l.claimRec
		}
	case l.claiming:
		l.claiming = false
		if res == IOOK {
			l.claimed, l.claimIssue, l.claimDone = true, issued, n.now
		} else {
			n.decide(Decision{Kind: TieLost, Reason: "claim write " + res.String()})
		}
	case l.renewing:
		l.renewing = false
		if res == IOOK && l.holding {
			l.holdIssue, l.holdRec = issued, n.cur.Lock
		}
	}
}
