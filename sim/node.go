package sim

import (
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// simNode is one machine: its clock, daemon (machine + driver), disk path,
// watchdog and packages.
type simNode struct {
	w      *World
	id     quorum.NodeID
	rate   float64       // local clock rate against the absolute clock
	offset time.Duration // local clock at absolute 0

	up     bool
	inc    quorum.Incarnation
	drv    *quorum.Driver
	status quorum.Status

	frozen   bool // paused or frozen: the daemon executes nothing
	vmFrozen bool // the whole VM, watchdog included, is frozen
	frozenAt time.Duration
	queued   []quorum.Event // I/O and fencing results that arrived while frozen

	wakeToken uint64
	wakeAt    time.Duration
	wakeSet   bool

	// Watchdog (absolute times).
	wdArmed    bool
	wdDeadline time.Duration
	wdToken    uint64
	wdPending  bool

	running quorum.Set // packages running here (bit p = package of node p)

	// Fencing (histories with persistent reservations): registering while
	// the starting daemon runs Rejoin (the node is not up yet; regToken
	// cancels a retry, regTries counts the tries of this start); fop is the fencing operation under way and fenceQ
	// the fences waiting for it; thaw holds fencing replies that arrived
	// while the daemon was frozen; exited: the daemon stopped itself (its
	// own key was preempted) and waits for its watchdog.
	registering bool
	regToken    uint64
	regTries    int
	fop         *fenceOp
	// cop is the registration check under way, beside fop.
	cop    *fenceOp
	fenceQ []quorum.Target
	thaw   []func()
	exited bool

	// Package stops: stopDelay is how long a stop takes under the
	// slow-stop fault (0: at once; <0: it hangs until the watchdog
	// resets the node); stopping while one is under way.
	stopDelay  time.Duration
	stopping   bool
	stopToken  uint64
	resumingVM bool // the first step after a VM freeze

	// What the checkers observed of the current incarnation, and what the
	// step under way did.
	obs          *incObs
	stopReported bool
	stepFed      bool
	strays       int // heartbeats sent under the planted bug stray-members

	// Disk path.
	pathDown bool
	pathHang bool
	slow     float64 // fraction of I/Os that take IOTimeout/2..2xIOTimeout
	flaky    float64 // fraction of I/Os that fail
	inflight *ioOp
	hung     []*ioOp
	// stuck: an I/O that never completes keeps the device busy until the
	// node restarts.
	stuck bool
	// prFaults: persistent-reservation commands of this node that the
	// storage failed, timed out or lost the reply of, whose outcome has
	// not reached the node yet (storage.go).
	prFaults int

	bootToken uint64
	readBuf   []quorum.SlotObservation

	// Packages (pkg.go): the placement driver and the runners; stopDone
	// runs once a stop of every package has ended.
	pk       *pkgNode
	stopDone func()
}

type ioOp struct {
	n        *simNode
	inc      quorum.Incarnation
	req      quorum.DiskRequest
	issue    time.Duration // local
	issueAbs time.Duration
	done     bool
	timedOut bool
	epoch    uint64 // the liveness checker's count of the node's disk heals at the issue
}

// local converts absolute time to this node's monotonic clock.
func (n *simNode) local(abs time.Duration) time.Duration {
	return n.offset + time.Duration(float64(abs)*n.rate)
}

// abs converts a local time to the earliest absolute time it is reached.
func (n *simNode) abs(local time.Duration) time.Duration {
	if local >= farFuture {
		return farFuture // "never": no rounding loop on huge values
	}
	a := absCeil(float64(local-n.offset) / n.rate)
	for n.local(a) < local { // float rounding: never wake a node early
		a++
	}
	return a
}

// boot starts a new incarnation: with persistent reservations its daemon
// first registers on every LUN (Rejoin), as the daemon does before its
// first slot write, and starts once that is verified.
func (n *simNode) boot() {
	w := n.w
	n.inc = quorum.Incarnation(w.rng.Uint64() | 1)
	n.frozen, n.vmFrozen, n.queued, n.thaw = false, false, nil, nil
	if w.st != nil {
		n.registering = true
		n.regTries = 0
		w.st.register(n)
		return
	}
	n.start()
}

// start starts the daemon's machine.
func (n *simNode) start() {
	w := n.w
	if n.pkgStart() {
		return // the start-up stop of the leftovers comes first
	}
	registered := n.registering
	n.registering = false
	n.up = true
	n.exited = false
	n.frozen, n.vmFrozen, n.queued, n.thaw = false, false, nil, nil
	n.inflight = nil
	n.stuck = false
	n.running = 0
	n.stopping = false
	n.stopReported = false
	n.wdArmed = false
	n.obs = w.chk.boot(n)
	nodes := make([]quorum.Member, 0, len(w.nodes)-1)
	for _, m := range w.nodes[1:] {
		nodes = append(nodes, quorum.Member{ID: m.id, Votes: 1})
	}
	cfg := quorum.Config{Self: n.id, Nodes: nodes, Timing: w.mt, Incarnation: n.inc, FenceArbiter: w.arbiter, CheckRegistration: w.st != nil, Unsafe: w.opt.Bug.Unsafe}
	n.drv = &quorum.Driver{Node: quorum.New(cfg), FX: (*effects)(n)}
	n.status = quorum.Status{}
	if w.st != nil {
		w.st.dataWriter(n)
	}
	if n.pk != nil {
		n.pkgMachine()
	}
	if registered {
		w.trace("n%d registered for fencing", n.id)
		w.patternChanged()
	}
	n.step(quorum.Tick{})
}

// abandonFence ends the fencing component's work (crash, daemon stop).
func (n *simNode) abandonFence() {
	n.regToken++
	if op := n.fop; op != nil {
		n.fop = nil
		op.abandon()
	}
	if op := n.cop; op != nil {
		n.cop = nil
		op.abandon()
	}
	n.fenceQ, n.thaw = nil, nil
}

// exit: the daemon stops itself because a peer preempted its key while it
// was fencing (fence.ErrSelfFenced): its packages stop, the watchdog is no
// longer fed and resets the machine.
func (n *simNode) exit(why string) {
	w := n.w
	w.trace("n%d daemon stops: %s", n.id, why)
	n.exited = true
	n.abandonFence()
	n.beginStop()
	n.status = quorum.Status{}
	w.chk.observeQuorum(n.obs, n.status)
	if !n.wdArmed {
		n.pkgReset("reset")
		n.crash("reset: daemon stopped before its watchdog was armed")
		n.scheduleReboot()
	}
}

// crash stops the node at once; its in-flight I/O may still land.
func (n *simNode) crash(why string) {
	if n.registering {
		n.registering = false
		n.pkgAbortBoot()
		n.abandonFence()
		n.w.trace("n%d %s while registering", n.id, why)
		return
	}
	if !n.up {
		return
	}
	n.abandonFence()
	wd, wdAt := n.wdArmed, n.wdDeadline // the hardware watchdog counts on
	n.exited = false
	n.up = false
	n.running = 0
	n.stopping = false
	n.stopToken++
	n.wdArmed = false
	n.wakeToken++
	n.wakeSet = false
	n.wdToken++
	n.wdPending = false
	n.inflight = nil
	n.stuck = false
	n.status = quorum.Status{}
	n.w.chk.end(n.obs)
	n.w.trace("n%d %s", n.id, why)
	n.pkgCrash(wd, wdAt)
	n.w.patternChanged()
}

func (n *simNode) restart() {
	if n.up || n.registering {
		return
	}
	n.w.trace("n%d restart", n.id)
	n.boot()
	n.w.patternChanged()
}

// step feeds one event to the daemon at the current absolute time.
func (n *simNode) step(ev quorum.Event) {
	if !n.up || n.exited {
		return
	}
	if n.frozen {
		if _, ok := ev.(quorum.Tick); !ok {
			n.queued = append(n.queued, ev)
		}
		return
	}
	prev := n.status
	n.stepFed = false
	n.w.chk.receivedEvent(n, ev)
	n.w.lv.receivedEvent(n, ev)
	rd := n.drv.Step(n.local(n.w.now), ev)
	n.status = rd.Status
	if n.w.opt.Bug.FeedAfterStop && !rd.FeedWatchdog && n.up {
		// A driver that feeds the watchdog on every step, whatever
		// the machine says.
		(*effects)(n).FeedWatchdog()
	}
	n.afterStep(prev)
	n.pkgAfterStep()
}

// afterStep starts packages of a quorate node and checks the invariants
// that a step can break.
func (n *simNode) afterStep(prev quorum.Status) {
	w := n.w
	st := n.status
	w.chk.afterStep(n, n.stepFed)
	w.lv.afterStep(n, prev)
	if st.Quorate && !st.Stopped && !n.obs.stopped {
		for p := quorum.NodeID(1); int(p) < len(w.nodes); p++ {
			if w.owner[p] == n.id && !n.running.Has(p) {
				n.running = n.running.Add(p)
				w.checkPackages()
			}
		}
	}
	if st.Quorate && (!prev.Quorate || prev.Members != st.Members) {
		w.checkQuorate(n)
	}
}

func (n *simNode) freeze(vm bool) {
	if !n.up || n.frozen {
		return
	}
	n.frozen, n.vmFrozen, n.frozenAt = true, vm, n.w.now
	kind := "pause"
	if vm {
		kind = "vm-freeze"
	}
	n.w.trace("n%d %s", n.id, kind)
	n.w.patternChanged()
}

func (n *simNode) resume() {
	if !n.up || !n.frozen {
		return
	}
	w := n.w
	frozenFor := w.now - n.frozenAt
	wasVM := n.vmFrozen
	n.frozen, n.vmFrozen = false, false
	w.trace("n%d resume after %v", n.id, frozenFor)
	if wasVM && n.wdArmed {
		// The virtual watchdog stood still with the VM.
		n.setWatchdog(n.wdDeadline + frozenFor)
	}
	if wasVM {
		n.obs.frozenSinceFeed += frozenFor
		if n.stopping {
			// The documented non-guarantee: a VM frozen during its
			// package stop ends it as it resumes.
			w.trace("n%d packages %v stopped", n.id, n.running)
			n.running, n.stopping = 0, false
			n.stopToken++
		}
	}
	w.patternChanged()
	q := n.queued
	n.queued = nil
	// The first thing a resumed daemon does is look at its clock. A VM
	// resumed after its packages were taken over is the documented
	// non-guarantee: the simulation stops them at once.
	n.wakeSet = false
	n.resumingVM = wasVM
	n.step(quorum.Tick{})
	n.resumingVM = false
	w.checkPackages()
	for _, ev := range q {
		n.step(ev)
	}
	th := n.thaw
	n.thaw = nil
	for _, f := range th {
		f()
	}
	n.pkgThaw()
	if w.pk != nil {
		w.pk.chk.checkAll()
	}
}

// setWatchdog moves the watchdog's deadline. One check event is pending
// at a time; when it fires early (the deadline moved), it re-arms itself.
func (n *simNode) setWatchdog(deadline time.Duration) {
	n.wdArmed = true
	n.wdDeadline = deadline
	if n.wdPending {
		return
	}
	n.wdPending = true
	n.wdToken++
	tok := n.wdToken
	var check func()
	check = func() {
		if tok != n.wdToken {
			return
		}
		if !n.up || !n.wdArmed || n.vmFrozen {
			n.wdPending = false // re-armed at the next feed or resume
			return
		}
		if n.w.now < n.wdDeadline {
			n.w.at(n.wdDeadline, check)
			return
		}
		n.wdPending = false
		n.pkgReset("watchdog reset")
		n.crash("watchdog reset")
		n.scheduleReboot()
	}
	n.w.at(deadline, check)
}

func (n *simNode) scheduleReboot() {
	w := n.w
	n.bootToken++
	tok := n.bootToken
	w.at(w.now+rebootDelay, func() {
		if tok == n.bootToken {
			n.restart()
		}
	})
}

// farFuture is beyond any simulated history.
const farFuture = time.Duration(1 << 60)

// rebootDelay is how long a reset node takes to boot and start its daemon.
const rebootDelay = 2 * time.Second

// effects implements quorum.Effects for a simulated node.
type effects simNode

var _ quorum.Effects = (*effects)(nil)

func (e *effects) Broadcast(hb quorum.Heartbeat) {
	n := (*simNode)(e)
	n.w.chk.published(n, hb)
	n.w.broadcast(n, hb)
}

func (e *effects) FeedWatchdog() {
	n := (*simNode)(e)
	n.stepFed = true
	o := n.obs
	o.fed, o.lastFeed, o.frozenSinceFeed = true, n.w.now, 0
	n.setWatchdog(n.w.now + n.w.t.WatchdogTimeout)
}

func (e *effects) StopPackages() {
	n := (*simNode)(e)
	w := n.w
	if k := w.opt.Bug.LateStop; k > 1 {
		// A driver that begins the stop late.
		tok := n.stopToken
		w.at(w.now+time.Duration((k-1)*float64(w.t.SelfFenceAfter)), func() {
			if tok == n.stopToken && n.up {
				n.beginStop()
			}
		})
		return
	}
	n.beginStop()
}

// beginStop stops the packages: at once, or after the slow-stop fault's
// delay (the packages run on meanwhile), or never (the watchdog ends it).
func (n *simNode) beginStop() {
	w := n.w
	if n.obs.stopped {
		return
	}
	n.obs.stopped = true
	n.pkgSelfFence()
	d := n.stopDelay
	if n.resumingVM || n.running == 0 {
		d = 0
	}
	if d == 0 {
		if n.running != 0 {
			w.trace("n%d stops packages %v", n.id, n.running)
		}
		n.running = 0
		return
	}
	n.stopping = true
	if d < 0 {
		w.trace("n%d stops packages %v: the stop hangs", n.id, n.running)
		return
	}
	w.trace("n%d stops packages %v: the stop takes %v", n.id, n.running, d)
	tok := n.stopToken
	w.at(w.now+d, func() {
		if tok == n.stopToken && n.up {
			w.trace("n%d packages %v stopped", n.id, n.running)
			n.running, n.stopping = 0, false
		}
	})
}

func (e *effects) Fence(t quorum.Target) {
	n := (*simNode)(e)
	w := n.w
	w.chk.acts = append(w.chk.acts, act{n: n, what: "fence", target: t.Node})
	if w.opt.Bug.SkipFencing {
		// A driver that reports the fence done without running it.
		inc := n.inc
		w.at(w.now, func() {
			if n.up && n.inc == inc {
				n.step(quorum.Fenced{Node: t.Node, Inc: t.Inc})
			}
		})
		return
	}
	if !w.fencing || w.st == nil {
		// No persistent reservations: no Fenced comes, and the
		// takeover waits for the watchdog deadline.
		return
	}
	w.st.fence(n, t)
}

func (e *effects) WithdrawFence(t quorum.Target) {
	n := (*simNode)(e)
	if n.w.st != nil && t.Node != n.id {
		n.w.st.withdraw(n, t)
	}
}

func (e *effects) Takeover(t quorum.Takeover) {
	n := (*simNode)(e)
	w := n.w
	w.chk.takeover(n, t)
	if n.pk != nil {
		n.pk.takeovers = append(n.pk.takeovers, t)
		if f := w.pk.onTakeover; f != nil {
			f()
		}
	}
	x := w.node(t.Node)
	for p := quorum.NodeID(1); int(p) < len(w.nodes); p++ {
		if w.owner[p] != t.Node {
			continue
		}
		if x != nil && x.running.Has(p) && w.canAct(x) {
			w.violate(2, "n%d takes over package %d while n%d (incarnation %x) still runs it, neither fenced nor reset", n.id, p, x.id, x.inc)
		}
		w.owner[p] = n.id
		w.trace("package %d moves n%d -> n%d", p, t.Node, n.id)
	}
}

func (e *effects) Decided(d quorum.Decision) {
	n := (*simNode)(e)
	w := n.w
	w.decisions++
	if w.onDecision != nil {
		w.onDecision(w, n, d)
	}
	if d.Kind == quorum.SelfFence {
		w.lv.selfFence(n)
	}
	if d.Kind == quorum.PeerStateChanged && d.State == quorum.PeerSuspect {
		return
	}
	w.trace("n%d %v", n.id, d)
}

func (e *effects) WakeAt(t time.Duration) {
	n := (*simNode)(e)
	if t == n.wakeAt && n.wakeSet {
		return
	}
	n.wakeAt, n.wakeSet = t, true
	n.wakeToken++
	tok := n.wakeToken
	at := n.abs(t)
	n.w.at(at, func() {
		if tok == n.wakeToken {
			n.wakeSet = false
			n.step(quorum.Tick{})
		}
	})
}

func (e *effects) StartDisk(req quorum.DiskRequest) {
	n := (*simNode)(e)
	w := n.w
	op := &ioOp{n: n, inc: n.inc, req: req, issue: n.local(w.now), issueAbs: w.now, epoch: w.slotWriteIssued(n)}
	if req.Kind == quorum.DiskWriteSlot {
		w.chk.published(n, req.Heartbeat)
	}
	fail := func(res quorum.IOResult, after time.Duration) {
		w.at(w.now+after, func() { n.deliverDisk(op, quorum.DiskDone{Op: req.Op, Kind: req.Kind, Result: res}) })
	}
	switch {
	case n.inflight != nil:
		fail(quorum.IOFailed, 10*time.Microsecond) // ErrBusy
		return
	case n.pathDown, n.flaky > 0 && w.rng.Float64() < n.flaky:
		fail(quorum.IOFailed, time.Millisecond) // EIO
		return
	}
	n.inflight = op
	// The deadline is IOTimeout on the node's own clock.
	w.at(n.abs(n.local(w.now)+w.t.IOTimeout), func() {
		if !op.done && !op.timedOut {
			op.timedOut = true
			n.deliverDisk(op, quorum.DiskDone{Op: req.Op, Kind: req.Kind, Result: quorum.IOTimeout})
		}
	})
	if n.pathHang {
		n.hung = append(n.hung, op)
		return
	}
	lat := 2 * time.Millisecond
	if !w.opt.Exact {
		lat = w.uniform(200*time.Microsecond, 3*time.Millisecond)
		if w.rng.Float64() < n.slow {
			lat = w.uniform(w.t.IOTimeout/2, 2*w.t.IOTimeout)
		}
	}
	w.at(w.now+lat, func() { n.completeIO(op) })
}

// completeIO lands a write or samples a read, then reports the result
// unless the caller has timed out (or is gone).
func (n *simNode) completeIO(op *ioOp) {
	w := n.w
	if op.done {
		return
	}
	op.done = true
	if n.inflight == op {
		n.inflight = nil
	}
	res := quorum.DiskDone{Op: op.req.Op, Kind: op.req.Kind, Result: quorum.IOOK}
	corrupt := !w.opt.Exact && w.rng.Float64() < w.torn
	// A write reaches the quorum LUN through the target, which refuses it
	// (EBADE) once the incarnation's key is preempted: the daemon maps
	// EBADE to IOFenced.
	refused := func() bool {
		if w.st == nil {
			return false
		}
		if w.st.write(lunQuorum, n.id, op.inc) != nil {
			res.Result = quorum.IOFenced
			return true
		}
		w.chk.accepted(n.id, op.inc, op.req.Kind.String(), op.issueAbs)
		return false
	}
	switch op.req.Kind {
	case quorum.DiskWriteSlot:
		if refused() {
			break
		}
		w.writeSlot(n.id, op.req.Heartbeat, corrupt)
	case quorum.DiskWriteLock:
		if refused() {
			break
		}
		w.writeLock(op.req.Lock, corrupt)
	case quorum.DiskRead:
		// One buffer per node: the machine copies what it keeps.
		n.readBuf = n.readBuf[:0]
		for _, m := range w.nodes[1:] {
			n.readBuf = append(n.readBuf, w.slots[m.id].obs)
		}
		res.Slots = n.readBuf
		res.Lock = w.lock.obs
	}
	if !op.timedOut {
		if op.req.Kind == quorum.DiskWriteSlot && res.Result == quorum.IOOK && n.up && n.inc == op.inc {
			n.obs.okWrite, n.obs.okWriteIssue = true, max(n.obs.okWriteIssue, op.issue)
			trusted := w.slotWriteDone(n, op.epoch)
			res.Result = w.plantedWriteResult(n, trusted, res.Result)
		}
		n.deliverDisk(op, res)
	}
}

func (n *simNode) deliverDisk(op *ioOp, res quorum.DiskDone) {
	if !n.up || n.inc != op.inc {
		return
	}
	n.step(res)
}

// releaseHung ends the hung I/Os as the path comes back: each completes
// now (late: a write lands long after its caller timed out) or, half the
// time outside exact runs, never completes at all (the node's device stays
// busy until the node restarts).
func (n *simNode) releaseHung() {
	hung := n.hung
	n.hung = nil
	for _, op := range hung {
		if !n.w.opt.Exact && n.w.rng.Intn(2) == 0 {
			if op.inc == n.inc && n.up {
				n.stuck = true
			}
			continue
		}
		op.n.completeIO(op)
	}
}
