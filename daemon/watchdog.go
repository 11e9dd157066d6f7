package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/watchdog"
	"golang.org/x/sys/unix"
)

// NewWatchdog opens the watchdog the configuration selects.
//
//   - device: the kernel watchdog at Watchdog.Device, set to
//     watchdog_timeout.
//   - process: a supervisor process started with supervisor (the mtc
//     binary's `watchdog-supervise` command) that kills this process's
//     group. If this process does not lead its own group it first makes
//     one (setpgid), so the supervisor never kills the shell or service
//     manager that started it.
//   - none: only with allow_none; warns at start and every minute.
func NewWatchdog(c *config.Cluster, log *slog.Logger, now func() time.Duration, supervisor []string, stderr io.Writer) (watchdog.Watchdog, error) {
	switch c.Watchdog.Mode {
	case config.WatchdogDevice:
		return watchdog.OpenDevice(c.Watchdog.Device, c.Timing.WatchdogTimeout)
	case config.WatchdogProcess:
		if unix.Getpgrp() != os.Getpid() {
			if err := unix.Setpgid(0, 0); err != nil {
				return nil, fmt.Errorf("process watchdog: cannot make the daemon its own process group: %w", err)
			}
			log.Info("daemon moved to its own process group for the process watchdog", "pgid", unix.Getpgrp())
		}
		log.Warn("process watchdog: a supervisor process kills the daemon's process group when it is not fed; it cannot stop a hung kernel or hung I/O: for tests and demos only")
		return watchdog.StartProcess(watchdog.ProcessConfig{Timeout: c.Timing.WatchdogTimeout, Command: supervisor, Stderr: stderr})
	case config.WatchdogNone:
		if !c.Watchdog.AllowNone {
			return nil, fmt.Errorf("watchdog mode \"none\" needs allow_none = true in [watchdog]")
		}
		return watchdog.NewNone(log, now), nil
	default:
		return nil, fmt.Errorf("unknown watchdog mode %q", c.Watchdog.Mode)
	}
}

// errWatchdogOpen marks a failure to arm the watchdog at the first feed:
// the node then refuses to run.
var errWatchdogOpen = errors.New("cannot arm the watchdog")

// Lazy returns a watchdog that is opened (and so armed) by the daemon once
// its start-up checks have passed, just before its event loop begins
// (Daemon.Run calls Open), or by the first Feed if nobody opened it: a
// daemon that fails to start (bad configuration, node id in use) never
// arms it. Opening can take a while (the process watchdog starts its
// supervisor and waits for it to be ready: seconds on a loaded or
// emulated machine), so it is not left to the first Feed, which the event
// loop makes: the loop must not stall while its first slot writes are
// due. Disarm and Close before it is opened do nothing.
func Lazy(open func() (watchdog.Watchdog, error)) watchdog.Watchdog {
	return &lazy{open: open}
}

// watchdogOpener is a watchdog opened apart from its first Feed (Lazy).
type watchdogOpener interface{ Open() error }

// Open opens the watchdog if it is not open yet.
func (l *lazy) Open() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wd != nil {
		return nil
	}
	wd, err := l.open()
	if err != nil {
		return fmt.Errorf("%w: %w", errWatchdogOpen, err)
	}
	l.wd = wd
	return nil
}

type lazy struct {
	mu   sync.Mutex
	open func() (watchdog.Watchdog, error)
	wd   watchdog.Watchdog
}

func (l *lazy) Feed() error {
	if err := l.Open(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wd.Feed()
}

func (l *lazy) Disarm() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wd == nil {
		return nil
	}
	return l.wd.Disarm()
}

func (l *lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wd == nil {
		return nil
	}
	return l.wd.Close()
}
