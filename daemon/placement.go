package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/journal"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/placement/fromconfig"
	"github.com/mtcluster/mtc/quorum"
)

// The package layer of the daemon: the placement machine (package
// placement) beside the membership machine, driven from the same event
// loop, and the package manager that carries out its starts and halts.
//
// Reports and intents travel in an envelope (hbwire.Envelope) attached to
// every network heartbeat: this node's latest placement report, the last
// operator intent it applied and, on the quorum coordinator, the committed
// intents some member has not applied yet. The coordinator (the lowest-id
// member of a quorate view) commits an operator intent by writing it to
// the quorum disk's cluster state area before it applies it or answers
// the operator: an acknowledged intent survives the loss of any node and
// a restart of the whole cluster. A new coordinator reads the state area
// before it commits anything, and relays what it finds.

// maxKeptIntents is how many committed intents the state area and the
// daemon keep: a member that missed more than these catches up from the
// Durable state, which every intent's effect is part of.
const maxKeptIntents = 64

// stateRetry is the pause before a failed cluster-state I/O is retried.
const stateRetry = time.Second

// errBlankState: the state area holds no operator state yet.
var errBlankState = errors.New("no operator state yet")

// placer is the daemon's package layer. Every field is the event loop's.
type placer struct {
	m     *placement.Machine
	idx   *hbwire.PackageIndex
	mgr   *PackageManager
	defs  map[string]*config.Package
	names []string // package names, sorted
	log   *slog.Logger

	view placement.View
	// env is the encoded envelope attached to every heartbeat; dirty when
	// it must be encoded again.
	env      []byte
	envDirty bool
	report   placement.Report

	// last is the ID of the last intent applied here; intents the
	// committed intents known here (newest maxKeptIntents), in ID order.
	last     uint64
	intents  []placement.Intent
	peerLast [quorum.MaxNodes + 1]uint64

	// takeovers are the takeovers the membership machine allowed in the
	// step being run, fed to placement after it.
	takeovers []quorum.Takeover
	// proofs are the verified fences of this node, by target; deferred
	// the starts that wait for this node's own fence of a target
	// (proofWanted: asked for; proofFailed: why it failed).
	proofs      map[quorum.Target]fence.Proof
	deferred    map[string]placement.Action
	proofWanted map[quorum.Target]bool
	proofFailed map[quorum.Target]string

	// The coordinator's state area: known once read since this node
	// became coordinator; gen is the generation read or written last.
	coordinator bool
	stateKnown  bool
	stateBusy   bool
	stateGen    uint64
	stateDirty  bool // the Durable state changed since the last write
	proposals   []*intentReq
	inflight    []*intentReq // in the write being made
	catchUp     bool         // a member's read of the state area is due
	retryAt     time.Duration
	// noArea: the quorum disk has no cluster state area (an earlier
	// format): intents are refused with its message.
	noArea error

	// This node's report area (reportarea.go).
	reportNextWrite time.Duration
	reportWritten   []byte
	reportBusy      bool
	noReportArea    bool
	envErr          map[quorum.NodeID]string

	// since is when each package's state on its owner was first seen.
	since map[string]sinceRec
	// failovers by package.
	failovers map[string]*failoverRec
	waiters   []*intentWaiter
	decisions []DecisionRecord
}

type sinceRec struct {
	owner quorum.NodeID
	state placement.State
	at    time.Duration
}

type failoverRec struct {
	v      FailoverView
	from   quorum.NodeID
	lostAt time.Duration
}

// intentReq is an intent submitted to the coordinator's event loop.
type intentReq struct {
	in    placement.Intent
	args  IntentArgs
	start time.Duration
	reply chan intentReply
}

type intentReply struct {
	res IntentResult
	err error
}

// intentWaiter is a committed intent whose requester waits for its goal.
type intentWaiter struct {
	req      *intentReq
	res      IntentResult
	deadline time.Duration
}

// stateResult is a cluster-state I/O's outcome, for the event loop.
type stateResult struct {
	write bool
	gen   uint64
	epoch uint64 // of the view the write is made in
	p     statePayload
	err   error
	// blank: the state area was never written (a new cluster).
	blank bool
}

// newPlacer builds the package layer of a daemon that has packages.
func (d *Daemon) newPlacer(pkgs []*config.Package, runners map[string]PackageRunner) (*placer, error) {
	nodes := fromconfig.Nodes(d.cl)
	ppk, err := fromconfig.Packages(d.cl, pkgs)
	if err != nil {
		return nil, err
	}
	p := &placer{defs: make(map[string]*config.Package), log: d.log.With("component", "placement"),
		proofs: make(map[quorum.Target]fence.Proof), deferred: make(map[string]placement.Action),
		proofWanted: make(map[quorum.Target]bool), proofFailed: make(map[quorum.Target]string), envErr: make(map[quorum.NodeID]string), since: make(map[string]sinceRec), failovers: make(map[string]*failoverRec)}
	needs := make(map[string][]string)
	for _, c := range pkgs {
		p.defs[c.Name] = c
		p.names = append(p.names, c.Name)
	}
	for _, q := range ppk {
		for _, dep := range q.Dependencies {
			if dep.Cond == placement.Needs && dep.Where == placement.SameNode {
				needs[q.Name] = append(needs[q.Name], dep.Package)
			}
		}
	}
	sort.Strings(p.names)
	if p.idx, err = packageIndex(p.names, ppk); err != nil {
		return nil, err
	}
	// Only packages this node may run get a runner; the rest it places
	// but never starts.
	mine := make(map[string]PackageRunner)
	for name, r := range runners {
		mine[name] = r
	}
	if p.mgr, err = NewPackageManager(d.log.With("component", "packages"), d.clock, mine, needs, 64); err != nil {
		return nil, err
	}
	cfg := placement.Config{Self: quorum.NodeID(d.self.ID), Inc: quorum.Incarnation(d.Incarnation()), Nodes: nodes, Packages: ppk}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The machine is made in Run, once the Durable state has been read
	// from the quorum disk; New checks the configuration now.
	if _, err := placement.New(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// startPlacement reads the cluster state area and builds the machine with
// it. A disk without a state area, or whose state cannot be read, starts
// from the package files (every package follows its auto_run); the error
// is logged, and the state is read again when this node becomes the
// coordinator.
func (d *Daemon) startPlacement(ctx context.Context) error {
	p := d.pl
	nodes := fromconfig.Nodes(d.cl)
	var pkgs []*config.Package
	for _, n := range p.names {
		pkgs = append(pkgs, p.defs[n])
	}
	ppk, err := fromconfig.Packages(d.cl, pkgs)
	if err != nil {
		return err
	}
	cfg := placement.Config{Self: quorum.NodeID(d.self.ID), Inc: quorum.Incarnation(d.Incarnation()), Nodes: nodes, Packages: ppk}
	r := d.readState(ctx)
	var replay []placement.Intent
	switch {
	case r.err == nil && !r.blank:
		dur := r.p.Durable
		cfg.Durable = &dur
		p.stateGen = r.gen
		for _, in := range r.p.Intents {
			if in.ID > dur.LastIntent {
				replay = append(replay, in)
			}
		}
		p.intents = r.p.Intents
		d.log.Info("operator state read from the quorum disk", "generation", r.gen, "last_intent", dur.LastIntent, "intents_to_apply", len(replay))
	case r.blank:
		p.stateGen = r.gen
		d.log.Info("the quorum disk holds no operator state yet: every package follows its auto_run")
	default:
		d.log.Warn("operator state not read from the quorum disk: starting from the package files; the coordinator reads it again before it commits any intent", "err", r.err)
	}
	m, err := placement.New(cfg)
	if err != nil {
		return err
	}
	p.m = m
	if cfg.Durable != nil {
		p.last = cfg.Durable.LastIntent
	}
	now := d.clock()
	for _, in := range replay {
		p.m.Step(now, placement.Commanded{Intent: in})
		p.last = in.ID
	}
	p.envDirty = true
	return nil
}

// readState reads the cluster state area (a blank area is no error).
func (d *Daemon) readState(ctx context.Context) stateResult {
	ctx, cancel := context.WithTimeout(ctx, d.stateIOTimeout())
	defer cancel()
	sr, err := d.disk.ReadState(ctx)
	if err != nil {
		if errors.Is(err, diskhb.ErrStateUnknown) && blankState(sr) {
			return stateResult{blank: true}
		}
		return stateResult{err: err}
	}
	pl, err := decodeState(sr.Record.Payload)
	if errors.Is(err, errBlankState) {
		return stateResult{gen: sr.Record.Generation, blank: true}
	}
	return stateResult{gen: sr.Record.Generation, p: pl, err: err}
}

// blankState: neither copy was ever written.
func blankState(sr diskhb.StateRead) bool {
	return errors.Is(sr.Problems[0], diskhb.ErrNotFormatted) && errors.Is(sr.Problems[1], diskhb.ErrNotFormatted)
}

// stateIOTimeout bounds one cluster-state I/O: 128 KiB at most, behind
// the heartbeat's own I/O on the same device.
func (d *Daemon) stateIOTimeout() time.Duration {
	return max(4*d.timing.IOTimeout, time.Second)
}

// stateLoop performs the cluster-state I/O requests off the event loop.
func (d *Daemon) stateLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-d.stateReq:
			var r stateResult
			if req.write {
				b, err := encodeState(req.p)
				if err == nil {
					wctx, cancel := context.WithTimeout(ctx, d.stateIOTimeout())
					err = d.disk.WriteState(wctx, diskhb.Record{Generation: req.gen, Writer: d.self.ID, Incarnation: d.Incarnation(), Epoch: req.epoch, Payload: b})
					cancel()
				}
				r = stateResult{write: true, gen: req.gen, p: req.p, err: err}
			} else {
				r = d.readState(ctx)
			}
			select {
			case d.stateOut <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// placeAfterQuorum feeds placement what a step of the membership machine
// changed, then carries out placement's Ready.
func (d *Daemon) placeAfterQuorum(now time.Duration, st quorum.Status) {
	p := d.pl
	if p == nil || p.m == nil {
		return
	}
	v := placement.ViewOf(quorum.NodeID(d.self.ID), quorum.Incarnation(d.Incarnation()), st)
	if v != p.view {
		lost := p.view.Members &^ v.Members
		p.view = v
		p.m.Step(now, placement.ViewChanged{View: v})
		d.noteLost(now, lost)
		d.checkCoordinator(now)
	}
	if len(p.takeovers) > 0 {
		t := p.takeovers
		p.takeovers = nil
		p.m.Step(now, placement.TakeoversAllowed{Takeovers: t})
		for _, x := range t {
			for _, f := range p.failovers {
				if f.from == x.Node && f.v.TakenOver == 0 {
					f.v.TakenOver, f.v.Reason = now-f.lostAt, x.Reason.String()
				}
			}
		}
	}
	d.placeReady(now)
}

// noteLost starts a failover record for every package a departed member
// ran.
func (d *Daemon) noteLost(now time.Duration, lost quorum.Set) {
	p := d.pl
	if lost == 0 {
		return
	}
	for _, ps := range p.m.Status() {
		for _, ns := range ps.States {
			if lost.Has(ns.Node) && ns.State != placement.Halted {
				p.failovers[ps.Name] = &failoverRec{from: ns.Node, lostAt: now, v: FailoverView{From: d.names[ns.Node], Lost: d.wall(now)}}
			}
		}
	}
}

// placeStep feeds one placement event and carries out the Ready.
func (d *Daemon) placeStep(ev placement.Event) {
	p := d.pl
	if p == nil || p.m == nil {
		return
	}
	now := d.clock()
	p.m.Step(now, ev)
	d.placeReady(now)
}

// placeReady performs placement's Ready: halts and starts to the package
// manager, the report to the envelope, the Durable state to the state
// area (coordinator only), the decisions to the log and the journal.
func (d *Daemon) placeReady(now time.Duration) {
	p := d.pl
	rd := p.m.Ready()
	p.m.Advance()
	again := false
	for _, dec := range rd.Decisions {
		d.placementDecided(now, dec)
	}
	for _, a := range rd.Actions {
		switch a.Kind {
		case placement.Halt:
			delete(p.deferred, a.Package)
			if err := p.mgr.Halt(a.Package, a.Reason); err != nil {
				d.log.Error("halt not carried out", "package", a.Package, "err", err)
			}
		case placement.Start:
			if f := p.failovers[a.Package]; f != nil && f.v.Started == 0 {
				f.v.Started, f.v.To = now-f.lostAt, d.self.Name
			}
			if p.mgr.Stopping() {
				// Shutting down or self-fencing: the node leaves with
				// nothing up, and the survivors place the package.
				d.log.Info("start not carried out: this node is stopping its packages", "package", a.Package)
				continue
			}
			if missing := d.missingProofs(a); len(missing) > 0 {
				// The coordinator fenced the node this package's
				// volume groups belong to; this node verifies that
				// fence itself before it takes them over.
				p.deferred[a.Package] = a
				for _, t := range missing {
					d.requestRunnerProof(t)
				}
				continue
			}
			if err := p.mgr.Start(a.Package, d.proofsFor(a.Takeovers), d.startEnv()...); err != nil {
				d.log.Error("start not carried out", "package", a.Package, "err", err)
				// The machine must not wait for a start that never
				// runs: the package failed here.
				p.m.Step(now, placement.Local{Package: a.Package, State: placement.Failed, Reason: err.Error()})
				again = true
			}
		}
	}
	if rd.Report != nil {
		p.report = *rd.Report
		p.envDirty = true
	}
	if rd.Durable != nil && p.coordinator {
		p.stateDirty = true
	}
	if len(rd.Actions) > 0 || rd.Report != nil || len(rd.Decisions) > 0 {
		d.trackSince(now)
	}
	d.checkWaiters(now)
	d.pumpState(now)
	d.pumpReports(now)
	if again {
		d.placeReady(now)
	}
}

// startEnv is what a start tells the package's scripts and services of
// the node that runs it: MTC_NODE (this node's name), MTC_INCARNATION (this
// daemon's incarnation, as the journal writes it) and MTC_EPOCH (this
// node's quorum epoch when the start was ordered: a count of its member
// set's changes, which orders one node's starts, not the nodes').
func (d *Daemon) startEnv() []string {
	return []string{
		"MTC_NODE=" + d.self.Name,
		fmt.Sprintf("MTC_INCARNATION=%016x", d.Incarnation()),
		fmt.Sprintf("MTC_EPOCH=%d", d.pl.view.Epoch),
	}
}

// proofsFor returns the verified fences the takeovers of a start rely on.
func (d *Daemon) proofsFor(ts []quorum.Takeover) []fence.Proof {
	var out []fence.Proof
	for _, t := range ts {
		if pr, ok := d.pl.proofs[quorum.Target{Node: t.Node, Inc: t.Inc}]; ok {
			out = append(out, pr)
		}
	}
	return out
}

func (d *Daemon) placementDecided(now time.Duration, dec placement.Decision) {
	p := d.pl
	lvl := slog.LevelInfo
	switch dec.Kind {
	case placement.MarkedFailed, placement.IntentRejected:
		lvl = slog.LevelWarn
	case placement.Waiting:
		lvl = slog.LevelDebug
	}
	attrs := []any{"kind", dec.Kind.String()}
	if dec.Package != "" {
		attrs = append(attrs, "package", dec.Package)
	}
	if dec.Node != 0 {
		attrs = append(attrs, "on", d.names[dec.Node])
	}
	if dec.Intent != 0 {
		attrs = append(attrs, "intent", dec.Intent)
	}
	if dec.Reason != "" {
		attrs = append(attrs, "reason", dec.Reason)
	}
	p.log.Log(context.Background(), lvl, "decision: "+dec.String(), attrs...)
	if dec.Kind == placement.ClaimMade {
		if f := p.failovers[dec.Package]; f != nil && f.v.Claimed == 0 {
			f.v.Claimed = now - f.lostAt
		}
	}
	if dec.Kind != placement.Waiting {
		sev := SeverityInfo
		if lvl == slog.LevelWarn {
			sev = SeverityWarn
		}
		ev := journal.Event{Kind: "placement-" + dec.Kind.String(), Severity: sev, Reason: dec.Reason}
		ev.Package = dec.Package
		if dec.Node != 0 {
			ev.Peer = d.names[dec.Node]
		}
		d.event(ev)
		d.mu.Lock()
		d.st.decisions = appendRing(d.st.decisions, DecisionRecord{At: dec.At, Time: d.wall(dec.At), Kind: "placement-" + dec.Kind.String(), Text: dec.String(), Reason: dec.Reason, Peer: ev.Peer})
		d.mu.Unlock()
	}
	for _, w := range p.waiters {
		if w.res.ID == dec.Intent && dec.Kind == placement.IntentRejected {
			w.res.Outcome, w.res.Reason = OutcomeRejected, dec.Reason
			w.deadline = 0
		}
	}
}

// localState converts a runner state.
func localState(s pkgrun.State) placement.State {
	switch s {
	case pkgrun.Starting:
		return placement.Starting
	case pkgrun.Running:
		return placement.Running
	case pkgrun.Halting:
		return placement.Halting
	case pkgrun.Failed:
		return placement.Failed
	case pkgrun.HaltFailed:
		return placement.HaltFailed
	}
	return placement.Halted
}

// packageReport feeds a runner's state change to placement.
func (d *Daemon) packageReport(r PackageReport) {
	p := d.pl
	reason := ""
	if r.Err != nil {
		reason = r.Err.Error()
	}
	st := localState(r.State)
	if r.Op == "start" && r.Err != nil && st == placement.Halted {
		// A start that failed and rolled back is a failure here, or the
		// node would retry it for ever.
		st = placement.Failed
	}
	if st == placement.Running {
		if f := p.failovers[r.Package]; f != nil && f.v.Running == 0 && f.v.Started != 0 {
			f.v.Running = r.At - f.lostAt
			d.log.Warn("failover complete", "package", r.Package, "from", f.v.From,
				"taken_over", f.v.TakenOver, "claimed", f.v.Claimed, "started", f.v.Started, "running", f.v.Running, "takeover_reason", f.v.Reason)
			d.metrics.observeFailover(f.v.Running)
		}
	}
	ev := journal.Event{Kind: "package-" + strings.ReplaceAll(st.String(), " ", "-"), Severity: SeverityInfo, Package: r.Package, Took: r.Took, Error: reason}
	if r.Op != "" {
		ev.Reason = r.Op + " ended"
	} else {
		ev.Reason = "the package changed by itself"
	}
	if st == placement.Failed || st == placement.HaltFailed {
		ev.Severity = SeverityError
	}
	d.journalSteps(r)
	d.event(ev)
	d.placeStep(placement.Local{Package: r.Package, State: st, Reason: reason})
}

// journalSteps journals every step of the start or halt that ended.
func (d *Daemon) journalSteps(r PackageReport) {
	mp, ok := d.pl.mgr.pkgs[r.Package]
	if !ok || r.Op == "" {
		return
	}
	tl, ok := mp.runner.(interface {
		LastStart() *pkgrun.Timeline
		LastHalt() *pkgrun.Timeline
	})
	if !ok {
		return
	}
	t := tl.LastStart()
	if r.Op == "halt" {
		t = tl.LastHalt()
	}
	if t == nil {
		return
	}
	for _, st := range t.Steps {
		sev := SeverityInfo
		if st.Err != "" {
			sev = SeverityWarn
		}
		d.event(journal.Event{Kind: "package-step", Severity: sev, Package: r.Package, Reason: st.Phase + " " + st.Name + ": " + string(st.Outcome), Took: st.Duration(), Error: st.Err})
	}
}

// envelope returns the envelope to attach to a heartbeat (nil without
// packages).
func (d *Daemon) envelope() []byte {
	p := d.pl
	if p == nil || p.m == nil {
		return nil
	}
	if p.report.Node == 0 {
		// No report yet (the machine's first Ready has not come).
		return nil
	}
	if !p.envDirty && p.env != nil {
		return p.env
	}
	e := hbwire.Envelope{Report: p.report, LastIntent: p.last}
	if p.coordinator {
		low := p.last
		for _, id := range p.view.Members.IDs() {
			if id != quorum.NodeID(d.self.ID) {
				low = min(low, p.peerLast[id])
			}
		}
		for _, in := range p.intents {
			if in.ID > low && len(e.Intents) < hbwire.MaxRelayedIntents {
				e.Intents = append(e.Intents, in)
			}
		}
	}
	b, err := hbwire.AppendEnvelope(p.env[:0], &e, p.idx)
	if err != nil {
		d.log.Error("placement report not published", "err", err)
		return nil
	}
	p.env, p.envDirty = b, false
	return b
}

// received handles a peer's envelope.
func (d *Daemon) received(from quorum.NodeID, raw []byte) {
	p := d.pl
	if p == nil || p.m == nil || len(raw) == 0 {
		return
	}
	e, err := hbwire.DecodeEnvelope(raw, p.idx)
	if err != nil {
		d.envelopeError(from, err)
		return
	}
	delete(p.envErr, from)
	if e.Report.Node != from {
		return
	}
	if p.peerLast[from] != e.LastIntent {
		p.peerLast[from] = e.LastIntent
		if p.coordinator {
			p.envDirty = true
		}
	}
	now := d.clock()
	p.m.Step(now, placement.Received{Report: e.Report})
	for _, in := range e.Intents {
		d.applyIntent(now, in)
	}
	if len(e.Intents) > 0 && e.Intents[0].ID > p.last+1 && !p.coordinator {
		// More were committed than the coordinator relays at once, or
		// this node missed them: the state area has them.
		p.catchUp = true
	}
	d.placeReady(now)
}

// applyIntent applies a committed intent once, in ID order.
func (d *Daemon) applyIntent(now time.Duration, in placement.Intent) {
	p := d.pl
	if in.ID != p.last+1 {
		return
	}
	p.last = in.ID
	p.intents = append(p.intents, in)
	if len(p.intents) > maxKeptIntents {
		p.intents = p.intents[len(p.intents)-maxKeptIntents:]
	}
	p.envDirty = true
	p.m.Step(now, placement.Commanded{Intent: in})
}

// isCoordinator: this node is the lowest-id member of a quorate view.
func (d *Daemon) isCoordinator() bool {
	v := d.pl.view
	ids := v.Members.IDs()
	return v.Quorate && len(ids) > 0 && ids[0] == quorum.NodeID(d.self.ID)
}

// checkCoordinator follows this node's role: a node that becomes the
// coordinator reads the state area before it commits anything; one that
// stops being it refuses the intents it has not committed.
func (d *Daemon) checkCoordinator(now time.Duration) {
	p := d.pl
	c := d.isCoordinator()
	if c == p.coordinator {
		return
	}
	p.coordinator, p.stateKnown = c, false
	p.envDirty = true
	if c {
		d.log.Info("this node is the coordinator: it commits operator intents (reading the cluster state first)")
		return
	}
	for _, r := range p.proposals {
		r.reply <- intentReply{err: notQuorate("node %s is no longer the coordinator; retry", d.self.Name)}
	}
	p.proposals = nil
}

// pumpState starts the next cluster-state I/O: the coordinator's read of
// the state area, then its writes (intents proposed, Durable changed); a
// member's catch-up read.
func (d *Daemon) pumpState(now time.Duration) {
	p := d.pl
	if p.stateBusy || now < p.retryAt {
		return
	}
	switch {
	case p.coordinator && !p.stateKnown, !p.coordinator && p.catchUp:
		p.stateBusy, p.catchUp = true, false
		d.stateReq <- stateResult{}
	case p.coordinator && (len(p.proposals) > 0 || p.stateDirty):
		dur := p.m.Durable()
		intents := slices.Clone(p.intents)
		next := p.last
		for _, r := range p.proposals {
			next++
			r.in.ID = next
			intents = append(intents, r.in)
		}
		if len(intents) > maxKeptIntents {
			intents = intents[len(intents)-maxKeptIntents:]
		}
		p.inflight, p.proposals = p.proposals, nil
		p.stateBusy, p.stateDirty = true, false
		p.stateGen++
		d.stateReq <- stateResult{write: true, gen: p.stateGen, epoch: p.view.Epoch, p: statePayload{Durable: dur, Intents: intents}}
	}
}

// stateDone handles a cluster-state I/O's outcome.
func (d *Daemon) stateDone(r stateResult) {
	p := d.pl
	p.stateBusy = false
	now := d.clock()
	switch {
	case !r.write:
		if errors.Is(r.err, diskhb.ErrNoStateArea) {
			if p.noArea == nil {
				d.log.Error("operator intents cannot be committed", "err", r.err)
			}
			p.noArea = r.err
			p.catchUp = false
			break
		}
		if r.err != nil {
			// A coordinator never commits over a state it could not
			// read: retried after a pause.
			d.log.Error("cluster state not read from the quorum disk: operator intents wait until it is; retrying", "err", r.err, "retry_in", stateRetry)
			p.retryAt = now + stateRetry
			break
		}
		if !r.blank {
			p.stateGen = max(p.stateGen, r.gen)
			for _, in := range r.p.Intents {
				d.applyIntent(now, in)
			}
			if p.last < r.p.Durable.LastIntent {
				d.log.Error("this node missed operator intents no longer in the state area: restart its daemon to read the operator state again",
					"applied", p.last, "cluster", r.p.Durable.LastIntent)
			}
		}
		if p.coordinator {
			p.stateKnown = true
			d.log.Info("cluster state read: ready to commit operator intents", "generation", p.stateGen, "last_intent", p.last)
		}
	default:
		reqs := p.inflight
		p.inflight = nil
		if r.err != nil {
			p.retryAt = now + stateRetry
			// The generation may or may not have landed: the next write
			// uses the one after it.
			d.log.Error("cluster state not written to the quorum disk: the intents are not committed", "err", r.err)
			p.stateDirty = true
			for _, q := range reqs {
				q.reply <- intentReply{err: &codedErr{code: CodeNotQuorate, err: fmt.Errorf("the intent was not committed: the quorum disk write failed (%v); retry", r.err)}}
			}
			break
		}
		for _, q := range reqs {
			if !p.coordinator {
				q.reply <- intentReply{err: notQuorate("node %s lost the coordinator role while committing; retry", d.self.Name)}
				continue
			}
			d.applyIntent(now, q.in)
			res := IntentResult{ID: q.in.ID, Kind: q.args.Kind, Package: q.args.Package, Node: q.args.Node, Coordinator: d.self.Name, Outcome: OutcomeCommitted}
			d.log.Info("operator intent committed", "intent", q.in.ID, "kind", q.args.Kind, "package", q.args.Package, "node", q.args.Node)
			d.event(journal.Event{Kind: "intent-committed", Severity: SeverityInfo, Package: q.args.Package, Peer: q.args.Node, Reason: fmt.Sprintf("intent %d: %s", q.in.ID, q.args.Kind)})
			p.waiters = append(p.waiters, &intentWaiter{req: q, res: res, deadline: now + q.args.Wait})
		}
		// The commits' decisions (rejections) are in the next Ready.
		d.placeReady(now)
	}
	d.pumpState(now)
}

// checkWaiters answers the intents whose goal is reached or whose wait
// is over.
func (d *Daemon) checkWaiters(now time.Duration) {
	p := d.pl
	if len(p.waiters) == 0 {
		return
	}
	status := p.m.Status()
	keep := p.waiters[:0]
	for _, w := range p.waiters {
		done, why := d.goal(w.req.in, status)
		switch {
		case w.res.Outcome == OutcomeRejected:
		case done:
			w.res.Outcome = OutcomeDone
		case now < w.deadline:
			keep = append(keep, w)
			continue
		default:
			w.res.Reason = why
		}
		w.res.Took = now - w.req.start
		w.res.Packages = d.packageViews(status, w.req.in.Package)
		w.req.reply <- intentReply{res: w.res}
	}
	p.waiters = keep
}

// goal says whether an intent's goal is reached, or what it waits for.
func (d *Daemon) goal(in placement.Intent, status []placement.PackageStatus) (bool, string) {
	find := func(name string) *placement.PackageStatus {
		for i := range status {
			if status[i].Name == name {
				return &status[i]
			}
		}
		return nil
	}
	runsOn := func(ps *placement.PackageStatus, n quorum.NodeID) bool {
		for _, s := range ps.States {
			if s.State == placement.Running && (n == 0 || s.Node == n) {
				return true
			}
		}
		return false
	}
	waiting := func(ps *placement.PackageStatus) string {
		if ps.Waiting != "" {
			return ps.Waiting
		}
		if ps.TargetWhy != "" {
			return ps.TargetWhy
		}
		return "placement has not reached the goal yet"
	}
	switch in.Kind {
	case placement.IntentRun, placement.IntentMove:
		ps := find(in.Package)
		if ps == nil {
			return false, "unknown package"
		}
		if runsOn(ps, in.Node) {
			return true, ""
		}
		return false, waiting(ps)
	case placement.IntentHalt:
		ps := find(in.Package)
		if ps == nil {
			return false, "unknown package"
		}
		if len(ps.States) == 0 {
			return true, ""
		}
		return false, "still up on " + d.nodeStates(ps.States)
	case placement.IntentDrain:
		var on []string
		for _, ps := range status {
			for _, s := range ps.States {
				if s.Node == in.Node {
					on = append(on, ps.Name)
				}
			}
		}
		if len(on) == 0 {
			return true, ""
		}
		return false, fmt.Sprintf("still up on %s: %s", d.names[in.Node], strings.Join(on, ", "))
	}
	return true, ""
}

func (d *Daemon) nodeStates(ss []placement.NodeState) string {
	var out []string
	for _, s := range ss {
		out = append(out, d.names[s.Node]+" ("+s.State.String()+")")
	}
	return strings.Join(out, ", ")
}

// codedErr is a control.CodedError built here (the control package's type
// is used at the edge, see control.go).
type codedErr struct {
	code string
	err  error
}

func (e *codedErr) Error() string { return e.err.Error() }
func (e *codedErr) Unwrap() error { return e.err }

func notQuorate(format string, a ...any) error {
	return &codedErr{code: CodeNotQuorate, err: fmt.Errorf(format, a...)}
}

// packageViews converts the machine's status for the status and the
// commands (only the named package when name is set).
func (d *Daemon) packageViews(status []placement.PackageStatus, name string) []PackageView {
	p := d.pl
	var out []PackageView
	for _, ps := range status {
		if name != "" && ps.Name != name {
			continue
		}
		v := PackageView{Name: ps.Name, State: "halted", TargetWhy: ps.TargetWhy, Waiting: ps.Waiting,
			Halted: ps.Intent.Down, Switching: ps.Intent.Switching, Maintenance: ps.Intent.Maintenance}
		if ps.Target != 0 {
			v.Target = d.names[ps.Target]
		}
		if ps.Intent.Pending.ID != 0 {
			v.Pending = fmt.Sprintf("%s to %s (intent %d)", ps.Intent.Pending.Kind, d.names[ps.Intent.Pending.Node], ps.Intent.Pending.ID)
		}
		for _, n := range ps.Marked {
			v.Marked = append(v.Marked, d.names[n])
		}
		for _, s := range ps.States {
			v.Nodes = append(v.Nodes, PackageNodeState{Node: d.names[s.Node], State: s.State.String()})
			if v.Owner == "" || s.State == placement.Running {
				v.Owner, v.State = d.names[s.Node], s.State.String()
			}
		}
		if s, ok := p.since[ps.Name]; ok && s.at > 0 {
			v.Since = d.wall(s.at)
		}
		if r, ok := p.mgr.pkgs[ps.Name]; ok {
			if tl, ok := r.runner.(interface {
				LastStart() *pkgrun.Timeline
				LastHalt() *pkgrun.Timeline
			}); ok {
				v.LastStart, v.LastHalt = tl.LastStart(), tl.LastHalt()
			}
		}
		if f := p.failovers[ps.Name]; f != nil {
			fv := f.v
			v.Failover = &fv
		}
		out = append(out, v)
	}
	return out
}

// trackSince records when each package's state on its owner began.
func (d *Daemon) trackSince(now time.Duration) {
	p := d.pl
	for _, ps := range p.m.Status() {
		var owner quorum.NodeID
		st := placement.Halted
		for _, s := range ps.States {
			if owner == 0 || s.State == placement.Running {
				owner, st = s.Node, s.State
			}
		}
		if old, ok := p.since[ps.Name]; !ok || old.owner != owner || old.state != st {
			p.since[ps.Name] = sinceRec{owner: owner, state: st, at: now}
		}
	}
}

// missingProofs are the fenced takeovers a start relies on for which this
// node holds no proof, when the package has volume groups to take over
// and this node fences. A takeover of a node that is a member again (a new
// incarnation, which stopped what the old one left) needs none: its
// volume groups were released, and a fence now would cut off the live
// incarnation.
func (d *Daemon) missingProofs(a placement.Action) []quorum.Target {
	p := d.pl
	def := p.defs[a.Package]
	if def == nil || len(def.Spec().VolumeGroups) == 0 || len(d.fence.luns) == 0 {
		return nil
	}
	var out []quorum.Target
	for _, t := range a.Takeovers {
		if t.Reason != quorum.TakeoverFenced || p.view.Members.Has(t.Node) {
			continue
		}
		if _, ok := p.proofs[t.Target]; !ok {
			out = append(out, t.Target)
		}
	}
	return out
}

// requestRunnerProof fences t on the fence worker for a proof of this
// node's own.
func (d *Daemon) requestRunnerProof(t quorum.Target) {
	p := d.pl
	if p.proofWanted[t] {
		return
	}
	delete(p.proofFailed, t)
	p.proofWanted[t] = true
	d.log.Info("verifying the fence of a departed node before taking over its volume groups", "peer", d.names[t.Node], "incarnation", fmt.Sprintf("%016x", uint64(t.Inc)))
	select {
	case d.fence.req <- fenceJob{t: t, forRunner: true}:
	default:
		d.runnerProofDone(fenceResult{t: t, forRunner: true, err: errors.New("fence queue full")})
	}
}

// runnerProofDone records a proof fence's outcome and starts the deferred
// packages it completes (or fails those it cannot).
func (d *Daemon) runnerProofDone(r fenceResult) {
	p := d.pl
	if p == nil {
		return
	}
	delete(p.proofWanted, r.t)
	if r.err == nil && r.proof.Valid() {
		p.proofs[r.t] = r.proof
	} else {
		if r.err == nil {
			r.err = errors.New("fence returned no proof")
		}
		p.proofFailed[r.t] = r.err.Error()
		d.log.Error("the fence of a departed node could not be verified: its volume groups are not taken over here", "peer", d.names[r.t.Node], "err", r.err)
	}
	now := d.clock()
	for name, a := range p.deferred {
		missing := d.missingProofs(a)
		failed := ""
		waiting := false
		for _, t := range missing {
			if why, ok := p.proofFailed[t]; ok {
				failed = fmt.Sprintf("the fence of node %s could not be verified here: %s", d.names[t.Node], why)
			} else {
				waiting = true
			}
		}
		switch {
		case failed != "":
			delete(p.deferred, name)
			p.m.Step(now, placement.Local{Package: name, State: placement.Failed, Reason: failed})
		case !waiting:
			delete(p.deferred, name)
			if err := p.mgr.Start(name, d.proofsFor(a.Takeovers), d.startEnv()...); err != nil {
				p.m.Step(now, placement.Local{Package: name, State: placement.Failed, Reason: err.Error()})
			}
		}
	}
	d.placeReady(now)
}

// packageIndex is the envelope's package index: the names, and a
// fingerprint of the placement definitions, so that every node must place
// by the same ones.
func packageIndex(names []string, ppk []placement.Package) (*hbwire.PackageIndex, error) {
	idx, err := hbwire.NewPackageIndex(names)
	if err != nil {
		return nil, err
	}
	defs := slices.Clone(ppk)
	slices.SortFunc(defs, func(a, b placement.Package) int { return strings.Compare(a.Name, b.Name) })
	canon, err := json.Marshal(defs)
	if err != nil {
		return nil, err
	}
	return idx.WithDefinitions(canon), nil
}

// PackageIndex is the index a node with these cluster and package files
// reads and writes envelopes with (`mtc disk dump`).
func PackageIndex(cl *config.Cluster, pkgs []*config.Package) (*hbwire.PackageIndex, error) {
	ppk, err := fromconfig.Packages(cl, pkgs)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	return packageIndex(names, ppk)
}
