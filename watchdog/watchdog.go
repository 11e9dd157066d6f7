// Package watchdog is the self-fencing edge of MT-Cluster: a timer that
// resets (or kills) the node unless the daemon keeps feeding it.
//
// The daemon feeds its watchdog only while it is healthy: while it holds
// quorum and has recently written its own quorum-disk slot. When it stops
// feeding, for whatever reason (lost quorum, a hung disk, a frozen or
// crashed process), the watchdog fires WatchdogTimeout after the last
// feed. Peers rely on that bound to take packages over without fencing.
//
// Implementations:
//   - Device: a kernel watchdog (/dev/watchdog, hardware or softdog). The
//     production choice: it fires even if the kernel hangs (hardware) or
//     the daemon's whole process tree is frozen.
//   - Process: a separate supervisor process fed over a pipe that sends
//     SIGKILL to the daemon's process group when feeding stops. For tests
//     and demos on machines without a watchdog device; it keeps working
//     when the daemon is stopped with SIGSTOP, but not if the supervisor
//     itself is killed or the kernel hangs.
//   - None: no self-fencing at all; only when the configuration sets
//     allow_none, and it says so loudly every minute.
//   - Fake: records calls, for unit tests.
//
// Guarantees: after Feed returns nil, the watchdog will not fire for at
// least its timeout unless fed again or disarmed. Disarm stops it cleanly
// (magic close); a daemon that exits without Disarm leaves it armed, and
// it fires. Non-guarantees: none of these stops a node's I/O already queued
// in the storage stack; the watchdog bounds when the node stops, fencing is
// what cuts its access.
package watchdog

import "errors"

// Watchdog is a self-fencing timer the daemon must keep feeding.
type Watchdog interface {
	// Feed restarts the timer.
	Feed() error
	// Disarm stops the timer cleanly (the magic close): it will not fire.
	// Use only on an orderly shutdown with no packages running.
	Disarm() error
	// Close releases the watchdog without disarming it: an armed watchdog
	// then fires at its timeout.
	Close() error
}

// Errors.
var (
	// ErrTimeoutUnsupported means the watchdog cannot run with the
	// requested timeout.
	ErrTimeoutUnsupported = errors.New("watchdog cannot honour the configured timeout")
	// ErrClosed is a Feed or Disarm after Close or Disarm.
	ErrClosed = errors.New("watchdog closed")
	// ErrSupervisorGone means the process watchdog's supervisor is no
	// longer reading: it fired, or was killed.
	ErrSupervisorGone = errors.New("watchdog supervisor process is gone")
)
