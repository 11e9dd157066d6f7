package daemon

import (
	"fmt"
	"strings"
	"time"

	"github.com/mtcluster/mtc/internal/sdnotify"
	"github.com/mtcluster/mtc/quorum"
)

// Notifier receives the daemon's service states (sd_notify: READY=1,
// STATUS=..., WATCHDOG=1, STOPPING=1). *sdnotify.Notifier is one.
type Notifier interface {
	Notify(states ...string) error
}

// notifier tracks what the service manager has been told.
type notifier struct {
	n Notifier
	// every is the service watchdog's ping period (0: none).
	every time.Duration
	// readyBy is the local time at which the node declares itself ready
	// even without quorum: by then it has heard every live peer (DeadAfter
	// after the event loop began), so it has joined or knows it is alone.
	readyBy time.Duration
	ready   bool
	status  string
	// shown is what status was made from: the line is formatted again
	// only when it changes, not at every step.
	shown   statusKey
	lastErr string
}

// statusKey is everything statusLine depends on.
type statusKey struct {
	quorate, stopped, leftovers bool
	members                     quorum.Set
	epoch                       uint64
	reason                      quorum.LossReason
	fenceWhy                    string
}

// notify sends states, logging a failure when it differs from the last.
func (d *Daemon) notify(states ...string) {
	nt := &d.sd
	if nt.n == nil {
		return
	}
	if err := nt.n.Notify(states...); err != nil {
		if e := err.Error(); e != nt.lastErr {
			nt.lastErr = e
			d.log.Warn("cannot notify the service manager (repeats are not logged)", "err", err)
		}
		return
	}
	nt.lastErr = ""
}

// notifyState tells the service manager of the node's state after a step:
// READY=1 once, when the node first holds quorum or has waited DeadAfter
// without it, and STATUS= whenever its one-line summary changes.
func (d *Daemon) notifyState(now time.Duration, qs quorum.Status) {
	nt := &d.sd
	if nt.n == nil {
		return
	}
	var states []string
	if !nt.ready && (qs.Quorate || now >= nt.readyBy) {
		nt.ready = true
		states = append(states, sdnotify.Ready)
	}
	key := statusKey{qs.Quorate, qs.Stopped, qs.Leftovers, qs.Members, qs.Epoch, qs.Reason, d.fenceWhy}
	if key != nt.shown || nt.status == "" {
		nt.shown = key
		if status := d.statusLine(qs); status != nt.status {
			nt.status = status
			states = append(states, sdnotify.Status(status))
		}
	}
	if len(states) > 0 {
		d.notify(states...)
	}
}

// statusLine is the node's state in one line, as `systemctl status` shows
// it.
func (d *Daemon) statusLine(qs quorum.Status) string {
	switch {
	case qs.Stopped:
		why := d.fenceWhy
		if why == "" {
			why = "stopped"
		}
		return "self-fenced: " + why
	case qs.Quorate:
		return fmt.Sprintf("quorate, members %s (epoch %d)", strings.Join(d.memberNames(qs.Members), ","), qs.Epoch)
	case qs.Leftovers:
		return "starting: stopping what an earlier incarnation left running"
	default:
		return "not quorate: " + qs.Reason.String()
	}
}
