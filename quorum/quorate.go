// The quorum test and the self-fence deadline. Both are queries: they
// read the machine's state and return a value; evaluate (node.go) is the
// one place that stores what they decide.

package quorum

import "time"

// verdict is the outcome of the quorum test at one instant.
type verdict struct {
	quorate bool
	// until is when quorum runs out if nothing new arrives (quorate only).
	until  time.Duration
	reason LossReason
	// agreed: agreement and settlement hold (only the tie-break may be
	// missing).
	agreed bool
	// transition: the member set, or the set of peers this node hears
	// both ways, holds a strict majority, and quorum waits only for the
	// members (this node included) to agree and settle: a membership
	// change in progress, not a lost majority. Such a node keeps its
	// packages SettleGrace longer (see stopDeadline).
	transition bool
}

// quorum decides whether we hold quorum now and until when.
func (n *Node) quorum() verdict {
	now := n.now
	if n.stopped || n.fencedByPeer {
		return verdict{reason: LossReason{Kind: LossStopped}}
	}
	if n.rj.pending {
		return verdict{reason: LossReason{Kind: LossRejoining}}
	}
	if !n.wroteOK || now >= n.lastWriteOK+n.t.SelfFenceAfter {
		return verdict{reason: LossReason{Kind: LossWrites}}
	}
	until := n.lastWriteOK + n.t.SelfFenceAfter
	majority := n.tally == VoteWon || n.hearsMajority()
	if n.cfg.Unsafe.ArbiterBypass && (n.arbiterHolds() || n.lock.holdValid(now, n.t.TieHold) && n.lock.arbWon) {
		return verdict{quorate: true, until: until, agreed: true}
	}
	if n.tally == VoteLost {
		return verdict{reason: LossReason{Kind: LossVotes, Members: n.members, Votes: n.votes.Of(n.members), Total: n.votes.Total()}, transition: majority}
	}
	if !n.settled() {
		return verdict{reason: LossReason{Kind: LossSettling}, transition: majority}
	}
	holder := n.lock.holdValid(now, n.t.TieHold)
	if holder {
		if u := n.lock.holdIssue + n.t.TieHold; u < until && n.tally == VotePending {
			until = u
		}
	} else if n.arbiterHolds() {
		// Won by the fence, the lock not yet written: for TieHold at
		// most (no later incarnation of the peer can claim it sooner).
		holder = true
		if u := n.lock.arbWonAt + n.t.TieHold; u < until && n.tally == VotePending {
			until = u
		}
	}
	if !n.cfg.Unsafe.SkipAgreement {
		for _, p := range n.peers {
			if p == nil || !n.members.Has(p.id) {
				continue
			}
			l := &p.latest
			if !p.haveLatest || l.Members != n.members || l.Flags&FlagSettled == 0 {
				return verdict{reason: LossReason{Kind: LossAgree, Peer: p.id, Members: n.members}, transition: majority}
			}
			e := l.Echo[n.self]
			if e.Inc != n.inc {
				return verdict{reason: LossReason{Kind: LossIncarnation, Peer: p.id}, transition: majority}
			}
			at, ok := n.sentAt(e.Seq)
			if !ok || at+n.t.DeadAfter <= now {
				return verdict{reason: LossReason{Kind: LossStale, Peer: p.id}, transition: majority}
			}
			if u := at + n.t.DeadAfter; u < until {
				until = u
			}
			if l.Flags&FlagTieHolder != 0 {
				holder = true
			}
		}
	}
	if n.tally == VotePending && !holder && !n.cfg.Unsafe.SkipTieBreak {
		return verdict{reason: LossReason{Kind: LossTie}, agreed: true, transition: majority}
	}
	return verdict{quorate: true, until: until, agreed: true}
}

// arbiterHolds: the fence decided the tie for us less than TieHold ago
// (after that only the lock counts).
func (n *Node) arbiterHolds() bool {
	l := &n.lock
	return l.arbWon && n.arbiterFenced() && n.tally == VotePending && n.now < l.arbWonAt+n.t.TieHold
}

// tiePending: our partition agrees on an exactly-half member set and our
// own disk works; only the tie-break is missing.
func (n *Node) tiePending() bool {
	return n.armed && n.agreed && n.tally == VotePending && n.readOK
}

// stopDeadline is when this node stops its packages and its watchdog: an
// armed node SelfFenceAfter after it last held quorum (lastQuorate: the
// instant its quorum really ran out, not the last step that found it
// quorate) or was last held as a member by a majority (lastHeld, see
// heldByPeers), SettleGrace later while the loss is a transition (see
// verdict.transition); any node SelfFenceAfter after the issue of its last
// successful slot write (or after its start, if none succeeded), so that a
// node cut off the disk, fenced ones included, is reset and comes back
// with a new incarnation. A write the storage refused because a peer fenced
// this node (IOFenced) stops it at once.
func (n *Node) stopDeadline() time.Duration {
	if n.stopped {
		return never
	}
	if n.fencedByPeer {
		return n.now
	}
	d := n.start + n.t.SelfFenceAfter
	if n.wroteOK {
		d = n.lastWriteOK + n.t.SelfFenceAfter
	}
	if n.armed {
		q := max(n.lastQuorate, n.lastHeld) + n.t.SelfFenceAfter
		if n.transition {
			q += n.t.SettleGrace
		}
		if q < d {
			d = q
		}
	}
	return d
}

// transitionReport is how long a transition may last before it is
// reported as a loss of quorum: EndorseGuard + 1.5 heartbeat intervals,
// the longest ordinary transition (EndorseGuard + HeartbeatInterval and a
// few network delays, package doc "Transitions") with room to spare.
func (n *Node) transitionReport() time.Duration {
	return n.t.EndorseGuard + n.t.HeartbeatInterval + n.t.HeartbeatInterval/2
}

// lossDecision reports the end of a quorate stretch: a membership change
// in progress (v.transition) is a regrouping, not yet a loss: joining when
// the member set grew (a node is forming with us: routine), settling when
// a member left or a member's set changed (worth a look). It becomes a QuorumLost if it does not
// complete within SelfFenceAfter or the majority is lost (evaluate).
func (n *Node) lossDecision(v verdict) Decision {
	d := Decision{Kind: QuorumLost, Reason: v.reason.String(), Members: n.members}
	if v.transition {
		d.Kind = QuorumSettling
		if n.members != n.lastMembers && n.members&n.lastMembers == n.lastMembers {
			d.Kind = QuorumJoining
		}
	}
	return d
}

// heldByPeers: a strict majority of the votes still holds this node as a
// member, although its own member set has moved on. Some set P with this
// node in it holds a strict majority, and every other member of P
// publishes P, settled and not stopped, and echoes a counter of this
// incarnation sent less than DeadAfter ago.
//
// While that holds, no node can be quorate without this one, by the lease
// argument of the quorum test itself: a quorate set without this node
// shares a member A with P (both are majorities); A counts as settled
// without this node only after its guard for it has run out, EndorseGuard
// after it received the counter it echoes, and so after that counter's
// DeadAfter. So such a set's quorate stretch begins after every instant at
// which this holds, and counting the self-fence clock from such an instant
// (lastHeld) keeps the takeover argument (package doc, "Self-fence,
// fencing and takeover"): the node stops its packages SelfFenceAfter (+
// SettleGrace) after it, before any takeover that counts TakeoverAfter
// from a later quorate stretch.
//
// It matters when two membership changes follow each other: a node whose
// own set moved on a moment before the last member's settled heartbeat
// arrived (a lost packet, a babbling peer's next view) never sees its
// previous set quorate, and without this its self-fence clock would run
// from the quorum before the first change, although its peers held it
// throughout.
func (n *Node) heldByPeers() bool {
	if n.stopped || n.fencedByPeer || n.rj.pending {
		return false
	}
	var tried Set
	for _, q := range n.peers {
		if q == nil || !q.haveLatest {
			continue
		}
		p := q.latest.Members
		if !p.Has(n.self) || p == tried || n.votes.Tally(p) != VoteWon {
			continue
		}
		tried = p
		if n.endorsedBy(p) {
			return true
		}
	}
	return false
}

// endorsedBy: every member of p but this node publishes p, settled and not
// stopped, with a fresh echo of this incarnation (heldByPeers).
func (n *Node) endorsedBy(p Set) bool {
	for _, id := range p.IDs() {
		if id == n.self {
			continue
		}
		q := n.peer(id)
		if q == nil {
			return false
		}
		l := &q.latest
		if !q.haveLatest || l.Members != p || l.Flags&FlagSettled == 0 || l.Flags&FlagStopped != 0 {
			return false
		}
		if n.cfg.Unsafe.HoldOnStaleEcho {
			if l.Echo[n.self].Inc != n.inc {
				return false
			}
			continue
		}
		if _, ok := n.echoOfUs(q); !ok {
			return false
		}
	}
	return true
}
