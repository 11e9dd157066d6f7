package sim

import (
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/quorum"
)

// The safety invariants, checked on the absolute clock as the history
// unfolds. Every deadline is computed here, from the configured timing
// (config.Derived of the configuration, derived by the simulation itself;
// a planted bug may hand the machines another one) and from what the
// simulation observed: when a node's own slot writes were issued and
// completed, when it fed its watchdog, when its published status held
// quorum and until when, when the tie-break lock was written. None of the
// machine's own deadlines (StopDeadline, TakeoverAfter as it counts it) is
// used.
//
//  1. At most one partition holds quorum: any two nodes that hold quorum
//     at the same instant (by their published status and its lease)
//     include each other in their member sets. A node's lease never runs
//     past SelfFenceAfter after the issue of its last own slot write that
//     completed.
//  2. No package runs on two nodes at once unless one of them is fenced
//     (or frozen as a whole VM, see the package doc), and a takeover of X
//     happens only once every incarnation of X that ran packages is
//     fenced or its watchdog has certainly fired: after the later of its
//     last watchdog feed and the last instant the configuration let it
//     feed (its stop bound, below), plus WatchdogTimeout stretched by
//     watchdogDrift.
//  3. A node without quorum requests no fencing and no takeover (but in a
//     two-node cluster with the fence as arbiter, one that has held quorum
//     and whose member set is itself alone may ask to fence its peer). A node
//     stops feeding its watchdog, and starts stopping its packages, by its
//     stop bound: SelfFenceAfter after the issue of its last successful own
//     slot write (after its start if none), and, once it has held quorum,
//     SelfFenceAfter + SettleGrace after it last held quorum or was last
//     held as a member by a majority (by what it received: checkheld.go),
//     where a
//     node whose member set holds exactly half of the votes counts as
//     quorate until another side's tie-break claim could have won
//     (LockSettle + IOTimeout + HeartbeatInterval after it landed), at
//     most TiePending after the tie began. A package stop may take time
//     (the slow-stop fault); the watchdog ends it.
//  4. After every fault has healed, the cluster re-forms: every node is up
//     and holds quorum with all nodes as members, within a bound derived
//     from the timings (reformBound).
//  7. (Histories with persistent reservations.) No node's storage write is
//     accepted after a survivor took over its packages: the target's
//     accepted writes by node and incarnation (data writes of the package
//     writer, slot and lock writes) against the takeover instants; see
//     accepted. Fenced, for rule 2, is what the target holds: no
//     registration of the incarnation on any LUN.
//  8. (Histories with persistent reservations.) A node holds quorum only
//     while its incarnation is registered on every LUN, but for the
//     registration-check bound B after the target removed a registration
//     of it: a member whose key a late fence removed from the data LUN
//     must stop (or register again) rather than go on as a member whose
//     packages the storage refuses. B = E x (1 + MaxClockDrift) + D + C +
//     HeartbeatInterval, with E and D the check's period and deadline and
//     C one PR command deadline (quorum.RegistrationTimeouts and
//     FenceTimeouts of the configured timing): a removal just after a
//     check read the LUN is seen by the next one, asked E later on the
//     node's clock and answered within D, its last command up to C past
//     it. B counts from the later of the removal and the last PR command
//     of the incarnation the storage failed, timed out or lost the reply
//     of (a check that cannot read is no evidence, and the next one comes
//     a period later). Registrations are read at the target after every
//     command it executes.
//  9. Every heartbeat a machine publishes, on the network and in its
//     slot, is coherent: its member set, less the node itself, lies
//     within its view. A node's member set is a clique of its own row,
//     which is its view, and the damping takes a heartbeat that is not
//     for a babbler's (package quorum, "Damping"), whose drops weigh
//     whole: a healthy node publishing one would lose the half weight
//     that spares it a hold-down. (The babble fault changes the view on
//     the wire, after publication; this rule sees what the machine
//     published.) Not a safety rule but an invariant of the core that
//     liveness rests on, reported as a violation like the others; the
//     planted hold-set-outside-row breaks it.

// watchdogDrift is how much slower than the absolute clock the checker
// lets a watchdog count. The simulation's watchdogs count on the absolute
// clock; the checker demands the margin a slow hardware watchdog needs.
const watchdogDrift = config.MaxClockDrift / 2

// tolerance absorbs the rounding of local deadlines to absolute time.
const tolerance = 1000 // ns

// incObs is what the checker observed of one incarnation of a node. Times
// are absolute unless named local.
type incObs struct {
	n   *simNode
	inc quorum.Incarnation
	// ended: crashed or reset; nothing more happens in this incarnation.
	ended bool

	bootLocal time.Duration
	// okWriteIssue: local issue time of the latest own slot write that
	// completed within its deadline.
	okWrite      bool
	okWriteIssue time.Duration

	// armed: held quorum at least once (so it may run packages).
	armed bool
	// quorate by the last published status, with the lease end
	// (absolute); lastQ is the last instant it was quorate.
	quorate  bool
	leaseEnd time.Duration
	lastQ    time.Duration
	// tie: armed, not quorate, member set holding exactly half of the
	// votes since tieStart; foreign: landing of the first tie-break lock
	// write since then by a node outside that member set (-1: none).
	tie      bool
	tieStart time.Duration
	foreign  time.Duration
	// tieCredit: the local time up to which earlier ties let the node
	// count as if quorate (it keeps what a tie granted after it ends).
	tieCredit time.Duration
	members   quorum.Set

	fed      bool
	lastFeed time.Duration
	// frozenSinceFeed: how long the VM (watchdog included) stood still
	// since the last feed.
	frozenSinceFeed time.Duration
	stopped         bool // StopPackages was called
	boundTok        uint64
	// takenOver: a survivor took over this incarnation's packages at
	// takeoverAt, for takeoverWhy; lateOK: late writes (issued before the
	// takeover) are the documented non-guarantee of a watchdog takeover,
	// and a VM frozen since its last feed is not held to it at all.
	takenOver   bool
	takeoverAt  time.Duration
	takeoverWhy quorum.TakeoverReason
	frozenOK    bool
	// held: the held rule of the stop bound (checkheld.go).
	held heldObs
	// incoherent: rule 9 was reported for this incarnation.
	incoherent bool
}

// checker holds the safety checker's observations.
type checker struct {
	w    *World
	t    config.Derived
	incs map[quorum.Incarnation]*incObs
	// byNode lists each node's incarnations in boot order.
	byNode [quorum.MaxNodes + 1][]*incObs
	// acts are the fence and takeover requests of the step in progress,
	// checked once the step's status is known.
	acts []act
	// regs follows each incarnation's registrations at the target (rule
	// 8); regBound is B.
	regs     map[quorum.Incarnation]*regObs
	regBound time.Duration
}

// regObs is what the target shows of one incarnation's registrations:
// on[l] whether some path of it is registered on LUN simLUNs[l], lost[l]
// when that last stopped being so, fault the last PR command of it that
// the storage failed, timed out or lost the reply of (-1: none), and
// reported: rule 8 was reported for it.
type regObs struct {
	on       [2]bool
	lost     [2]time.Duration
	fault    time.Duration
	reported bool
}

type act struct {
	n      *simNode
	what   string
	target quorum.NodeID
}

func (c *checker) init(w *World) {
	c.w, c.t = w, w.t
	c.incs = map[quorum.Incarnation]*incObs{}
	c.regs = map[quorum.Incarnation]*regObs{}
	every, deadline := quorum.RegistrationTimeouts(c.t)
	cmd, _ := quorum.FenceTimeouts(c.t)
	c.regBound = time.Duration(float64(every)*(1+config.MaxClockDrift)) + deadline + cmd + c.t.HeartbeatInterval
}

// reg is incarnation inc's registration record.
func (c *checker) reg(inc quorum.Incarnation) *regObs {
	r := c.regs[inc]
	if r == nil {
		r = &regObs{fault: -1}
		c.regs[inc] = r
	}
	return r
}

// storageChanged reads, after a command executed at the target, which
// LUNs each node's current incarnation is registered on, and when a
// registration went.
func (c *checker) storageChanged() {
	w := c.w
	if w.st == nil {
		return
	}
	for l, lun := range simLUNs {
		st := w.st.tgt.State(lun)
		for _, n := range w.nodes[1:] {
			if n.inc == 0 {
				continue
			}
			r := c.reg(n.inc)
			on := w.st.registeredIn(st, n.id, n.inc)
			if r.on[l] && !on {
				r.lost[l] = w.now
			}
			r.on[l] = on
		}
	}
	if w.preempted != nil {
		w.patternChanged() // a registration the world removed may be back (liveness.go)
	}
}

// prFault records a PR command of incarnation inc that the storage
// failed, timed out or lost the reply of.
func (c *checker) prFault(inc quorum.Incarnation) {
	c.reg(inc).fault = c.w.now
}

// checkRegistered is rule 8 for a node that holds quorum now.
func (c *checker) checkRegistered(n *simNode) {
	w := c.w
	if w.st == nil || !w.quorateNow(n) {
		return
	}
	r := c.reg(n.inc)
	if r.reported {
		return
	}
	for l, lun := range simLUNs {
		if r.on[l] {
			continue
		}
		from := max(r.lost[l], r.fault)
		if w.now > from+c.regBound {
			r.reported = true
			fault := "none"
			if r.fault >= 0 {
				fault = fmtDur(r.fault)
			}
			w.violate(8, "n%d (incarnation %x) holds quorum at %v, but its registration on LUN %s is gone since %v (bound %v after the later of the removal and the last failed PR command of it: %s)",
				n.id, n.inc, fmtDur(w.now), lun, fmtDur(r.lost[l]), c.regBound, fault)
			return
		}
	}
}

// boot starts the observation of a new incarnation.
func (c *checker) boot(n *simNode) *incObs {
	o := &incObs{n: n, inc: n.inc, bootLocal: n.local(c.w.now), foreign: -1}
	o.held.last = -1
	c.incs[n.inc] = o
	c.byNode[n.id] = append(c.byNode[n.id], o)
	return o
}

// end closes an incarnation (crash or reset).
func (c *checker) end(o *incObs) {
	if o == nil || o.ended {
		return
	}
	c.observeQuorum(o, quorum.Status{})
	o.ended = true
}

// observeQuorum records the published status after a step (or the loss of
// everything at a crash).
func (c *checker) observeQuorum(o *incObs, st quorum.Status) {
	w, n := c.w, o.n
	now := w.now
	if o.quorate {
		o.lastQ = min(now, o.leaseEnd)
	}
	if o.tie {
		o.tieCredit = max(o.tieCredit, c.tieGrant(o))
	}
	q := st.Quorate && n.local(now) < st.QuorateUntil
	o.quorate = q
	o.members = st.Members
	if q {
		o.armed = true
		o.lastQ = now
		o.leaseEnd = n.abs(st.QuorateUntil)
		o.tie = false
		// A lease may not outlive the node's own disk: SelfFenceAfter
		// after the issue of its last completed slot write.
		if lim := o.okWriteIssue + c.t.SelfFenceAfter; !o.okWrite || st.QuorateUntil > lim+tolerance {
			w.violate(1, "n%d publishes quorum until %v (local), past SelfFenceAfter after its last completed own slot write (%v)", n.id, st.QuorateUntil, lim)
		}
		return
	}
	// Every simulated node has one vote.
	half := o.armed && 2*st.Members.Len() == c.w.opt.Nodes
	switch {
	case half && !o.tie:
		o.tie, o.tieStart, o.foreign = true, now, -1
	case !half:
		o.tie = false
	}
}

// lockLanded records a tie-break lock write landing on the disk.
func (c *checker) lockLanded(owner quorum.NodeID, valid bool) {
	for _, n := range c.w.nodes {
		if n == nil {
			continue
		}
		o := n.obs
		if o == nil || o.ended || !o.tie || o.foreign >= 0 {
			continue
		}
		if !valid || (owner != 0 && !o.members.Has(owner)) {
			o.foreign = c.w.now
		}
	}
}

// stopBound is the local time by which incarnation o must have stopped
// feeding its watchdog and started stopping its packages. With tie, a
// node whose member set holds exactly half of the votes keeps its
// packages while the tie-break lock is undecided: until another side's
// claim could have won (LockSettle after it landed, plus the read and the
// heartbeat round that show it), at most TiePending after the tie began.
func (c *checker) stopBound(o *incObs, tie bool) time.Duration {
	t := c.t
	b := o.bootLocal + t.SelfFenceAfter
	if o.okWrite {
		b = o.okWriteIssue + t.SelfFenceAfter
	}
	if !o.armed {
		return b
	}
	return min(b, c.quorumBound(o, tie))
}

// quorumBound is the part of stopBound that runs from the last instant
// an armed incarnation held quorum.
func (c *checker) quorumBound(o *incObs, tie bool) time.Duration {
	n, t := o.n, c.t
	lastQ := o.lastQ
	if o.quorate {
		lastQ = min(c.w.now, o.leaseEnd)
		if o.ended {
			lastQ = o.lastQ
		}
	}
	if !o.quorate && o.held.last > lastQ {
		lastQ = o.held.last
	}
	last := n.local(lastQ)
	if tie {
		last = max(last, o.tieCredit)
		if o.tie {
			last = max(last, c.tieGrant(o))
		}
	}
	return last + t.SelfFenceAfter + t.SettleGrace
}

// tieGrant is the local time up to which the current tie lets o count as
// if quorate.
func (c *checker) tieGrant(o *incObs) time.Duration {
	n, t := o.n, c.t
	ext := n.local(o.tieStart) + t.TiePending
	if o.foreign >= 0 {
		ext = min(ext, n.local(o.foreign)+t.LockSettle+t.IOTimeout+t.HeartbeatInterval)
	}
	return min(ext, n.local(c.w.now))
}

// certainlyReset is the absolute time by which incarnation o's watchdog
// has certainly fired: WatchdogTimeout (stretched by watchdogDrift, and
// by any VM freeze) after the later of its last feed and the last instant
// it was allowed to feed outside a tie. (A tie's stop runs from the other
// side's claim, before that side can win and start counting towards its
// takeover, so only the observed feeds count there.)
func (c *checker) certainlyReset(o *incObs) time.Duration {
	wd := time.Duration(float64(c.t.WatchdogTimeout) * (1 + watchdogDrift))
	at := o.n.abs(c.stopBound(o, false)) + wd
	if o.fed {
		at = max(at, o.lastFeed+o.frozenSinceFeed+wd)
	}
	return at
}

// afterStep runs the checks a step of n can fail, once its status is
// known.
func (c *checker) afterStep(n *simNode, fed bool) {
	w, o := c.w, n.obs
	c.observeQuorum(o, n.status)
	c.noteHeld(o)
	if fed {
		if b := c.stopBound(o, true); n.local(w.now) > b+tolerance {
			w.violate(3, "n%d feeds its watchdog at %v (local), after its stop bound %v", n.id, n.local(w.now), b)
		}
	}
	for _, a := range c.acts {
		// In a two-node cluster whose quorum LUN has persistent
		// reservations the fence is the arbiter: a node left alone may
		// ask to fence its peer before it holds quorum.
		arbiter := c.w.arbiter && c.w.opt.Nodes == 2 && a.what == "fence" && o.armed && o.members == quorum.SetOf(n.id)
		if !o.quorate && !arbiter {
			w.violate(3, "n%d requests %s of n%d without quorum", a.n.id, a.what, a.target)
		}
	}
	c.acts = c.acts[:0]
	c.checkRegistered(n)
	c.checkStops()
	if !o.quorate && o.armed && !o.stopped {
		c.scheduleBound(o)
	}
}

// scheduleBound checks o at its stop bound even if nothing else happens.
func (c *checker) scheduleBound(o *incObs) {
	o.boundTok++
	tok := o.boundTok
	at := o.n.abs(c.stopBound(o, true) + tolerance + 1)
	c.w.at(at, func() {
		if tok == o.boundTok {
			c.checkStops()
		}
	})
}

// checkStops: every running daemon past its stop bound has started
// stopping its packages.
func (c *checker) checkStops() {
	w := c.w
	for _, n := range w.nodes[1:] {
		o := n.obs
		if !n.up || n.frozen || n.running == 0 || o.stopped || n.stopReported {
			continue
		}
		if b := c.stopBound(o, true); n.local(w.now) > b+tolerance {
			n.stopReported = true
			w.violate(3, "n%d still runs packages %v at %v (local), past its stop bound %v", n.id, n.running, n.local(w.now), b)
		}
	}
}

// takeover checks a takeover of target's packages by n for reason.
func (c *checker) takeover(n *simNode, t quorum.Takeover) {
	w := c.w
	c.acts = append(c.acts, act{n: n, what: "takeover", target: t.Node})
	var check []*incObs
	if o := c.incs[t.Inc]; t.Inc != 0 && o != nil {
		check = append(check, o)
	} else if list := c.byNode[t.Node]; t.Inc == 0 {
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].armed {
				check = append(check, list[i])
				break
			}
		}
	}
	for _, o := range check {
		x := o.n
		frozen := (!o.ended && x.inc == o.inc && x.vmFrozen) || o.frozenSinceFeed > 0
		if o.armed && !o.takenOver {
			o.takenOver, o.takeoverAt, o.takeoverWhy, o.frozenOK = true, w.now, t.Reason, frozen
		}
		if !o.armed || w.cutOff(o) {
			continue
		}
		if frozen {
			// A VM frozen since its last feed, watchdog included: the
			// documented non-guarantee (package doc); its packages stop
			// at its first step after resuming, and the package check
			// holds it to that.
			continue
		}
		if at := c.certainlyReset(o); w.now < at {
			w.violate(2, "n%d takes over n%d (incarnation %x, %v) at %v, before its watchdog has certainly fired (%v)", n.id, t.Node, o.inc, t.Reason, fmtDur(w.now), fmtDur(at))
		}
	}
}

// checkQuorate: two quorate nodes include each other.
func (w *World) checkQuorate(n *simNode) {
	if !w.quorateNow(n) {
		return
	}
	for _, m := range w.nodes[1:] {
		if m == n || !w.quorateNow(m) {
			continue
		}
		if !n.status.Members.Has(m.id) || !m.status.Members.Has(n.id) {
			w.violate(1, "n%d quorate with %v and n%d quorate with %v", n.id, n.status.Members, m.id, m.status.Members)
		}
	}
}

// quorateNow: n holds quorum at this instant, by its last published
// status and the lease it runs on.
func (w *World) quorateNow(n *simNode) bool {
	return n.up && n.status.Quorate && n.local(w.now) < n.status.QuorateUntil
}

// canAct: n can act on the shared storage (up, not frozen as a whole VM, not
// fenced).
func (w *World) canAct(n *simNode) bool {
	return n.up && !n.vmFrozen && (w.st == nil || w.st.registered(lunData, n.id, n.inc))
}

// cutOff: the target holds no registration of incarnation o on any LUN,
// so it refuses every write of it (observed at the target, not asked of
// any machine).
func (w *World) cutOff(o *incObs) bool { return w.st != nil && w.st.cutOff(o.n.id, o.inc) }

// accepted is invariant 7, checked as the target accepts a write (a data
// write of a package writer, a slot or lock write of the daemon) of
// incarnation inc of node id that was issued at issue: no write of an
// incarnation whose packages a survivor took over is accepted after the
// takeover. A takeover at the watchdog deadline is held to it for writes
// issued after the takeover (the node was certainly reset by then); an
// earlier write landing late is what only fencing stops (the quorum is not
// a fence), and a VM frozen since its last feed is the documented
// non-guarantee.
func (c *checker) accepted(id quorum.NodeID, inc quorum.Incarnation, what string, issue time.Duration) {
	w := c.w
	o := c.incs[inc]
	if o == nil || o.n.id != id || !o.takenOver || w.now <= o.takeoverAt {
		return
	}
	if o.takeoverWhy == quorum.TakeoverWatchdog && (issue <= o.takeoverAt || o.frozenOK) {
		return
	}
	w.violate(7, "the target accepts a %s write of n%d (incarnation %x, issued %v) at %v, after its packages were taken over (%v) at %v",
		what, id, inc, fmtDur(issue), fmtDur(w.now), o.takeoverWhy, fmtDur(o.takeoverAt))
}

func (w *World) checkPackages() {
	var seen quorum.Set
	for _, n := range w.nodes[1:] {
		if !w.canAct(n) {
			continue
		}
		if both := seen & n.running; both != 0 {
			w.violate(2, "package(s) %v run on two nodes at once (one is n%d)", both, n.id)
		}
		seen |= n.running
	}
}

// checkReformed is invariant 4, called once the re-form bound has passed
// after the last fault healed.
func (w *World) checkReformed() {
	all := w.allNodes()
	for _, n := range w.nodes[1:] {
		if !w.quorateNow(n) || n.status.Members != all {
			w.violate(4, "faults healed but n%d is not quorate with every node (up=%v quorate=%v members=%v)", n.id, n.up, n.status.Quorate, n.status.Members)
			return
		}
	}
}

// checkCoherent is rule 9 for a heartbeat incarnation o published (on the
// network or in its slot), reported once per incarnation.
func (c *checker) checkCoherent(o *incObs, hb quorum.Heartbeat) {
	if out := hb.Members &^ hb.View &^ quorum.SetOf(o.n.id); out != 0 && !o.incoherent {
		o.incoherent = true
		c.w.violate(9, "n%d publishes members %v that its view %v leaves out (counter %d): a heartbeat its peers take for a babbler's", o.n.id, out, hb.View, hb.Seq)
	}
}
