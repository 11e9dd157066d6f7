package quorum

import (
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/mtcluster/mtc/quorum/ident"
	"github.com/mtcluster/mtc/quorum/liveness"
)

// MaxNodes is the largest cluster and the largest node id.
const MaxNodes = ident.MaxNodes

// NodeID is a configured node id, 1..MaxNodes (defined in quorum/ident,
// which fencing and storage use without depending on quorum).
type NodeID = ident.NodeID

// Incarnation identifies one start of a node's daemon: a random non-zero
// number chosen at each start, so a restarted node is told from a node
// that froze and came back.
type Incarnation = ident.Incarnation

// Seq is a node's publication counter. It grows by one for every
// heartbeat the node sends and every slot write it issues, within one
// incarnation.
type Seq uint64

// Set is a set of node ids as a bitmask: bit i is node i.
type Set uint32

// SetOf returns the set of the given ids.
func SetOf(ids ...NodeID) Set {
	var s Set
	for _, id := range ids {
		s = s.Add(id)
	}
	return s
}

// Has reports whether id is in s.
func (s Set) Has(id NodeID) bool { return s&(1<<id) != 0 }

// Add returns s with id.
func (s Set) Add(id NodeID) Set { return s | 1<<id }

// Remove returns s without id.
func (s Set) Remove(id NodeID) Set { return s &^ (1 << id) }

// Len is the number of ids in s.
func (s Set) Len() int { return bits.OnesCount32(uint32(s)) }

// IDs lists the ids of s in increasing order.
func (s Set) IDs() []NodeID {
	out := make([]NodeID, 0, s.Len())
	for id := NodeID(1); id <= MaxNodes; id++ {
		if s.Has(id) {
			out = append(out, id)
		}
	}
	return out
}

// Lowest is the smallest id in s, or 0 for the empty set.
func (s Set) Lowest() NodeID {
	if s == 0 {
		return 0
	}
	return NodeID(bits.TrailingZeros32(uint32(s)))
}

// String renders s as {1,2,3}.
func (s Set) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range s.IDs() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", id)
	}
	b.WriteByte('}')
	return b.String()
}

// Flags are the state bits a node publishes with every heartbeat and slot.
type Flags uint8

const (
	// FlagQuorate: the sender held quorum when it published.
	FlagQuorate Flags = 1 << iota
	// FlagSettled: no node outside the sender's member set can still
	// count on an endorsement the sender gave it earlier (the shrink
	// guard has run out). A member set is agreed only among settled nodes.
	FlagSettled
	// FlagTieHolder: the sender holds the quorum disk's tie-break lock
	// and its hold was valid when it published.
	FlagTieHolder
	// FlagStopped: the sender has stopped its packages and its watchdog
	// (it is self-fencing).
	FlagStopped
)

// Echo is what a sender last heard from one peer: that peer's incarnation
// and the highest publication counter received from it on any path. A
// peer uses the echo of its own counter to time how long the sender's
// endorsement may be counted on, on its own clock.
type Echo struct {
	Inc Incarnation
	Seq Seq
}

// Heartbeat is what a node publishes, on the network every
// HeartbeatInterval and in its quorum-disk slot on every write.
type Heartbeat struct {
	From  NodeID
	Inc   Incarnation
	Seq   Seq
	Epoch uint64 // +1 on every change of the sender's member set
	Flags Flags
	// View is the set of peers the sender hears on the network.
	View Set
	// Members is the sender's member set.
	Members Set
	// Echo[i] is what the sender last heard from node i.
	Echo [MaxNodes + 1]Echo
}

// IOResult is the outcome of one quorum-disk I/O.
type IOResult uint8

const (
	// IOOK: the I/O completed within its deadline.
	IOOK IOResult = iota
	// IOFailed: the device reported an error (including a refused write
	// of a fenced node, and a busy device whose earlier I/O is stuck).
	IOFailed
	// IOTimeout: the I/O did not complete within IOTimeout; a write may
	// still land later.
	IOTimeout
	// IOFenced: the storage refused the write with a reservation conflict
	// (EBADE): a peer removed this node's key. The node has been fenced
	// and stops at once rather than after SelfFenceAfter.
	IOFenced
)

func (r IOResult) String() string {
	switch r {
	case IOOK:
		return "ok"
	case IOFailed:
		return "failed"
	case IOTimeout:
		return "timeout"
	case IOFenced:
		return "fenced"
	}
	return "invalid"
}

// DiskOp is the kind of a quorum-disk request.
type DiskOp uint8

const (
	// DiskWriteSlot writes our own slot with Heartbeat.
	DiskWriteSlot DiskOp = iota + 1
	// DiskRead reads every slot and the tie-break lock.
	DiskRead
	// DiskWriteLock writes the tie-break lock with Lock.
	DiskWriteLock
)

func (o DiskOp) String() string {
	switch o {
	case DiskWriteSlot:
		return "write-slot"
	case DiskRead:
		return "read"
	case DiskWriteLock:
		return "write-lock"
	}
	return "invalid"
}

// LockRecord is the content of the tie-break lock sector.
type LockRecord struct {
	Owner NodeID // 0: free
	Inc   Incarnation
	Gen   uint64 // +1 on every write
}

// DiskRequest asks the driver for one quorum-disk I/O. The machine has at
// most one request outstanding; the result comes back as a DiskDone with
// the same Op.
type DiskRequest struct {
	Op        uint64
	Kind      DiskOp
	Heartbeat Heartbeat  // DiskWriteSlot
	Lock      LockRecord // DiskWriteLock
}

// SlotObservation is one peer's slot as read from the disk. Valid is false
// when the slot could not be trusted (bad checksum, torn write, never
// written): such a reading proves nothing about the peer.
type SlotObservation struct {
	Node      NodeID
	Valid     bool
	Heartbeat Heartbeat
}

// LockObservation is the tie-break lock as read; Valid false means unknown.
type LockObservation struct {
	Valid  bool
	Record LockRecord
}

// Event is an input of Step.
type Event interface{ isEvent() }

// Tick lets time pass: expire what is stale and act on deadlines.
type Tick struct{}

// NetReceived is a heartbeat received on the network.
type NetReceived struct{ Heartbeat Heartbeat }

// DiskDone is the result of a DiskRequest.
type DiskDone struct {
	Op     uint64
	Kind   DiskOp
	Result IOResult
	// Slots and Lock are set for a successful DiskRead. The machine
	// copies what it keeps: the driver may reuse Slots after Step.
	Slots []SlotObservation
	Lock  LockObservation
}

// Fenced reports that the fencing component has cut node Node
// (incarnation Inc) off the shared storage.
type Fenced struct {
	Node NodeID
	Inc  Incarnation
}

// LeftoversStopped reports that every package an earlier incarnation left
// running on this machine has stopped (see Config.LeftoversRunning).
type LeftoversStopped struct{}

func (LeftoversStopped) isEvent() {}

func (Tick) isEvent()        {}
func (NetReceived) isEvent() {}
func (DiskDone) isEvent()    {}
func (Fenced) isEvent()      {}

// Target names one incarnation of a node (Inc 0: whichever incarnation
// last ran there, when this node never heard it).
type Target struct {
	Node NodeID
	Inc  Incarnation
}

// Status is the node's current decision.
type Status struct {
	// Quorate: this node holds quorum now. It holds until QuorateUntil
	// on the local clock unless new information extends it.
	Quorate      bool
	QuorateUntil time.Duration
	// Members is the current member set and Epoch counts its changes.
	Members Set
	Epoch   uint64
	// Tie: the member set holds exactly half of the votes.
	Tie bool
	// Armed: the node has held quorum in this incarnation, so it runs
	// packages and its watchdog is armed.
	Armed bool
	// Stopped: the node has stopped its packages and its watchdog.
	Stopped bool
	// Leftovers: packages of an earlier incarnation may still run here;
	// the watchdog is not fed until they are stopped.
	Leftovers bool
	// Rejoining: a peer's fence removed this node's key before it ever
	// held quorum; it registers again and is not quorate meanwhile.
	// Rejoins counts the re-registrations of this incarnation.
	Rejoining bool
	Rejoins   int
	// StopDeadline is the local time at which the node stops unless it
	// regains quorum (when Armed) and completes a slot write before it
	// (any node); meaningless once Stopped.
	StopDeadline time.Duration
	// Reason says why the node is not quorate (zero while it is).
	Reason LossReason
	// Peers are the configured peers in increasing id order.
	Peers []PeerStatus
}

// Ready is what the machine asks its driver to do, collected since the last
// Advance.
type Ready struct {
	// Send is the heartbeat to broadcast on the network, if any.
	Send []Heartbeat
	// Disk holds at most one quorum-disk I/O to start.
	Disk []DiskRequest
	// Fence lists nodes to fence (this node coordinates its partition).
	Fence []Target
	// WithdrawFence lists fence requests made earlier, still without an
	// outcome, that are no longer wanted: the fencing component drops
	// each one it has not begun (one that has begun runs to its end, and
	// its outcome is reported as usual). They are performed before Fence.
	WithdrawFence []Target
	// Takeover lists nodes whose packages may now be taken over, and why.
	Takeover []Takeover
	// Rejoin: register this node's key again on every LUN (the fencing
	// component's fence.Fencer.Rejoin) and report the outcome as a
	// Rejoined event: a peer's fence removed the key before this
	// incarnation ever held quorum (see the package documentation,
	// Re-registration after a fence).
	Rejoin bool
	// CheckRegistration holds at most one check of this node's own
	// registration on every fenced LUN to start (the fencing
	// component's fence.Fencer.CheckRegistration), reported as a
	// RegistrationChecked with the same Op (package documentation,
	// Registration checks).
	CheckRegistration []RegistrationCheck
	// StopPackages: stop every package now and stop feeding the watchdog.
	StopPackages bool
	// FeedWatchdog: the node is healthy; feed the watchdog.
	FeedWatchdog bool
	// Decisions are the log-worthy events.
	Decisions []Decision
	// NextTick is the local time at which the machine wants a Tick.
	NextTick time.Duration
	// Status is the decision after the last Step.
	Status Status
}

// TakeoverReason says what makes a takeover safe.
type TakeoverReason uint8

const (
	// TakeoverFenced: the fencing component verified that the node is cut
	// off the shared storage: its storage may move at once.
	TakeoverFenced TakeoverReason = iota + 1
	// TakeoverWatchdog: the node's watchdog deadline has passed (it has
	// certainly stopped its packages and been reset): everything may move.
	TakeoverWatchdog
)

func (r TakeoverReason) String() string {
	switch r {
	case TakeoverFenced:
		return "fenced"
	case TakeoverWatchdog:
		return "watchdog deadline passed"
	}
	return "invalid"
}

// Takeover allows the takeover of one incarnation's packages, for Reason.
type Takeover struct {
	Target
	Reason TakeoverReason
}

// FenceFailed reports that the fencing component could not fence Node
// (incarnation Inc); Err says why. The machine asks again after a backoff
// and allows no fenced takeover until a Fenced arrives.
type FenceFailed struct {
	Node NodeID
	Inc  Incarnation
	Err  string
	// SelfFenced: the fence found this node's own key gone from a LUN
	// (fence.ErrSelfFenced, or a RESERVATION CONFLICT on its own command):
	// a peer fenced this node first, and it stops at once.
	SelfFenced bool
}

func (FenceFailed) isEvent() {}

// FenceState is where fencing of one peer stands.
type FenceState uint8

const (
	// FenceNone: nothing to fence.
	FenceNone FenceState = iota
	// FencePending: fencing was requested and has not succeeded yet.
	FencePending
	// FenceFailing: the last attempt failed (PeerStatus.FenceError); it is
	// retried.
	FenceFailing
	// FenceDone: the fencing component verified the peer fenced.
	FenceDone
)

func (s FenceState) String() string {
	return [...]string{"none", "pending", "failing", "fenced"}[s]
}

// PeerStatus is one configured peer as the machine judges it now.
type PeerStatus struct {
	Node NodeID
	// Inc is the incarnation the machine follows (0: never heard).
	Inc   Incarnation
	State PeerState
	// Net and Disk are the per-path liveness; NetAge and DiskAge are how
	// long ago the counter last changed on that path (-1: never seen).
	Net, Disk       liveness.Liveness
	NetAge, DiskAge time.Duration
	// Member: the peer is in this node's member set.
	Member bool
	// Fence is where fencing of the peer's departed incarnation stands.
	Fence      FenceState
	FenceError string
	// TakenOver: its packages have been handed to placement.
	TakenOver bool
}

// LossKind classifies why a node does not hold quorum.
type LossKind uint8

const (
	// LossNone: the node holds quorum.
	LossNone LossKind = iota
	// LossStopped: the node is self-fencing.
	LossStopped
	// LossWrites: no own slot write issued within SelfFenceAfter succeeded.
	LossWrites
	// LossVotes: the member set holds less than half of the votes.
	LossVotes
	// LossSettling: dropped peers may still count on an endorsement of
	// ours (the shrink guard).
	LossSettling
	// LossAgree: a member does not yet publish the same settled member set.
	LossAgree
	// LossIncarnation: a member has not heard this incarnation yet.
	LossIncarnation
	// LossStale: a member's endorsement of this node has run out.
	LossStale
	// LossTie: exactly half of the votes, and no member holds the lock.
	LossTie
	// LossRejoining: a peer's fence removed this node's key before it
	// ever held quorum; it registers again first.
	LossRejoining
)

// LossReason says why a node is not quorate; the zero value means it is.
type LossReason struct {
	Kind         LossKind
	Peer         NodeID
	Members      Set
	Votes, Total int
}

func (w LossReason) String() string {
	switch w.Kind {
	case LossStopped:
		return "self-fencing"
	case LossWrites:
		return "own slot writes failing"
	case LossVotes:
		return fmt.Sprintf("members %v hold %d of %d votes", w.Members, w.Votes, w.Total)
	case LossSettling:
		return "waiting for dropped peers' endorsements to run out"
	case LossAgree:
		return fmt.Sprintf("node %d does not yet agree on members %v", w.Peer, w.Members)
	case LossIncarnation:
		return fmt.Sprintf("node %d has not heard this incarnation", w.Peer)
	case LossStale:
		return fmt.Sprintf("node %d's endorsement is stale", w.Peer)
	case LossTie:
		return "exactly half of the votes: waiting for the tie-break lock"
	case LossRejoining:
		return "fenced before it held quorum: registering for fencing again"
	}
	return ""
}
