package quorum

import (
	"container/heap"
	"fmt"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// testCluster runs a few machines against an in-memory network and quorum
// disk, both faithful to what the machine assumes of them: every heartbeat
// arrives after delay unless its link is blocked, and every disk I/O
// completes ioTime after it starts. It is deliberately smaller than package
// sim: the tests here pin one mechanism each, with faults set by hand.
type testCluster struct {
	t     *testing.T
	d     timing.Derived
	delay time.Duration
	nodes []*tcNode // index = node id; 0 unused
	now   time.Duration
	seq   int
	q     tcQueue
	block [MaxNodes + 1][MaxNodes + 1]bool // block[a][b]: a's packets to b are lost
	slots [MaxNodes + 1]SlotObservation
	lock  LockRecord
	// sentAt[i][seq]: when node i published counter seq (network or slot).
	sentAt [MaxNodes + 1]map[Seq]time.Duration
	// fenced[i]: node i's key is gone from the quorum LUN, so the storage
	// refuses its writes (IOFenced) until a re-registration (Ready.Rejoin)
	// succeeds; rejoinErr[i], if set, fails node i's re-registrations,
	// and rejoins[i] counts those asked for.
	fenced    [MaxNodes + 1]bool
	rejoinErr [MaxNodes + 1]string
	rejoins   [MaxNodes + 1]int
	// dataGone[i]: node i's key is gone from the data LUN only (a late
	// fence), which only a registration check shows, until a
	// re-registration; checkErr[i], if set, makes node i's checks fail
	// to read that LUN; checks[i] counts the checks asked for, at the
	// times in checkAt[i].
	dataGone [MaxNodes + 1]bool
	checkErr [MaxNodes + 1]string
	checks   [MaxNodes + 1]int
	checkAt  [MaxNodes + 1][]time.Duration
	// onRejoin, if set, runs as node id's re-registration completes.
	onRejoin func(id NodeID)
	// tap, if set, sees every heartbeat delivered to a node on the
	// network; diskTap every valid slot a node's disk read returns.
	tap     func(to NodeID, at time.Duration, hb Heartbeat)
	diskTap func(to NodeID, at time.Duration, hb Heartbeat)
	// rewrite, if set, may change a heartbeat as it is sent on the
	// network (a babbling node), and in the slot writes too if
	// rewriteSlots.
	rewrite      func(hb *Heartbeat)
	rewriteSlots bool
}

type tcNode struct {
	id   NodeID
	m    *Node
	down bool // crashed: receives nothing, does nothing
	wake time.Duration
	// What the node did, for the assertions.
	decisions []Decision
	withdrawn []Target      // Ready.WithdrawFence, in order
	stoppedAt time.Duration // -1 while running
	fed       bool          // fed the watchdog at least once
	// Quorum timeline: the longest stretch without quorum after the
	// first quorum, and when the current stretch began.
	quorate   bool
	until     time.Duration // QuorateUntil of the last quorate step
	everQ     bool
	lostAt    time.Duration
	longest   time.Duration
	longestAt time.Duration
	gainedAt  time.Duration // the last QuorumGained
}

type tcEvent struct {
	at   time.Duration
	seq  int
	node NodeID
	ev   Event
}

type tcQueue []tcEvent

func (q tcQueue) Len() int { return len(q) }
func (q tcQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q tcQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *tcQueue) Push(x any)   { *q = append(*q, x.(tcEvent)) }
func (q *tcQueue) Pop() any     { o := *q; e := o[len(o)-1]; *q = o[:len(o)-1]; return e }
func (c *testCluster) push(at time.Duration, id NodeID, ev Event) {
	c.seq++
	heap.Push(&c.q, tcEvent{at: at, seq: c.seq, node: id, ev: ev})
}

const tcIOTime = 2 * time.Millisecond

// newCluster configures n one-vote nodes with timing tm; node i gets
// incarnation 1000*i + 1 and starts 7ms after node i-1.
func newCluster(t *testing.T, n int, tm timing.Timing) *testCluster {
	return newStaggered(t, n, tm, 7*time.Millisecond)
}

// newStaggered is newCluster with node i starting i x stagger in, so the
// nodes' heartbeat cadences are that far apart.
func newStaggered(t *testing.T, n int, tm timing.Timing, stagger time.Duration) *testCluster {
	t.Helper()
	c := &testCluster{t: t, d: tm.Derive(), delay: time.Millisecond, nodes: make([]*tcNode, n+1)}
	var members []Member
	for i := 1; i <= n; i++ {
		members = append(members, Member{ID: NodeID(i), Votes: 1})
	}
	for i := 1; i <= n; i++ {
		cfg := Config{Self: NodeID(i), Nodes: members, Timing: c.d, Incarnation: Incarnation(1000*i + 1)}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		c.nodes[i] = &tcNode{id: NodeID(i), m: New(cfg), stoppedAt: -1}
		// Stagger the starts so the nodes' cadences differ.
		c.push(time.Duration(i)*stagger, NodeID(i), Tick{})
	}
	return c
}

// checking turns on the registration checks of every machine (before
// the cluster runs).
func (c *testCluster) checking() {
	for _, n := range c.nodes[1:] {
		cfg := n.m.cfg
		cfg.CheckRegistration = true
		n.m = New(cfg)
	}
}

// restart replaces node id's machine with a new incarnation started now.
func (c *testCluster) restart(id NodeID, inc Incarnation, leftovers bool) {
	old := c.nodes[id].m
	cfg := old.cfg
	cfg.Incarnation, cfg.LeftoversRunning = inc, leftovers
	c.nodes[id] = &tcNode{id: id, m: New(cfg), stoppedAt: -1}
	c.push(c.now, id, Tick{})
}

func (c *testCluster) step(n *tcNode, ev Event) {
	if n.down {
		return
	}
	n.m.Step(c.now, ev)
	rd := n.m.Ready()
	n.m.Advance()
	n.decisions = append(n.decisions, rd.Decisions...)
	n.withdrawn = append(n.withdrawn, rd.WithdrawFence...)
	if rd.FeedWatchdog {
		n.fed = true
	}
	if rd.Status.Stopped && n.stoppedAt < 0 {
		n.stoppedAt = c.now
	}
	q := rd.Status.Quorate
	switch {
	case q && !n.quorate:
		if n.everQ {
			if gap := c.now - n.lostAt; gap > n.longest {
				n.longest, n.longestAt = gap, n.lostAt
			}
		}
		n.everQ = true
		n.gainedAt = c.now
	case !q && n.quorate:
		n.lostAt = min(c.now, n.until)
	}
	n.quorate = q
	if q {
		n.until = rd.Status.QuorateUntil
	}
	published := func(hb Heartbeat) {
		if c.sentAt[n.id] == nil {
			c.sentAt[n.id] = map[Seq]time.Duration{}
		}
		if _, ok := c.sentAt[n.id][hb.Seq]; !ok {
			c.sentAt[n.id][hb.Seq] = c.now
		}
	}
	for _, hb := range rd.Send {
		published(hb)
		if c.rewrite != nil {
			c.rewrite(&hb)
		}
		for _, to := range c.nodes[1:] {
			if to.id != n.id && !c.block[n.id][to.id] {
				c.push(c.now+c.delay, to.id, NetReceived{Heartbeat: hb})
			}
		}
	}
	if rd.Rejoin {
		c.rejoins[n.id]++
		ev := Rejoined{Err: c.rejoinErr[n.id]}
		if ev.Err == "" {
			c.fenced[n.id] = false
			c.dataGone[n.id] = false
			if c.onRejoin != nil {
				c.onRejoin(n.id)
			}
		}
		c.push(c.now+tcIOTime, n.id, ev)
	}
	for _, r := range rd.CheckRegistration {
		c.checks[n.id]++
		c.checkAt[n.id] = append(c.checkAt[n.id], c.now)
		ev := RegistrationChecked{Op: r.Op, Err: c.checkErr[n.id]}
		if c.fenced[n.id] {
			ev.Gone = append(ev.Gone, "quorum")
		}
		if c.dataGone[n.id] && ev.Err == "" {
			ev.Gone = append(ev.Gone, "data")
		}
		c.push(c.now+tcIOTime, n.id, ev)
	}
	for _, r := range rd.Disk {
		done := DiskDone{Op: r.Op, Kind: r.Kind, Result: IOOK}
		if c.fenced[n.id] && r.Kind != DiskRead {
			done.Result = IOFenced
			c.push(c.now+tcIOTime, n.id, done)
			continue
		}
		switch r.Kind {
		case DiskWriteSlot:
			published(r.Heartbeat)
			if c.rewrite != nil && c.rewriteSlots {
				c.rewrite(&r.Heartbeat)
			}
			c.slots[n.id] = SlotObservation{Node: n.id, Valid: true, Heartbeat: r.Heartbeat}
		case DiskRead:
			for _, s := range c.slots {
				if s.Valid {
					done.Slots = append(done.Slots, s)
				}
			}
			done.Lock = LockObservation{Valid: true, Record: c.lock}
		case DiskWriteLock:
			c.lock = r.Lock
		}
		c.push(c.now+tcIOTime, n.id, done)
	}
	n.wake = rd.NextTick
}

// run advances the cluster to time until.
func (c *testCluster) run(until time.Duration) {
	for {
		next := until
		var who *tcNode
		for _, n := range c.nodes[1:] {
			if w := max(n.wake, c.now); !n.down && n.wake > 0 && w <= next && (who == nil || w < next) {
				next, who = w, n
			}
		}
		if c.q.Len() > 0 && (c.q[0].at < next || c.q[0].at <= next && who == nil) {
			e := heap.Pop(&c.q).(tcEvent)
			c.now = e.at
			n := c.nodes[e.node]
			if nr, ok := e.ev.(NetReceived); ok && c.tap != nil && !n.down {
				c.tap(n.id, c.now, nr.Heartbeat)
			}
			if dd, ok := e.ev.(DiskDone); ok && c.diskTap != nil && !n.down {
				for _, s := range dd.Slots {
					if s.Valid {
						c.diskTap(n.id, c.now, s.Heartbeat)
					}
				}
			}
			c.step(n, e.ev)
			continue
		}
		if who == nil {
			c.now = until
			return
		}
		c.now = next
		who.wake = 0 // until the step asks again
		c.step(who, Tick{})
	}
}

// cut drops every packet from a to b from now on; heal restores them all.
func (c *testCluster) cut(a, b NodeID) { c.block[a][b] = true }
func (c *testCluster) heal()           { c.block = [MaxNodes + 1][MaxNodes + 1]bool{} }

// deaf: node id receives nothing from now on (it still sends).
func (c *testCluster) deaf(id NodeID) {
	for _, n := range c.nodes[1:] {
		if n.id != id {
			c.cut(n.id, id)
		}
	}
}

// mute: nothing node id sends arrives from now on (it still receives).
func (c *testCluster) mute(id NodeID) {
	for _, n := range c.nodes[1:] {
		if n.id != id {
			c.cut(id, n.id)
		}
	}
}

// formed runs until every node holds quorum with every node as a member.
func (c *testCluster) formed() {
	c.t.Helper()
	all := Set(0)
	for _, n := range c.nodes[1:] {
		all = all.Add(n.id)
	}
	for c.now < 30*time.Second {
		c.run(c.now + c.d.HeartbeatInterval)
		ok := true
		for _, n := range c.nodes[1:] {
			st := n.m.Status()
			ok = ok && st.Quorate && st.Members == all
		}
		if ok {
			for _, n := range c.nodes[1:] {
				n.longest = 0 // stretches before the first full formation do not count
			}
			return
		}
	}
	c.t.Fatalf("no formation by %v:\n%s", c.now, c.describe())
}

func (c *testCluster) describe() string {
	var s string
	for _, n := range c.nodes[1:] {
		s += n.m.Describe() + "\n"
	}
	return s
}

// gap is the longest stretch without quorum of node id so far, the current
// one included.
func (n *tcNode) gap(now time.Duration) time.Duration {
	g := n.longest
	if n.everQ && !n.quorate && now-n.lostAt > g {
		g = now - n.lostAt
	}
	return g
}

func (n *tcNode) count(k DecisionKind) int {
	c := 0
	for _, d := range n.decisions {
		if d.Kind == k {
			c++
		}
	}
	return c
}

func (n *tcNode) log() string {
	var s string
	for _, d := range n.decisions {
		s += fmt.Sprintf("  %v n%d %v\n", d.At, n.id, d)
	}
	return s
}

// transitionBound is the longest stretch without quorum that a member of
// a connected majority may see in one membership change (package doc,
// "Transitions"): EndorseGuard + HeartbeatInterval, plus a few network
// delays and disk I/O times of this test's network and disk.
func transitionBound(d timing.Derived, delay time.Duration) time.Duration {
	return d.EndorseGuard + d.HeartbeatInterval + 4*delay + 2*tcIOTime
}

// profiles are the documented timings and one with a failure timeout of
// 30 heartbeats, where the survivor-liveness bound R is tightest.
var profiles = map[string]timing.Timing{
	"default":    timing.DefaultTiming(),
	"aggressive": timing.AggressiveTiming(),
	"long":       {HeartbeatInterval: 100 * time.Millisecond, IOTimeout: 100 * time.Millisecond, FailureTimeout: 3 * time.Second, WatchdogTimeout: 5 * time.Second},
}

// survivorBound is R of the survivor-liveness contract: a connected
// majority is quorate again this long after a fault begins, computed from
// the timing alone.
func survivorBound(d timing.Derived) time.Duration {
	return d.EndorseGuard + d.SuspectAfter + 3*d.HeartbeatInterval + 2*d.IOTimeout
}
