package quorum

import (
	"fmt"
	"time"
)

// DecisionKind classifies a log-worthy decision.
type DecisionKind uint8

const (
	// MembershipChanged: the member set changed (Members, Reason).
	MembershipChanged DecisionKind = iota + 1
	// QuorumGained: the node now holds quorum with Members.
	QuorumGained
	// QuorumLost: the node no longer holds quorum (Reason).
	QuorumLost
	// PeerStateChanged: a peer's liveness class changed (Peer, State).
	PeerStateChanged
	// PeerRestarted: a peer's incarnation changed (Peer, Inc is the new one).
	PeerRestarted
	// TieClaimStarted: this node writes a claim of the tie-break lock.
	TieClaimStarted
	// TieWon: the claim read back intact; this node holds the lock.
	TieWon
	// TieLost: the claim was overwritten, or the lock shows another owner.
	TieLost
	// FenceRequested: this node asks the fencing component to fence Peer.
	FenceRequested
	// PeerFenced: the fencing component reported Peer fenced.
	PeerFenced
	// TakeoverAllowed: Peer's packages may be taken over (Reason says why).
	TakeoverAllowed
	// SelfFence: the node stops its packages and its watchdog (Reason).
	SelfFence
	// DiskWriteFailing: an own slot write failed (Reason); the node
	// self-fences if no write succeeds within SelfFenceAfter.
	DiskWriteFailing
	// DiskWriteRecovered: an own slot write succeeded after failures.
	DiskWriteRecovered
	// PeerResurrected: a peer judged dead on a path counts again in the
	// same incarnation: it froze and came back (it finds its own leases
	// expired and stops; it is fenced or reset before anyone takes over).
	PeerResurrected
	// FenceFailedKind: the fencing component could not fence Peer
	// (Reason); the request is retried after a backoff.
	FenceFailedKind
	// QuorumJoining: quorum paused because the member set grew to Members
	// (a node joins) and the new members do not agree yet (Reason). The
	// majority is intact; routine at every cluster formation.
	QuorumJoining
	// QuorumSettling: quorum paused because a member left: the remaining
	// Members hold a majority and wait for the dropped peer's endorsements
	// to run out and for each other to agree (Reason). It is reported as
	// QuorumLost if it does not end within EndorseGuard + 1.5 heartbeat
	// intervals, or the majority is lost.
	QuorumSettling
	// LeftoversStoppedKind: the packages an earlier incarnation left
	// running on this machine are stopped; the watchdog is fed from now.
	LeftoversStoppedKind
	// RejoinRequested: a peer's fence removed this node's key before
	// this incarnation held quorum; it registers again (Reason: which
	// attempt).
	RejoinRequested
	// RejoinDone: the key is registered and verified on every LUN again.
	RejoinDone
	// RejoinFailed: a re-registration failed (Reason); the node tries
	// again after a backoff or, past MaxRejoins, stops as fenced.
	RejoinFailed
	// RegistrationLost: a registration check found this node's key gone
	// from a LUN (Reason: which): a peer fenced it. The node stops, or,
	// when it never held quorum and counted no peer in, registers again.
	RegistrationLost
	// RegistrationUnread: a registration check could not read every LUN
	// (Reason); the registration there is unknown, not lost. Reported
	// once until a check reads every LUN again.
	RegistrationUnread
	// RegistrationRead: a check read every LUN again after
	// RegistrationUnread, and the key is on each.
	RegistrationRead
	// FenceWithdrawn: a fence request this node made, with no outcome
	// yet, is no longer wanted (Reason: why): the peer was admitted to
	// the member set again, or it restarted and its new incarnation is
	// not to be fenced. The fencing component drops it unless it has
	// begun.
	FenceWithdrawn
)

var decisionNames = [...]string{
	MembershipChanged:    "members",
	QuorumGained:         "quorum-gained",
	QuorumLost:           "quorum-lost",
	PeerStateChanged:     "peer",
	PeerRestarted:        "peer-restarted",
	TieClaimStarted:      "tie-claim",
	TieWon:               "tie-won",
	TieLost:              "tie-lost",
	FenceRequested:       "fence",
	PeerFenced:           "fenced",
	TakeoverAllowed:      "takeover",
	SelfFence:            "self-fence",
	DiskWriteFailing:     "disk-write-failing",
	DiskWriteRecovered:   "disk-write-ok",
	PeerResurrected:      "peer-resurrected",
	FenceFailedKind:      "fence-failed",
	QuorumJoining:        "quorum-joining",
	QuorumSettling:       "quorum-settling",
	LeftoversStoppedKind: "leftovers-stopped",
	RejoinRequested:      "rejoin",
	RejoinDone:           "rejoined",
	RejoinFailed:         "rejoin-failed",
	RegistrationLost:     "registration-lost",
	RegistrationUnread:   "registration-unread",
	RegistrationRead:     "registration-read",
	FenceWithdrawn:       "fence-withdrawn",
}

func (k DecisionKind) String() string {
	if int(k) < len(decisionNames) && decisionNames[k] != "" {
		return decisionNames[k]
	}
	return fmt.Sprintf("decision(%d)", k)
}

// PeerState is a peer's liveness class, combining both paths.
type PeerState uint8

const (
	// PeerUnknown: not yet seen changing on any path.
	PeerUnknown PeerState = iota
	// PeerAlive: its network counter changes.
	PeerAlive
	// PeerSuspect: silent on the network for SuspectAfter (reported only).
	PeerSuspect
	// PeerPartitioned: gone on the network, its disk counter still changes.
	PeerPartitioned
	// PeerDead: gone on both paths.
	PeerDead
)

func (s PeerState) String() string {
	return [...]string{"unknown", "alive", "suspect", "partitioned", "dead"}[s]
}

// Decision is one log-worthy event with the local time it was taken.
type Decision struct {
	At      time.Duration
	Kind    DecisionKind
	Peer    NodeID
	Inc     Incarnation
	State   PeerState
	Members Set
	Reason  string
}

// String renders the decision for logs and golden files (without time).
func (d Decision) String() string {
	switch d.Kind {
	case MembershipChanged:
		return fmt.Sprintf("members %v", d.Members)
	case QuorumGained:
		return fmt.Sprintf("quorum-gained %v", d.Members)
	case QuorumLost, QuorumJoining, QuorumSettling:
		return fmt.Sprintf("%v (%s)", d.Kind, d.Reason)
	case PeerStateChanged:
		return fmt.Sprintf("peer %d %v", d.Peer, d.State)
	case PeerRestarted, PeerResurrected:
		return fmt.Sprintf("%v %d", d.Kind, d.Peer)
	case FenceRequested, PeerFenced:
		return fmt.Sprintf("%v %d", d.Kind, d.Peer)
	case TakeoverAllowed:
		return fmt.Sprintf("takeover %d (%s)", d.Peer, d.Reason)
	case FenceFailedKind, FenceWithdrawn:
		return fmt.Sprintf("%v %d (%s)", d.Kind, d.Peer, d.Reason)
	case SelfFence, DiskWriteFailing, RejoinRequested, RejoinFailed, RegistrationLost, RegistrationUnread:
		return fmt.Sprintf("%v (%s)", d.Kind, d.Reason)
	}
	return d.Kind.String()
}

// Severity is how much a decision matters to an operator reading the log.
type Severity uint8

const (
	// SeverityInfo: routine (a peer seen, a membership re-agreed).
	SeverityInfo Severity = iota
	// SeverityWarn: worth a look (a peer suspected or gone, fencing asked).
	SeverityWarn
	// SeverityError: service is affected (quorum lost, a self-fence, a
	// fence that failed).
	SeverityError
)

// Severity classifies d for logs and notifications. The mapping lives here,
// beside the kinds, so every driver reports the same decision alike.
func (d Decision) Severity() Severity {
	switch d.Kind {
	case QuorumLost, SelfFence, DiskWriteFailing, FenceFailedKind, TieLost, RejoinFailed, RegistrationLost:
		return SeverityError
	case RegistrationUnread, RejoinRequested, RejoinDone, PeerRestarted, PeerResurrected, FenceRequested, FenceWithdrawn, PeerFenced, TakeoverAllowed, TieClaimStarted, TieWon, DiskWriteRecovered, QuorumSettling:
		return SeverityWarn
	case PeerStateChanged:
		if d.State == PeerAlive || d.State == PeerUnknown {
			return SeverityInfo
		}
		return SeverityWarn
	}
	return SeverityInfo
}
