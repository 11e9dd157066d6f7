package service

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Behavior is how a Fake process acts.
type Behavior struct {
	// Exit, when Run is false, is the status the process exits with at
	// once.
	Exit int
	// Run keeps the process running until it is signalled or Crash is
	// called.
	Run bool
	// IgnoreTERM makes it survive SIGTERM (only SIGKILL ends it).
	IgnoreTERM bool
	// Unkillable makes it survive SIGKILL too (uninterruptible sleep).
	Unkillable bool
	// Err makes Start fail (exec error).
	Err error
}

// Fake is an in-memory process table. Behave decides, from the argument
// vector, how each started process acts.
type Fake struct {
	mu      sync.Mutex
	next    int
	procs   map[int]*fakeProc
	Behave  func(argv []string) Behavior
	Started [][]string
}

var _ Procs = (*Fake)(nil)

// NewFake returns a Fake whose processes exit 0 at once unless behave says
// otherwise.
func NewFake(behave func(argv []string) Behavior) *Fake {
	if behave == nil {
		behave = func([]string) Behavior { return Behavior{} }
	}
	return &Fake{next: 100, procs: map[int]*fakeProc{}, Behave: behave}
}

type fakeProc struct {
	f    *Fake
	pid  int
	argv []string
	b    Behavior
	done chan struct{}
	code int
	dead bool
}

// Start implements Procs.
func (f *Fake) Start(c Cmd) (Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.Behave(c.Argv)
	if b.Err != nil {
		return nil, b.Err
	}
	f.next++
	p := &fakeProc{f: f, pid: f.next, argv: c.Argv, b: b, done: make(chan struct{})}
	f.Started = append(f.Started, c.Argv)
	f.procs[p.pid] = p
	if !b.Run {
		p.exitLocked(b.Exit)
	}
	return p, nil
}

func (p *fakeProc) exitLocked(code int) {
	if p.dead {
		return
	}
	p.dead, p.code = true, code
	close(p.done)
}

// Crash ends every live process whose argv[0] is name with the status.
func (f *Fake) Crash(name string, code int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.procs {
		if !p.dead && p.argv[0] == name {
			p.exitLocked(code)
			n++
		}
	}
	return n
}

// Live returns the number of live processes whose argv[0] is name.
func (f *Fake) Live(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.procs {
		if !p.dead && p.argv[0] == name {
			n++
		}
	}
	return n
}

func (p *fakeProc) PID() int              { return p.pid }
func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) ExitCode() int         { <-p.done; return p.code }

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if p.dead {
		return nil
	}
	switch {
	case sig == syscall.SIGKILL && !p.b.Unkillable,
		sig == syscall.SIGTERM && !p.b.IgnoreTERM && !p.b.Unkillable:
		p.exitLocked(-1)
	}
	return nil
}

func (p *fakeProc) Reap() {}

func (p *fakeProc) Alive() bool {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return !p.dead
}

// Render lists the live processes, one per line, sorted by argument
// vector (pids are left out so that replays compare equal).
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, p := range f.procs {
		if !p.dead {
			lines = append(lines, fmt.Sprintf("proc %s", strings.Join(p.argv, " ")))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
