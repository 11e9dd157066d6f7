package sim

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"time"

	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// Packages: every simulated node runs, beside its quorum machine, the real
// placement.Machine over the same definitions, driven as the daemon must
// drive it (placement's package doc, "What the daemon must provide"), and
// a fake runner per package that brings the package's resources up and
// down. Everything random here draws from the package layer's own stream,
// so a history's quorum side (its draws, decisions and verdicts) is the
// same with or without packages.

// runState is a fake runner's true state: whether any resource of the
// package is up on the machine, and how far a start or halt has got.
type runState uint8

const (
	rDown       runState = iota
	rStarting            // resources coming up
	rRunning             // up
	rHalting             // resources going down
	rFailed              // a service failed (or the start did): resources may be up
	rHaltFailed          // a halt could not release everything: up until a reset
)

var runStateNames = [...]string{"down", "starting", "running", "halting", "failed", "halt-failed"}

func (s runState) String() string { return runStateNames[s] }

// local is the state the runner reports to placement.
func (s runState) local() placement.State {
	return [...]placement.State{placement.Halted, placement.Starting, placement.Running, placement.Halting, placement.Failed, placement.HaltFailed}[s]
}

// runner is one package's fake runner on one machine. It outlives the
// daemon's incarnations: what a crashed daemon started stays up until its
// successor's start-up stop, the watchdog's reset, or a fence cuts it off.
type runner struct {
	n     *simNode
	p     int
	state runState
	// inc is the daemon incarnation that started it (its storage nexus).
	inc quorum.Incarnation
	tok uint64 // cancels the transition under way
	// haltAfterStart: a halt asked while starting, carried out once the
	// start ends.
	haltAfterStart bool
	// stopping: halted by a stop of every package (self-fence, start-up
	// stop), which goes dependents first.
	stopping bool
}

func (r *runner) up() bool { return r.state != rDown }

// pkgWorld is the package layer of a world: the definitions, the runners'
// behaviour, the quorum disk's state area and the operator.
type pkgWorld struct {
	w   *World
	rng *rand.Rand
	// defs are the true definitions (the checker's); mdefs what the
	// machines are given (a planted bug may corrupt them).
	defs  []placement.Package
	mdefs []placement.Package
	nodes []placement.Node
	index map[string]int
	// Runner timing and failures, drawn per history.
	startMax, haltMax            time.Duration
	startFail, runFail, haltFail float64
	failures                     bool // failures are drawn (off once the faults heal)
	// The state area on the quorum disk: the committed intents in ID
	// order and the Durable operator state last written by a coordinator.
	log       []placement.Intent
	durable   *placement.Durable
	writeFail float64
	chk       pkgChecker
	// Measurements (MeasurePlacement): every Step's wall-clock time, and
	// a hook on every takeover.
	stepTimes  *[]time.Duration
	onTakeover func()
	// onStep, when set, is called at every runner change and placement
	// decision (the fault sweep of the tests counts them).
	onStep func()
}

// pkgNode is one node's placement driver.
type pkgNode struct {
	m      *placement.Machine
	inc    quorum.Incarnation
	view   placement.View
	viewed bool
	report *placement.Report
	run    []*runner
	// fed is the ID of the last intent fed to the machine (or covered by
	// the Durable it started from).
	fed        uint64
	takeovers  []quorum.Takeover
	queued     []placement.Event
	bootTok    uint64
	writing    bool
	durable    *placement.Durable // to write, when this node coordinates
	leftStop   bool               // the start-up stop is under way
	resetTok   uint64             // cancels a pending reset of orphans
	stoppedAll bool               // a stop of every package is under way
	// committing: an intent's state-area write is under way; iq the
	// intents waiting for it (this node coordinates).
	committing bool
	iq         []placement.Intent
}

// PackageOptions configure the packages of a world.
type PackageOptions struct {
	// Packages are the definitions; nil draws them from the seed.
	Packages []placement.Package
	// Exact runners: fixed start and halt times, no failures.
	Exact bool
}

// newPkgWorld draws (or takes) the definitions and the runners' timing.
func newPkgWorld(w *World, po PackageOptions) (*pkgWorld, error) {
	pw := &pkgWorld{w: w, rng: rand.New(rand.NewSource(w.opt.Seed ^ 0x9ac4a9e5)), index: map[string]int{}}
	for i := 1; i <= w.opt.Nodes; i++ {
		pw.nodes = append(pw.nodes, placement.Node{ID: placement.NodeID(i), Name: fmt.Sprintf("n%d", i)})
	}
	pw.defs = po.Packages
	if pw.defs == nil {
		pw.defs = drawPackages(pw.rng, w.opt.Nodes)
	}
	pw.startMax = 50*time.Millisecond + time.Duration(pw.rng.Int63n(int64(2*time.Second)))
	pw.haltMax = 50*time.Millisecond + time.Duration(pw.rng.Int63n(int64(2*time.Second)))
	if pw.rng.Intn(3) == 0 {
		pw.failures = true
		pw.startFail, pw.runFail, pw.haltFail = 0.05, 0.05, 0.03
	}
	pw.writeFail = 0.03
	if po.Exact || w.opt.Exact {
		pw.startMax, pw.haltMax, pw.failures, pw.writeFail = 500*time.Millisecond, 500*time.Millisecond, false, 0
	}
	for i, p := range pw.defs {
		pw.index[p.Name] = i
	}
	pw.mdefs = pw.defs
	if w.opt.Bug.PkgIgnoreNeeds {
		pw.mdefs = nil
		for _, p := range pw.defs {
			p.Dependencies = slices.DeleteFunc(slices.Clone(p.Dependencies), func(d placement.Dependency) bool { return d.Cond == placement.Needs })
			pw.mdefs = append(pw.mdefs, p)
		}
	}
	cfg := placement.Config{Self: 1, Inc: 1, Nodes: pw.nodes, Packages: pw.mdefs}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sim: packages: %w", err)
	}
	pw.chk.init(pw)
	if w.st != nil {
		w.at(w.t.HeartbeatInterval, pw.watchFenced)
	}
	return pw, nil
}

// watchFenced fails, every heartbeat interval, the running packages whose
// incarnation the target no longer lets write the data LUN (fenced while
// they run): their services' I/O fails, past the restart limit.
func (pw *pkgWorld) watchFenced() {
	w := pw.w
	for _, n := range w.nodes[1:] {
		var cut map[quorum.Incarnation]bool
		for _, r := range n.pk.run {
			if r.state != rRunning {
				continue
			}
			if cut == nil {
				cut = map[quorum.Incarnation]bool{}
			}
			c, ok := cut[r.inc]
			if !ok {
				c = !w.st.registered(lunData, n.id, r.inc)
				cut[r.inc] = c
			}
			if c {
				r.tok++
				w.trace("n%d %s: its writes to the data LUN are refused (fenced)", n.id, r.name())
				r.set(rFailed)
			}
		}
	}
	// A machine the target lets write again (a re-registration) must not
	// make a second live owner.
	pw.chk.checkAll()
	w.at(w.now+w.t.HeartbeatInterval, pw.watchFenced)
}

// drawPackages draws 1..8 packages over a cluster of nodes nodes: lists of
// one to four nodes, both failover policies, failback, priorities, auto_run
// mostly on, and dependencies on earlier packages (needs same_node with
// the dependent's nodes among the needed one's, now and then needs
// any_node or an exclusion).
func drawPackages(rng *rand.Rand, nodes int) []placement.Package {
	np := 1 + rng.Intn(min(8, 2+nodes))
	var out []placement.Package
	for i := 0; i < np; i++ {
		p := placement.Package{Name: fmt.Sprintf("p%d", i), AutoRun: rng.Intn(8) != 0}
		perm := rng.Perm(nodes)
		l := 2 + rng.Intn(min(nodes, 4)-1)
		if rng.Intn(8) == 0 {
			l = 1
		}
		for _, k := range perm[:l] {
			p.Nodes = append(p.Nodes, placement.NodeID(k+1))
		}
		switch rng.Intn(4) {
		case 0, 1:
			p.Failover = placement.MinPackageNode
		case 2:
			p.Failback = placement.FailbackAutomatic
		}
		if rng.Intn(2) == 0 {
			p.Priority = 1 + rng.Intn(5)
		}
		if i > 0 {
			j := rng.Intn(i)
			q := out[j]
			switch x := rng.Intn(12); {
			case x < 4: // needs same_node: run among q's nodes
				p.Dependencies = []placement.Dependency{{Package: q.Name, Cond: placement.Needs, Where: placement.SameNode}}
				k := 1 + rng.Intn(len(q.Nodes))
				p.Nodes = slices.Clone(q.Nodes[:k])
			case x == 4:
				p.Dependencies = []placement.Dependency{{Package: q.Name, Cond: placement.Needs, Where: placement.AnyNode}}
			case x == 5:
				p.Dependencies = []placement.Dependency{{Package: q.Name, Cond: placement.Excludes, Where: placement.Where(rng.Intn(3))}}
			}
		}
		out = append(out, p)
	}
	return out
}

// initNode gives node n its runners.
func (pw *pkgWorld) initNode(n *simNode) {
	k := &pkgNode{}
	for i := range pw.defs {
		k.run = append(k.run, &runner{n: n, p: i})
	}
	n.pk = k
}

// --- the daemon's side: the machine and what feeds it ---

// pkgStart runs before the quorum machine of a new incarnation starts: the
// start-up stop of whatever earlier incarnations left up on the machine,
// dependents first. It returns true when the stop is under way (start is
// called again once it is done).
func (n *simNode) pkgStart() bool {
	k := n.pk
	if k == nil {
		return false
	}
	if k.leftStop {
		return true
	}
	if n.upRunners() != 0 {
		k.leftStop = true
		k.bootTok++
		tok := k.bootTok
		n.w.trace("n%d start-up stop of what earlier incarnations left: %v", n.id, n.upNames())
		wasReg := n.registering
		n.registering = true // booting: a crash or restart sees it so
		n.stopAll(false, func() {
			if tok != k.bootTok {
				return
			}
			k.leftStop = false
			n.registering = wasReg
			n.start()
			if !wasReg {
				n.w.patternChanged() // as restart does after a start
			}
		})
		return true
	}
	return false
}

// pkgMachine starts the placement machine of the incarnation just started:
// with the Durable state read from the state area, LeftoversStopped (the
// start-up stop is done), then every committed intent it does not cover.
func (n *simNode) pkgMachine() {
	pw, k := n.w.pk, n.pk
	var d *placement.Durable
	if pw.durable != nil {
		d = cloneDurable(pw.durable)
	}
	m, err := placement.New(placement.Config{Self: n.id, Inc: n.inc, Nodes: pw.nodes, Packages: pw.mdefs, Durable: d, Unsafe: n.w.opt.Bug.Placement})
	if err != nil {
		panic("sim: placement.New: " + err.Error()) // validated in newPkgWorld
	}
	k.m, k.inc, k.viewed, k.report, k.takeovers, k.queued, k.writing, k.durable, k.stoppedAll = m, n.inc, false, nil, nil, nil, false, nil, false
	k.committing, k.iq = false, nil
	k.fed = 0
	if d != nil {
		k.fed = d.LastIntent
	}
	pw.chk.started(n, k.fed)
	n.pstep(placement.LeftoversStopped{})
	if n.w.opt.Bug.PkgSkipIntents && len(pw.log) > 0 {
		// A driver that takes its Durable for the whole state area.
		k.fed = max(k.fed, pw.log[len(pw.log)-1].ID)
	}
	n.catchUp()
}

// pkgAfterStep feeds placement what the quorum step changed: the view
// (after any intent committed meanwhile) and the takeovers.
func (n *simNode) pkgAfterStep() {
	k := n.pk
	if k == nil || k.m == nil {
		return
	}
	v := placement.ViewOf(n.id, n.inc, n.status)
	if !k.viewed || v != k.view {
		k.viewed, k.view = true, v
		n.catchUp()
		n.pstep(placement.ViewChanged{View: v})
	}
	if len(k.takeovers) > 0 {
		t := k.takeovers
		k.takeovers = nil
		n.pstep(placement.TakeoversAllowed{Takeovers: t})
	}
	n.writeDurable()
}

// pstep steps the placement machine and performs its Ready.
func (n *simNode) pstep(ev placement.Event) {
	w, k := n.w, n.pk
	if k == nil || k.m == nil || !n.up || n.exited {
		return
	}
	if n.frozen {
		k.queued = append(k.queued, ev)
		return
	}
	var t0 time.Time
	if w.pk.stepTimes != nil {
		t0 = time.Now()
	}
	k.m.Step(n.local(w.now), ev)
	rd := k.m.Ready()
	k.m.Advance()
	if w.pk.stepTimes != nil {
		*w.pk.stepTimes = append(*w.pk.stepTimes, time.Since(t0))
	}
	for _, d := range rd.Decisions {
		w.trace("n%d placement %v", n.id, d)
		if w.pk.onStep != nil {
			w.at(w.now, w.pk.onStep)
		}
	}
	if rd.Report != nil {
		r := *rd.Report
		k.report = &r
	}
	if rd.Durable != nil {
		k.durable = cloneDurable(rd.Durable)
	}
	for _, a := range rd.Actions {
		i, ok := w.pk.index[a.Package]
		if !ok {
			continue
		}
		r := k.run[i]
		if a.Kind == placement.Start {
			r.start()
		} else {
			r.halt()
		}
	}
}

// pkgThaw replays what arrived for placement while the daemon was frozen.
func (n *simNode) pkgThaw() {
	k := n.pk
	if k == nil {
		return
	}
	q := k.queued
	k.queued = nil
	for _, ev := range q {
		n.pstep(ev)
	}
}

// received feeds a peer's report carried by a heartbeat.
func (n *simNode) received(r *placement.Report) {
	if r != nil && n.pk != nil && n.pk.m != nil {
		n.pstep(placement.Received{Report: *r})
	}
}

// coordinator: n is the lowest-id member of a quorate (so agreed) view.
func (n *simNode) coordinator() bool {
	return n.pk != nil && n.pk.m != nil && !n.frozen && !n.exited && n.w.quorateNow(n) && n.status.Members.Lowest() == n.id
}

// catchUp feeds every committed intent this node has not had, in ID order
// (the daemon reads the state area).
func (n *simNode) catchUp() {
	for _, in := range n.w.pk.log {
		if in.ID > n.pk.fed {
			n.feedIntent(in)
		}
	}
}

func (n *simNode) feedIntent(in placement.Intent) {
	k := n.pk
	if k == nil || k.m == nil || n.frozen || !n.up || n.exited || in.ID <= k.fed {
		return
	}
	n.w.pk.chk.fed(n, in)
	k.fed = in.ID
	n.pstep(placement.Commanded{Intent: in})
}

// intentArrived: the coordinator's message that intent in is committed.
func (n *simNode) intentArrived(in placement.Intent) {
	k := n.pk
	if k == nil || k.m == nil || in.ID <= k.fed {
		return
	}
	n.catchUp()
	if in.ID > k.fed {
		n.feedIntent(in)
	}
}

// writeDurable writes the coordinator's changed Durable to the state area.
func (n *simNode) writeDurable() {
	k, pw := n.pk, n.w.pk
	if k.durable == nil || k.writing || !n.coordinator() {
		return
	}
	d := k.durable
	k.writing = true
	pw.writeState(n, func() bool {
		if pw.durable == nil || d.LastIntent >= pw.durable.LastIntent {
			pw.durable = d
		}
		return true
	}, func(ok bool) {
		k.writing = false
		if ok && k.durable == d {
			k.durable = nil
		}
	})
}

// writeState is one write of the state area by node c: it lands after a
// drawn latency through c's disk path, fails on a failing, hung or lossy
// path, past its IOTimeout on a slow one, now and then at random, and is
// refused by the target once c's key is preempted. land is called as it
// lands (it may refuse: a generation changed meanwhile); done with the
// outcome, unless c's incarnation is gone.
func (pw *pkgWorld) writeState(c *simNode, land func() bool, done func(ok bool)) {
	w := pw.w
	inc := c.inc
	lat := w.uniformWith(pw.rng, 200*time.Microsecond, 3*time.Millisecond)
	fail := c.pathDown || c.pathHang || c.stuck || pw.rng.Float64() < c.flaky || pw.rng.Float64() < pw.writeFail
	if !fail && pw.rng.Float64() < c.slow {
		lat = w.uniformWith(pw.rng, w.t.IOTimeout/2, 2*w.t.IOTimeout)
		fail = lat > w.t.IOTimeout
	}
	w.at(w.now+lat, func() {
		ok := !fail
		if ok && w.st != nil && w.st.write(lunQuorum, c.id, inc) != nil {
			ok = false
		}
		if ok {
			ok = land()
		}
		if c.up && c.inc == inc {
			done(ok)
		}
	})
}

// Operator submits an intent: a quorate coordinator commits it (the next
// ID, written to the state area), and acknowledges it once written; then
// every node gets it in ID order.
func (pw *pkgWorld) submit(in placement.Intent) {
	w := pw.w
	var c *simNode
	for _, n := range w.nodes[1:] {
		if n.coordinator() {
			c = n
			break
		}
	}
	if c == nil {
		w.trace("operator %v %s node %d: no quorate coordinator; not acknowledged", in.Kind, in.Package, in.Node)
		return
	}
	k := c.pk
	if k.committing {
		// The coordinator commits one intent at a time.
		k.iq = append(k.iq, in)
		return
	}
	pw.commit(c, in)
}

// commit writes intent in as the next ID of the state area, from
// coordinator c.
func (pw *pkgWorld) commit(c *simNode, in placement.Intent) {
	w, k := pw.w, c.pk
	k.committing = true
	next := func() {
		k.committing = false
		if len(k.iq) > 0 && c.coordinator() {
			in := k.iq[0]
			k.iq = k.iq[1:]
			pw.commit(c, in)
			return
		}
		for _, in := range k.iq {
			w.trace("operator %v %s node %d: n%d no longer coordinates; not acknowledged", in.Kind, in.Package, in.Node, c.id)
		}
		k.iq = nil
	}
	gen := len(pw.log)
	in.ID = uint64(gen) + 1
	if w.opt.Bug.AckBeforeWrite {
		// A coordinator that acknowledges and sends the intent before
		// its write has landed.
		pw.ack(c, in)
		pw.writeState(c, func() bool {
			if len(pw.log) != gen {
				return false
			}
			pw.log = append(pw.log, in)
			return true
		}, func(bool) { next() })
		return
	}
	pw.writeState(c, func() bool {
		if len(pw.log) != gen { // another coordinator committed meanwhile
			return false
		}
		pw.log = append(pw.log, in)
		return true
	}, func(ok bool) {
		if !ok {
			w.trace("operator %v %s node %d: the state area write failed; not acknowledged", in.Kind, in.Package, in.Node)
		} else {
			pw.ack(c, in)
		}
		next()
	})
}

// ack acknowledges committed intent in to the operator and sends it to
// every node.
func (pw *pkgWorld) ack(c *simNode, in placement.Intent) {
	w := pw.w
	w.trace("n%d commits intent #%d %v %s node %d: acknowledged", c.id, in.ID, in.Kind, in.Package, in.Node)
	pw.chk.acked(in)
	for _, m := range w.nodes[1:] {
		m := m
		if m == c {
			w.at(w.now, func() { m.intentArrived(in) })
			continue
		}
		pw.send(c, m, m.inc, in)
	}
}

// send carries intent in from c to m's incarnation inc, again every
// heartbeat interval while the network drops it or m cannot take it (a
// later incarnation of m reads the state area as it starts).
func (pw *pkgWorld) send(c, m *simNode, inc quorum.Incarnation, in placement.Intent) {
	w := pw.w
	if w.delivers(c.id, m.id) {
		w.at(w.now+w.uniformWith(pw.rng, time.Millisecond, 10*time.Millisecond), func() {
			if m.up && !m.frozen && m.inc == inc {
				m.intentArrived(in)
			}
		})
	}
	w.at(w.now+w.t.HeartbeatInterval, func() {
		if m.inc == inc && (m.up || m.registering) && (m.pk.m == nil || m.pk.fed < in.ID) {
			pw.send(c, m, inc, in)
		}
	})
}

// operator schedules random intents in [from, to).
func (pw *pkgWorld) operator(from, to time.Duration) {
	w := pw.w
	gap := w.t.FailureTimeout/4 + time.Duration(pw.rng.Int63n(int64(w.t.FailureTimeout)))
	for at := from + time.Duration(pw.rng.Int63n(int64(gap))); at < to; at += gap/2 + time.Duration(pw.rng.Int63n(int64(gap))) {
		in := pw.drawIntent()
		w.at(at, func() { pw.submit(in) })
		if pw.rng.Intn(3) == 0 {
			// A second command right after the first (a script, or two
			// operators), racing it within a report exchange.
			in2 := pw.drawIntent()
			w.at(at+time.Duration(pw.rng.Int63n(int64(w.t.HeartbeatInterval))), func() { pw.submit(in2) })
		}
	}
}

func (pw *pkgWorld) drawIntent() placement.Intent {
	r := pw.rng
	p := pw.defs[r.Intn(len(pw.defs))]
	in := placement.Intent{Package: p.Name}
	kinds := []placement.IntentKind{
		placement.IntentRun, placement.IntentRun, placement.IntentHalt, placement.IntentMove, placement.IntentMove,
		placement.IntentEnable, placement.IntentEnable, placement.IntentDisable, placement.IntentMaintenanceOn, placement.IntentMaintenanceOff,
		placement.IntentMaintenanceOff, placement.IntentDrain, placement.IntentUndrain, placement.IntentUndrain, placement.IntentClear,
	}
	in.Kind = kinds[r.Intn(len(kinds))]
	switch in.Kind {
	case placement.IntentMove:
		in.Node = p.Nodes[r.Intn(len(p.Nodes))]
	case placement.IntentDrain, placement.IntentUndrain:
		in.Package = ""
		in.Node = placement.NodeID(1 + r.Intn(pw.w.opt.Nodes))
	}
	return in
}

// --- the runner ---

func (r *runner) name() string { return r.n.w.pk.defs[r.p].Name }

// set changes the true state, tells the checker, and reports it to the
// daemon's placement (Local) when the daemon is the runner's.
func (r *runner) set(s runState) {
	n := r.n
	w := n.w
	old := r.state
	r.state = s
	w.trace("n%d runner %s %v", n.id, r.name(), s)
	w.pk.chk.changed(r, old)
	if w.pk.onStep != nil {
		w.at(w.now, w.pk.onStep)
	}
	if n.pk.m != nil && n.up && r.inc == n.inc && !n.pk.leftStop {
		st := s.local()
		if s == rHalting && w.opt.Bug.PkgHaltedEarly {
			st = placement.Halted // a runner that reports halted as the halt begins
		}
		if s == rDown && w.opt.Bug.PkgHaltedEarly && old == rHalting {
			return
		}
		n.pstep(placement.Local{Package: r.name(), State: st})
	}
}

func (pw *pkgWorld) draw(max time.Duration) time.Duration {
	if pw.w.opt.Exact {
		return max
	}
	return pw.w.uniformWith(pw.rng, max/10, max)
}

// start is placement's Start: resources come up for a drawn time; the
// start may fail.
func (r *runner) start() {
	n := r.n
	w, pw := n.w, n.w.pk
	if r.up() {
		if r.state == rHalting {
			return // the halt ends first; placement asks again
		}
		r.n.pstepLater(r, r.state)
		return
	}
	if w.opt.Bug.PkgDropStarts && n.id == 1 {
		return // a driver that loses node 1's starts
	}
	r.inc = n.inc
	r.haltAfterStart = false
	r.tok++
	tok := r.tok
	r.set(rStarting)
	fail := pw.failures && pw.rng.Float64() < pw.startFail
	w.at(w.now+pw.draw(pw.startMax), func() {
		if tok != r.tok || r.state != rStarting {
			return
		}
		if fail {
			r.set(rFailed)
		} else {
			r.set(rRunning)
			// set reports the state to placement at once, which may
			// already have halted the package again: a later failure
			// belongs to this run only while it still runs.
			if r.state == rRunning && pw.failures && pw.rng.Float64() < pw.runFail {
				r.tok++
				tok := r.tok
				w.at(w.now+pw.draw(10*pw.startMax), func() {
					if tok == r.tok && r.state == rRunning && pw.failures {
						r.set(rFailed)
					}
				})
			}
		}
		if r.haltAfterStart {
			r.halt()
		}
	})
}

// pstepLater reports a runner's unchanged state again (a repeated action).
func (n *simNode) pstepLater(r *runner, s runState) {
	w := n.w
	inc := n.inc
	w.at(w.now, func() {
		if n.up && n.inc == inc && r.state == s && r.inc == inc {
			n.pstep(placement.Local{Package: r.name(), State: s.local()})
		}
	})
}

// halt is placement's Halt (or one step of a stop of everything).
func (r *runner) halt() {
	n := r.n
	w, pw := n.w, n.w.pk
	switch r.state {
	case rDown:
		if n.pk.m != nil && r.inc == n.inc {
			n.pstepLater(r, rDown)
		}
		return
	case rStarting:
		r.haltAfterStart = true
		return
	case rHalting, rHaltFailed:
		return
	}
	r.tok++
	tok := r.tok
	r.set(rHalting)
	d := pw.draw(pw.haltMax)
	if r.stopping && n.stopDelay != 0 {
		if n.stopDelay < 0 {
			return // the stop hangs until the watchdog resets the node
		}
		d = n.stopDelay
	}
	fail := pw.failures && !r.stopping && pw.rng.Float64() < pw.haltFail
	w.at(w.now+d, func() {
		if tok != r.tok || r.state != rHalting {
			return
		}
		if fail {
			r.set(rHaltFailed)
			return
		}
		r.set(rDown)
		n.stopNext()
	})
}

// --- stops of everything, crashes and resets ---

func (n *simNode) upRunners() int {
	c := 0
	if n.pk != nil {
		for _, r := range n.pk.run {
			if r.up() {
				c++
			}
		}
	}
	return c
}

func (n *simNode) upNames() []string {
	var s []string
	for _, r := range n.pk.run {
		if r.up() {
			s = append(s, r.name())
		}
	}
	return s
}

// stopAll halts every package of the machine, dependents first (a
// package is halted once nothing that needs it on this node is up); then
// done. instant: the VM resumed from a freeze after its packages were
// taken over (the documented non-guarantee): everything is down at once.
func (n *simNode) stopAll(instant bool, done func()) {
	k := n.pk
	if instant || n.resumingVM {
		n.w.pk.chk.bulk = true
		defer func() { n.w.pk.chk.bulk = false }()
		for _, r := range k.run {
			if r.up() {
				r.tok++
				r.set(rDown)
			}
		}
		if done != nil {
			done()
		}
		return
	}
	k.stoppedAll = true
	for _, r := range k.run {
		if r.up() {
			r.stopping = true
		}
	}
	n.stopDone = done
	n.stopNext()
}

// stopNext halts every package under a stop whose dependents are down.
func (n *simNode) stopNext() {
	k := n.pk
	if k == nil || !k.stoppedAll {
		return
	}
	pw := n.w.pk
	left := false
	for _, r := range k.run {
		if !r.stopping {
			continue
		}
		if !r.up() {
			r.stopping = false
			continue
		}
		left = true
		blocked := false
		for j, o := range k.run {
			if o.up() && pw.needsSame(j, r.p) {
				blocked = true
			}
		}
		if !blocked {
			r.halt()
		}
	}
	if !left {
		k.stoppedAll = false
		if f := n.stopDone; f != nil {
			n.stopDone = nil
			f()
		}
	}
}

// needsSame: package i needs package j on the same node (the true
// definitions).
func (pw *pkgWorld) needsSame(i, j int) bool {
	for _, d := range pw.defs[i].Dependencies {
		if d.Cond == placement.Needs && d.Where == placement.SameNode && pw.index[d.Package] == j {
			return true
		}
	}
	return false
}

// pkgSelfFence: the quorum machine stops every package (StopPackages).
func (n *simNode) pkgSelfFence() {
	if n.pk == nil {
		return
	}
	n.w.trace("n%d stops every package: %v", n.id, n.upNames())
	n.stopAll(false, nil)
}

// pkgCrash: the daemon is gone; the machine and its runners stay up until
// the watchdog resets it at deadline (wd: armed), or at once when the
// watchdog was not armed.
func (n *simNode) pkgCrash(wd bool, deadline time.Duration) {
	k := n.pk
	if k == nil {
		return
	}
	k.m = nil
	k.leftStop = false
	k.bootTok++
	k.stoppedAll = false
	n.stopDone = nil
	for _, r := range k.run {
		r.stopping = false
	}
	if n.upRunners() == 0 {
		return
	}
	if !wd || deadline <= n.w.now {
		n.pkgReset("reset")
		return
	}
	k.resetTok++
	tok := k.resetTok
	inc := n.inc
	n.w.at(deadline, func() {
		if tok != k.resetTok {
			return
		}
		// The watchdog of the crashed daemon resets the machine: what
		// it left up goes down (a later daemon's own packages are not
		// the crashed one's).
		left := false
		for _, r := range k.run {
			left = left || r.up() && r.inc == inc
		}
		if !left {
			return
		}
		n.w.trace("n%d watchdog of the crashed daemon resets what it left up", n.id)
		n.w.pk.chk.bulk = true
		defer func() { n.w.pk.chk.bulk = false }()
		for _, r := range k.run {
			if r.up() && r.inc == inc {
				r.tok++
				r.set(rDown)
			}
		}
		n.stopNext()
	})
}

// pkgAbortBoot: the node crashed while its daemon was starting (the
// start-up stop ends, unfinished; the halts under way go on).
func (n *simNode) pkgAbortBoot() {
	k := n.pk
	if k == nil {
		return
	}
	k.bootTok++
	k.leftStop, k.stoppedAll = false, false
	n.stopDone = nil
	for _, r := range k.run {
		r.stopping = false
	}
}

// pkgReset: the machine is reset (watchdog, power): everything is down at
// once.
func (n *simNode) pkgReset(why string) {
	k := n.pk
	if k == nil {
		return
	}
	k.resetTok++
	k.bootTok++
	k.leftStop = false
	n.w.pk.chk.bulk = true
	defer func() { n.w.pk.chk.bulk = false }()
	if n.upRunners() > 0 {
		n.w.trace("n%d %s: every package down (%v)", n.id, why, n.upNames())
	}
	for _, r := range k.run {
		r.stopping = false
		if r.up() {
			r.tok++
			r.set(rDown)
		}
	}
	k.stoppedAll = false
	n.stopDone = nil
}

func cloneDurable(d *placement.Durable) *placement.Durable {
	c := *d
	c.Packages = slices.Clone(d.Packages)
	c.Marks = slices.Clone(d.Marks)
	return &c
}

// String summarises the package layer (for traces).
func (pw *pkgWorld) String() string {
	var b strings.Builder
	for _, p := range pw.defs {
		fmt.Fprintf(&b, "%s nodes=%v auto_run=%v %v %v prio=%d", p.Name, p.Nodes, p.AutoRun, p.Failover, p.Failback, p.Priority)
		for _, d := range p.Dependencies {
			fmt.Fprintf(&b, " %v %s %v", d.Cond, d.Package, d.Where)
		}
		b.WriteString("; ")
	}
	fmt.Fprintf(&b, "start<=%v halt<=%v failures=%v bound=%v", pw.startMax, pw.haltMax, pw.failures, pw.pkgBound())
	return b.String()
}

// pkgFinal ends a history with packages, once the cluster has re-formed
// (at reformed) after the faults healed: rules 12 and 13 then, and, in one
// history in four, again after a restart of the whole cluster (a power
// cut: every machine resets at once and boots rebootDelay later), which
// only the state area survives. It reports whether the cluster restarted.
func (w *World) pkgFinal(reformed time.Duration) bool {
	pw := w.pk
	restart := pw.rng.Intn(4) == 0
	bound := pw.pkgBound()
	// Rule 13 holds once every package that can run runs on exactly one
	// node at some instant within the bound (polled every heartbeat).
	settle := func(from time.Duration, when string) {
		for w.now < from+bound && !(w.reformed() && pw.chk.runsOnce("", false)) {
			w.Run(w.t.HeartbeatInterval)
		}
		if !w.reformed() {
			return // rule 4 judges the cluster itself
		}
		pw.chk.runsOnce(when, true)
		pw.chk.intentsKept(when)
	}
	settle(reformed, "after the faults healed")
	if !restart {
		return false
	}
	w.trace("whole-cluster restart")
	for _, n := range w.nodes[1:] {
		n.bootToken++
		n.pkgReset("power cut")
		if n.registering {
			n.crash("power cut")
		}
		n.crash("power cut")
	}
	w.RunUntil(w.now + rebootDelay)
	for _, n := range w.nodes[1:] {
		w.Restart(n.id)
	}
	deadline := w.now + w.reformBound()
	for w.now < deadline && !w.reformed() {
		w.Run(w.t.HeartbeatInterval)
	}
	if !w.reformed() {
		w.violate(4, "the cluster does not re-form after a whole-cluster restart: %v", w)
		return true
	}
	settle(w.now, "after a whole-cluster restart")
	return true
}
