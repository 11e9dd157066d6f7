package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/pkgrun"
)

// fakeRunner is a package whose start and halt take as long as the test
// says, logging what happened to a shared journal.
type fakeRunner struct {
	name    string
	log     *opLog
	startIn chan struct{} // a start blocks until this is closed (nil: at once)
	haltErr error
	mu      sync.Mutex
	state   pkgrun.State
	proofs  []fence.Proof
}

type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(s string) {
	l.mu.Lock()
	l.ops = append(l.ops, s)
	l.mu.Unlock()
}

func (l *opLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops)
}

func (f *fakeRunner) Start(ctx context.Context, proofs []fence.Proof, _ ...string) error {
	f.mu.Lock()
	f.state, f.proofs = pkgrun.Starting, proofs
	f.mu.Unlock()
	f.log.add("start " + f.name)
	if f.startIn != nil {
		select {
		case <-f.startIn:
		case <-ctx.Done():
			f.mu.Lock()
			f.state = pkgrun.Halted
			f.mu.Unlock()
			f.log.add("start cancelled, rolled back " + f.name)
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.state = pkgrun.Running
	f.mu.Unlock()
	return nil
}

func (f *fakeRunner) Halt(ctx context.Context) error {
	f.log.add("halt " + f.name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.haltErr != nil {
		f.state = pkgrun.HaltFailed
		return f.haltErr
	}
	f.state = pkgrun.Halted
	return nil
}

func (f *fakeRunner) State() (pkgrun.State, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, ""
}

func newManager(t *testing.T, needs map[string][]string, names ...string) (*PackageManager, map[string]*fakeRunner, *opLog) {
	t.Helper()
	log := &opLog{}
	fakes := map[string]*fakeRunner{}
	runners := map[string]PackageRunner{}
	for _, n := range names {
		fakes[n] = &fakeRunner{name: n, log: log}
		runners[n] = fakes[n]
	}
	start := time.Now()
	m, err := NewPackageManager(slog.New(slog.DiscardHandler), func() time.Duration { return time.Since(start) }, runners, needs, 64)
	if err != nil {
		t.Fatal(err)
	}
	return m, fakes, log
}

func nextReport(t *testing.T, m *PackageManager) PackageReport {
	t.Helper()
	select {
	case r := <-m.Reports():
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no report")
		return PackageReport{}
	}
}

func TestManagerStartHaltReports(t *testing.T) {
	m, fakes, _ := newManager(t, nil, "db")
	proof := []fence.Proof{{}}
	if err := m.Start("db", proof); err != nil {
		t.Fatal(err)
	}
	if r := nextReport(t, m); r.Package != "db" || r.Op != "start" || r.State != pkgrun.Running || r.Err != nil {
		t.Fatalf("start report %+v", r)
	}
	if len(fakes["db"].proofs) != 1 {
		t.Fatal("the proofs did not reach the runner")
	}
	m.Halt("db", "operator")
	if r := nextReport(t, m); r.Op != "halt" || r.State != pkgrun.Halted {
		t.Fatalf("halt report %+v", r)
	}
	if err := m.Start("nosuch", nil); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("unknown package: %v", err)
	}
}

// A halt while a start runs cancels the start (its plan rolls back), then
// halts; nothing is left half up.
func TestManagerHaltCancelsStart(t *testing.T) {
	m, fakes, log := newManager(t, nil, "db")
	fakes["db"].startIn = make(chan struct{})
	m.Start("db", nil)
	for !slices.Contains(log.get(), "start db") {
		time.Sleep(time.Millisecond)
	}
	m.Halt("db", "moved")
	r1, r2 := nextReport(t, m), nextReport(t, m)
	if r1.Op != "start" || !errors.Is(r1.Err, context.Canceled) || r2.Op != "halt" || r2.State != pkgrun.Halted {
		t.Fatalf("reports %+v then %+v", r1, r2)
	}
	if got, want := log.get(), []string{"start db", "start cancelled, rolled back db", "halt db"}; !slices.Equal(got, want) {
		t.Fatalf("ops %q, want %q", got, want)
	}
}

// StopAll halts the packages that need others first (web needs db, db
// needs storage), refuses starts from then on, and says nil once all are
// halted.
func TestManagerStopAllOrder(t *testing.T) {
	m, _, log := newManager(t, map[string][]string{"web": {"db"}, "db": {"storage"}}, "storage", "db", "web", "batch")
	for _, n := range []string{"storage", "db", "web", "batch"} {
		m.Start(n, nil)
	}
	for range 4 {
		nextReport(t, m)
	}
	select {
	case err := <-m.StopAll("quorum lost"):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StopAll did not finish")
	}
	var halts []string
	for _, op := range log.get() {
		if strings.HasPrefix(op, "halt ") {
			halts = append(halts, strings.TrimPrefix(op, "halt "))
		}
	}
	pos := func(n string) int { return slices.Index(halts, n) }
	if len(halts) != 4 || pos("web") > pos("db") || pos("db") > pos("storage") {
		t.Fatalf("halt order %q: web before db before storage", halts)
	}
	if err := m.Start("db", nil); err == nil {
		t.Fatal("a start was accepted while the node stops its packages")
	}
	m.Resume()
	if err := m.Start("db", nil); err != nil {
		t.Fatal(err)
	}
}

// A package that cannot be halted makes StopAll fail, naming it: the
// daemon then keeps the watchdog armed and the node is reset.
func TestManagerStopAllHaltFailure(t *testing.T) {
	m, fakes, _ := newManager(t, nil, "db", "web")
	fakes["db"].haltErr = errors.New("umount /srv/db: device busy")
	m.Start("db", nil)
	m.Start("web", nil)
	err := <-m.StopAll("shutdown")
	if !errors.Is(err, ErrHaltFailed) || !strings.Contains(err.Error(), "package db is halt failed") || strings.Contains(err.Error(), "package web") {
		t.Fatalf("StopAll: %v", err)
	}
}

func TestHaltLevelsCycle(t *testing.T) {
	_, err := NewPackageManager(slog.New(slog.DiscardHandler), func() time.Duration { return 0 },
		map[string]PackageRunner{"a": &fakeRunner{}, "b": &fakeRunner{}}, map[string][]string{"a": {"b"}, "b": {"a"}}, 1)
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: %v", err)
	}
}
