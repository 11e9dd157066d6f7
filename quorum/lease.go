// Endorsement leases: what this node publishes, the echoes that endorse its
// members, and the shrink guard that keeps a dropped peer from counting on
// an old endorsement.

package quorum

import (
	"sort"
	"time"
)

type sent struct {
	seq Seq
	at  time.Duration
}

// guard is how long after we last received a peer's counter that peer may
// still count on an endorsement echoing it (config.Derived.EndorseGuard).
func (n *Node) guard() time.Duration { return n.t.EndorseGuard }

// pubChanged: our member set or flags differ from the last publication.
func (n *Node) pubChanged() bool {
	return n.members != n.lastPub.Members || n.flags() != n.lastPub.Flags
}

func (n *Node) flags() Flags {
	var f Flags
	if n.quorate {
		f |= FlagQuorate
	}
	if n.settled() && n.wroteOK && n.now < n.lastWriteOK+n.t.SelfFenceAfter && !n.rj.pending {
		f |= FlagSettled
	}
	if n.lock.holdValid(n.now, n.t.TieHold) {
		f |= FlagTieHolder
	}
	if n.stopped {
		f |= FlagStopped
	}
	return f
}

// publish builds our next heartbeat and records its send time.
func (n *Node) publish() Heartbeat {
	n.seq++
	n.sent = append(n.sent, sent{seq: n.seq, at: n.now})
	// Drop publication times whose leases have run out.
	cut := 0
	for cut < len(n.sent) && n.sent[cut].at+n.t.DeadAfter <= n.now {
		cut++
	}
	if cut > 0 {
		n.sent = append(n.sent[:0], n.sent[cut:]...)
	}
	hb := Heartbeat{From: n.self, Inc: n.inc, Seq: n.seq, Epoch: n.epoch, Members: n.members, Flags: n.flags()}
	for _, p := range n.peers {
		if p == nil || p.netMax == 0 {
			continue
		}
		if n.inView(p) {
			hb.View = hb.View.Add(p.id)
		}
		// Echo only what the network brought: membership lives on the
		// network, so a peer cut off it must not keep its lease alive
		// through the disk after we drop it. (A member that stops hearing
		// us leaves our view, and so our member set, in the same step, so
		// the guard after it runs from the last counter we echoed while it
		// heard us; a peer outside our member set can count on none of
		// our heartbeats, which do not publish its member set, and its
		// echo is how it proves it hears us.)
		hb.Echo[p.id] = Echo{Inc: p.inc, Seq: p.netMax}
		if n.members.Has(p.id) {
			if until := p.netAt + n.guard(); until > p.endorsedUntil {
				p.endorsedUntil = until
			}
		}
	}
	n.lastPub = hb
	return hb
}

// echoOfUs is when we sent the counter of ours that p's latest heartbeat
// echoes; ok is false when it echoes another incarnation of ours or a
// counter sent DeadAfter ago or earlier.
func (n *Node) echoOfUs(p *peer) (at time.Duration, ok bool) {
	if !p.haveLatest {
		return 0, false
	}
	e := p.latest.Echo[n.self]
	if e.Inc != n.inc {
		return 0, false
	}
	at, ok = n.sentAt(e.Seq)
	if !ok || at+n.t.DeadAfter <= n.now {
		return 0, false
	}
	return at, true
}

// hearsWithin is how much older than a peer's packet the counter of ours
// it echoes may be for the peer to count as hearing us: SuspectAfter, the
// silence after which a path is suspected, plus one heartbeat interval for
// the peer's own cadence. (See the package documentation, "Transitions".)
func (n *Node) hearsWithin() time.Duration { return n.t.SuspectAfter + n.t.HeartbeatInterval }

// hearsUs: p endorses us (its latest heartbeat echoes a counter of this
// incarnation sent less than DeadAfter ago: the lease we count on), and
// its latest network packet arrived less than
// hearsWithin after we sent the counter of ours that it (or its newer
// slot) echoes. A peer that keeps sending while it echoes an ever older
// counter of ours does not hear us (it is deaf, or our packets to it are
// lost); a peer that went silent (crashed, paused, cut off) still counts
// as hearing us until its endorsement runs out, so a crash costs no more
// than the lease.
//
// A silence is not deafness: a peer's first packets after a silence of
// SuspectAfter or more (it was paused or starved of CPU, or the path was
// down both ways; or this node was, and heard nothing meanwhile) echo
// what it heard before it. For hearsWithin after it is back it counts as
// hearing us, as it did while it was silent, and then its echoes must be
// fresh. Without this, a survivor paused for a fraction of the failure
// timeout while another node crashed was dropped by every peer and
// dropped them, and the majority self-fenced (sim/testdata/
// paused-survivor.txt). Hearing decides edges of membership only: the
// endorsement lease, which safety rests on, is not extended.
func (n *Node) hearsUs(p *peer) bool {
	at, ok := n.echoOfUs(p)
	return ok && (p.netAt < at+n.hearsWithin() || p.netAt < p.resumedAt+n.hearsWithin())
}

// hearing: we hear p on the network and it hears us, as far as we can
// tell; the set of such peers is the View we publish, so every node sees
// a link that works one way only as broken, whichever end notices.
func (n *Node) hearing(p *peer) bool { return n.netAlive(p) && n.hearsUs(p) }

// sentAt is the local time we published seq, if its lease can still run.
func (n *Node) sentAt(seq Seq) (time.Duration, bool) {
	i := sort.Search(len(n.sent), func(i int) bool { return n.sent[i].seq >= seq })
	if i < len(n.sent) && n.sent[i].seq == seq {
		return n.sent[i].at, true
	}
	return 0, false
}

// settled: no node outside our member set can still count on an earlier
// endorsement of ours.
func (n *Node) settled() bool {
	if n.cfg.Unsafe.SkipShrinkGuard {
		return true
	}
	for _, p := range n.peers {
		if p != nil && !n.members.Has(p.id) && n.now < p.endorsedUntil {
			return false
		}
	}
	return true
}

func (n *Node) settledAt() time.Duration {
	t := time.Duration(0)
	for _, p := range n.peers {
		if p != nil && !n.members.Has(p.id) && p.endorsedUntil > t {
			t = p.endorsedUntil
		}
	}
	return t
}
