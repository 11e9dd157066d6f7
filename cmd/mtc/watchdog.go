package main

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/mtcluster/mtc/watchdog"
)

// WatchdogSuperviseCmd is the process watchdog's supervisor: the daemon
// starts it (watchdog mode "process") with a feed pipe as its standard
// input. Not for interactive use.
type WatchdogSuperviseCmd struct {
	Timeout time.Duration `required:"" help:"Kill the process group when not fed for this long."`
	Pgid    int           `required:"" help:"Process group to kill."`
}

// Run supervises until disarmed (exit 0) or fired (exit 3).
func (c *WatchdogSuperviseCmd) Run(log *slog.Logger) error {
	err := watchdog.Supervise(os.Stdin, os.Stdout, c.Timeout, c.Pgid, log.With("component", "watchdog-supervisor"))
	if errors.Is(err, watchdog.ErrFired) {
		return &ExitError{Code: 3, Err: err}
	}
	return err
}
