package daemon

import (
	"time"

	"github.com/mtcluster/mtc/pkgrun"
)

// Control commands of the package layer (see also CommandStatus and
// CommandEvents). Every node serves them; an intent is carried out by the
// quorum coordinator (the lowest-id member of a quorate view), to which
// the serving node forwards it.
const (
	// CommandIntent submits an operator intent (IntentArgs) and answers
	// its outcome (IntentResult).
	CommandIntent = "intent"
	// CommandPlan answers what placement would do in a hypothetical case
	// (PlanArgs, PlanResult), from the serving node's live state, without
	// acting.
	CommandPlan = "plan"
)

// Intent kinds, as IntentArgs.Kind spells them.
const (
	IntentRun            = "run"
	IntentHalt           = "halt"
	IntentMove           = "move"
	IntentEnable         = "enable"
	IntentDisable        = "disable"
	IntentMaintenanceOn  = "maintenance-on"
	IntentMaintenanceOff = "maintenance-off"
	IntentDrain          = "drain"
	IntentUndrain        = "undrain"
	IntentClear          = "clear"
)

// IntentKinds are every intent kind, in the order the help lists them.
var IntentKinds = []string{IntentRun, IntentHalt, IntentMove, IntentEnable, IntentDisable,
	IntentMaintenanceOn, IntentMaintenanceOff, IntentDrain, IntentUndrain, IntentClear}

// IntentArgs is one operator command.
type IntentArgs struct {
	Kind string `json:"kind"`
	// Package is the package (every kind but drain and undrain).
	Package string `json:"package,omitempty"`
	// Node is the node name: run --on (optional), move --to, drain,
	// undrain, clear --node (optional: every node).
	Node string `json:"node,omitempty"`
	// Wait is how long to wait for the goal once the intent is committed
	// (run, move: the package runs where asked; halt: it is halted
	// everywhere; drain: nothing runs on the node). 0 answers as soon as
	// the intent is committed.
	Wait time.Duration `json:"wait_ns,omitempty"`
	// Forwarded is set by a node that forwards the intent to the
	// coordinator; a forwarded intent is not forwarded again.
	Forwarded bool `json:"forwarded,omitempty"`
}

// Outcomes of an intent.
const (
	// OutcomeDone: committed, and the goal was reached within Wait.
	OutcomeDone = "done"
	// OutcomeCommitted: committed (it is on the quorum disk and every
	// node applies it), but the goal was not reached within Wait (or
	// Wait was 0). Reason says what it waits for.
	OutcomeCommitted = "committed"
	// OutcomeRejected: committed, and then refused by placement (Reason):
	// it changed nothing.
	OutcomeRejected = "rejected"
)

// IntentResult is the outcome of an intent. A refusal before it is
// committed (not quorate, unknown package, package in maintenance) is a
// control.CodedError with one of the Code constants instead.
type IntentResult struct {
	// ID is the intent's number in the cluster's intent log.
	ID      uint64 `json:"id"`
	Kind    string `json:"kind"`
	Package string `json:"package,omitempty"`
	Node    string `json:"node,omitempty"`
	// Coordinator is the node that committed it.
	Coordinator string `json:"coordinator"`
	Outcome     string `json:"outcome"`
	Reason      string `json:"reason,omitempty"`
	// Took is the time from the request to the answer.
	Took time.Duration `json:"took_ns"`
	// Packages are the packages the intent concerns, as the answering
	// node sees them when it answers.
	Packages []PackageView `json:"packages,omitempty"`
}

// Codes of the control errors the package commands answer (besides the
// control channel's own).
const (
	// CodeNotQuorate: no quorate coordinator could commit the intent;
	// retry once the cluster has quorum.
	CodeNotQuorate = "not-quorate"
	// CodeUnknownPackage, CodeUnknownNode: a name not in the
	// configuration.
	CodeUnknownPackage = "unknown-package"
	CodeUnknownNode    = "unknown-node"
	// CodeRefused: the intent cannot be carried out as it stands (the
	// message says what to do first), and nothing was committed.
	CodeRefused = "refused"
	// CodeBadArgs: the request does not decode or lacks a field.
	CodeBadArgs = "bad-args"
	// CodeNoPackages: the cluster has no packages configured.
	CodeNoPackages = "no-packages"
)

// PackageView is one package as a node sees it, for `mtc status` and the
// package commands.
type PackageView struct {
	Name string `json:"name"`
	// Owner is the node it runs (or starts, or halts) on, "" nowhere.
	Owner string `json:"owner,omitempty"`
	// State is its state on Owner (pkgrun's words: starting, running,
	// halting, failed, halt-failed), "halted" when it runs nowhere.
	State string `json:"state"`
	// Since is when this node saw that state begin (wall clock of this
	// node; zero when unknown).
	Since time.Time `json:"since,omitempty"`
	// Target is the node placement puts it on ("" nowhere) and TargetWhy
	// why.
	Target    string `json:"target,omitempty"`
	TargetWhy string `json:"target_why,omitempty"`
	// Nodes are every node reporting it not halted, with its state there.
	Nodes []PackageNodeState `json:"nodes,omitempty"`
	// Waiting says why its target does not start it yet.
	Waiting string `json:"waiting,omitempty"`
	// Operator state.
	Halted      bool   `json:"halted,omitempty"` // halted by an operator (or auto_run off)
	Switching   bool   `json:"switching"`        // automatic switching enabled
	Maintenance bool   `json:"maintenance,omitempty"`
	Pending     string `json:"pending,omitempty"` // a one-shot run --on or move not yet done
	// Marked are the nodes it is marked failed on (`mtc clear`).
	Marked []string `json:"marked,omitempty"`
	// LastStart and LastHalt are this node's timelines of the package's
	// last start and halt here (nil when it has not run here).
	LastStart *pkgrun.Timeline `json:"last_start,omitempty"`
	LastHalt  *pkgrun.Timeline `json:"last_halt,omitempty"`
	// Failover is the last failover of the package this node saw
	// complete or in progress.
	Failover *FailoverView `json:"failover,omitempty"`
}

// PackageNodeState is a package's state on one node.
type PackageNodeState struct {
	Node  string `json:"node"`
	State string `json:"state"`
	// Reason is why it failed there.
	Reason string `json:"reason,omitempty"`
}

// FailoverView is the timeline of one failover, as the node that took
// the package over saw it (local monotonic offsets from Lost).
type FailoverView struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Lost is when the old owner left the membership (wall clock of the
	// node that took over).
	Lost time.Time `json:"lost"`
	// TakenOver is when its takeover was allowed (fenced or watchdog), Claimed when
	// the new owner claimed the package, Started when the start was
	// ordered, Running when it ran (each since Lost; 0: not yet).
	TakenOver time.Duration `json:"taken_over_ns,omitempty"`
	Reason    string        `json:"reason,omitempty"` // fenced or watchdog
	Claimed   time.Duration `json:"claimed_ns,omitempty"`
	Started   time.Duration `json:"started_ns,omitempty"`
	Running   time.Duration `json:"running_ns,omitempty"`
}

// PlanArgs is a hypothetical case for CommandPlan: one of Fail, Move or
// Drain.
type PlanArgs struct {
	// Fail: these nodes fail (crash, then are fenced).
	Fail []string `json:"fail,omitempty"`
	// Move: Package moves to To.
	Move *PlanMove `json:"move,omitempty"`
	// Drain: the node is drained.
	Drain string `json:"drain,omitempty"`
}

// PlanMove is a hypothetical move.
type PlanMove struct {
	Package string `json:"package"`
	To      string `json:"to"`
}

// PlanResult is what placement would do.
type PlanResult struct {
	// Case restates the hypothesis in words.
	Case string `json:"case"`
	// Node is the node whose live state the plan starts from.
	Node     string        `json:"node"`
	Packages []PlanPackage `json:"packages"`
	// Refused is set when placement would refuse the intent (Move,
	// Drain), with its reason.
	Refused string `json:"refused,omitempty"`
}

// PlanPackage is one package before and after the hypothesis.
type PlanPackage struct {
	Name string `json:"name"`
	// Now is where it runs now, After where it would run ("" nowhere).
	Now   string `json:"now,omitempty"`
	After string `json:"after,omitempty"`
	// Change: "stays", "moves", "starts", "halts", "down" (stays down).
	Change string `json:"change"`
	// Why: placement's reason for After (or why it cannot run).
	Why string `json:"why,omitempty"`
}
