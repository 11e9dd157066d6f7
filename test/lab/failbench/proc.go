package failbench

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a node's software started by a benchmark (a daemon, keepalived,
// a Pacemaker node) in a process group of its own, so that a crash or a
// stop reaches everything it forked. A nil Proc is one never started: it
// does not run, and stopping or killing it does nothing.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProc starts cmd in a process group of its own (the rest of
// cmd.SysProcAttr is kept), its standard output and error appended to the
// file at logPath, which is closed when the process ends.
func StartProc(cmd *exec.Cmd, logPath string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id, which is also its process group's.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended (never, for a nil Proc).
func (p *Proc) Done() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.done
}

// Running reports whether the process was started and has not ended.
func (p *Proc) Running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Err is how the process ended (what exec.Cmd.Wait returned); nil while
// it runs.
func (p *Proc) Err() error {
	if p == nil || p.Running() {
		return nil
	}
	return p.err
}

// Kill sends SIGKILL to the process group, as a crash does, and waits for
// the process to end.
func (p *Proc) Kill() {
	if !p.Running() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.done
}

// Stop stops the process as an operator does: SIGTERM to its group, and
// SIGKILL if it has not ended after grace.
func (p *Proc) Stop(grace time.Duration) { StopAll(grace, p) }

// StopAll stops the processes together: SIGTERM to every group first;
// then, for each in turn, a wait of up to grace for it to end, and SIGKILL
// to its group if it has not.
func StopAll(grace time.Duration, ps ...*Proc) {
	for _, p := range ps {
		if p.Running() {
			_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
		}
	}
	for _, p := range ps {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
			<-p.done
		}
	}
}
