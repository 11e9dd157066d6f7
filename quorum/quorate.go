// The quorum test and the self-fence deadline.

package quorum

import "time"

// stopDeadline is when this node stops its packages and its watchdog: an
// armed node SelfFenceAfter after it last held quorum; any node
// SelfFenceAfter after the issue of its last successful slot write (or
// after its start, if none succeeded), so that a node cut off the disk,
// fenced ones included, is reset and comes back with a new incarnation.
func (n *Node) stopDeadline() time.Duration {
	if n.stopped {
		return never
	}
	d := n.start + n.t.SelfFenceAfter
	if n.wroteOK {
		d = n.lastWriteOK + n.t.SelfFenceAfter
	}
	if n.armed {
		q := n.lastQuorate + n.t.SelfFenceAfter
		if n.settling {
			q += n.t.SettleGrace
		}
		if q < d {
			d = q
		}
	}
	return d
}

// quorum decides whether we hold quorum now and until when.
func (n *Node) quorum() (bool, time.Duration, LossReason) {
	now := n.now
	until := never
	n.agreed = false
	n.settling = false
	if n.stopped {
		return false, 0, LossReason{Kind: LossStopped}
	}
	if !n.wroteOK || now >= n.lastWriteOK+n.t.SelfFenceAfter {
		return false, 0, LossReason{Kind: LossWrites}
	}
	until = n.lastWriteOK + n.t.SelfFenceAfter
	if n.tally == VoteLost {
		return false, 0, LossReason{Kind: LossVotes, Members: n.members, Votes: n.votes.Of(n.members), Total: n.votes.Total()}
	}
	if !n.settled() {
		n.settling = true
		return false, 0, LossReason{Kind: LossSettling}
	}
	holder := n.lock.holdValid(now, n.t.TieHold)
	if holder {
		if u := n.lock.holdIssue + n.t.TieHold; u < until && n.tally == VotePending {
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
				return false, 0, LossReason{Kind: LossAgree, Peer: p.id, Members: n.members}
			}
			e := l.Echo[n.self]
			if e.Inc != n.inc {
				return false, 0, LossReason{Kind: LossIncarnation, Peer: p.id}
			}
			at, ok := n.sentAt(e.Seq)
			if !ok || at+n.t.DeadAfter <= now {
				return false, 0, LossReason{Kind: LossStale, Peer: p.id}
			}
			if u := at + n.t.DeadAfter; u < until {
				until = u
			}
			if l.Flags&FlagTieHolder != 0 {
				holder = true
			}
		}
	}
	n.agreed = true
	if n.tally == VotePending && !holder && !n.cfg.Unsafe.SkipTieBreak {
		return false, 0, LossReason{Kind: LossTie}
	}
	return true, until, LossReason{}
}

// tiePending: our partition agrees on an exactly-half member set and our
// own disk works; only the tie-break is missing.
func (n *Node) tiePending() bool {
	return n.armed && n.agreed && n.tally == VotePending && n.readOK
}
