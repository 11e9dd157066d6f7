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

// Lazy returns a watchdog that is opened (and so armed) by the first Feed,
// not before: the daemon feeds from the machine's first step, after its
// slot watch, so a daemon that fails to start (bad configuration, node id
// in use) never arms it. Disarm and Close before the first Feed do
// nothing.
func Lazy(open func() (watchdog.Watchdog, error)) watchdog.Watchdog {
	return &lazy{open: open}
}

type lazy struct {
	mu   sync.Mutex
	open func() (watchdog.Watchdog, error)
	wd   watchdog.Watchdog
}

func (l *lazy) Feed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wd == nil {
		wd, err := l.open()
		if err != nil {
			return fmt.Errorf("%w: %w", errWatchdogOpen, err)
		}
		l.wd = wd
	}
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
