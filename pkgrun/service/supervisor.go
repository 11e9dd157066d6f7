package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Spec is one service of a package: a command, or an OCF agent.
type Spec struct {
	Name string
	// Argv is the command (unless Agent is set).
	Argv []string
	Env  []string
	Dir  string
	User string
	// Agent, when set, makes the service an OCF resource agent.
	Agent *Agent
	// Restarts is how many times the service is restarted after a failure
	// before it is failed; RestartDelay is the first delay, doubled at
	// every restart up to MaxRestartDelay.
	Restarts        int
	RestartDelay    time.Duration
	MaxRestartDelay time.Duration
	// Health is a check command run every HealthInterval (for an agent:
	// its monitor action); a non-zero exit, or no exit within
	// HealthTimeout, is a failure. Without Health a command service is
	// checked only by being alive.
	Health []string
	// HealthEnv is added to Env for the health check only.
	HealthEnv      []string
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// HaltTimeout is the time between SIGTERM and SIGKILL at halt.
	HaltTimeout time.Duration
	// FailFast fails the service at its first failure, without restarts.
	FailFast bool
}

// Defaults for zero fields.
const (
	DefaultRestartDelay    = time.Second
	DefaultMaxRestartDelay = 30 * time.Second
	DefaultHealthInterval  = 10 * time.Second
	DefaultHealthTimeout   = 5 * time.Second
	DefaultHaltTimeout     = 10 * time.Second
)

func (s *Spec) applyDefaults() {
	if s.RestartDelay == 0 {
		s.RestartDelay = DefaultRestartDelay
	}
	if s.MaxRestartDelay == 0 {
		s.MaxRestartDelay = DefaultMaxRestartDelay
	}
	if s.HealthInterval == 0 {
		s.HealthInterval = DefaultHealthInterval
	}
	if s.HealthTimeout == 0 {
		s.HealthTimeout = DefaultHealthTimeout
	}
	if s.HaltTimeout == 0 {
		s.HaltTimeout = DefaultHaltTimeout
	}
}

// Backoff is the delay before restart n (1-based).
func (s Spec) Backoff(n int) time.Duration {
	s.applyDefaults()
	d := s.RestartDelay
	for i := 1; i < n && d < s.MaxRestartDelay; i++ {
		d *= 2
	}
	return min(d, s.MaxRestartDelay)
}

// State of a supervised service.
type State int

const (
	Stopped State = iota
	Running
	Restarting
	Failed
)

func (s State) String() string {
	return [...]string{"stopped", "running", "restarting", "failed"}[s]
}

// ErrFailed is a service that exhausted its restarts (or failed once with
// FailFast).
var ErrFailed = errors.New("service failed")

// Status is a service's state as the supervisor knows it.
type Status struct {
	Name     string
	State    State
	PID      int
	Restarts int
	// LastFailure describes the last failure, "" if none.
	LastFailure string
}

// Supervisor supervises the services of one package.
type Supervisor struct {
	procs Procs
	pkg   string
	log   *slog.Logger
	// OnFailed is called (from the supervisor's goroutine) when a service
	// is failed.
	OnFailed func(service string, err error)

	mu    sync.Mutex
	units map[string]*unit
}

// NewSupervisor returns a Supervisor for package pkg.
func NewSupervisor(procs Procs, pkg string, log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{procs: procs, pkg: pkg, log: log.With("package", pkg), units: map[string]*unit{}}
}

type unit struct {
	spec     Spec
	log      *slog.Logger
	mu       sync.Mutex
	state    State
	proc     Process // command services
	restarts int
	lastFail string
	stop     chan struct{}
	done     chan struct{}
}

func (u *unit) set(f func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f()
}

// Status returns the status of every known service.
func (s *Supervisor) Status(name string) Status {
	s.mu.Lock()
	u := s.units[name]
	s.mu.Unlock()
	if u == nil {
		return Status{Name: name}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	st := Status{Name: name, State: u.state, Restarts: u.restarts, LastFailure: u.lastFail}
	if u.proc != nil {
		st.PID = u.proc.PID()
	}
	return st
}

func (s *Supervisor) instance(spec Spec) string { return s.pkg + "-" + spec.Name }

// launch starts the service once: spawns the command, or runs the agent's
// start action; it does not wait for health.
func (s *Supervisor) launch(ctx context.Context, u *unit) error {
	if a := u.spec.Agent; a != nil {
		code, err := a.Action(ctx, s.procs, Cmd{Log: u.log.With("action", "start"), User: u.spec.User}, s.instance(u.spec), "start")
		if err != nil {
			return err
		}
		if code != OCFSuccess {
			return &OCFError{Agent: a.String(), Action: "start", Code: code}
		}
		return nil
	}
	p, err := s.procs.Start(Cmd{Argv: u.spec.Argv, Env: u.spec.Env, Dir: u.spec.Dir, User: u.spec.User, Log: u.log})
	if err != nil {
		return err
	}
	u.set(func() { u.proc = p })
	u.log.Info("service started", "pid", p.PID())
	return nil
}

// check runs the health check (or the agent's monitor); nil is healthy.
func (s *Supervisor) check(ctx context.Context, u *unit) error {
	if a := u.spec.Agent; a != nil {
		code, err := a.Action(ctx, s.procs, Cmd{Log: u.log.With("action", "monitor"), User: u.spec.User}, s.instance(u.spec), "monitor")
		if err != nil {
			return err
		}
		if code != OCFSuccess {
			return &OCFError{Agent: a.String(), Action: "monitor", Code: code}
		}
		return nil
	}
	if len(u.spec.Health) == 0 {
		return nil
	}
	return run(ctx, s.procs, Cmd{Argv: u.spec.Health, Env: append(append([]string(nil), u.spec.Env...), u.spec.HealthEnv...), Dir: u.spec.Dir, User: u.spec.User, Log: u.log.With("check", "health")}, u.spec.HealthTimeout, scriptGrace)
}

// halt stops the running instance: the agent's stop action, or SIGTERM
// then SIGKILL at the halt timeout to the command's session.
func (s *Supervisor) halt(ctx context.Context, u *unit) error {
	if a := u.spec.Agent; a != nil {
		code, err := a.Action(ctx, s.procs, Cmd{Log: u.log.With("action", "stop"), User: u.spec.User}, s.instance(u.spec), "stop")
		if err != nil {
			return fmt.Errorf("%w: halt failed: node must be reset", err)
		}
		if code != OCFSuccess {
			return fmt.Errorf("%w: halt failed: node must be reset", &OCFError{Agent: a.String(), Action: "stop", Code: code})
		}
		return nil
	}
	u.mu.Lock()
	p := u.proc
	u.mu.Unlock()
	if p == nil {
		return nil
	}
	return terminate(p, u.spec.HaltTimeout)
}

// Start starts the service and returns once it runs: for a command, once
// it is spawned and (with a health check) has passed its first check; for
// an agent, once start and a first monitor succeeded. A service already
// running is left alone. A failure to start is returned, not retried:
// restarts are for a service that failed after it had started.
func (s *Supervisor) Start(ctx context.Context, spec Spec) error {
	spec.applyDefaults()
	s.mu.Lock()
	if u := s.units[spec.Name]; u != nil {
		u.mu.Lock()
		st := u.state
		u.mu.Unlock()
		if st == Running || st == Restarting {
			s.mu.Unlock()
			return nil
		}
	}
	u := &unit{spec: spec, log: s.log.With("service", spec.Name), stop: make(chan struct{}), done: make(chan struct{})}
	s.units[spec.Name] = u
	s.mu.Unlock()

	err := s.launch(ctx, u)
	if err == nil {
		err = s.firstCheck(ctx, u)
	}
	if err != nil {
		if herr := s.halt(context.WithoutCancel(ctx), u); herr != nil {
			err = errors.Join(err, herr)
		}
		u.set(func() { u.state, u.lastFail = Stopped, err.Error() })
		close(u.done)
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}
	u.set(func() { u.state = Running })
	go s.supervise(u)
	return nil
}

// firstCheck waits for the first successful health check, retrying every
// 100 ms (at most HealthInterval apart) until ctx ends; a command that
// exits meanwhile fails at once.
func (s *Supervisor) firstCheck(ctx context.Context, u *unit) error {
	if u.spec.Agent == nil && len(u.spec.Health) == 0 {
		return nil
	}
	retry := min(100*time.Millisecond, u.spec.HealthInterval)
	for {
		if u.proc != nil {
			select {
			case <-u.proc.Done():
				return fmt.Errorf("exited with status %d before its first health check passed", u.proc.ExitCode())
			default:
			}
		}
		err := s.check(ctx, u)
		if err == nil {
			return nil
		}
		var oe *OCFError
		if errors.As(err, &oe) && oe.Code != OCFNotRunning && oe.Code >= 0 {
			return err // a hard error: no point in waiting
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no successful health check before the start timeout: %w (last: %v)", ctx.Err(), err)
		case <-time.After(retry):
		}
	}
}

// supervise watches a running service until it is stopped or failed.
func (s *Supervisor) supervise(u *unit) {
	defer close(u.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-u.stop:
			cancel()
		case <-u.done:
		}
	}()
	tick := time.NewTicker(u.spec.HealthInterval)
	defer tick.Stop()
	for {
		var exited <-chan struct{}
		u.mu.Lock()
		if u.proc != nil {
			exited = u.proc.Done()
		}
		u.mu.Unlock()
		var failure error
		select {
		case <-u.stop:
			return
		case <-exited:
			failure = fmt.Errorf("exited with status %d", u.proc.ExitCode())
		case <-tick.C:
			if u.proc != nil {
				u.proc.Reap()
			}
			failure = s.check(ctx, u)
		}
		if failure == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !s.recover(ctx, u, failure) {
			return
		}
	}
}

// recover handles one failure: the remains are stopped and the service
// restarted after its backoff, or failed. It returns false when the
// service is failed or stopping.
func (s *Supervisor) recover(ctx context.Context, u *unit, failure error) bool {
	u.log.Warn("service failure", "err", failure)
	// The remains are stopped even if a Stop arrives meanwhile: Stop
	// waits for this goroutine, then halts again.
	hctx := context.WithoutCancel(ctx)
	if err := s.halt(hctx, u); err != nil {
		s.fail(u, fmt.Errorf("%v; and its remains could not be stopped: %w", failure, err))
		return false
	}
	for {
		u.mu.Lock()
		n := u.restarts
		u.lastFail = failure.Error()
		u.mu.Unlock()
		if u.spec.FailFast || n >= u.spec.Restarts {
			s.fail(u, failure)
			return false
		}
		u.set(func() { u.state, u.restarts = Restarting, n+1 })
		d := u.spec.Backoff(n + 1)
		u.log.Info("restarting service", "restart", n+1, "of", u.spec.Restarts, "after", d.String())
		select {
		case <-u.stop:
			return false
		case <-time.After(d):
		}
		err := s.launch(ctx, u)
		if err == nil {
			err = s.firstCheck(ctx, u)
		}
		if err == nil {
			u.set(func() { u.state = Running })
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		failure = err
		if herr := s.halt(hctx, u); herr != nil {
			s.fail(u, fmt.Errorf("%v; and its remains could not be stopped: %w", failure, herr))
			return false
		}
	}
}

func (s *Supervisor) fail(u *unit, err error) {
	u.set(func() { u.state, u.lastFail = Failed, err.Error() })
	select {
	case <-u.stop:
		return // being stopped: not a failure of the package
	default:
	}
	u.log.Error("service failed: the package fails on this node", "err", err, "restarts", u.restarts)
	if s.OnFailed != nil {
		s.OnFailed(u.spec.Name, fmt.Errorf("service %s: %w after %d restarts: %v", u.spec.Name, ErrFailed, u.restarts, err))
	}
}

// Stop halts the service (see halt) and forgets it. A service that is not
// running is not an error.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	s.mu.Lock()
	u := s.units[name]
	s.mu.Unlock()
	if u == nil {
		return nil
	}
	select {
	case <-u.stop:
	default:
		close(u.stop)
	}
	<-u.done
	err := s.halt(ctx, u)
	if err != nil {
		u.set(func() { u.lastFail = err.Error() })
		return fmt.Errorf("service %s: %w", name, err)
	}
	s.mu.Lock()
	delete(s.units, name)
	s.mu.Unlock()
	u.log.Info("service stopped")
	return nil
}

// Names lists the services the supervisor knows.
func (s *Supervisor) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ns []string
	for n := range s.units {
		ns = append(ns, n)
	}
	return ns
}
