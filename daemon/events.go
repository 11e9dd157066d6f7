package daemon

import (
	"fmt"

	"github.com/mtcluster/mtc/journal"
	"github.com/mtcluster/mtc/quorum"
)

// Event kinds the daemon journals besides the machine's decisions, which
// keep the machine's own names (quorum.DecisionKind: members,
// quorum-gained, quorum-lost, fence, fenced, fence-failed, takeover,
// self-fence, ...).
const (
	EventDaemonStarted  = "daemon-started"
	EventDaemonStopping = "daemon-stopping"
	EventDaemonError    = "daemon-error"
	// EventFenceAttempt is one run of the fencing algorithm on every
	// fenced LUN, with its duration, and its error when it failed.
	EventFenceAttempt = "fence-attempt"
)

// Event severities.
const (
	SeverityInfo  = "info"
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// event journals one event (a nil journal drops it), stamped with the
// local time, its wall-clock time, this node and its incarnation. It never
// blocks (see package journal).
func (d *Daemon) event(e journal.Event) {
	if d.opt.Journal == nil {
		return
	}
	now := d.clock()
	e.Uptime, e.Time = now, d.wall(now)
	e.Node = d.self.Name
	e.Incarnation = fmt.Sprintf("%016x", d.Incarnation())
	d.opt.Journal.Append(e)
}

// decisionEvent is the journal entry of a machine decision.
func (d *Daemon) decisionEvent(dec quorum.Decision) journal.Event {
	e := journal.Event{Kind: dec.Kind.String(), Severity: severity(dec.Severity()), Reason: dec.Reason}
	if dec.Peer != 0 {
		e.Peer = d.names[dec.Peer]
	}
	if dec.Inc != 0 {
		e.PeerIncarnation = fmt.Sprintf("%016x", uint64(dec.Inc))
	}
	switch dec.Kind {
	case quorum.MembershipChanged, quorum.QuorumGained:
		e.Members = d.memberNames(dec.Members)
	case quorum.PeerStateChanged:
		if e.Reason == "" {
			e.Reason = dec.State.String()
		}
	case quorum.PeerRestarted:
		e.Reason = fmt.Sprintf("new incarnation %016x", uint64(dec.Inc))
	}
	return e
}

func severity(s quorum.Severity) string {
	switch s {
	case quorum.SeverityWarn:
		return SeverityWarn
	case quorum.SeverityError:
		return SeverityError
	}
	return SeverityInfo
}

// journalFence journals the outcome of one fence attempt.
func (d *Daemon) journalFence(r fenceResult) {
	e := journal.Event{Kind: EventFenceAttempt, Severity: SeverityWarn, Peer: d.names[r.t.Node], Took: r.took,
		Reason: fmt.Sprintf("%s: incarnation %016x", fenceOutcome(r.err), uint64(r.t.Inc))}
	if r.err != nil {
		e.Severity, e.Error = SeverityError, r.err.Error()
	}
	d.event(e)
}
