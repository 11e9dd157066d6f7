// Peers: what this node knows of each configured peer, its incarnations
// (adoption and retirement) and its liveness class on both paths.

package quorum

import (
	"time"

	"github.com/mtcluster/mtc/quorum/liveness"
)

type peer struct {
	id      NodeID
	inc     Incarnation // current incarnation, 0 while never seen
	retired [4]Incarnation
	net     liveness.Tracker
	disk    liveness.Tracker
	netMax  Seq           // highest counter received on the network (current inc)
	netAt   time.Duration // when netMax was received
	// resumedAt: when the first network packet after a silence of at
	// least SuspectAfter arrived (see hearsUs).
	resumedAt time.Duration
	candInc   Incarnation // another incarnation seen once, not yet adopted
	candSeq   Seq

	latest     Heartbeat // highest-counter heartbeat of the current inc
	haveLatest bool

	// heardUs: the current incarnation has proved on the network that it
	// hears this incarnation of ours (see hearsProof). Until then it does
	// not count as alive on the network, so no recording of its packets
	// made before we started can pass for it.
	heardUs bool
	// firstNetAt: when the first network packet of this peer since we
	// started arrived (sawNet), proved or not, whatever its incarnation.
	firstNetAt time.Duration
	sawNet     bool

	// endorsedUntil: until this local time the peer may still count on an
	// endorsement we published while it was in our member set.
	endorsedUntil time.Duration
	state         PeerState

	// Re-admission damping (see "Damping" in the package doc): how many
	// times in a row the peer left our member set soon after entering it,
	// in halves (a drop of a peer still heard both ways weighs half:
	// dropWeight), when it last left and entered it, and since when we
	// and it have heard each other without a break (holds).
	drops      int
	halfUntil  time.Duration // a half drop is made whole if the hearing breaks before this
	droppedAt  time.Duration
	joinedAt   time.Duration
	holds      bool
	holdsSince time.Duration
	// incoherentUntil: a heartbeat of the peer listed a member its own
	// view left out (see noteCoherence); until this time it is kept out
	// of our view and member set, and its drops weigh whole.
	incoherentUntil time.Duration

	// deferring: the clique choice drops this member while it is fresh;
	// the drop waits for a heartbeat of it newer than deferSeq (deferDrops).
	deferring bool
	deferSeq  Seq

	// Bookkeeping for a peer out of our member set.
	gone       bool
	goneAt     time.Duration
	goneInc    Incarnation
	fenceAsked bool
	fenceFor   Target // what the outstanding request asked for
	fenced     bool
	fencedAt   time.Duration // when the fencing component reported it
	takenOver  bool
	// Fencing failures: the last error, how many in a row, and when the
	// next request may go out.
	fenceErr     string
	fenceFails   int
	fenceRetryAt time.Duration
}

func (p *peer) isRetired(inc Incarnation) bool {
	for _, r := range p.retired {
		if r == inc {
			return true
		}
	}
	return false
}

// resetFence forgets fencing and takeover of an earlier departure.
func (p *peer) resetFence() {
	p.fenceAsked, p.fenced, p.takenOver = false, false, false
	p.fenceErr, p.fenceFails, p.fenceRetryAt = "", 0, 0
}

func (p *peer) fenceState() FenceState {
	switch {
	case !p.gone:
		return FenceNone
	case p.fenced:
		return FenceDone
	case p.fenceErr != "":
		return FenceFailing
	case p.fenceAsked:
		return FencePending
	}
	return FenceNone
}

// peerStatus is every configured peer's judgement at n.now.
func (n *Node) peerStatus() []PeerStatus {
	out := make([]PeerStatus, 0, n.all.Len())
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		ps := PeerStatus{
			Node: p.id, Inc: p.inc, State: p.state,
			Net: n.netState(p), Disk: p.disk.State(n.now),
			NetAge: -1, DiskAge: -1,
			Member: n.members.Has(p.id),
			Fence:  p.fenceState(), FenceError: p.fenceErr,
			TakenOver: p.gone && p.takenOver,
		}
		if d, ok := p.net.SinceChange(n.now); ok {
			ps.NetAge = d
		}
		if d, ok := p.disk.SinceChange(n.now); ok {
			ps.DiskAge = d
		}
		out = append(out, ps)
	}
	return out
}

func (n *Node) peer(id NodeID) *peer {
	if id < 1 || id > MaxNodes {
		return nil
	}
	return n.peers[id]
}

// onHeartbeat takes a heartbeat received on the network or read from the
// peer's slot.
func (n *Node) onHeartbeat(hb Heartbeat, fromDisk bool) {
	p := n.peer(hb.From)
	if p == nil || hb.Inc == 0 {
		return
	}
	if hb.Inc != p.inc {
		if p.isRetired(hb.Inc) && (fromDisk || n.netAlive(p)) {
			// A late message of an earlier incarnation. (A retired one
			// that keeps counting on the network while the current one is
			// silent there was retired wrongly: it may come back.)
			return
		}
		if p.inc != 0 {
			// Incarnations are random, not ordered: switch only once the
			// new one is seen changing, never to one that is self-fencing,
			// and not on the disk's word while the current one is alive
			// on the network, so neither a stale or late-landing slot of a
			// dead incarnation nor one late packet shadows the live one.
			if hb.Flags&FlagStopped != 0 || (fromDisk && n.netAlive(p)) {
				return
			}
			if p.candInc != hb.Inc {
				p.candInc, p.candSeq = hb.Inc, hb.Seq
				return
			}
			if p.candSeq == hb.Seq {
				return
			}
			p.candInc = 0
			for i, r := range p.retired {
				if r == hb.Inc {
					p.retired[i] = 0
				}
			}
			copy(p.retired[1:], p.retired[:len(p.retired)-1])
			p.retired[0] = p.inc
			n.decide(Decision{Kind: PeerRestarted, Peer: p.id, Inc: hb.Inc})
			if n.members.Has(p.id) {
				// The member incarnation is gone: fencing and takeover
				// concern it, not the new one.
				p.gone, p.goneAt, p.goneInc = true, n.now, p.inc
				n.forgetFence(p, "a newcomer, never a member in its current incarnation: not fenced")
			}
		}
		p.inc = hb.Inc
		p.netMax, p.netAt, p.resumedAt = 0, 0, 0
		p.heardUs = false
		p.haveLatest = false
		p.net = liveness.Tracker{SuspectAfter: n.t.SuspectAfter, DeadAfter: n.t.DeadAfter}
		p.disk = liveness.Tracker{SuspectAfter: n.t.SuspectAfter, DeadAfter: n.t.DeadAfter}
	}
	obs := liveness.Observation{Valid: true, Incarnation: uint64(hb.Inc), Seq: uint64(hb.Seq)}
	var change liveness.Change
	if fromDisk {
		change = p.disk.Observe(n.now, obs)
	} else if hb.Seq > p.netMax || p.netMax == 0 {
		// Only a higher counter is news on the network: a duplicated or
		// reordered packet proves nothing.
		if p.netAt != 0 && n.now-p.netAt >= n.t.SuspectAfter {
			p.resumedAt = n.now
		}
		if !p.sawNet {
			p.sawNet, p.firstNetAt = true, n.now
		}
		p.netMax = hb.Seq
		p.netAt = n.now
		change = p.net.Observe(n.now, obs)
		if !p.heardUs && n.hearsProof(hb) {
			p.heardUs = true
		}
	}
	if change == liveness.Resurrected && p.state == PeerDead {
		p.state = PeerUnknown // reported once, whichever path shows it first
		// Same incarnation, counting again after it was judged dead on
		// this path: a node that froze and came back.
		n.decide(Decision{Kind: PeerResurrected, Peer: p.id, Inc: p.inc})
	}
	if !p.haveLatest || hb.Seq > p.latest.Seq {
		p.latest = hb
		p.haveLatest = true
		n.noteCoherence(p, hb)
		if hb.Flags&FlagStopped != 0 {
			// A self-fencing incarnation never holds quorum again, so
			// it cannot count on our endorsements any more.
			p.endorsedUntil = 0
		}
	}
}

func alive(l liveness.Liveness) bool { return l == liveness.Live || l == liveness.Suspect }

// hearsProof: hb, received on the network, echoes this incarnation of ours
// and a counter we sent less than DeadAfter ago, so its sender heard us
// after we started. A recording of the sender's packets made before that
// cannot echo an incarnation drawn at our start.
func (n *Node) hearsProof(hb Heartbeat) bool {
	e := hb.Echo[n.self]
	if e.Inc != n.inc {
		return false
	}
	at, ok := n.sentAt(e.Seq)
	return ok && n.now < at+n.t.DeadAfter
}

// netState is the peer's liveness on the network: its tracker's, once it
// has proved that it hears this incarnation (Unknown before).
func (n *Node) netState(p *peer) liveness.Liveness {
	if !p.heardUs {
		return liveness.Unknown
	}
	return p.net.State(n.now)
}

// netAlive: the peer has proved it hears us and its network counter
// changed within DeadAfter.
func (n *Node) netAlive(p *peer) bool { return alive(n.netState(p)) }

func (n *Node) classify(p *peer) PeerState {
	ns, ds := n.netState(p), p.disk.State(n.now)
	switch {
	case ns == liveness.Live:
		return PeerAlive
	case ns == liveness.Suspect:
		return PeerSuspect
	case alive(ds):
		if _, _, heard := p.net.Incarnation(); ns == liveness.Unknown && (heard || n.now-n.start < n.t.DeadAfter) {
			return PeerUnknown // heard once on the network: not judged yet
		}
		return PeerPartitioned
	case ns == liveness.Dead || ds == liveness.Dead:
		return PeerDead
	}
	return PeerUnknown
}

// lastChange is when the tracker last saw the counter change (ok false if
// never seen).
func lastChange(t *liveness.Tracker, now time.Duration) (time.Duration, bool) {
	d, ok := t.SinceChange(now)
	return now - d, ok
}

// holdDown is how long a peer dropped drops times in a row (counted in
// halves, see dropWeight; a half left over does not count) must hold us
// before it re-enters: RejoinHoldDown from the second drop, doubled per
// further drop, at most RejoinHoldDownMax.
func (n *Node) holdDown(drops int) time.Duration {
	k := drops / fullDrop
	if k < 2 {
		return 0
	}
	h := n.t.RejoinHoldDown
	for i := 2; i < k && h < n.t.RejoinHoldDownMax; i++ {
		h *= 2
	}
	return min(h, n.t.RejoinHoldDownMax)
}

// trackHolds follows whether we and p hear each other (and it is not
// self-fencing), and since when without a break. Its views do not count:
// a peer that holds us down leaves us out of its view, and two nodes that
// hold each other down would wait for each other forever.
func (n *Node) trackHolds(p *peer) {
	if p.halfUntil > n.now && (!n.heardBothWays(p) || n.incoherent(p)) {
		// The link broke right after the clique choice dropped the peer,
		// or the peer's views turned out not to describe its hearing:
		// the drop was the link's or the peer's, and weighs whole.
		p.drops += fullDrop - halfDrop
		p.halfUntil = 0
	}
	ok := p.haveLatest && p.latest.Flags&FlagStopped == 0 && n.hearing(p)
	switch {
	case ok && !p.holds:
		p.holds, p.holdsSince = true, n.now
	case !ok:
		p.holds = false
	}
}

// heldDown: p left our member set twice or more in a row and has not yet
// been heard both ways, without a break, for its hold-down since its last
// drop. Such a peer is left out of our view as well as our member
// set, so every node's clique choice sees that we do not take it back.
func (n *Node) heldDown(p *peer) bool {
	h := n.holdDown(p.drops)
	if h == 0 || n.members.Has(p.id) {
		return false
	}
	return !p.holds || n.now < max(p.holdsSince, p.droppedAt)+h
}

// noteDrop counts p's departure from our member set (the caller skips a
// departure seen as an incarnation switch; a self-fence is skipped here;
// a crash seen first as silence counts): a drop within FlapQuiet of
// its last re-admission is one more in a row. The count outlives the
// incarnation, so a node that babbles or flaps does not escape its
// hold-down by restarting.
func (n *Node) noteDrop(p *peer) {
	if p.haveLatest && p.latest.Flags&FlagStopped != 0 {
		return
	}
	w := n.dropWeight(p)
	p.halfUntil = 0
	if w == halfDrop {
		p.halfUntil = n.now + n.hearsWithin()
	}
	if p.drops > 0 && n.now-p.joinedAt < n.t.FlapQuiet {
		p.drops += w
	} else {
		p.drops = w
	}
	p.droppedAt = n.now
}

// The weights of a drop for the damping, in halves.
const (
	fullDrop = 2
	halfDrop = 1
)

// dropWeight: a peer that leaves our member set although we and it still
// hear each other both ways (heardBothWays) was dropped by the clique
// choice for an edge between other nodes, at a moment the nodes may judge
// differently (one has noticed a deaf node a heartbeat before another):
// such a drop weighs half, so a healthy peer dropped once for a broken
// link and once for a moment's choice is not held down for it. If the
// peer stops being heard both ways within hearsWithin of the drop (its
// link to us was failing, and another node noticed first), or publishes
// an incoherent heartbeat within it, the drop is made whole (trackHolds);
// the drops of a peer whose heartbeats are incoherent weigh whole
// (noteCoherence).
func (n *Node) dropWeight(p *peer) int {
	if n.cfg.Unsafe.HalveEveryDrop {
		return halfDrop
	}
	if n.heardBothWays(p) && !n.incoherent(p) {
		return halfDrop
	}
	return fullDrop
}

// noteCoherence checks a peer's new latest heartbeat against itself. A
// node's member set is a clique of its own row, and its row is the view
// it publishes, computed in the same step: every member but the sender
// is in the view (deferDrops holds a set only while it is such a clique).
// A heartbeat that lists a member its view leaves out comes from a node
// whose views do not describe its hearing (a babbler), and the half
// weight of dropWeight, which spares a healthy peer dropped for a
// moment's clique choice, must not spare it: its views list us every
// other heartbeat, so half its drops would weigh half and its hold-down
// would come late. For hearsWithin after such a heartbeat it is left out
// of our view and our member set, as a held-down peer is, and its drops
// weigh whole: every node that receives the heartbeat judges it the same
// way, so they drop the babbler together rather than each at the moment
// its random view leaves that node out, and none of them re-admits it
// while its heartbeats go on contradicting themselves. A healthy node
// never publishes such a heartbeat (the simulation checks every one), so
// this costs a healthy peer nothing.
func (n *Node) noteCoherence(p *peer, hb Heartbeat) {
	if hb.Members&^hb.View&^SetOf(hb.From) != 0 {
		p.incoherentUntil = n.now + n.hearsWithin()
	}
}

// incoherent: a heartbeat of p listed a member its view left out less than
// hearsWithin ago.
func (n *Node) incoherent(p *peer) bool { return n.now < p.incoherentUntil }

// heardBothWays: p is fresh on the network, echoes us (hearing) and lists
// us in its view.
func (n *Node) heardBothWays(p *peer) bool {
	return p.haveLatest && n.netState(p) == liveness.Live && n.hearing(p) && p.latest.View.Has(n.self)
}

// keptOut: p is left out of our view and member set whatever we hear of
// it: it is held down, or its heartbeats are incoherent.
func (n *Node) keptOut(p *peer) bool { return n.heldDown(p) || n.incoherent(p) }

// inView: p is in the view we publish (and our own row of the clique):
// we hear each other, and it is not kept out.
func (n *Node) inView(p *peer) bool { return n.hearing(p) && !n.keptOut(p) }
