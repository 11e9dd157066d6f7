// Fencing and takeover of departed peers, coordinated by the lowest-id
// member of a quorate partition.

package quorum

import (
	"fmt"
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

// FenceStagger is how long the higher-id node of a two-node cluster waits
// after a departure before it first asks to fence its peer: one PR command
// deadline. Two survivors of a split race only there (in larger clusters
// only the lowest-id member of a quorate partition fences); the storage
// serializes their preempts and the loser finds its key gone, but two
// PREEMPT AND ABORTs arriving at one LUN at the same instant have
// soft-locked a real target (LIO on Linux 6.1). Staggered, the lower-id
// node's preempt has been answered before the higher-id node's goes out.
// Zero for every other node.
func FenceStagger(nodes []Member, self NodeID, t timing.Derived) time.Duration {
	if len(nodes) != 2 {
		return 0
	}
	for _, m := range nodes {
		if m.ID < self {
			cmd, _ := FenceTimeouts(t)
			return cmd
		}
	}
	return 0
}

// arbiter: the fence decides a tie (Config.FenceArbiter in a cluster of
// two voting nodes; see the package documentation, Tie-break).
func (n *Node) arbiter() bool {
	if !n.cfg.FenceArbiter || len(n.cfg.Nodes) != 2 {
		return false
	}
	for _, m := range n.cfg.Nodes {
		if m.Votes == 0 {
			return false
		}
	}
	return true
}

// arbiterMayFence: a node of a two-node cluster with the fence as arbiter
// that has held quorum, runs, and writes its slot, and whose peer left
// its member set (an exact half: VotePending), asks to fence the peer
// without waiting for quorum.
func (n *Node) arbiterMayFence() bool {
	return n.arbiter() && n.armed && !n.stopped && !n.fencedByPeer && n.tally == VotePending &&
		n.wroteOK && n.now < n.lastWriteOK+n.t.SelfFenceAfter
}

// arbiterFenced: the peer's departed incarnation is verified fenced.
func (n *Node) arbiterFenced() bool {
	if !n.arbiter() {
		return false
	}
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		return p.gone && p.fenced
	}
	return false
}

// shouldFence: a gone peer is fenced unless its current incarnation is a
// newcomer, one that was never in our member set and is either alive on
// a path or was seen starting after its predecessor (we adopted it on an
// incarnation switch, which needs its counter seen changing). A restarted
// node runs no packages before it joins, and fencing it would only reset
// it once more, as it joins; the fence request could not spare it either:
// fencing keys name a node, not an incarnation, so a fence meant for the
// retired incarnation lands on the new one. The departed incarnation's
// takeover then waits for TakeoverAfter, as for any peer not fenced.
//
// A newcomer whose packets arrive on the network but that has not yet
// proved it hears us (it started a moment ago and has not yet echoed a
// heartbeat of ours) is spared for hearsWithin after the first packet we
// received from that node (proving): within that time a node that hears
// us proves it, and is then alive. Without this, a coordinator that
// became quorate as a late node started fenced it as never heard, a
// heartbeat before its proof, and the fence removed the registration the
// new incarnation had just made. The spare counts from the first packet
// of the node since this machine started, whatever incarnation it shows,
// so a recording of its packets delays its fence by hearsWithin once at
// most; and safety does not rest on the fence: an unfenced departure is
// taken over after TakeoverAfter.
func (n *Node) shouldFence(p *peer) bool {
	if p.inc == 0 || p.inc == p.goneInc {
		return true
	}
	alive := p.state == PeerAlive || p.state == PeerSuspect || p.state == PeerPartitioned
	seenStarting := p.retired[0] != 0
	return !alive && !seenStarting && !n.proving(p)
}

// proving: p's first packet since we started arrived less than
// hearsWithin ago, and its current incarnation has not yet proved that it
// hears us.
func (n *Node) proving(p *peer) bool {
	return p.sawNet && !p.heardUs && n.now < p.firstNetAt+n.hearsWithin()
}

// onFenced records that the fencing component cut p's departed
// incarnation off the shared storage.
func (n *Node) onFenced(e Fenced) {
	p := n.peer(e.Node)
	if p == nil || !p.gone || p.fenced || !(e.Inc == 0 || e.Inc == p.goneInc || p.goneInc == 0) {
		return
	}
	p.fenced, p.fencedAt = true, n.now
	p.fenceErr, p.fenceFails = "", 0
	n.lock.arbAt = n.now
	n.decide(Decision{Kind: PeerFenced, Peer: e.Node, Inc: e.Inc})
}

// onFenceFailed fails closed: no fenced takeover; the request goes out
// again after a backoff that doubles from one heartbeat interval up to
// DeadAfter.
func (n *Node) onFenceFailed(e FenceFailed) {
	if e.SelfFenced {
		// Our own key is gone: a peer fenced this node first (the
		// storage serialized the race). It stops at once.
		n.fencedByPeer = true
	}
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
// its packages once it is fenced or TakeoverAfter has passed. In a
// two-node cluster with the fence as arbiter, a node whose peer left asks
// to fence it before it holds quorum: the verified fence is what makes it
// quorate (package documentation, Tie-break).
func (n *Node) fenceAndTakeover() {
	for _, p := range n.peers {
		switch {
		case p == nil:
		case !p.gone:
			n.withdrawFence(p, "admitted to the member set again")
		case !n.shouldFence(p):
			n.withdrawFence(p, "a newcomer, never a member in its current incarnation: not fenced")
		}
	}
	n.requestRejoin()
	n.requestCheck()
	if !n.quorate {
		if n.arbiterMayFence() {
			n.requestFences()
		}
		return
	}
	if n.members.Lowest() != n.self {
		return
	}
	n.requestFences()
	now := n.now
	for _, p := range n.peers {
		if p == nil || !p.gone || p.takenOver {
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

// withdrawFence takes back p's outstanding fence request (asked, no
// outcome yet). Fencing keys name a node, not an incarnation: a request
// still queued behind another fence would land on whatever incarnation
// holds the key when it runs, so one for a peer readmitted to the member
// set, or for a departed incarnation whose successor is a newcomer not to
// be fenced (shouldFence), must not run. Safety does not rest on it: a
// withdrawn request only means the takeover waits for TakeoverAfter (or
// never happens, the peer being a member again), and a request the
// fencing component had already begun reports its outcome as usual.
func (n *Node) withdrawFence(p *peer, why string) {
	if !p.fenceAsked || p.fenced {
		return
	}
	p.fenceAsked = false
	n.out.WithdrawFence = append(n.out.WithdrawFence, p.fenceFor)
	n.decide(Decision{Kind: FenceWithdrawn, Peer: p.id, Inc: p.fenceFor.Inc, Reason: why})
}

// forgetFence forgets fencing and takeover of an earlier departure of p,
// withdrawing a request still outstanding.
func (n *Node) forgetFence(p *peer, why string) {
	n.withdrawFence(p, why)
	p.resetFence()
}

// requestFences asks to fence every departed peer that needs it, the first
// time FenceStagger after its departure, after a failure once its backoff
// has passed.
func (n *Node) requestFences() {
	for _, p := range n.peers {
		if p == nil || !p.gone || p.fenceAsked || !n.shouldFence(p) || n.now < n.fenceAt(p) || n.returning(p) {
			continue
		}
		p.fenceAsked = true
		p.fenceFor = Target{Node: p.id, Inc: n.target(p)}
		n.out.Fence = append(n.out.Fence, p.fenceFor)
		n.decide(Decision{Kind: FenceRequested, Peer: p.id, Inc: n.target(p)})
	}
}

// returning: p left our member set in the incarnation it still runs, for
// the first time in a row (Damping: a peer dropped once may come back at
// once), we and it hear each other, it counts us in its view and it is
// not stopping, less than a heartbeat interval past EndorseGuard after the
// drop. The guard of our drop of p and the hold-downs and guards that
// keep p out (its own, of members it dropped, and theirs of it) are all
// EndorseGuard long, from moments a heartbeat or so apart: when a link
// stops flapping, or a moment's wrong clique choice at a heal dropped p,
// p comes back about when this node is quorate again without it, and a
// fence asked at that moment races the re-admission, lands on a member
// and resets it for nothing. So the request waits while p is returning;
// if p is still out at the end (a partial partition that lasts), it goes
// out then. A peer silent on the network, or one that does not hear us
// (deaf, or cut one way), never waits, so a crash or a deaf node costs
// nothing here; nor does one dropped again soon after it came back (it
// babbles or flaps and is damped: its random views may list us in one
// heartbeat and not the next, and a fence delayed for it would only land
// later, in the middle of its next brief re-admission); a live node
// dropped for good costs its takeover at most that heartbeat interval.
func (n *Node) returning(p *peer) bool {
	return p.drops <= fullDrop && p.inc == p.goneInc && p.haveLatest && n.hearing(p) && p.latest.View.Has(n.self) &&
		p.latest.Flags&FlagStopped == 0 &&
		n.now < p.goneAt+n.guard()+n.t.HeartbeatInterval
}

// fencedStopping: p's departed incarnation, still the one it runs, was
// reported fenced less than a heartbeat interval and two I/O deadlines
// ago, the time it takes to find its next slot write refused. An
// incarnation that held quorum then stops for good; counted in again in
// that moment (its views may list everybody), it would cost the others a
// transition. One still heard after that registered again (it never held
// quorum: Re-registration after a fence) or cannot reach its disk, and is
// judged like any other peer.
func (n *Node) fencedStopping(p *peer) bool {
	return p.gone && p.fenced && p.inc == p.goneInc && n.now < p.fencedAt+n.t.HeartbeatInterval+2*n.t.IOTimeout
}

// fenceAt is when the next fence request of p may go out: a peer dead on
// both paths (its slot no longer changes either) is no racing fencer, so
// the stagger does not apply to it.
func (n *Node) fenceAt(p *peer) time.Duration {
	switch {
	case p.fenceFails > 0:
		return p.fenceRetryAt
	case p.state == PeerDead:
		return p.goneAt
	}
	return p.goneAt + FenceStagger(n.cfg.Nodes, n.self, n.t)
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

// MaxRejoins is how many times one incarnation registers for fencing
// again after a peer's fence removed its key (package documentation,
// Re-registration after a fence). Past it the node stops as fenced.
const MaxRejoins = 3

// Rejoined reports the outcome of a re-registration the machine asked for
// (Ready.Rejoin): Err is empty when the fencing component registered this
// node's key on every LUN again and verified it (fence.Fencer.Rejoin).
type Rejoined struct {
	Err string
}

func (Rejoined) isEvent() {}

// rejoinState is the re-registration of an incarnation whose key a peer's
// fence removed before it held quorum.
type rejoinState struct {
	// shared: a member set this node computed (and so published) held a
	// peer: a quorate partition may have counted this incarnation in.
	shared bool
	// pending: a re-registration is due (at, local) or under way (asked).
	pending, asked bool
	at             time.Duration
	// count: re-registrations asked for in this incarnation.
	count int
	// doneAt: when the last one completed; a write issued before it and
	// refused was refused for the fence it repaired.
	doneAt time.Duration
}

func (r *rejoinState) noteMembers(self NodeID, m Set) {
	if m != SetOf(self) {
		r.shared = true
	}
}

// mayRejoin: the node may register again after a peer's fence removed its
// key, because nothing of this incarnation or of its predecessors can
// write to the shared storage but its quorum-disk slot: it never held
// quorum (so it started no package), what earlier incarnations left on
// this machine is confirmed stopped (LeftoversStopped), no member set it
// published held a peer (so no quorate partition counted it in, and the
// fence was meant for an earlier incarnation: keys name a node), and it
// has not used up MaxRejoins.
func (n *Node) mayRejoin() bool {
	if n.stopped || n.fencedByPeer || n.leftovers || n.rj.count >= MaxRejoins {
		return false
	}
	if n.cfg.Unsafe.RejoinWhenArmed {
		return true
	}
	return !n.armed && !n.rj.shared
}

// ownWriteFenced handles a slot or lock write (issued at issued) that the
// storage refused because this node's key is gone: a re-registration if
// mayRejoin, else a stop at once. A refusal while a re-registration is
// due or under way, or of a write issued before the last one completed,
// is the fence already being repaired.
func (n *Node) ownWriteFenced(issued time.Duration) {
	if n.rj.pending || (n.rj.count > 0 && issued < n.rj.doneAt) {
		return
	}
	if !n.mayRejoin() {
		n.fencedByPeer = true
		return
	}
	n.scheduleRejoin()
}

// scheduleRejoin asks for the next re-registration after a backoff: one
// heartbeat interval for the first (a peer's fence still under way on the
// other LUNs then ends before our key comes back, and its verification
// does not fail on it), doubling for each further one.
func (n *Node) scheduleRejoin() {
	n.rj.count++
	n.rj.pending, n.rj.asked = true, false
	n.rj.at = n.now + n.t.HeartbeatInterval<<(n.rj.count-1)
	n.decide(Decision{Kind: RejoinRequested, Reason: fmt.Sprintf("fenced before this incarnation held quorum; attempt %d of %d", n.rj.count, MaxRejoins)})
}

// requestRejoin hands a due re-registration to the driver.
func (n *Node) requestRejoin() {
	if !n.rj.pending || n.rj.asked || n.stopped || n.now < n.rj.at {
		return
	}
	n.rj.asked = true
	n.out.Rejoin = true
}

// onRejoined ends a re-registration: on success the node goes on as
// before the fence; a failure is retried while mayRejoin, else the node
// stops as fenced.
func (n *Node) onRejoined(e Rejoined) {
	if !n.rj.pending || !n.rj.asked {
		return
	}
	n.rj.pending, n.rj.asked = false, false
	if e.Err == "" {
		n.rj.doneAt = n.now
		// Write the slot at once: the key is back, and the write
		// deadline has run since the last write that landed.
		n.nextCycle = n.now
		n.checkAfterRejoin()
		n.decide(Decision{Kind: RejoinDone})
		return
	}
	n.decide(Decision{Kind: RejoinFailed, Reason: e.Err})
	if n.mayRejoin() {
		n.scheduleRejoin()
		return
	}
	n.fencedByPeer = true
}
