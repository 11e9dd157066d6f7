package placement

import (
	"fmt"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// NodeID, Set, Incarnation and Takeover are the quorum machine's.
type (
	NodeID      = quorum.NodeID
	Set         = quorum.Set
	Incarnation = quorum.Incarnation
	Takeover    = quorum.Takeover
	// TakeoverReason says whether a takeover rests on fencing or on the
	// watchdog deadline.
	TakeoverReason = quorum.TakeoverReason
)

// MaxNodes is the largest node id.
const MaxNodes = quorum.MaxNodes

// MaxPriority is the lowest priority a package may have (1 is the highest).
const MaxPriority = 3000

// FailoverPolicy selects the node a package is placed on.
type FailoverPolicy uint8

const (
	// ConfiguredNode: the first node of the package's list that can run it.
	ConfiguredNode FailoverPolicy = iota
	// MinPackageNode: the node that can run it with the fewest packages
	// placed on it; ties go to the earlier node of the list.
	MinPackageNode
)

func (p FailoverPolicy) String() string {
	if p == MinPackageNode {
		return "min_package_node"
	}
	return "configured_node"
}

// FailbackPolicy says whether a package returns to its first node.
type FailbackPolicy uint8

const (
	// FailbackManual: the package stays where it runs.
	FailbackManual FailbackPolicy = iota
	// FailbackAutomatic: the package moves back to the first node of its
	// list as soon as that node can run it (while switching is enabled).
	FailbackAutomatic
)

func (p FailbackPolicy) String() string {
	if p == FailbackAutomatic {
		return "automatic"
	}
	return "manual"
}

// Condition of a dependency.
type Condition uint8

const (
	// Needs: the other package must be up (where Where says) for this one
	// to be placed and started; it starts after it and halts before it.
	Needs Condition = iota
	// Excludes: the two packages are never up together (where Where
	// says). Exclusion is symmetric.
	Excludes
)

func (c Condition) String() string {
	if c == Excludes {
		return "excludes"
	}
	return "needs"
}

// Where a dependency applies.
type Where uint8

const (
	// SameNode: on the node of this package.
	SameNode Where = iota
	// DifferentNode: on another node than this package's.
	DifferentNode
	// AnyNode: anywhere in the cluster.
	AnyNode
)

func (w Where) String() string {
	return [...]string{"same_node", "different_node", "any_node"}[w]
}

// Dependency is one relation of a package to another.
type Dependency struct {
	Package string
	Cond    Condition
	Where   Where
}

// Package is what placement needs of one package definition.
type Package struct {
	Name string
	// Nodes may run the package, in order of preference.
	Nodes    []NodeID
	AutoRun  bool
	Failover FailoverPolicy
	Failback FailbackPolicy
	// Priority is 1 (highest) to MaxPriority, 0 for none (after all).
	Priority     int
	Dependencies []Dependency
}

// Node is one configured node.
type Node struct {
	ID   NodeID
	Name string
}

// State is a package's state on one node, as that node reports it.
type State uint8

const (
	// Halted: nothing of the package is up on the node.
	Halted State = iota
	// Claimed: the node intends to start the package and waits for every
	// other member to acknowledge (placement's own state, before the
	// runner starts).
	Claimed
	// Starting: the runner is starting it.
	Starting
	// Running: it runs.
	Running
	// Halting: the runner is halting it.
	Halting
	// Failed: a service failed past its restart limit, or a start failed;
	// resources may still be up until it is halted. The package is marked
	// failed on the node.
	Failed
	// HaltFailed: a halt could not release everything: the node must be
	// reset (or fenced) before the package runs anywhere else.
	HaltFailed
)

var stateNames = [...]string{"halted", "claimed", "starting", "running", "halting", "failed", "halt-failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// up: something of the package may be up on the node (or is about to be).
func (s State) up() bool { return s != Halted }

// PackageReport is one package that is not halted on the reporting node.
type PackageReport struct {
	Name   string
	State  State
	Reason string // why Failed or HaltFailed
}

// Ack is the latest report a node has accepted from another one.
type Ack struct {
	Node NodeID
	Inc  Incarnation
	Seq  uint64
}

// Report is what a node publishes about itself: the packages that are not
// halted on it (a package absent is halted), the packages marked failed on
// it, the latest report it accepted from every other node, and the
// takeovers its quorum machine allowed. Seq grows by one on every change,
// within one incarnation. The daemon publishes the latest report
// (heartbeat, quorum disk) and feeds every peer's to Step as Received.
type Report struct {
	Node     NodeID
	Inc      Incarnation
	Seq      uint64
	Epoch    uint64 // the reporter's quorum epoch when it made the report
	Members  Set    // the reporter's member set then
	Packages []PackageReport
	// Marked are the packages marked failed on the reporter, by name.
	Marked    []string
	Acks      []Ack
	Takeovers []Takeover
	// LeftoversStopped: every package an earlier incarnation of the
	// reporter left on its machine is stopped (LeftoversStopped event).
	// It covers those incarnations as a takeover would.
	LeftoversStopped bool
	// Completed are the one-shot intents (run, run --on, move) the
	// reporter ended (the package ran where asked, or the move was
	// cancelled because its node left the cluster), ID ascending, the
	// last MaxCompleted of them. A state seen in one report can be gone
	// by the next (a package that ran and halted again between two
	// reports a peer processed), and a node cut off when the others
	// cancelled a move cannot see why they did; this list outlives both,
	// so every node ends the intent and places the package by the same
	// rules.
	Completed []uint64
}

// MaxCompleted is the most completed intents a report lists.
const MaxCompleted = 16

// View is the quorum machine's status as this node sees it.
type View struct {
	Quorate bool
	// Agreed: every member publishes the same member set (quorum's
	// agreement; Quorate implies it).
	Agreed  bool
	Members Set
	Epoch   uint64
	// Inc is the incarnation of each member (index: node id).
	Inc [MaxNodes + 1]Incarnation
}

// ViewOf turns the quorum machine's status into a View. self is this
// node's id and inc its incarnation.
func ViewOf(self NodeID, inc Incarnation, st quorum.Status) View {
	v := View{Quorate: st.Quorate, Agreed: st.Quorate, Members: st.Members, Epoch: st.Epoch}
	v.Inc[self] = inc
	for _, p := range st.Peers {
		if p.Member {
			v.Inc[p.Node] = p.Inc
		}
	}
	return v
}

// IntentKind is an operator command.
type IntentKind uint8

const (
	// IntentRun: the package should run (on Node, one-shot, when not 0).
	IntentRun IntentKind = iota + 1
	// IntentHalt: the package should not run.
	IntentHalt
	// IntentMove: move the running package to Node, once.
	IntentMove
	// IntentEnable: automatic switching on (start, fail over, fail back).
	IntentEnable
	// IntentDisable: automatic switching off: the package stays where it
	// runs, and does not start elsewhere on its own.
	IntentDisable
	// IntentMaintenanceOn: the cluster stops acting on the package; its
	// resources stay as they are.
	IntentMaintenanceOn
	// IntentMaintenanceOff: the cluster acts on the package again.
	IntentMaintenanceOff
	// IntentDrain: every package moves off Node; it stays a member.
	IntentDrain
	// IntentUndrain: Node may run packages again.
	IntentUndrain
	// IntentClear: forget the failure mark of the package on Node (every
	// node when 0).
	IntentClear
)

var intentNames = [...]string{"", "run", "halt", "move", "enable", "disable", "maintenance-on", "maintenance-off", "drain", "undrain", "clear"}

func (k IntentKind) String() string {
	if int(k) < len(intentNames) && k > 0 {
		return intentNames[k]
	}
	return fmt.Sprintf("intent(%d)", k)
}

// Intent is one operator command, as agreed by the cluster (the daemon
// keeps intents in the quorum disk's state area and feeds each to every
// node once, in ID order).
type Intent struct {
	ID      uint64
	Kind    IntentKind
	Package string // all kinds but drain and undrain
	Node    NodeID // run (optional), move, drain, undrain, clear (optional)
}

// Event is an input of Step.
type Event interface{ isEvent() }

// ViewChanged is the quorum machine's status after a Step of it.
type ViewChanged struct{ View View }

// Local is this node's runner's state of one package.
type Local struct {
	Package string
	State   State // Halted, Starting, Running, Halting, Failed, HaltFailed
	Reason  string
}

// Received is a peer's report.
type Received struct{ Report Report }

// TakeoversAllowed are the takeovers this node's quorum machine allowed
// (quorum.Ready.Takeover).
type TakeoversAllowed struct{ Takeovers []Takeover }

// Commanded is an operator intent.
type Commanded struct{ Intent Intent }

// LeftoversStopped reports that every package an earlier incarnation of
// this node's daemon left running on this machine is stopped (the daemon's
// start-up stop). Until then the machine claims and starts nothing, and
// its peers wait for a takeover of those incarnations.
type LeftoversStopped struct{}

// Tick lets time pass (nothing in placement expires; it refreshes the
// decision).
type Tick struct{}

func (ViewChanged) isEvent()      {}
func (Local) isEvent()            {}
func (Received) isEvent()         {}
func (TakeoversAllowed) isEvent() {}
func (Commanded) isEvent()        {}
func (Tick) isEvent()             {}
func (LeftoversStopped) isEvent() {}

// ActionKind is what the runner must do.
type ActionKind uint8

const (
	// Start the package on this node.
	Start ActionKind = iota + 1
	// Halt the package on this node.
	Halt
)

func (k ActionKind) String() string {
	if k == Halt {
		return "halt"
	}
	return "start"
}

// Action is one start or halt on this node.
type Action struct {
	Kind    ActionKind
	Package string
	Reason  string
	// Takeovers are the takeovers of other nodes' incarnations this start
	// relies on (the runner needs their fencing proofs to take over
	// storage those nodes owned).
	Takeovers []Takeover
}

func (a Action) String() string {
	return fmt.Sprintf("%v %s (%s)", a.Kind, a.Package, a.Reason)
}

// Ready is what the machine asks of its driver since the last Advance.
type Ready struct {
	// Actions to perform on this node, halts first in dependency order,
	// then starts.
	Actions []Action
	// Report to publish, when it changed.
	Report *Report
	// Durable: the operator state changed (for the quorum disk's state
	// area); nil when unchanged.
	Durable *Durable
	// Decisions are the log-worthy events.
	Decisions []Decision
}

// Durable is the state that must survive a whole-cluster restart: per
// package the operator's settings and one-shot intent, and the drained
// nodes. Failure marks are each node's own (Report.Marked) and are
// persisted by the daemon with the rest.
type Durable struct {
	Packages []PackageIntent
	Drained  Set
	// Marks are the failure marks this node knows, package by node.
	Marks []Mark
	// LastIntent is the ID of the last intent applied.
	LastIntent uint64
}

// PackageIntent is the operator's state of one package.
type PackageIntent struct {
	Name string
	// Down: an operator halted it (or auto_run is off and nobody ran it).
	Down bool
	// Switching: automatic switching is enabled.
	Switching bool
	// Maintenance: the cluster does not act on it.
	Maintenance bool
	// Pending is a one-shot run --on or move not yet completed (ID 0: none).
	Pending Intent
}

// Mark is a failure mark.
type Mark struct {
	Package string
	Node    NodeID
}

// DecisionKind classifies a decision.
type DecisionKind uint8

const (
	// Placed: the package's target node changed (Node; 0: nowhere).
	Placed DecisionKind = iota + 1
	// Waiting: this node is the target but may not start yet (Reason).
	Waiting
	// ClaimMade: this node claims the package before starting it.
	ClaimMade
	// ClaimWithdrawn: this node no longer claims it (Reason).
	ClaimWithdrawn
	// StartOrdered: this node starts the package.
	StartOrdered
	// HaltOrdered: this node halts the package.
	HaltOrdered
	// MarkedFailed: the package is marked failed on Node.
	MarkedFailed
	// MarkCleared: an operator cleared the mark on Node.
	MarkCleared
	// IntentApplied: an operator intent took effect.
	IntentApplied
	// IntentDone: a one-shot intent completed.
	IntentDone
	// IntentRejected: an intent cannot be carried out (Reason).
	IntentRejected
)

var decisionNames = [...]string{"", "placed", "waiting", "claim", "claim-withdrawn", "start", "halt", "marked-failed", "mark-cleared", "intent", "intent-done", "intent-rejected"}

func (k DecisionKind) String() string {
	if int(k) < len(decisionNames) && k > 0 {
		return decisionNames[k]
	}
	return fmt.Sprintf("decision(%d)", k)
}

// Decision is one log-worthy event, with the local time it was taken.
type Decision struct {
	At      time.Duration
	Kind    DecisionKind
	Package string
	Node    NodeID
	// NodeName is Node's configured name ("" for 0).
	NodeName string
	Intent   uint64
	Reason   string
}

// String renders the decision for logs and golden files (without time).
func (d Decision) String() string {
	s := d.Kind.String()
	if d.Package != "" {
		s += " " + d.Package
	}
	switch {
	case d.Kind == Placed && d.Node == 0:
		s += " nowhere"
	case d.Kind == Placed:
		s += " on " + d.NodeName
	case d.NodeName != "":
		s += " " + d.NodeName
	}
	if d.Intent != 0 {
		s += fmt.Sprintf(" #%d", d.Intent)
	}
	if d.Reason != "" {
		s += " (" + d.Reason + ")"
	}
	return s
}

// Target is quorum.Target: one incarnation of a node.
type Target = quorum.Target
