package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/pkgrun"
)

// PackageRunner is what the package manager drives for one package:
// *pkgrun.Package, or a fake in tests. Start and Halt return when the plan
// has ended (or its context was cancelled and the rollback done).
type PackageRunner interface {
	Start(ctx context.Context, proofs []fence.Proof, env ...string) error
	Halt(ctx context.Context) error
	State() (pkgrun.State, string)
}

// PackageReport is one change of a package's state on this node, for the
// event loop (and, through it, placement and the status).
type PackageReport struct {
	Package string
	State   pkgrun.State
	// Op is the operation that ended ("start", "halt"), or "" for a
	// change the package made itself (a service failed).
	Op  string
	Err error
	// At is the local monotonic time of the change; Took how long the
	// operation ran.
	At, Took time.Duration
}

// PackageManager runs this node's packages: one operation at a time per
// package, each on a goroutine of its own, so the event loop never waits
// for a start or a halt. A halt asked for while a start runs cancels the
// start (the plan rolls back) and then halts. StopAll halts every package,
// those that others need last. Every state change is sent on Reports.
//
// It implements PackageStopper, so the daemon's self-fence and shutdown
// paths halt real packages.
type PackageManager struct {
	log   *slog.Logger
	clock func() time.Duration
	// levels are the packages in halt order: each level only after every
	// package of the levels before it (those that need it) is halted.
	levels  [][]string
	pkgs    map[string]*managedPkg
	reports chan PackageReport

	mu       sync.Mutex
	stopping bool
}

type managedPkg struct {
	name   string
	runner PackageRunner
	mu     sync.Mutex
	busy   bool
	cancel context.CancelFunc // of the running operation
	next   *pkgOp             // the operation queued behind it (latest wins)
}

type pkgOp struct {
	kind   string // "start" or "halt"
	proofs []fence.Proof
	env    []string // a start's environment for scripts and services
	reason string
	done   chan error // nil: nobody waits
}

// NewPackageManager manages runners by package name. needs maps a package
// to those it needs (config: dependency condition "needs"): they start
// before it and halt after it. Reports go to a channel with room for
// queue reports; a full channel drops the oldest report's successors
// rather than blocking a runner (the event loop reads State anyway).
func NewPackageManager(log *slog.Logger, clock func() time.Duration, runners map[string]PackageRunner, needs map[string][]string, queue int) (*PackageManager, error) {
	m := &PackageManager{log: log, clock: clock, pkgs: make(map[string]*managedPkg), reports: make(chan PackageReport, max(queue, 16))}
	for name, r := range runners {
		m.pkgs[name] = &managedPkg{name: name, runner: r}
	}
	levels, err := haltLevels(m.pkgs, needs)
	if err != nil {
		return nil, err
	}
	m.levels = levels
	return m, nil
}

// haltLevels orders the packages for a halt: a package comes after every
// package that needs it.
func haltLevels(pkgs map[string]*managedPkg, needs map[string][]string) ([][]string, error) {
	neededBy := map[string]int{} // how many not yet halted packages need it
	for p, deps := range needs {
		if _, ok := pkgs[p]; !ok {
			continue
		}
		for _, q := range deps {
			if _, ok := pkgs[q]; ok {
				neededBy[q]++
			}
		}
	}
	left := make(map[string]bool, len(pkgs))
	for n := range pkgs {
		left[n] = true
	}
	var levels [][]string
	for len(left) > 0 {
		var level []string
		for n := range left {
			if neededBy[n] == 0 {
				level = append(level, n)
			}
		}
		if len(level) == 0 {
			var cyc []string
			for n := range left {
				cyc = append(cyc, n)
			}
			slices.Sort(cyc)
			return nil, fmt.Errorf("packages %v need each other in a cycle: no halt order exists", cyc)
		}
		slices.Sort(level)
		for _, n := range level {
			delete(left, n)
			for _, q := range needs[n] {
				neededBy[q]--
			}
		}
		levels = append(levels, level)
	}
	return levels, nil
}

// Reports are the packages' state changes.
func (m *PackageManager) Reports() <-chan PackageReport { return m.reports }

// Start starts the package with the fencing proofs of the nodes whose
// storage it takes over. It returns at once; the outcome is reported. It
// is refused while StopAll runs.
func (m *PackageManager) Start(name string, proofs []fence.Proof, env ...string) error {
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	if stopping {
		return fmt.Errorf("package %s: not started: this node is stopping its packages", name)
	}
	p, ok := m.pkgs[name]
	if !ok {
		return fmt.Errorf("package %s: not configured on this node", name)
	}
	m.submit(p, &pkgOp{kind: "start", proofs: proofs, env: env})
	return nil
}

// Halt halts the package (cancelling a start in progress). It returns at
// once; the outcome is reported.
func (m *PackageManager) Halt(name, reason string) error {
	p, ok := m.pkgs[name]
	if !ok {
		return fmt.Errorf("package %s: not configured on this node", name)
	}
	m.submit(p, &pkgOp{kind: "halt", reason: reason})
	return nil
}

// submit queues op behind the package's running operation (replacing one
// already queued), cancelling a running start when op is a halt.
func (m *PackageManager) submit(p *managedPkg, op *pkgOp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy {
		switch old := p.next; {
		case old != nil && old.kind == op.kind:
			// The same operation again: one run answers both.
			old.proofs, old.env = op.proofs, op.env
			if op.done != nil {
				od, nd := old.done, op.done
				old.done = fanOut(od, nd)
			}
			op = old
		case old != nil && old.done != nil:
			old.done <- fmt.Errorf("package %s: %s superseded by a %s", p.name, old.kind, op.kind)
		}
		p.next = op
		if op.kind == "halt" && p.cancel != nil {
			p.cancel()
		}
		return
	}
	p.busy = true
	go m.run(p, op)
}

// run performs op and whatever is queued behind it.
func (m *PackageManager) run(p *managedPkg, op *pkgOp) {
	for op != nil {
		ctx, cancel := context.WithCancel(context.Background())
		p.mu.Lock()
		p.cancel = cancel
		p.mu.Unlock()
		t0 := m.clock()
		var err error
		if op.kind == "start" {
			m.log.Info("starting package", "package", p.name)
			err = p.runner.Start(ctx, op.proofs, op.env...)
		} else {
			m.log.Info("halting package", "package", p.name, "reason", op.reason)
			err = p.runner.Halt(ctx)
		}
		cancel()
		st, _ := p.runner.State()
		m.report(PackageReport{Package: p.name, State: st, Op: op.kind, Err: err, At: m.clock(), Took: m.clock() - t0})
		if op.done != nil {
			op.done <- err
		}
		p.mu.Lock()
		op, p.next, p.cancel = p.next, nil, nil
		if op == nil {
			p.busy = false
		}
		p.mu.Unlock()
	}
}

// fanOut returns a channel whose one result goes to both a and b (either
// may be nil).
func fanOut(a, b chan error) chan error {
	c := make(chan error, 1)
	go func() {
		err := <-c
		for _, w := range []chan error{a, b} {
			if w != nil {
				w <- err
			}
		}
	}()
	return c
}

// Failed records that a running package failed by itself (pkgrun's
// OnFailed): it is reported; the layer above decides what to do.
func (m *PackageManager) Failed(name string, reason error) {
	p, ok := m.pkgs[name]
	if !ok {
		return
	}
	st, _ := p.runner.State()
	m.log.Warn("package failed on this node", "package", name, "err", reason)
	m.report(PackageReport{Package: name, State: st, Err: reason, At: m.clock()})
}

func (m *PackageManager) report(r PackageReport) {
	select {
	case m.reports <- r:
	default:
		m.log.Warn("package report dropped: the event loop is behind (it reads every package's state again)", "package", r.Package, "state", r.State.String())
	}
}

// ErrHaltFailed is returned by StopAll when a package could not be halted:
// its resources may still be held, and the node must be reset.
var ErrHaltFailed = errors.New("a package could not be halted")

// StopAll halts every package, those that others need after those that
// need them, and refuses starts from then on. It returns at once; the
// channel receives nil when every package is halted, or an error wrapping
// ErrHaltFailed naming those that are not.
func (m *PackageManager) StopAll(reason string) <-chan error {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		var failed []error
		for _, level := range m.levels {
			waits := make([]chan error, len(level))
			for i, name := range level {
				waits[i] = make(chan error, 1)
				m.submit(m.pkgs[name], &pkgOp{kind: "halt", reason: reason, done: waits[i]})
			}
			for i, name := range level {
				err := <-waits[i]
				if st, _ := m.pkgs[name].runner.State(); err != nil || st != pkgrun.Halted {
					failed = append(failed, fmt.Errorf("package %s is %v: %v", name, st, err))
				}
			}
		}
		if len(failed) > 0 {
			done <- fmt.Errorf("%w: %w", ErrHaltFailed, errors.Join(failed...))
			return
		}
		done <- nil
	}()
	return done
}

// Resume allows starts again after a StopAll (a node that stopped its
// packages at start-up, for leftovers of an earlier incarnation, and then
// joins).
func (m *PackageManager) Resume() {
	m.mu.Lock()
	m.stopping = false
	m.mu.Unlock()
}

// Stopping reports whether StopAll was called (and not Resumed).
func (m *PackageManager) Stopping() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopping
}

// States returns every package's state on this node.
func (m *PackageManager) States() map[string]pkgrun.State {
	out := make(map[string]pkgrun.State, len(m.pkgs))
	for n, p := range m.pkgs {
		out[n], _ = p.runner.State()
	}
	return out
}

var _ PackageStopper = (*PackageManager)(nil)
