package pkgrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/netres"
)

// State of a package on this node.
type State int

const (
	// Halted: nothing of the package is up here (also after a start that
	// failed and was rolled back completely).
	Halted State = iota
	Starting
	Running
	Halting
	// Failed: a service failed after the start; the package's resources
	// are still up until it is halted.
	Failed
	// HaltFailed: a halt or a rollback could not release everything; the
	// node must be reset before the package runs anywhere else.
	HaltFailed
)

func (s State) String() string {
	return [...]string{"halted", "starting", "running", "halting", "failed", "halt failed"}[s]
}

// ErrNodeMustReset is wrapped by the error of a halt (or a rollback) that
// could not complete.
var ErrNodeMustReset = errors.New("halt failed: node must be reset")

// Outcome of a step.
type Outcome string

const (
	OK      Outcome = "ok"
	Error   Outcome = "failed"
	Timeout Outcome = "timed out"
)

// StepRecord is one step as it ran.
type StepRecord struct {
	// Phase is "start", "rollback" or "halt".
	Phase   string
	Name    string
	Start   time.Time
	End     time.Time
	Outcome Outcome
	Err     string
}

// Duration is the step's run time.
func (r StepRecord) Duration() time.Duration { return r.End.Sub(r.Start) }

// Timeline is one start or halt of the package.
type Timeline struct {
	// Kind is "start" or "halt".
	Kind    string
	Start   time.Time
	End     time.Time
	Steps   []StepRecord
	Outcome Outcome
	Err     string
}

// Options configure a Package.
type Options struct {
	Logger *slog.Logger
	// Now is the clock for timelines; nil is time.Now.
	Now func() time.Time
	// OnFailed, when set, is called (in a goroutine of its own) when the
	// running package fails on this node (a service failed, a link was
	// lost): the layer above decides whether to halt it and fail it over.
	OnFailed func(pkg string, reason error)
}

// Package runs one package's plans on this node.
type Package struct {
	spec   Spec
	edges  Edges
	log    *slog.Logger
	now    func() time.Time
	onFail func(string, error)

	run sync.Mutex // one plan at a time

	mu        sync.Mutex
	state     State
	failure   string
	lastStart *Timeline
	lastHalt  *Timeline
}

// New returns the package, halted.
func New(spec Spec, edges Edges, opts Options) *Package {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Package{spec: spec, edges: edges, log: opts.Logger.With("package", spec.Name), now: opts.Now, onFail: opts.OnFailed}
}

// Spec returns the package's spec.
func (p *Package) Spec() Spec { return p.spec }

// State returns the package's state and, when Failed or HaltFailed, why.
func (p *Package) State() (State, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.failure
}

// LastStart and LastHalt return copies of the last timelines (nil before
// the first).
func (p *Package) LastStart() *Timeline {
	return p.copyTimeline(func() *Timeline { return p.lastStart })
}
func (p *Package) LastHalt() *Timeline { return p.copyTimeline(func() *Timeline { return p.lastHalt }) }

func (p *Package) copyTimeline(get func() *Timeline) *Timeline {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := get()
	if t == nil {
		return nil
	}
	c := *t
	c.Steps = append([]StepRecord(nil), t.Steps...)
	return &c
}

func (p *Package) setState(s State, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.failure = s, why
}

// ServiceFailed marks the package failed on this node (wire it to the
// supervisor's OnFailed). The next layer decides whether to halt it and
// fail it over.
func (p *Package) ServiceFailed(service string, err error) {
	p.failed(fmt.Errorf("service %s: %w", service, err))
}

// failed marks a running package failed and tells OnFailed, once.
func (p *Package) failed(reason error) {
	p.mu.Lock()
	if p.state != Running {
		p.mu.Unlock()
		return
	}
	p.state, p.failure = Failed, reason.Error()
	p.mu.Unlock()
	p.log.Error("package failed on this node", "reason", reason)
	if p.onFail != nil {
		// In a goroutine of its own: the caller is the supervisor or the
		// link watcher, and OnFailed may well halt the package, which
		// waits for them.
		go p.onFail(p.spec.Name, reason)
	}
}

// ErrLinkLost is the failure of a package whose interface lost its link.
var ErrLinkLost = errors.New("network link lost")

// LinkSource is a namespace's links: their changes, and their state now
// (netres.Linux, netres.Fake).
type LinkSource interface {
	netres.LinkWatcher
	Link(name string) (netres.Link, error)
}

// WatchLinks marks the running package failed when one of links goes down
// or disappears, until ctx ends. links are the interfaces of its addresses
// (netres.Manager.LinksOf). A down event is checked against the link's
// state when it is handled, so that one queued before the package started
// (and followed by the link's recovery) does not fail it.
func (p *Package) WatchLinks(ctx context.Context, src LinkSource, links []string) error {
	evs, err := src.WatchLinks(ctx, links)
	if err != nil {
		return err
	}
	go func() {
		for ev := range evs {
			if ev.Up {
				continue
			}
			if l, err := src.Link(ev.Interface); err == nil && l.Up {
				continue // stale: it is back up
			}
			p.failed(fmt.Errorf("%w: %s", ErrLinkLost, ev))
		}
	}()
	return nil
}

// withTimeout bounds ctx by d when d > 0.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// runStep runs one step with logging and returns its record.
func (p *Package) runStep(ctx context.Context, phase string, s Step) (StepRecord, error) {
	rec := StepRecord{Phase: phase, Name: s.Name, Start: p.now()}
	p.log.Info("step started", "phase", phase, "step", s.Name)
	err := s.Do(ctx)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	rec.End = p.now()
	switch {
	case err == nil:
		rec.Outcome = OK
		p.log.Info("step done", "phase", phase, "step", s.Name, "duration", rec.Duration())
	case errors.Is(err, context.DeadlineExceeded):
		rec.Outcome, rec.Err = Timeout, err.Error()
		p.log.Error("step timed out", "phase", phase, "step", s.Name, "duration", rec.Duration(), "err", err)
	default:
		rec.Outcome, rec.Err = Error, err.Error()
		p.log.Error("step failed", "phase", phase, "step", s.Name, "duration", rec.Duration(), "err", err)
	}
	return rec, err
}

// Start runs the start plan. proofs are the fencing proofs (from
// fence.Fencer.Fence) for VGs owned by fenced nodes. On failure every step
// done is rolled back and the error says which step failed; if the
// rollback itself fails the package is HaltFailed and the error wraps
// ErrNodeMustReset. env (NAME=value) is added to the environment of the
// start's scripts and services (the daemon passes MTC_NODE,
// MTC_INCARNATION and MTC_EPOCH); a rollback's undo steps run without it.
func (p *Package) Start(ctx context.Context, proofs []fence.Proof, env ...string) error {
	p.run.Lock()
	defer p.run.Unlock()
	if st, why := p.State(); st == HaltFailed {
		return fmt.Errorf("package %s: %w (%s): reset the node before starting it", p.spec.Name, ErrNodeMustReset, why)
	}
	p.setState(Starting, "")
	tl := &Timeline{Kind: "start", Start: p.now()}
	defer func() {
		tl.End = p.now()
		p.mu.Lock()
		p.lastStart = tl
		p.mu.Unlock()
	}()
	runCtx, cancel := withTimeout(ctx, p.spec.RunTimeout)
	defer cancel()
	steps := Plan(p.spec, p.edges, proofs, env...)
	for i, s := range steps {
		rec, err := p.runStep(runCtx, "start", s)
		tl.Steps = append(tl.Steps, rec)
		if err == nil {
			continue
		}
		tl.Outcome, tl.Err = rec.Outcome, rec.Err
		startErr := fmt.Errorf("package %s: start step %q: %w", p.spec.Name, s.Name, err)
		// The rollback gets the halt budget of its own: the run
		// deadline may be what failed.
		rbCtx, rbCancel := withTimeout(context.WithoutCancel(ctx), p.spec.HaltTimeout)
		defer rbCancel()
		var undo []Step
		for j := i; j >= 0; j-- {
			// The failed step is undone too: it may have done part of its
			// work (a service spawned, then its first check failed).
			if steps[j].Undo != nil {
				undo = append(undo, Step{Name: undoName(steps[j].Name), Do: steps[j].Undo})
			}
		}
		recs, rbErr := p.runAll(rbCtx, "rollback", undo)
		tl.Steps = append(tl.Steps, recs...)
		if rbErr != nil {
			p.setState(HaltFailed, rbErr.Error())
			return errors.Join(startErr, fmt.Errorf("rollback: %w: %w", ErrNodeMustReset, rbErr))
		}
		p.setState(Halted, "")
		return startErr
	}
	tl.Outcome = OK
	p.setState(Running, "")
	return nil
}

// runAll runs every step, not stopping at a failure, and joins the errors.
func (p *Package) runAll(ctx context.Context, phase string, steps []Step) ([]StepRecord, error) {
	var recs []StepRecord
	var errs []error
	for _, s := range steps {
		rec, err := p.runStep(ctx, phase, s)
		recs = append(recs, rec)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	return recs, errors.Join(errs...)
}

// Halt runs the halt plan. A failing pre_stop or post_stop script is
// logged and recorded but does not stop the halt; a failing undo step
// makes the package HaltFailed (ErrNodeMustReset).
func (p *Package) Halt(ctx context.Context) error {
	p.run.Lock()
	defer p.run.Unlock()
	p.setState(Halting, "")
	tl := &Timeline{Kind: "halt", Start: p.now()}
	defer func() {
		tl.End = p.now()
		p.mu.Lock()
		p.lastHalt = tl
		p.mu.Unlock()
	}()
	hctx, cancel := withTimeout(ctx, p.spec.HaltTimeout)
	defer cancel()
	var errs []error
	for _, s := range HaltPlan(p.spec, p.edges) {
		rec, err := p.runStep(hctx, "halt", s)
		tl.Steps = append(tl.Steps, rec)
		if err == nil {
			continue
		}
		if s.Name == "pre_stop" || s.Name == "post_stop" {
			p.log.Warn("halt script failed; halting continues", "script", s.Name, "err", err)
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
	}
	if err := errors.Join(errs...); err != nil {
		tl.Outcome, tl.Err = Error, err.Error()
		p.setState(HaltFailed, err.Error())
		return fmt.Errorf("package %s: %w: %w", p.spec.Name, ErrNodeMustReset, err)
	}
	tl.Outcome = OK
	p.setState(Halted, "")
	return nil
}
