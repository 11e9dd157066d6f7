package failbench

import (
	"time"

	"github.com/mtcluster/mtc/daemon"
)

// Run is one crash of a failover benchmark, every time since the crash.
type Run struct {
	// From is the crashed node.
	From string
	// Timeline is the new owner's (zero until it is read).
	Timeline
	// VIP is the time to the observer's first answer from the VIP.
	VIP time.Duration
	// Complete: the new owner's timeline and the observer's answers are
	// all there.
	Complete bool
	// Err says what went wrong ("" when nothing did); a complete run can
	// have one (the service answered from the wrong node).
	Err string
}

// Timeline is a failover as the node that took the package over recorded
// it (its status's packages[].failover and last_start), every time since
// the crash.
type Timeline struct {
	// To is the new owner; Reason why its takeover was allowed (fenced
	// or watchdog).
	To, Reason string
	// Left: the old owner left the membership; TakenOver: the takeover
	// was allowed; Claimed: the new owner claimed the package; Started:
	// the start was ordered; Running: the start plan was done.
	Left, TakenOver, Claimed, Started, Running time.Duration
	// Steps are the start plan's steps' run times by name, StepOrder
	// their names in the order they ran.
	Steps     map[string]time.Duration
	StepOrder []string
}

// ReadTimeline reads from pv, the package as node's status shows it, the
// failover from the node from to node that followed a crash at crashed:
// ok when node records that failover, with from lost after crashed and
// the package running. stepName gives the report's name of a step (the
// paths of one run removed).
func ReadTimeline(pv daemon.PackageView, from, node string, crashed time.Time, stepName func(string) string) (Timeline, bool) {
	f := pv.Failover
	if f == nil || f.From != from || f.To != node || f.Running == 0 || !f.Lost.After(crashed) {
		return Timeline{}, false
	}
	left := f.Lost.Sub(crashed)
	t := Timeline{To: node, Reason: f.Reason,
		Left: left, TakenOver: left + f.TakenOver, Claimed: left + f.Claimed, Started: left + f.Started, Running: left + f.Running}
	if pv.LastStart != nil {
		t.Steps = map[string]time.Duration{}
		for _, st := range pv.LastStart.Steps {
			name := stepName(st.Name)
			if _, seen := t.Steps[name]; !seen {
				t.StepOrder = append(t.StepOrder, name)
			}
			t.Steps[name] = st.Duration()
		}
	}
	return t, true
}
