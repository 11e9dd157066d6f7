package sim

import (
	"slices"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// The held rule of the stop bound (rule 3): a node that is not quorate
// while a majority still holds it as a member may keep its packages
// SelfFenceAfter + SettleGrace after the last such instant. The checker
// judges it from what the node published and what it received, never from
// the machine's state: a publication's counter and local send time (each
// network heartbeat and each slot write the node issued), and the latest
// heartbeat of each peer's incarnation that reached the node on either
// path.
//
// Held at a step of the node: some set P with the node in it has a
// strict majority of the votes, and every other member of P published,
// in the latest heartbeat the node received from one of its incarnations,
// P as its member set, settled and not stopped, with an echo of this
// incarnation's counter that the node sent less than DeadAfter before (on
// its own clock). The machine follows one incarnation of each peer and
// switches by rules of its own; the checker does not follow it, and takes
// any incarnation's latest heartbeat, which can only make the bound
// later. Rule 2 counts a takeover from the same bound, so a later bound
// is a stricter rule 2, and a hold that let a node run past a survivor's
// takeover is reported there.

// heldObs is what the checker keeps for the rule.
type heldObs struct {
	// sent: the node's publications whose lease can still run, in order.
	sent []sentObs
	// rows: the latest heartbeat received from each incarnation of each
	// peer, the most recent incarnations last (at most maxIncRows).
	rows [quorum.MaxNodes + 1][]quorum.Heartbeat
	// last: the last instant (absolute) the node was held (-1: never).
	last time.Duration
}

// maxIncRows bounds the incarnations kept per peer: a peer restarting in
// a loop brings a new one every few seconds, and one older than the last
// few echoes no counter sent within DeadAfter.
const maxIncRows = 4

type sentObs struct {
	seq quorum.Seq
	at  time.Duration // local
}

// published records a heartbeat the node sent or wrote to its slot.
func (c *checker) published(n *simNode, hb quorum.Heartbeat) {
	o := n.obs
	if o == nil || hb.Inc != o.inc {
		return
	}
	c.checkCoherent(o, hb)
	h := &o.held
	at := n.local(c.w.now)
	cut := 0
	for cut < len(h.sent) && h.sent[cut].at+c.t.DeadAfter <= at {
		cut++
	}
	h.sent = append(h.sent[cut:], sentObs{seq: hb.Seq, at: at})
}

// received records a heartbeat that reached the node (before its step).
func (c *checker) received(n *simNode, hb quorum.Heartbeat) {
	o := n.obs
	id := hb.From
	if o == nil || id == n.id || id < 1 || int(id) > quorum.MaxNodes {
		return
	}
	rows := o.held.rows[id]
	for i := range rows {
		if rows[i].Inc == hb.Inc {
			if hb.Seq > rows[i].Seq {
				rows[i] = hb
			}
			return
		}
	}
	if len(rows) == maxIncRows {
		rows = append(rows[:0], rows[1:]...)
	}
	o.held.rows[id] = append(rows, hb)
}

// receivedEvent feeds received with what ev brings.
func (c *checker) receivedEvent(n *simNode, ev quorum.Event) {
	switch e := ev.(type) {
	case quorum.NetReceived:
		c.received(n, e.Heartbeat)
	case quorum.DiskDone:
		if e.Kind == quorum.DiskRead && e.Result == quorum.IOOK {
			for _, s := range e.Slots {
				if s.Valid && s.Heartbeat.From == s.Node {
					c.received(n, s.Heartbeat)
				}
			}
		}
	}
}

// noteHeld records, after a step, whether an armed node without quorum
// is held.
func (c *checker) noteHeld(o *incObs) {
	if o.quorate || !o.armed || o.stopped || !c.heldNow(o) {
		return
	}
	o.held.last = c.w.now
}

func (c *checker) heldNow(o *incObs) bool {
	h, self := &o.held, o.n.id
	now := o.n.local(c.w.now)
	holds := func(r *quorum.Heartbeat, p quorum.Set) bool {
		return r.Members == p && r.Flags&quorum.FlagSettled != 0 && r.Flags&quorum.FlagStopped == 0 && r.Echo[self].Inc == o.inc && h.fresh(r.Echo[self].Seq, now, c.t.DeadAfter)
	}
	var tried []quorum.Set
	for id := range h.rows {
		for i := range h.rows[id] {
			p := h.rows[id][i].Members
			if !p.Has(self) || 2*p.Len() <= c.w.opt.Nodes || slices.Contains(tried, p) {
				continue
			}
			tried = append(tried, p)
			all := true
			for _, m := range p.IDs() {
				if m == self {
					continue
				}
				one := false
				for j := range h.rows[m] {
					one = one || holds(&h.rows[m][j], p)
				}
				if !one {
					all = false
					break
				}
			}
			if all {
				return true
			}
		}
	}
	return false
}

// fresh: the node sent seq less than deadAfter before now (local).
func (h *heldObs) fresh(seq quorum.Seq, now, deadAfter time.Duration) bool {
	for _, s := range h.sent {
		if s.seq == seq {
			return s.at+deadAfter > now
		}
	}
	return false
}
