package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"
)

// Script is one script of a package (pre_start, post_start, pre_stop,
// post_stop).
type Script struct {
	Name    string
	Argv    []string
	Env     []string
	Dir     string
	User    string
	Timeout time.Duration
}

// ExitError is a script, health check or agent action that exited with a
// non-zero status.
type ExitError struct {
	Argv []string
	Code int
}

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("%s: killed by a signal", strings.Join(e.Argv, " "))
	}
	return fmt.Sprintf("%s: exit status %d", strings.Join(e.Argv, " "), e.Code)
}

// ErrTimeout is a script or action that did not finish in time.
var ErrTimeout = errors.New("timed out")

// ErrUnkillable is a process that survived SIGKILL: it is stuck in the
// kernel, and the node must be reset to be rid of it.
var ErrUnkillable = errors.New("process survived SIGKILL: halt failed: node must be reset")

// KillGrace is how long a process has to die after SIGKILL before it is
// declared unkillable.
const KillGrace = 2 * time.Second

// pollInterval is how often a signalled session is checked for survivors.
const pollInterval = 10 * time.Millisecond

// terminate sends SIGTERM to p's session, SIGKILL after grace, and waits
// KillGrace more; it fails with ErrUnkillable if a process survives.
func terminate(p Process, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	p.Signal(syscall.SIGTERM)
	if waitGone(p, grace) {
		return nil
	}
	p.Signal(syscall.SIGKILL)
	if waitGone(p, KillGrace) {
		return nil
	}
	return fmt.Errorf("pid %d: %w", p.PID(), ErrUnkillable)
}

func waitGone(p Process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !p.Alive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// run starts argv and waits for it, at most timeout (and ctx); at the
// timeout its session is terminated with grace before SIGKILL.
func run(ctx context.Context, procs Procs, c Cmd, timeout, grace time.Duration) error {
	p, err := procs.Start(c)
	if err != nil {
		return err
	}
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-p.Done():
		// Wait for the session, so that nothing the script started in
		// the background is left running unnoticed.
		if p.Alive() {
			terminate(p, grace)
		}
		if code := p.ExitCode(); code != 0 {
			return &ExitError{Argv: c.Argv, Code: code}
		}
		return nil
	case <-tc:
		err = fmt.Errorf("%s: %w after %s", strings.Join(c.Argv, " "), ErrTimeout, timeout)
	case <-ctx.Done():
		err = fmt.Errorf("%s: %w", strings.Join(c.Argv, " "), ctx.Err())
	}
	if terr := terminate(p, grace); terr != nil {
		return errors.Join(err, terr)
	}
	return err
}

// scriptGrace is the time a timed-out script has between SIGTERM and SIGKILL.
const scriptGrace = time.Second

// RunScript runs a package script, its output logged under its name.
func RunScript(ctx context.Context, procs Procs, log *slog.Logger, s Script) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := log.With("script", s.Name)
	err := run(ctx, procs, Cmd{Argv: s.Argv, Env: s.Env, Dir: s.Dir, User: s.User, Log: l}, s.Timeout, scriptGrace)
	if err != nil {
		return fmt.Errorf("script %s: %w", s.Name, err)
	}
	return nil
}
