package watchdog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process watchdog protocol on the feed pipe (the supervisor's stdin):
// one byte per message. The supervisor answers "ready\n" on its stdout
// once it is watching.
const (
	feedByte   = 'k' // restart the timer
	disarmByte = 'V' // magic close: stop watching and exit
	readyLine  = "ready"
)

// supervisorStartTimeout bounds how long StartProcess waits for the
// supervisor to report that it is watching (process start on a loaded
// machine, not a cluster timing).
const supervisorStartTimeout = 10 * time.Second

// ErrFired is returned by Supervise after it killed the process group.
var ErrFired = errors.New("watchdog fired: process group killed")

// ProcessConfig configures a process watchdog.
type ProcessConfig struct {
	// Timeout after the last feed at which the process group is killed.
	Timeout time.Duration
	// PGID is the process group to kill; it must not contain the
	// supervisor. Zero means the caller's own process group.
	PGID int
	// Command is the supervisor's argv before the flags StartProcess
	// appends (--timeout DURATION --pgid N): for the mtc binary,
	// {"/proc/self/exe", "watchdog-supervise"}.
	Command []string
	// Env, if not nil, is the supervisor's environment.
	Env []string
	// Stderr receives the supervisor's log (nil: discarded).
	Stderr io.Writer
}

// Process is a watchdog implemented by a separate supervisor process.
type Process struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	w       *os.File
	pgid    int
	done    chan struct{}
	waitErr error
	closed  bool
}

var _ Watchdog = (*Process)(nil)

// StartProcess starts the supervisor in its own process group, so that
// stopping or killing the watched group does not stop the supervisor, and
// waits until it reports that it is watching. From then on the watched
// group is killed Timeout after the last Feed.
func StartProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("process watchdog: timeout %v must be positive", cfg.Timeout)
	}
	if len(cfg.Command) == 0 {
		return nil, errors.New("process watchdog: no supervisor command")
	}
	pgid := cfg.PGID
	if pgid == 0 {
		pgid = unix.Getpgrp()
	}
	if pgid <= 1 {
		return nil, fmt.Errorf("process watchdog: refusing to watch process group %d", pgid)
	}
	feedR, feedW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("process watchdog: feed pipe: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		feedR.Close()
		feedW.Close()
		return nil, fmt.Errorf("process watchdog: ready pipe: %w", err)
	}
	args := append(append([]string{}, cfg.Command[1:]...), "--timeout", cfg.Timeout.String(), "--pgid", strconv.Itoa(pgid))
	cmd := exec.Command(cfg.Command[0], args...)
	cmd.Env = cfg.Env
	cmd.Stdin = feedR
	cmd.Stdout = readyW
	cmd.Stderr = cfg.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	feedR.Close()
	readyW.Close()
	if err != nil {
		feedW.Close()
		readyR.Close()
		return nil, fmt.Errorf("process watchdog: start supervisor %s: %w", cfg.Command[0], err)
	}
	p := &Process{cmd: cmd, w: feedW, pgid: pgid, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	_ = readyR.SetReadDeadline(time.Now().Add(supervisorStartTimeout))
	line, err := bufio.NewReader(readyR).ReadString('\n')
	readyR.Close()
	if err != nil || line != readyLine+"\n" {
		_ = cmd.Process.Kill()
		feedW.Close()
		<-p.done
		return nil, fmt.Errorf("process watchdog: supervisor did not report ready (read %q: %v; exit: %v)", line, err, p.waitErr)
	}
	return p, nil
}

// SupervisorPID is the supervisor's process id.
func (p *Process) SupervisorPID() int { return p.cmd.Process.Pid }

// PGID is the watched process group.
func (p *Process) PGID() int { return p.pgid }

// Done is closed when the supervisor has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Feed restarts the supervisor's timer.
func (p *Process) Feed() error { return p.send(feedByte) }

func (p *Process) send(b byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case <-p.done:
		return fmt.Errorf("%w (exit: %v)", ErrSupervisorGone, p.waitErr)
	default:
	}
	if _, err := p.w.Write([]byte{b}); err != nil {
		return fmt.Errorf("%w: %v", ErrSupervisorGone, err)
	}
	return nil
}

// Disarm tells the supervisor to stop watching and waits for it to exit.
func (p *Process) Disarm() error {
	if err := p.send(disarmByte); err != nil {
		return err
	}
	p.mu.Lock()
	p.closed = true
	p.w.Close()
	p.mu.Unlock()
	<-p.done
	if p.waitErr != nil {
		return fmt.Errorf("process watchdog supervisor exited with %v after disarm", p.waitErr)
	}
	return nil
}

// Close closes the feed pipe without disarming: the supervisor keeps
// counting and kills the group at the timeout.
func (p *Process) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.w.Close()
}

// Supervise is the supervisor process's main loop: it reads feed messages
// from feed, and kills process group pgid with SIGKILL when none arrived
// for timeout. It writes "ready" to ready once it is watching. It returns
// nil after a disarm, ErrFired after it killed the group, or another error
// if it could not watch at all. The feed pipe closing without a disarm
// (the daemon died or closed the watchdog) does not stop the timer.
func Supervise(feed *os.File, ready io.Writer, timeout time.Duration, pgid int, log *slog.Logger) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to watch process group %d", pgid)
	}
	if pgid == unix.Getpgrp() {
		return fmt.Errorf("process group %d is the supervisor's own: start the supervisor in its own group", pgid)
	}
	// Deadlines need a non-blocking descriptor registered with the poller.
	fd := int(feed.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("feed pipe: %w", err)
	}
	f := os.NewFile(uintptr(fd), "watchdog-feed")
	deadline := time.Now().Add(timeout)
	if err := f.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("feed pipe does not support deadlines: %w", err)
	}
	if _, err := io.WriteString(ready, readyLine+"\n"); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	log.Info("watchdog supervisor watching", "pgid", pgid, "timeout", timeout)
	fam := &family{root: pgid, self: os.Getpid()}
	stop := make(chan struct{})
	defer close(stop)
	go fam.watch(stop)
	fire := func(pgid int, timeout time.Duration, log *slog.Logger) error {
		return fireFamily(pgid, fam, timeout, log)
	}
	buf := make([]byte, 256)
	for {
		n, err := f.Read(buf)
		for _, b := range buf[:n] {
			if b == disarmByte {
				log.Info("watchdog disarmed by the daemon", "pgid", pgid)
				return nil
			}
		}
		if n > 0 {
			deadline = time.Now().Add(timeout)
			_ = f.SetReadDeadline(deadline)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			log.Warn("watchdog feed pipe closed without disarm; the watchdog stays armed", "pgid", pgid, "fires_in", time.Until(deadline))
			time.Sleep(time.Until(deadline))
			return fire(pgid, timeout, log)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fire(pgid, timeout, log)
		default:
			log.Error("watchdog feed pipe read failed; the watchdog stays armed", "err", err)
			time.Sleep(time.Until(deadline))
			return fire(pgid, timeout, log)
		}
	}
}

// fireFamily kills the daemon's group and its descendants (its
// services, in sessions of their own).
func fireFamily(pgid int, fam *family, timeout time.Duration, log *slog.Logger) error {
	err := unix.Kill(-pgid, unix.SIGKILL)
	if n := fam.kill(); n > 0 {
		log.Error("watchdog fired: killed the daemon's descendants outside its process group (its services)", "count", n)
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		log.Error("watchdog fired but could not kill the process group", "pgid", pgid, "err", err)
		return fmt.Errorf("%w: kill -KILL -%d: %v", ErrFired, pgid, err)
	}
	log.Error("watchdog fired: not fed in time, killed the daemon's process group", "pgid", pgid, "timeout", timeout)
	return ErrFired
}
