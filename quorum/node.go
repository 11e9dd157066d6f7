package quorum

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/mtcluster/mtc/config"
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
}

// Config configures one node's machine.
type Config struct {
	Self  NodeID
	Nodes []Member
	// Timing are the cluster's derived timeouts (config.Timing.Derive).
	Timing config.Derived
	// Incarnation of this daemon start; must not be 0.
	Incarnation Incarnation
	Unsafe      Unsafe
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
		return fmt.Errorf("%w: timing is not derived; pass config.Timing.Derive()", ErrConfig)
	}
	return nil
}

type peer struct {
	id      NodeID
	inc     Incarnation // current incarnation, 0 while never seen
	retired [4]Incarnation
	net     liveness.Tracker
	disk    liveness.Tracker
	netMax  Seq           // highest counter received on the network (current inc)
	netAt   time.Duration // when netMax was received
	candInc Incarnation   // another incarnation seen once, not yet adopted
	candSeq Seq

	latest     Heartbeat // highest-counter heartbeat of the current inc
	haveLatest bool

	// endorsedUntil: until this local time the peer may still count on an
	// endorsement we published while it was in our member set.
	endorsedUntil time.Duration
	state         PeerState

	// Bookkeeping for a peer out of our member set.
	gone       bool
	goneAt     time.Duration
	goneInc    Incarnation
	fenceAsked bool
	fenced     bool
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

type sent struct {
	seq Seq
	at  time.Duration
}

// Node is the membership and quorum state machine of one node. It is not
// safe for concurrent use; the driver serialises Step, Ready and Advance.
type Node struct {
	cfg   Config
	t     config.Derived
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
	lastQuorate  time.Duration
	armed        bool
	stopped      bool
	whyNot       LossReason
	agreed       bool // agreement and settlement hold (tie aside)
	settling     bool // quorum fails only on our own shrink guard
	pendingSince time.Duration
	pending      bool

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

	cliqueIn  [MaxNodes + 2]Set
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
		StopDeadline: n.stopDeadline(),
		Reason:       n.whyNot,
		Peers:        n.peerStatus(),
	}
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
			Net: p.net.State(n.now), Disk: p.disk.State(n.now),
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
		if p := n.peer(e.Node); p != nil && p.gone && (e.Inc == 0 || e.Inc == p.goneInc || p.goneInc == 0) && !p.fenced {
			p.fenced = true
			p.fenceErr, p.fenceFails = "", 0
			n.decide(Decision{Kind: PeerFenced, Peer: e.Node, Inc: e.Inc})
		}
	case FenceFailed:
		if p := n.peer(e.Node); p != nil && p.gone && p.fenceAsked && !p.fenced && (e.Inc == 0 || e.Inc == p.goneInc || p.goneInc == 0) {
			// Fail closed: no fenced takeover; ask again after a backoff
			// that doubles from one heartbeat interval up to DeadAfter.
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
	}
	n.evaluate()
}

func (n *Node) peer(id NodeID) *peer {
	if id < 1 || id > MaxNodes {
		return nil
	}
	return n.peers[id]
}

// guard is how long after we last received a peer's counter that peer may
// still count on an endorsement echoing it (config.Derived.EndorseGuard).
func (n *Node) guard() time.Duration { return n.t.EndorseGuard }

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
				p.resetFence()
			}
		}
		p.inc = hb.Inc
		p.netMax, p.netAt = 0, 0
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
		p.netMax = hb.Seq
		p.netAt = n.now
		change = p.net.Observe(n.now, obs)
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
		if hb.Flags&FlagStopped != 0 {
			// A self-fencing incarnation never holds quorum again, so
			// it cannot count on our endorsements any more.
			p.endorsedUntil = 0
		}
	}
}

func alive(l liveness.Liveness) bool { return l == liveness.Live || l == liveness.Suspect }

// netAlive: the peer's network counter changed within DeadAfter.
func (n *Node) netAlive(p *peer) bool { return alive(p.net.State(n.now)) }

func (n *Node) classify(p *peer) PeerState {
	ns, ds := p.net.State(n.now), p.disk.State(n.now)
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

// pubChanged: our member set or flags differ from the last publication.
func (n *Node) pubChanged() bool {
	return n.members != n.lastPub.Members || n.flags() != n.lastPub.Flags
}

func (n *Node) flags() Flags {
	var f Flags
	if n.quorate {
		f |= FlagQuorate
	}
	if n.settled() && n.wroteOK && n.now < n.lastWriteOK+n.t.SelfFenceAfter {
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
		if n.netAlive(p) {
			hb.View = hb.View.Add(p.id)
		}
		// Echo only what the network brought: membership lives on the
		// network, so a peer cut off it must not keep its lease alive
		// through the disk after we drop it.
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

// computeMembers: ourselves plus the peers we hear on the network whose
// latest view includes us, reduced to the best clique of mutual hearing.
func (n *Node) computeMembers() Set {
	// The inputs, as a key: which peers qualify and what they hear.
	var key [MaxNodes + 2]Set
	var cand Set
	cand = cand.Add(n.self)
	for _, p := range n.peers {
		if p == nil || !p.haveLatest || !n.netAlive(p) || !p.latest.View.Has(n.self) || p.latest.Flags&FlagStopped != 0 {
			continue
		}
		// A newcomer joins only once it is settled (its startup guard or
		// its own shrink guard has run out), so existing members never
		// wait on it.
		if !n.members.Has(p.id) && p.latest.Flags&FlagSettled == 0 {
			continue
		}
		cand = cand.Add(p.id)
		key[p.id] = p.latest.View
	}
	key[MaxNodes+1] = cand
	if key == n.cliqueIn && n.cliqueOut != 0 {
		return n.cliqueOut
	}
	var adj [MaxNodes + 1]Set
	adj[n.self] = cand.Remove(n.self)
	for s := cand.Remove(n.self); s != 0; {
		id := s.Lowest()
		s = s.Remove(id)
		adj[id] = key[id].Add(n.self) & cand
	}
	// Mutual edges only.
	for a := NodeID(1); a <= MaxNodes; a++ {
		for s := adj[a]; s != 0; {
			b := s.Lowest()
			s = s.Remove(b)
			if !adj[b].Has(a) {
				adj[a] = adj[a].Remove(b)
			}
		}
	}
	out := bestClique(n.self, cand, &adj, &n.votes)
	n.cliqueIn, n.cliqueOut = key, out
	return out
}

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
	}
	// Membership.
	if m := n.computeMembers(); m != n.members {
		for _, p := range n.peers {
			if p == nil {
				continue
			}
			if n.members.Has(p.id) && !m.Has(p.id) {
				if !p.gone {
					p.gone, p.goneAt, p.goneInc = true, now, p.inc
					p.resetFence()
				}
			} else if !n.members.Has(p.id) && m.Has(p.id) {
				p.gone = false
			}
		}
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
	q, until, reason := n.quorum()
	switch {
	case q && !n.quorate:
		n.quorateSince = now
		n.armed = true
		n.decide(Decision{Kind: QuorumGained, Members: n.members})
	case !q && n.quorate:
		n.decide(Decision{Kind: QuorumLost, Reason: reason.String(), Members: n.members})
	}
	n.quorate, n.quorateUntil, n.whyNot = q, until, reason
	if q {
		n.lastQuorate = now
		n.pending = false
	} else if n.tiePending() {
		// The partition agrees and only the tie-break is missing: keep
		// the packages while the lock is decided, up to the last read
		// that showed no other node's claim.
		if !n.pending {
			n.pending, n.pendingSince = true, now
		}
		if now < n.pendingSince+n.t.TiePending && n.lastReadOK > n.lastQuorate && n.lock.otherSince < n.pendingSince {
			n.lastQuorate = n.lastReadOK
		}
	} else {
		n.pending = false
	}

	// Self-fence.
	if now >= n.stopDeadline() {
		n.stopped = true
		reason := fmt.Sprintf("no quorum for %v", n.t.SelfFenceAfter)
		if !n.wroteOK || n.lastWriteOK+n.t.SelfFenceAfter <= now {
			reason = fmt.Sprintf("no successful own slot write for %v", n.t.SelfFenceAfter)
		}
		n.out.StopPackages = true
		n.decide(Decision{Kind: SelfFence, Reason: reason})
	}
	n.out.FeedWatchdog = !n.stopped

	// Fencing and takeover, by the lowest-id member of a quorate partition.
	if n.quorate && n.members.Lowest() == n.self {
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
			from := p.goneAt
			if n.quorateSince > from {
				from = n.quorateSince
			}
			switch {
			case p.fenced:
				n.allowTakeover(p, TakeoverFenced)
			case now >= from+n.t.TakeoverAfter:
				n.allowTakeover(p, TakeoverWatchdog)
			}
		}
	}

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
		if t, ok := lastChange(&p.disk, now); ok {
			consider(t + n.t.DeadAfter)
		}
		if p.gone && !p.fenceAsked && !p.fenced {
			consider(p.fenceRetryAt)
		}
		if p.gone && !p.takenOver {
			from := p.goneAt
			if n.quorateSince > from {
				from = n.quorateSince
			}
			consider(from + n.t.TakeoverAfter)
		}
	}
	if next <= now {
		next = now + n.t.HeartbeatInterval
	}
	return next
}

func (n *Node) issue(r DiskRequest) {
	n.opSeq++
	r.Op = n.opSeq
	n.busy = true
	n.cur = r
	n.curIssue = n.now
	n.out.Disk = append(n.out.Disk, r)
}

func (n *Node) onDisk(e DiskDone) {
	if !n.busy || e.Op != n.cur.Op {
		return // a result we no longer wait for
	}
	n.busy = false
	issued := n.curIssue
	switch n.cur.Kind {
	case DiskWriteSlot:
		if e.Result == IOOK {
			if !n.wroteOK || issued > n.lastWriteOK {
				n.lastWriteOK = issued
			}
			n.wroteOK = true
			if n.writeFailing {
				n.writeFailing = false
				n.decide(Decision{Kind: DiskWriteRecovered})
			}
		} else if !n.writeFailing {
			n.writeFailing = true
			n.decide(Decision{Kind: DiskWriteFailing, Reason: e.Result.String()})
		}
		// The read of this round follows at once.
		n.issue(DiskRequest{Kind: DiskRead})
	case DiskRead:
		if e.Result != IOOK {
			return
		}
		n.readOK = true
		n.lastReadOK = issued
		for _, s := range e.Slots {
			if s.Node == n.self {
				continue
			}
			p := n.peer(s.Node)
			if p == nil {
				continue
			}
			if !s.Valid {
				p.disk.Observe(n.now, liveness.Observation{})
				continue
			}
			hb := s.Heartbeat
			hb.From = s.Node
			n.onHeartbeat(hb, true)
		}
		n.lockAfterRead(issued, e.Lock)
	case DiskWriteLock:
		n.lockWritten(issued, e.Result)
	}
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
		b = fmt.Appendf(b, "\n  peer %d inc=%x state=%v net=%v disk=%v latest(seq=%d members=%v view=%v flags=%b) endorsedUntil=%v",
			p.id, uint64(p.inc)&0xffff, p.state, p.net.State(n.now), p.disk.State(n.now), p.latest.Seq, p.latest.Members, p.latest.View, p.latest.Flags, p.endorsedUntil-n.now)
	}
	return string(b)
}
