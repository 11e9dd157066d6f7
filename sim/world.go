package sim

import (
	"container/heap"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// Options configure one simulated history.
type Options struct {
	// Nodes in the cluster, 2..16.
	Nodes int
	// Timing bases; the zero value means config.DefaultTiming().
	Timing config.Timing
	// Seed of every random choice.
	Seed int64
	// Fencing: the fencing component works (a Fence request cuts the
	// node off the storage). Without it takeovers wait for TakeoverAfter.
	Fencing bool
	// NoArbiter: the machines are not told that the quorum LUN has
	// persistent reservations (quorum.Config.FenceArbiter), so a two-node
	// tie waits for the tie-break lock even with fencing.
	NoArbiter bool
	// DrawArbiter: with fencing, the storage's own random stream draws
	// whether the machines are told (three histories in four), so random
	// histories cover the tie-break lock with fencing too.
	DrawArbiter bool
	// Exact turns off randomness in the fakes: equal clock rates, fixed
	// network and disk latencies, no loss. Golden scenarios use it.
	Exact bool
	// Bug plants a defect in every node's machine or driver (checker
	// tests only; see Bug).
	Bug Bug
	// Trace, when set, receives every decision and fault as it happens.
	Trace io.Writer
	// KeepLog keeps the decision log in memory (Log).
	KeepLog bool
	// Packages: every node runs the placement machine and fake runners
	// (pkg.go), with the definitions of PackageOptions or drawn from the
	// seed.
	Packages       bool
	PackageOptions PackageOptions
}

// Violation is a broken invariant, with the absolute simulation time.
type Violation struct {
	At   time.Duration
	Rule int
	Msg  string
}

func (v Violation) String() string {
	return fmt.Sprintf("%v invariant %d: %s", fmtDur(v.At), v.Rule, v.Msg)
}

type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// slotCell and lockCell are sectors of the shared quorum disk: their
// bytes, encoded with diskhb's real format, and what they decode to (the
// decoding is done once per write, since only a write changes a sector).
type slotCell struct {
	data []byte // nil: never written by a daemon
	obs  quorum.SlotObservation
}

type lockCell struct {
	data []byte
	obs  quorum.LockObservation
}

// World is one simulated cluster: nodes, network, quorum disk, watchdogs,
// fencing and a checker of the invariants, on one absolute clock.
type World struct {
	opt Options
	// t is the configured timing, derived by the simulation: the fakes and
	// the checkers use it. mt is what the machines run on: the same,
	// unless a planted bug corrupts it.
	t     config.Derived
	mt    config.Derived
	rng   *rand.Rand
	now   time.Duration
	q     eventHeap
	seq   uint64
	nodes []*simNode // index = node id; [0] unused

	// Network: block[a][b] drops a's packets to b.
	block [quorum.MaxNodes + 1][quorum.MaxNodes + 1]bool
	link  [quorum.MaxNodes + 1][quorum.MaxNodes + 1]time.Duration
	loss  float64
	// deaf nodes receive nothing, mute ones send nothing; flapping links
	// go down and up (flapDown: down now); a babbling node's heartbeats
	// carry a view that changes every time.
	deaf, mute, babble [quorum.MaxNodes + 1]bool
	flapping, flapDown [quorum.MaxNodes + 1][quorum.MaxNodes + 1]bool
	flapGen            [quorum.MaxNodes + 1][quorum.MaxNodes + 1]uint64 // ends the toggles of healed flaps

	slots [quorum.MaxNodes + 1]slotCell
	lock  lockCell
	torn  float64 // probability that a write lands corrupted

	fencing bool
	// preempted: the registrations the world removed (World.Preempt).
	preempted map[quorum.NodeID]preemption
	cluster   uuid.UUID
	// st is the shared storage with persistent reservations (nil in a
	// history without fencing); arbiter: the machines are told so
	// (quorum.Config.FenceArbiter).
	st      *storage
	arbiter bool

	// pk is the package layer (nil without packages).
	pk *pkgWorld

	// owner[p] is the node package p (initially node p's) belongs to.
	owner [quorum.MaxNodes + 1]quorum.NodeID

	violations []Violation
	liveness   []Violation
	chk        checker
	lv         liveChecker
	log        []string
	decisions  int
	// sameInstant counts events in a row at one absolute time.
	sameInstant int
	keepLog     bool
	events      int
	// detection measurement: see MeasureDetection.
	onDecision func(w *World, n *simNode, d quorum.Decision)
}

// maxSameInstant bounds the events at one instant: far more than a burst
// of 16 nodes' messages, far less than a livelock runs up.
const maxSameInstant = 100000

// NewWorld builds a cluster of opt.Nodes nodes, all started at time 0.
func NewWorld(opt Options) (*World, error) {
	if opt.Nodes < 2 || opt.Nodes > quorum.MaxNodes {
		return nil, fmt.Errorf("sim: nodes = %d; a cluster has 2 to %d nodes", opt.Nodes, quorum.MaxNodes)
	}
	if opt.Timing == (config.Timing{}) {
		opt.Timing = config.DefaultTiming()
	}
	if errs := opt.Timing.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("sim: timing: %v", errs[0])
	}
	w := &World{opt: opt, t: opt.Timing.Derive(), rng: rand.New(rand.NewSource(opt.Seed)), fencing: opt.Fencing, keepLog: opt.KeepLog}
	w.mt = w.t
	if opt.Bug.Timing != nil {
		w.mt = opt.Bug.Timing(w.t)
	}
	w.chk.init(w)
	w.lv.init(w)
	w.rng.Read(w.cluster[:])
	if opt.Fencing {
		w.st = newStorage(w)
		w.arbiter = !opt.NoArbiter
		if opt.DrawArbiter && w.st.rng.Intn(4) == 0 {
			w.arbiter = false
		}
	}
	w.writeLock(quorum.LockRecord{}, false) // a freshly formatted disk: the lock is free
	for a := 1; a <= opt.Nodes; a++ {
		for b := 1; b <= opt.Nodes; b++ {
			w.link[a][b] = w.uniform(50*time.Microsecond, time.Millisecond)
		}
	}
	w.nodes = make([]*simNode, opt.Nodes+1)
	for i := 1; i <= opt.Nodes; i++ {
		n := &simNode{w: w, id: quorum.NodeID(i), rate: 1}
		if !opt.Exact {
			n.rate = 1 + (w.rng.Float64()*2-1)*0.02
			n.offset = time.Duration(w.rng.Int63n(int64(time.Hour)))
		}
		w.nodes[i] = n
		w.owner[i] = quorum.NodeID(i)
	}
	if opt.Packages {
		pw, err := newPkgWorld(w, opt.PackageOptions)
		if err != nil {
			return nil, err
		}
		w.pk = pw
		for _, n := range w.nodes[1:] {
			pw.initNode(n)
		}
	}
	for _, n := range w.nodes[1:] {
		n.boot()
	}
	w.patternChanged()
	return w, nil
}

// Now is the absolute simulation time.
func (w *World) Now() time.Duration { return w.now }

// Violations of the safety invariants found so far.
func (w *World) Violations() []Violation { return w.violations }

// LivenessViolations of the survivor-liveness properties found so far.
func (w *World) LivenessViolations() []Violation { return w.liveness }

// Log is the decision log (all nodes, in time order).
func (w *World) Log() []string { return w.log }

func (w *World) at(t time.Duration, fn func()) {
	if t < w.now {
		t = w.now
	}
	w.seq++
	heap.Push(&w.q, &event{at: t, seq: w.seq, fn: fn})
}

// RunUntil processes events up to absolute time t.
func (w *World) RunUntil(t time.Duration) {
	for len(w.q) > 0 && w.q[0].at <= t {
		e := heap.Pop(&w.q).(*event)
		w.events++
		if e.at == w.now {
			w.sameInstant++
		} else {
			w.sameInstant = 0
		}
		w.now = e.at
		if w.sameInstant > maxSameInstant {
			// Time no longer advances: report it rather than hang.
			w.violate(0, "more than %d events at one instant: the simulation livelocks", maxSameInstant)
			w.q = nil
			break
		}
		e.fn()
	}
	if w.now < t {
		w.now = t
	}
}

// Run lets d pass.
func (w *World) Run(d time.Duration) { w.RunUntil(w.now + d) }

func (w *World) node(id quorum.NodeID) *simNode {
	if int(id) < 1 || int(id) >= len(w.nodes) {
		return nil
	}
	return w.nodes[id]
}

func (w *World) trace(format string, args ...any) {
	if !w.keepLog && w.opt.Trace == nil {
		return
	}
	line := fmt.Sprintf("%9s ", fmtDur(w.now)) + fmt.Sprintf(format, args...)
	w.log = append(w.log, line)
	if w.opt.Trace != nil {
		fmt.Fprintln(w.opt.Trace, line)
	}
}

func (w *World) violate(rule int, format string, args ...any) {
	v := Violation{At: w.now, Rule: rule, Msg: fmt.Sprintf(format, args...)}
	w.violations = append(w.violations, v)
	w.trace("VIOLATION %s", v.String())
}

// delivers: a packet from a to b is not dropped by a fault (it may still
// be lost at the loss rate).
func (w *World) delivers(a, b quorum.NodeID) bool {
	return !w.block[a][b] && !w.mute[a] && !w.deaf[b] && !w.flapDown[a][b]
}

// allNodes is the set of every configured node.
func (w *World) allNodes() quorum.Set {
	all := quorum.Set(0)
	for _, n := range w.nodes[1:] {
		all = all.Add(n.id)
	}
	return all
}

// reformed: every node is up and quorate with every node as a member.
func (w *World) reformed() bool {
	all := w.allNodes()
	for _, n := range w.nodes[1:] {
		if !w.quorateNow(n) || n.status.Members != all {
			return false
		}
	}
	return true
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%d.%03ds", d/time.Second, (d%time.Second)/time.Millisecond)
}

// uniform draws a duration in [lo, hi].
func (w *World) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rng.Int63n(int64(hi-lo)+1))
}

// uniformWith draws a duration in [lo, hi] from r.
func (w *World) uniformWith(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int63n(int64(hi-lo)+1))
}

// Close ends the fencing operations still under way (their goroutines
// wait for replies that will not come once the history stops).
func (w *World) Close() {
	for _, n := range w.nodes[1:] {
		n.abandonFence()
	}
}

// netDelay is one packet's delay on the link a->b: the link's own base
// latency plus jitter, and now and then a late, reordered packet.
func (w *World) netDelay(a, b quorum.NodeID) time.Duration {
	if w.opt.Exact {
		return time.Millisecond
	}
	d := w.link[a][b] + w.uniform(0, time.Millisecond)
	if w.rng.Float64() < 0.02 {
		d += w.uniform(0, w.t.HeartbeatInterval) // a late, reordered packet
	}
	return d
}

func (w *World) broadcast(from *simNode, hbv quorum.Heartbeat) {
	if w.opt.Bug.MuteAfterQuorum && from.id == 1 && from.obs.armed {
		return
	}
	if w.opt.Bug.StrayMembers && from.id == 1 && from.obs.armed {
		if from.strays++; from.strays%40 == 0 {
			var top quorum.NodeID
			for m := hbv.Members.Remove(1); m != 0; m = m.Remove(top) {
				top = m.Lowest()
			}
			if top != 0 {
				hbv.Members = hbv.Members.Remove(top)
			}
		}
	}
	if w.babble[from.id] {
		// A faulty peer: its view changes every heartbeat.
		hbv.View = quorum.Set(w.rng.Uint32()) & w.allNodes()
	}
	hb := &hbv // one copy shared by every delivery
	var rep *placement.Report
	if from.pk != nil {
		rep = from.pk.report // placement's latest report rides along
	}
	for _, to := range w.nodes[1:] {
		if to == from {
			continue
		}
		if !w.delivers(from.id, to.id) {
			// A cut, one-way, flapping, mute or deaf link: the world
			// dropped the packet, as the background loss does.
			w.lostPacket(from.id, to.id)
			continue
		}
		copies := 1
		if !w.opt.Exact {
			if w.rng.Float64() < w.loss {
				w.lostPacket(from.id, to.id)
				continue
			}
			if w.rng.Float64() < 0.01 {
				copies = 2
			}
		}
		for i := 0; i < copies; i++ {
			to := to
			w.at(w.now+w.netDelay(from.id, to.id), func() {
				w.arrived(from.id, to.id)
				if to.up && !to.frozen {
					to.step(quorum.NetReceived{Heartbeat: *hb})
					to.received(rep)
				}
			})
		}
	}
}

// String summarises the world (for traces).
func (w *World) String() string {
	var b strings.Builder
	for _, n := range w.nodes[1:] {
		st := n.status
		fmt.Fprintf(&b, "n%d up=%v q=%v m=%v; ", n.id, n.up, st.Quorate, st.Members)
	}
	return b.String()
}

func absCeil(f float64) time.Duration {
	return time.Duration(math.Ceil(f))
}
