package quorum

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mtcluster/mtc/config/timing"
	"github.com/mtcluster/mtc/quorum/liveness"
)

// never is a local time later than any deadline.
const never = time.Duration(math.MaxInt64)

// Member is one configured node and its votes.
type Member struct {
	ID    NodeID
	Votes int
}

// Unsafe holds switches that disable one safety rule each. They exist only
// so the simulation's tests can prove that its checker catches the
// resulting split brains; never set them in a running cluster.
type Unsafe struct {
	// SkipTieBreak: a member set with exactly half of the votes counts as
	// a majority, without the quorum disk's tie-break lock.
	SkipTieBreak bool
	// SkipAgreement: quorum without checking the members' published
	// member sets and endorsements.
	SkipAgreement bool
	// SkipShrinkGuard: a node publishes itself settled at once after
	// dropping a peer.
	SkipShrinkGuard bool
	// ArbiterBypass: with the fence as arbiter, a verified fence of the
	// peer makes the node quorate at once, without the settling and
	// agreement the quorum test asks for (the peer may still count on an
	// endorsement of ours).
	ArbiterBypass bool
	// RejoinWhenArmed: a node whose key a peer's fence removed registers
	// again even after it has held quorum (it may run packages whose
	// storage a survivor took over), and so also when a member set it
	// computed held a peer, as holding quorum with peers implies.
	RejoinWhenArmed bool
	// HoldOnStaleEcho: a majority's member sets hold this node's
	// self-fence clock (heldByPeers) whatever counter of ours they echo,
	// so rows of peers that stopped hearing us, or died, keep it running.
	HoldOnStaleEcho bool
	// HalveEveryDrop: every drop of a peer weighs half for the damping
	// (dropWeight), not only one of a peer still heard both ways, so a
	// peer whose link to us keeps failing is held down only from its
	// fourth drop. A liveness rule, not a safety one: the simulation's
	// damping check catches it.
	HalveEveryDrop bool
	// HoldSetOutsideRow: deferDrops holds the member set for a lagging
	// member even while another member is outside our own row, so the
	// node publishes a member its view leaves out, which its peers take
	// for a babbler's heartbeat (noteCoherence). The simulation's
	// coherence rule catches it.
	HoldSetOutsideRow bool
}

// Config configures one node's machine.
type Config struct {
	Self  NodeID
	Nodes []Member
	// Timing are the cluster's derived timeouts (timing.Timing.Derive).
	Timing timing.Derived
	// Incarnation of this daemon start; must not be 0.
	Incarnation Incarnation
	// LeftoversRunning: packages started by an earlier incarnation of the
	// daemon on this machine may still run. The machine then does not feed
	// the watchdog until the driver reports LeftoversStopped: the peers
	// count on that incarnation's watchdog reset, so its packages must be
	// gone before a new incarnation keeps the machine alive.
	LeftoversRunning bool
	// FenceArbiter: the driver registered this node for persistent-
	// reservation fencing on the quorum LUN (the cluster fences it, as
	// every node does). In a cluster of two voting nodes a verified
	// fence of the peer then decides a tie at once, instead of the
	// tie-break lock's claim (package documentation, Tie-break).
	FenceArbiter bool
	// CheckRegistration: the driver registered this node for persistent-
	// reservation fencing on at least one LUN. The machine then has the
	// registration checked on every fenced LUN periodically and after
	// every re-registration (Ready.CheckRegistration; package
	// documentation, Registration checks).
	CheckRegistration bool
	Unsafe            Unsafe
}

// ErrConfig is wrapped by every Config validation error.
var ErrConfig = errors.New("invalid quorum configuration")

// Validate checks the configuration without changing it.
func (c *Config) Validate() error {
	if c.Self < 1 || c.Self > MaxNodes {
		return fmt.Errorf("%w: self node id %d is outside 1..%d", ErrConfig, c.Self, MaxNodes)
	}
	if c.Incarnation == 0 {
		return fmt.Errorf("%w: incarnation is 0; pick a random non-zero number at each start", ErrConfig)
	}
	var seen Set
	total := 0
	for i, m := range c.Nodes {
		if m.ID < 1 || m.ID > MaxNodes {
			return fmt.Errorf("%w: nodes[%d]: id %d is outside 1..%d", ErrConfig, i, m.ID, MaxNodes)
		}
		if seen.Has(m.ID) {
			return fmt.Errorf("%w: nodes[%d]: id %d appears twice", ErrConfig, i, m.ID)
		}
		if m.Votes < 0 {
			return fmt.Errorf("%w: nodes[%d]: node %d has %d votes; votes must be 0 or more", ErrConfig, i, m.ID, m.Votes)
		}
		seen = seen.Add(m.ID)
		total += m.Votes
	}
	if !seen.Has(c.Self) {
		return fmt.Errorf("%w: self node id %d is not among the configured nodes %v", ErrConfig, c.Self, seen)
	}
	if total == 0 {
		return fmt.Errorf("%w: the nodes have no votes at all", ErrConfig)
	}
	if errs := c.Timing.Timing.Validate(); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if c.Timing.DeadAfter == 0 || c.Timing.TieClaimAfter == 0 {
		return fmt.Errorf("%w: timing is not derived; pass timing.Timing.Derive()", ErrConfig)
	}
	return nil
}

// Node is the membership and quorum state machine of one node. It is not
// safe for concurrent use; the driver serialises Step, Ready and Advance.
type Node struct {
	cfg   Config
	t     timing.Derived
	self  NodeID
	inc   Incarnation
	votes Votes
	all   Set
	peers [MaxNodes + 1]*peer

	started bool
	start   time.Duration
	now     time.Duration

	seq  Seq
	sent []sent // publication times, for the endorsement leases

	members      Set
	epoch        uint64
	tally        VoteResult
	quorate      bool
	quorateUntil time.Duration
	quorateSince time.Duration
	// lastQuorate: while quorate, now; after a loss, the instant quorum
	// ran out (the self-fence clock starts at the later of it and
	// lastHeld).
	lastQuorate  time.Duration
	lastMembers  Set           // the member set of the last quorate stretch
	lastHeld     time.Duration // the last step a majority held us while we were not quorate (heldByPeers)
	armed        bool
	stopped      bool
	fencedByPeer bool // a slot or lock write met IOFenced
	whyNot       LossReason
	agreed       bool // agreement and settlement hold (tie aside)
	transition   bool // see verdict.transition
	lossLogged   bool // the current loss was reported as QuorumLost
	pendingSince time.Duration
	pending      bool
	// leftovers: packages of an earlier incarnation may still run on this
	// machine; the watchdog is not fed until LeftoversStopped.
	leftovers bool
	// rj: re-registration after a fence that came before this
	// incarnation held quorum (fence.go).
	rj rejoinState
	// chk: the periodic check of this node's own registration
	// (registration.go).
	chk checkState

	nextSend time.Duration
	lastPub  Heartbeat

	// Quorum disk.
	opSeq        uint64
	busy         bool
	cur          DiskRequest
	curIssue     time.Duration
	nextCycle    time.Duration
	wroteOK      bool
	lastWriteOK  time.Duration // issue time of the last successful slot write
	writeFailing bool
	lastReadOK   time.Duration // issue time of the last successful read
	readOK       bool
	lock         lockState

	cliqueIn  [MaxNodes + 4]Set
	cliqueOut Set

	out Ready
}

// New returns the machine for cfg. It panics if cfg is invalid: call
// cfg.Validate first to report configuration errors.
func New(cfg Config) *Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	n := &Node{cfg: cfg, t: cfg.Timing, self: cfg.Self, inc: cfg.Incarnation}
	for _, m := range cfg.Nodes {
		n.votes[m.ID] = m.Votes
		n.all = n.all.Add(m.ID)
		if m.ID != cfg.Self {
			n.peers[m.ID] = &peer{
				id:   m.ID,
				net:  liveness.Tracker{SuspectAfter: cfg.Timing.SuspectAfter, DeadAfter: cfg.Timing.DeadAfter},
				disk: liveness.Tracker{SuspectAfter: cfg.Timing.SuspectAfter, DeadAfter: cfg.Timing.DeadAfter},
			}
		}
	}
	n.members = SetOf(cfg.Self)
	n.leftovers = cfg.LeftoversRunning
	n.chk.every, _ = RegistrationTimeouts(cfg.Timing)
	return n
}

// Self is this node's id.
func (n *Node) Self() NodeID { return n.self }

// Incarnation is this daemon start's incarnation.
func (n *Node) Incarnation() Incarnation { return n.inc }

// Status is the current decision.
func (n *Node) Status() Status { return n.status() }

// Ready returns what the driver must do, collected since the last Advance.
func (n *Node) Ready() Ready {
	r := n.out
	r.Status = n.status()
	return r
}

// Advance acknowledges the last Ready: its actions have been started.
func (n *Node) Advance() {
	n.out = Ready{NextTick: n.out.NextTick}
}

func (n *Node) status() Status {
	return Status{
		Quorate:      n.quorate,
		QuorateUntil: n.quorateUntil,
		Members:      n.members,
		Epoch:        n.epoch,
		Tie:          n.tally == VotePending,
		Armed:        n.armed,
		Stopped:      n.stopped,
		Leftovers:    n.leftovers,
		Rejoining:    n.rj.pending,
		Rejoins:      n.rj.count,
		StopDeadline: n.stopDeadline(),
		Reason:       n.whyNot,
		Peers:        n.peerStatus(),
	}
}

func (n *Node) decide(d Decision) {
	d.At = n.now
	n.out.Decisions = append(n.out.Decisions, d)
}

// Step feeds one event at local monotonic time now. Every Step first
// expires what has gone stale by now, then decides.
func (n *Node) Step(now time.Duration, ev Event) {
	if !n.started {
		n.started = true
		n.start = now
		n.now = now
		// The driver registered and verified this node on every LUN
		// before it started the machine.
		n.chk.at = now + n.chk.every
		// Startup guard: a previous incarnation of this node may have
		// endorsed peers that still count on it; publish unsettled until
		// every such endorsement has run out.
		for _, p := range n.peers {
			if p != nil {
				p.endorsedUntil = now + n.guard()
				p.gone, p.goneAt = true, now
			}
		}
	}
	if now > n.now {
		n.now = now
	}
	switch e := ev.(type) {
	case Tick:
	case NetReceived:
		n.onHeartbeat(e.Heartbeat, false)
	case DiskDone:
		n.onDisk(e)
	case Fenced:
		n.onFenced(e)
	case FenceFailed:
		n.onFenceFailed(e)
	case Rejoined:
		n.onRejoined(e)
	case RegistrationChecked:
		n.onRegistrationChecked(e)
	case LeftoversStopped:
		if n.leftovers {
			n.leftovers = false
			n.decide(Decision{Kind: LeftoversStoppedKind})
		}
	}
	n.evaluate()
}

// evaluate expires stale state and takes every decision at n.now.
func (n *Node) evaluate() {
	now := n.now
	// Peer classes.
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		if st := n.classify(p); st != p.state {
			p.state = st
			n.decide(Decision{Kind: PeerStateChanged, Peer: p.id, State: st})
		}
		n.trackHolds(p)
	}
	// Membership.
	if m := n.computeMembers(); m != n.members {
		for _, p := range n.peers {
			if p == nil {
				continue
			}
			if n.members.Has(p.id) && !m.Has(p.id) {
				if !p.gone {
					// A drop while it runs counts for the damping; a
					// peer already gone here changed its incarnation (a
					// restart is no flap; the new one is a newcomer).
					n.noteDrop(p)
					p.gone, p.goneAt, p.goneInc = true, now, p.inc
					n.forgetFence(p, "it left the member set again")
				}
			} else if !n.members.Has(p.id) && m.Has(p.id) {
				p.gone = false
				p.joinedAt = now
			}
		}
		n.rj.noteMembers(n.self, m)
		n.members = m
		n.epoch++
		n.decide(Decision{Kind: MembershipChanged, Members: m})
	}
	n.tally = n.votes.Tally(n.members)
	if n.cfg.Unsafe.SkipTieBreak && n.tally == VotePending {
		n.tally = VoteWon
	}
	n.expireLock()

	// Quorum.
	v := n.quorum()
	// Quorum held up to its expiry at most: a step that comes later (a
	// late tick, a pause) finds it lost at quorateUntil, and the self-fence
	// clock runs from there.
	wasQuorate := n.quorate && now <= n.quorateUntil
	if n.quorate && !wasQuorate {
		n.lastQuorate = n.quorateUntil
	}
	switch {
	case v.quorate && !wasQuorate:
		n.quorateSince = now
		n.armed = true
		n.decide(Decision{Kind: QuorumGained, Members: n.members})
	case !v.quorate && n.quorate:
		if wasQuorate {
			n.lastQuorate = now
		}
		n.lossLogged = !v.transition
		n.decide(n.lossDecision(v))
	}
	n.quorate, n.quorateUntil, n.whyNot = v.quorate, v.until, v.reason
	n.agreed, n.transition = v.agreed, v.transition
	if !v.quorate && n.armed && !n.lossLogged && (!v.transition || now >= n.lastQuorate+n.transitionReport()) {
		// A membership change that did not complete in time, or that
		// ended in a lost majority, is a loss after all.
		n.lossLogged = true
		n.decide(Decision{Kind: QuorumLost, Reason: v.reason.String(), Members: n.members})
	}
	if v.quorate {
		n.lastQuorate = now
		n.lastMembers = n.members
		n.pending = false
	} else if n.tiePending() {
		// The partition agrees and only the tie-break is missing: keep
		// the packages while the lock is decided, up to the last read
		// that showed no other node's claim.
		if !n.pending {
			n.pending, n.pendingSince = true, now
		}
		if now < n.pendingSince+n.t.TiePending && n.lastReadOK > n.lastQuorate && n.lock.quietAt(n.lastReadOK, n.tieQuiet()) {
			n.lastQuorate = n.lastReadOK
		}
	} else {
		n.pending = false
	}
	if !v.quorate && n.armed && n.heldByPeers() {
		n.lastHeld = now
	}

	// Self-fence.
	if now >= n.stopDeadline() {
		n.stopped = true
		reason := fmt.Sprintf("no quorum for %v", n.t.SelfFenceAfter)
		switch {
		case n.fencedByPeer:
			reason = "fenced by a peer"
		case !n.wroteOK || n.lastWriteOK+n.t.SelfFenceAfter <= now:
			reason = fmt.Sprintf("no successful own slot write for %v", n.t.SelfFenceAfter)
		}
		n.out.StopPackages = true
		n.decide(Decision{Kind: SelfFence, Reason: reason})
	}
	// Packages an earlier incarnation left on this machine must be
	// stopped before the watchdog is fed: the peers count on that
	// incarnation's watchdog reset.
	n.out.FeedWatchdog = !n.stopped && !n.leftovers

	n.fenceAndTakeover()

	// Network heartbeat: every interval, and at once when what we publish
	// changed, so agreement after a membership change takes one delivery.
	// A change does not move the cadence.
	if now >= n.nextSend {
		n.out.Send = append(n.out.Send, n.publish())
		n.nextSend = now + n.t.HeartbeatInterval
	} else if n.pubChanged() {
		n.out.Send = append(n.out.Send, n.publish())
	}
	// Disk round, on the heartbeat's cadence so one wake-up serves both
	// (a round delayed by a slow I/O realigns with the next heartbeat).
	if !n.busy && now >= n.nextCycle {
		n.nextCycle = n.nextSend
		n.issue(DiskRequest{Kind: DiskWriteSlot, Heartbeat: n.publish()})
	}
	n.out.NextTick = n.nextTick()
}

func (n *Node) nextTick() time.Duration {
	now := n.now
	next := n.nextSend
	consider := func(t time.Duration) {
		if t > now && t < next {
			next = t
		}
	}
	if !n.busy {
		consider(n.nextCycle)
	}
	if n.quorate {
		consider(n.quorateUntil)
	}
	consider(n.stopDeadline())
	if n.rj.pending && !n.rj.asked {
		consider(n.rj.at)
	}
	consider(n.checkDue())
	if !n.quorate && n.armed && !n.lossLogged {
		consider(n.lastQuorate + n.transitionReport())
	}
	consider(n.settledAt())
	if n.lock.holding {
		consider(n.lock.holdIssue + n.t.TieHold)
	}
	if n.pending {
		consider(n.pendingSince + n.t.TiePending)
	}
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		if t, ok := lastChange(&p.net, now); ok {
			consider(t + n.t.SuspectAfter)
			consider(t + n.t.DeadAfter)
		}
		if at, ok := n.echoOfUs(p); ok && n.members.Has(p.id) {
			consider(at + n.t.DeadAfter) // its endorsement runs out
		}
		if t, ok := lastChange(&p.disk, now); ok {
			consider(t + n.t.DeadAfter)
		}
		if p.gone && !p.fenceAsked && !p.fenced {
			consider(n.fenceAt(p))
			if n.proving(p) {
				consider(p.firstNetAt + n.hearsWithin())
			}
		}
		if p.gone && !p.takenOver {
			consider(n.takeoverAt(p))
		}
	}
	if next <= now {
		next = now + n.t.HeartbeatInterval
	}
	return next
}

// Describe renders the machine's state for traces and debugging.
func (n *Node) Describe() string {
	var b []byte
	b = fmt.Appendf(b, "n%d inc=%x members=%v quorate=%v (%s) settled=%v armed=%v stopped=%v wroteOK=%v tally=%v",
		n.self, uint64(n.inc)&0xffff, n.members, n.quorate, n.whyNot, n.settled(), n.armed, n.stopped, n.wroteOK, n.tally)
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		b = fmt.Appendf(b, "\n  peer %d inc=%x state=%v net=%v disk=%v latest(seq=%d members=%v view=%v flags=%b) endorsedUntil=%v half-drops=%d held-down=%v hearing=%v",
			p.id, uint64(p.inc)&0xffff, p.state, p.net.State(n.now), p.disk.State(n.now), p.latest.Seq, p.latest.Members, p.latest.View, p.latest.Flags, p.endorsedUntil-n.now, p.drops, n.heldDown(p), n.hearing(p))
	}
	return string(b)
}
