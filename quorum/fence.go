// Fencing and takeover of departed peers, coordinated by the lowest-id
// member of a quorate partition.

package quorum

import (
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// FenceTimeouts are the fencing component's deadlines, derived from the
// timing bases. A persistent-reservation command gets the longer of two
// I/O timeouts and the failure timeout: a PREEMPT AND ABORT waits for the
// victim's queued commands to be aborted, which on a busy target takes
// longer than one quorum-disk I/O. One attempt (every LUN) is bounded by
// TakeoverAfter (past it the watchdog deadline allows the takeover anyway,
// and the retry starts afresh) and by at least four commands.
func FenceTimeouts(t timing.Derived) (cmd, attempt time.Duration) {
	cmd = max(2*t.IOTimeout, t.FailureTimeout)
	return cmd, max(t.TakeoverAfter, 4*cmd)
}

// allowTakeover hands p's departed incarnation to placement.
func (n *Node) allowTakeover(p *peer, r TakeoverReason) {
	p.takenOver = true
	t := Target{Node: p.id, Inc: n.target(p)}
	n.out.Takeover = append(n.out.Takeover, Takeover{Target: t, Reason: r})
	n.decide(Decision{Kind: TakeoverAllowed, Peer: p.id, Inc: t.Inc, Reason: r.String()})
}

// target is the incarnation of a gone peer that fencing and takeover
// concern: the one we dropped, else the one we know, else 0 (whatever runs
// there: we never heard it since we started).
func (n *Node) target(p *peer) Incarnation {
	if p.goneInc != 0 {
		return p.goneInc
	}
	return p.inc
}

// shouldFence: a gone peer is fenced unless it is a newcomer: alive on a
// path in an incarnation that was never in our member set. A restarted
// node runs no packages before it joins, and fencing it would only reset
// it once more; its takeover still waits for TakeoverAfter.
func (n *Node) shouldFence(p *peer) bool {
	alive := p.state == PeerAlive || p.state == PeerSuspect || p.state == PeerPartitioned
	joining := alive && p.inc != 0 && p.inc != p.goneInc
	return !joining
}

// onFenced records that the fencing component cut p's departed
// incarnation off the shared storage.
func (n *Node) onFenced(e Fenced) {
	p := n.peer(e.Node)
	if p == nil || !p.gone || p.fenced || !(e.Inc == 0 || e.Inc == p.goneInc || p.goneInc == 0) {
		return
	}
	p.fenced = true
	p.fenceErr, p.fenceFails = "", 0
	n.decide(Decision{Kind: PeerFenced, Peer: e.Node, Inc: e.Inc})
}

// onFenceFailed fails closed: no fenced takeover; the request goes out
// again after a backoff that doubles from one heartbeat interval up to
// DeadAfter.
func (n *Node) onFenceFailed(e FenceFailed) {
	p := n.peer(e.Node)
	if p == nil || !p.gone || !p.fenceAsked || p.fenced || !(e.Inc == 0 || e.Inc == p.goneInc || p.goneInc == 0) {
		return
	}
	p.fenceAsked = false
	p.fenceErr = e.Err
	p.fenceFails++
	backoff := n.t.HeartbeatInterval << min(p.fenceFails-1, 16)
	if backoff > n.t.DeadAfter || backoff <= 0 {
		backoff = n.t.DeadAfter
	}
	p.fenceRetryAt = n.now + backoff
	n.decide(Decision{Kind: FenceFailedKind, Peer: e.Node, Inc: e.Inc, Reason: e.Err})
}

// fenceAndTakeover: the lowest-id member of a quorate partition requests
// fencing of every departed peer that needs it and allows the takeover of
// its packages once it is fenced or TakeoverAfter has passed.
func (n *Node) fenceAndTakeover() {
	if !n.quorate || n.members.Lowest() != n.self {
		return
	}
	now := n.now
	for _, p := range n.peers {
		if p == nil || !p.gone {
			continue
		}
		if !p.fenceAsked && n.shouldFence(p) && now >= p.fenceRetryAt {
			p.fenceAsked = true
			n.out.Fence = append(n.out.Fence, Target{Node: p.id, Inc: n.target(p)})
			n.decide(Decision{Kind: FenceRequested, Peer: p.id, Inc: n.target(p)})
		}
		if p.takenOver {
			continue
		}
		switch {
		case p.fenced:
			n.allowTakeover(p, TakeoverFenced)
		case now >= n.takeoverAt(p):
			n.allowTakeover(p, TakeoverWatchdog)
		}
	}
}

// takeoverAt is when p's departed incarnation may be taken over without
// fencing: TakeoverAfter after the later of its departure and the start
// of this node's current quorate stretch.
func (n *Node) takeoverAt(p *peer) time.Duration {
	from := p.goneAt
	if n.quorateSince > from {
		from = n.quorateSince
	}
	return from + n.t.TakeoverAfter
}
