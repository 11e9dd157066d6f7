package quorum

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/mtcluster/mtc/config/timing"
)

// survivorsKeepQuorum checks that every node in keep never self-fenced,
// that its longest stretch without quorum is within the transition bound,
// that it was quorate again within R of the fault at faultAt and stayed so,
// and that each is quorate with exactly the members keep at the end.
func survivorsKeepQuorum(t *testing.T, c *testCluster, keep Set, faultAt time.Duration) {
	t.Helper()
	bound := transitionBound(c.d, c.delay)
	for _, id := range keep.IDs() {
		n := c.nodes[id]
		st := n.m.Status()
		for _, d := range n.decisions {
			if d.Kind == QuorumLost && d.At > faultAt {
				t.Errorf("node %d reported a loss of quorum at %v for a change it rode through\n%s", id, d.At, n.log())
			}
		}
		if r := survivorBound(c.d); n.gainedAt > faultAt+r {
			t.Errorf("node %d regained quorum %v after the fault; R is %v\n%s", id, n.gainedAt-faultAt, r, n.log())
		}
		if n.stoppedAt >= 0 {
			t.Errorf("node %d of the connected majority %v self-fenced at %v\n%s", id, keep, n.stoppedAt, n.log())
		}
		if g := n.gap(c.now); g > bound {
			t.Errorf("node %d went %v without quorum (from %v); the bound is %v\n%s", id, g, n.longestAt, bound, n.log())
		}
		if !st.Quorate || st.Members != keep {
			t.Errorf("node %d at %v: quorate=%v members=%v (%v), want quorate with %v\n%s", id, c.now, st.Quorate, st.Members, st.Reason, keep, n.log())
		}
	}
}

func allBut(c *testCluster, ids ...NodeID) Set {
	var s Set
	for _, n := range c.nodes[1:] {
		s = s.Add(n.id)
	}
	for _, id := range ids {
		s = s.Remove(id)
	}
	return s
}

// A node that still sends but receives nothing (issue: one deaf node reset
// every node) self-fences alone; the others keep quorum through the change,
// at 3 and 5 nodes and at both profiles.
//
// The nodes' cadences are spread from a few milliseconds to most of a
// heartbeat apart, so the survivors notice the deafness at different
// heartbeats of the deaf node: a survivor that has not noticed yet then
// picks the clique with the deaf node for a moment and drops a fellow
// survivor, which must cost it neither the grace nor its quorum for long.
func TestDeafNodeFencesAlone(t *testing.T) {
	for name, tm := range profiles {
		for _, size := range []int{3, 5} {
			for _, stagger := range []int{1, 30, 45, 60, 95} { // percent of a heartbeat
				t.Run(fmt.Sprintf("%s/%d/%d", name, size, stagger), func(t *testing.T) {
					c := newStaggered(t, size, tm, tm.HeartbeatInterval*time.Duration(stagger)/100)
					c.formed()
					fault := c.now
					c.deaf(1)
					c.run(c.now + 12*time.Second)
					survivorsKeepQuorum(t, c, allBut(c, 1), fault)
					if c.nodes[1].stoppedAt < 0 {
						t.Errorf("the deaf node did not self-fence\n%s", c.nodes[1].log())
					}
				})
			}
		}
	}
}

// While the survivors wait out the shrink guard, the stop deadline carries
// SettleGrace for the whole transition, including the wait for the other
// members' settled flag after the deaf node's own Stopped heartbeat ended
// the guard; and the self-fence clock starts where quorum really ran out,
// or later while peers with a majority still list node 2 as a member (the
// hold of heldByPeers), never later than the last instant the heartbeats
// node 2 received show such a majority.
func TestTransitionKeepsTheGrace(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	// The latest heartbeat node 2 received from each peer, on either path.
	var latest [MaxNodes + 1]Heartbeat
	var have [MaxNodes + 1]bool
	see := func(to NodeID, at time.Duration, hb Heartbeat) {
		if to == 2 && hb.From != 2 && (!have[hb.From] || hb.Inc != latest[hb.From].Inc || hb.Seq > latest[hb.From].Seq) {
			latest[hb.From], have[hb.From] = hb, true
		}
	}
	c.tap, c.diskTap = see, see
	inc := c.nodes[2].m.Incarnation()
	// lists: some set with node 2 and two of the three votes is what every
	// other member of it last published, settled and not stopped, with an
	// echo of a counter node 2 sent less than DeadAfter ago.
	lists := func() bool {
		for id := range latest {
			p := latest[id].Members
			if !have[id] || !p.Has(2) || 2*p.Len() <= 3 {
				continue
			}
			ok := true
			for _, m := range p.Remove(2).IDs() {
				l := &latest[m]
				at, sent := c.sentAt[2][l.Echo[2].Seq]
				if !have[m] || l.Members != p || l.Flags&FlagSettled == 0 || l.Flags&FlagStopped != 0 || l.Echo[2].Inc != inc || !sent || at+c.d.DeadAfter <= c.now {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
	c.deaf(1)
	sawTransition, held := false, 0
	listed := time.Duration(-1)
	const sample = time.Millisecond
	end := c.now + 4*time.Second
	for c.now < end {
		c.run(c.now + sample)
		n := c.nodes[2]
		st := n.m.Status()
		if lists() {
			listed = c.now
		}
		if st.Quorate || !n.everQ {
			continue
		}
		sawTransition = true
		m := n.m
		if !m.transition || m.lastQuorate != n.lostAt {
			t.Fatalf("at %v node 2 (%v): transition=%v, self-fence clock from %v, want a transition from %v", c.now, st.Reason, m.transition, m.lastQuorate, n.lostAt)
		}
		// A step between two samples may still have seen the majority
		// the later sample no longer shows: one sample of slack.
		grace := c.d.SelfFenceAfter + c.d.SettleGrace
		disk := m.lastWriteOK + c.d.SelfFenceAfter
		lo, hi := min(n.lostAt+grace, disk), min(max(n.lostAt, listed+sample)+grace, disk)
		if st.StopDeadline < lo || st.StopDeadline > hi {
			t.Fatalf("at %v node 2 (%v) stops at %v, want %v..%v", c.now, st.Reason, st.StopDeadline, lo, hi)
		}
		if st.StopDeadline > lo {
			held++
		}
	}
	if !sawTransition {
		t.Fatal("node 2 never lost quorum: nothing tested")
	}
	t.Logf("the hold moved node 2's deadline past the loss at %d of the samples", held)
}

// A node whose packets reach nobody (it still hears everyone) self-fences
// alone.
func TestMuteNodeFencesAlone(t *testing.T) {
	for name, tm := range profiles {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, tm)
			c.formed()
			fault := c.now
			c.mute(1)
			c.run(c.now + 12*time.Second)
			survivorsKeepQuorum(t, c, allBut(c, 1), fault)
			if c.nodes[1].stoppedAt < 0 {
				t.Errorf("the mute node did not self-fence\n%s", c.nodes[1].log())
			}
		})
	}
}

// A link that works one way only (1 -> 2 lost) held for 20 s: nodes 1 and
// 3 form the connected majority the deterministic choice keeps, keep
// quorum through the change, and node 2 alone stops; no node is dropped
// and re-added over and over.
func TestOneWayLinkHeld(t *testing.T) {
	for name, tm := range profiles {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, tm)
			c.formed()
			before := map[NodeID]int{1: c.nodes[1].count(MembershipChanged), 3: c.nodes[3].count(MembershipChanged)}
			fault := c.now
			c.cut(1, 2)
			c.run(c.now + 20*time.Second)
			survivorsKeepQuorum(t, c, SetOf(1, 3), fault)
			for _, id := range []NodeID{1, 3} {
				if k := c.nodes[id].count(MembershipChanged) - before[id]; k != 1 {
					t.Errorf("node %d changed its members %d times\n%s", id, k, c.nodes[id].log())
				}
			}
		})
	}
}

// A link that drops out for less than SuspectAfter again and again costs
// nothing: no membership change, no moment without quorum.
func TestShortFlapsCostNothing(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	before := c.nodes[1].count(MembershipChanged)
	flap := c.d.SuspectAfter - c.d.HeartbeatInterval
	for i := 0; i < 20; i++ {
		c.cut(1, 2)
		c.cut(2, 1)
		c.run(c.now + flap)
		c.heal()
		c.run(c.now + flap)
	}
	for _, n := range c.nodes[1:] {
		if n.gap(c.now) > 0 || n.count(MembershipChanged) != before {
			t.Errorf("node %d: %v without quorum, %d membership changes\n%s", n.id, n.gap(c.now), n.count(MembershipChanged)-before, n.log())
		}
	}
}

// A link that flaps slower than the failure timeout, both ways: the
// connected majority at each moment survives every change without a
// self-fence.
func TestSlowFlapsNeverFenceTheMajority(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	for i := 0; i < 6; i++ {
		c.cut(1, 2)
		c.cut(2, 1)
		c.run(c.now + 3*c.d.DeadAfter)
		c.heal()
		c.run(c.now + 3*c.d.DeadAfter)
	}
	if n := c.nodes[3]; n.stoppedAt >= 0 || n.gap(c.now) > transitionBound(c.d, c.delay) {
		t.Errorf("node 3, in every connected majority, stopped at %v or went %v without quorum\n%s", n.stoppedAt, n.gap(c.now), n.log())
	}
	c.run(c.now + 2*c.d.TakeoverAfter)
	running := Set(0) // no watchdog resets here: a stopped node stays out
	for _, n := range c.nodes[1:] {
		if n.stoppedAt < 0 {
			running = running.Add(n.id)
		}
	}
	for _, n := range c.nodes[1:] {
		if st := n.m.Status(); n.stoppedAt < 0 && (!st.Quorate || st.Members != running) {
			t.Errorf("node %d did not re-form after the last heal: %v (%v)", n.id, st.Members, st.Reason)
		}
	}
}

// A member crashes: the survivors' quorum pauses for at most the lease
// asymmetry (package doc, "Transitions": HeartbeatInterval plus the drift
// part of EndorseGuard and a few delays), is reported as settling (a
// warning), not as a loss, and they never self-fence.
func TestCrashGapIsBounded(t *testing.T) {
	for name, tm := range profiles {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, tm)
			c.formed()
			fault := c.now
			c.nodes[3].down = true
			c.mute(3)
			c.run(c.now + 3*c.d.TakeoverAfter)
			bound := c.d.HeartbeatInterval + (c.d.EndorseGuard - c.d.DeadAfter) + 4*c.delay + 2*tcIOTime
			for _, id := range []NodeID{1, 2} {
				n := c.nodes[id]
				if g := n.gap(c.now); g > bound || n.stoppedAt >= 0 {
					t.Errorf("node %d: %v without quorum (bound %v), stopped at %v\n%s", id, g, bound, n.stoppedAt, n.log())
				}
				if k := n.count(QuorumLost); k != 0 {
					t.Errorf("node %d reported %d quorum losses for a crash it rode through\n%s", id, k, n.log())
				}
				for _, d := range n.decisions {
					if d.Kind == QuorumSettling && d.Severity() != SeverityWarn {
						t.Errorf("settling is logged at %v, want a warning", d.Severity())
					}
				}
				if n.count(QuorumSettling) == 0 {
					t.Errorf("node %d did not report the pause as settling\n%s", id, n.log())
				}
				t.Logf("node %d: longest stretch without quorum %v", id, n.gap(c.now))
			}
			survivorsKeepQuorum(t, c, SetOf(1, 2), fault)
		})
	}
}

// Forming (a node joining a quorate partition) is not an outage: nobody
// reports a quorum loss, the old members report joining at info level.
func TestFormationIsNotQuorumLoss(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.nodes[3].down = true
	c.mute(3)
	c.run(5 * time.Second)
	for _, id := range []NodeID{1, 2} {
		if st := c.nodes[id].m.Status(); !st.Quorate || st.Members != SetOf(1, 2) {
			t.Fatalf("setup: node %d %v %v", id, st.Members, st.Reason)
		}
	}
	c.heal()
	c.restart(3, 3333, false)
	c.run(c.now + 5*time.Second)
	joining := 0
	for _, n := range c.nodes[1:] {
		st := n.m.Status()
		if !st.Quorate || st.Members != SetOf(1, 2, 3) {
			t.Fatalf("node %d did not form: %v (%v)\n%s", n.id, st.Members, st.Reason, n.log())
		}
		for _, d := range n.decisions {
			if d.Kind == QuorumLost || d.Severity() == SeverityError {
				t.Errorf("node %d logged %v at error level while forming\n%s", n.id, d, n.log())
			}
			if d.Kind == QuorumJoining {
				joining++
				if d.Severity() != SeverityInfo {
					t.Errorf("joining is %v, want info", d.Severity())
				}
			}
		}
	}
	t.Logf("%d joining decisions", joining)
}

// A recorded stream of a peer's heartbeats, replayed at its original pace
// to a node that started after the recording, never makes the peer alive
// on the network nor a member: the recording cannot echo the new
// incarnation. The same peer, live, is alive within a few heartbeats.
func TestReplayedHeartbeatsAreNotAlive(t *testing.T) {
	type rec struct {
		at time.Duration
		hb Heartbeat
	}
	var tape []rec
	c := newCluster(t, 3, profiles["default"])
	c.tap = func(to NodeID, at time.Duration, hb Heartbeat) {
		if to == 1 && hb.From == 2 {
			tape = append(tape, rec{at, hb})
		}
	}
	c.formed()
	c.run(c.now + 10*time.Second)
	if len(tape) < 40 {
		t.Fatalf("recorded only %d heartbeats", len(tape))
	}

	// Node 2 is gone; node 1 restarts with a new incarnation and is fed
	// the tape with node 2's source, at the tape's own pace.
	d := c.d
	cfg := c.nodes[1].m.cfg
	cfg.Incarnation = 77
	n := New(cfg)
	start := tape[0].at
	alive := func() (bool, string) {
		st := n.Status()
		for _, p := range st.Peers {
			if p.Node == 2 && (p.State == PeerAlive || p.State == PeerSuspect || p.Member || st.Members.Has(2)) {
				return true, fmt.Sprintf("%+v", p)
			}
		}
		return false, ""
	}
	for i, r := range tape {
		now := r.at - start
		n.Step(now, NetReceived{Heartbeat: r.hb})
		n.Advance()
		if i%5 == 0 {
			n.Step(now, Tick{})
			n.Advance()
		}
		if ok, p := alive(); ok {
			t.Fatalf("replayed heartbeat %d at %v makes node 2 alive: %s", i, now, p)
		}
	}

	// Control: the same machine does take a live node 2 for alive, once
	// node 2's heartbeats echo it.
	now := tape[len(tape)-1].at - start
	var seq Seq = tape[len(tape)-1].hb.Seq
	for i := 0; i < 10; i++ {
		now += d.HeartbeatInterval
		n.Step(now, Tick{})
		rd := n.Ready()
		n.Advance()
		var mine Heartbeat
		for _, hb := range rd.Send {
			mine = hb
		}
		seq++
		hb := tape[len(tape)-1].hb
		hb.Seq = seq
		if mine.Inc != 0 {
			hb.Echo[1] = Echo{Inc: mine.Inc, Seq: mine.Seq}
		}
		n.Step(now+time.Millisecond, NetReceived{Heartbeat: hb})
		n.Advance()
	}
	for _, p := range n.Status().Peers {
		if p.Node == 2 && p.State != PeerAlive {
			t.Fatalf("control: a live node 2 echoing this incarnation is %v", p.State)
		}
	}
}

// A node restarted while packages of its earlier incarnation may still
// run does not feed the watchdog until the driver reports them stopped.
func TestLeftoversWithholdTheWatchdog(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	c.restart(3, 3333, true)
	c.run(c.now + 3*time.Second)
	n := c.nodes[3]
	if n.fed {
		t.Fatal("fed the watchdog while leftovers may run")
	}
	if st := n.m.Status(); !st.Leftovers {
		t.Fatal("status does not show the leftovers")
	}
	c.push(c.now, 3, LeftoversStopped{})
	c.run(c.now + c.d.HeartbeatInterval)
	if !n.fed || n.m.Status().Leftovers || n.count(LeftoversStoppedKind) != 1 {
		t.Fatalf("after LeftoversStopped: fed=%v status=%+v\n%s", n.fed, n.m.Status(), n.log())
	}
}

// The self-fence clock starts where quorum really ran out: a node paused
// past the expiry of its leases finds quorum gone on its first step, and
// its stop deadline counts from the expiry, not from that step nor from
// its last quorate step before the pause.
func TestSelfFenceClockStartsAtExpiry(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	n := c.nodes[1]
	c.mute(1)
	c.deaf(1)
	c.run(c.now + c.d.HeartbeatInterval/2)
	until := n.until
	if !n.quorate || until <= c.now {
		t.Fatalf("setup: node 1 quorate=%v until %v at %v", n.quorate, until, c.now)
	}
	n.down = true
	c.run(until + c.d.HeartbeatInterval/2)
	n.down = false
	c.step(n, Tick{})
	st := n.m.Status()
	if st.Quorate {
		t.Fatal("quorate after its leases ran out")
	}
	if n.m.lastQuorate != until {
		t.Fatalf("self-fence clock starts at %v; quorum ran out at %v (resumed at %v)", n.m.lastQuorate, until, c.now)
	}
	if want := min(until+c.d.SelfFenceAfter, n.m.lastWriteOK+c.d.SelfFenceAfter); st.StopDeadline != want {
		t.Fatalf("stop deadline %v, want %v", st.StopDeadline, want)
	}
}

// Node 1 goes deaf to node 3 first and to node 2 half a heartbeat later:
// node 2, seeing node 3's view without node 1 before it notices itself,
// picks {1,2} for a moment and drops node 3, which then waits out its own
// guard before it may join again. Node 2's member set holds no majority
// meanwhile, but it hears one, so it keeps the grace and rides it out.
func TestStaggeredDeafness(t *testing.T) {
	for name, tm := range profiles {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, tm)
			c.formed()
			c.cut(3, 1)
			c.run(c.now + c.d.HeartbeatInterval/2)
			fault := c.now
			c.cut(2, 1)
			lostMajority := false
			for end := c.now + 12*time.Second; c.now < end; {
				c.run(c.now + 5*time.Millisecond)
				m := c.nodes[2].m
				if !m.quorate && !m.transition {
					t.Fatalf("at %v node 2 (members %v, %v) is out of its transition", c.now, m.members, m.whyNot)
				}
				lostMajority = lostMajority || m.tally == VoteLost
			}
			survivorsKeepQuorum(t, c, SetOf(2, 3), fault)
			if !lostMajority {
				t.Log("node 2's member set kept a majority throughout")
			}
			if c.nodes[1].stoppedAt < 0 {
				t.Errorf("the deaf node did not self-fence\n%s", c.nodes[1].log())
			}
		})
	}
}

// Every timing that configuration accepts leaves a member of a connected
// majority the room its longest transition needs (EndorseGuard +
// HeartbeatInterval, and 2ms for delays) before it self-fences.
func TestTransitionFitsTheGraceForAcceptedTimings(t *testing.T) {
	accepted := 0
	rapid.Check(t, func(t *rapid.T) {
		h := time.Duration(rapid.Int64Range(int64(10*time.Millisecond), int64(2*time.Second)).Draw(t, "heartbeat"))
		tm := timing.Timing{
			HeartbeatInterval: h,
			FailureTimeout:    time.Duration(rapid.Int64Range(int64(3*h), int64(100*h)).Draw(t, "failure")),
			WatchdogTimeout:   time.Duration(rapid.Int64Range(int64(time.Second), int64(60*time.Second)).Draw(t, "watchdog")),
		}
		tm.IOTimeout = time.Duration(rapid.Int64Range(int64(h/2), int64(tm.FailureTimeout/2)).Draw(t, "io"))
		if len(tm.Validate()) > 0 {
			return
		}
		accepted++
		d := tm.Derive()
		if d.SelfFenceAfter+d.SettleGrace <= d.EndorseGuard+d.HeartbeatInterval+2*time.Millisecond {
			t.Fatalf("%+v: SelfFenceAfter + SettleGrace = %v, the longest transition %v", tm, d.SelfFenceAfter+d.SettleGrace, d.EndorseGuard+d.HeartbeatInterval)
		}
	})
	if accepted == 0 {
		t.Fatal("no accepted timing drawn")
	}
}

// A node that restarts in a loop, each time with a new incarnation, costs
// the others no self-fence: each restart is one membership change.
func TestRestartLoop(t *testing.T) {
	for name, tm := range profiles {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, tm)
			c.formed()
			every := 2 * c.d.EndorseGuard
			var last time.Duration // each restart is a fault window of its own
			for i := 0; i < 6; i++ {
				last = c.now
				c.restart(1, Incarnation(5000+i), false)
				c.run(c.now + every)
			}
			c.run(c.now + 3*c.d.EndorseGuard)
			survivorsKeepQuorum(t, c, SetOf(1, 2, 3), last)
			for _, id := range []NodeID{2, 3} {
				if k := c.nodes[id].count(PeerRestarted); k != 6 {
					t.Errorf("node %d saw %d restarts, want 6", id, k)
				}
			}
		})
	}
}

// The link between nodes 1 and 2 of five fails both ways: {1,3,4,5}, the
// connected majority the deterministic choice keeps, rides it out and node
// 2 alone stops. (At failure timeouts of many heartbeats the others learn
// of such a link only when an endorsement runs out, later than R: package
// doc, "Transitions"; so only the documented profiles are checked here.)
func TestLinkFailsBothWays(t *testing.T) {
	for _, name := range []string{"default", "aggressive"} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 5, profiles[name])
			c.formed()
			fault := c.now
			c.cut(1, 2)
			c.cut(2, 1)
			c.run(c.now + 12*time.Second)
			survivorsKeepQuorum(t, c, SetOf(1, 3, 4, 5), fault)
			if c.nodes[2].stoppedAt < 0 {
				t.Errorf("node 2 did not self-fence\n%s", c.nodes[2].log())
			}
		})
	}
}

// A node whose published view changes every heartbeat (it babbles: here
// it leaves node 1 out of every other view) is dropped and re-admitted
// at most once per hold-down, and the hold-downs double up to their cap
// (package doc, "Damping"): the others ride every change out without a
// self-fence, and the number of times they drop it is what the doubling
// allows, derived from the timing. That is the coherent babbler, whose
// member sets leave node 1 out with its views. The incoherent one, whose
// member sets go on listing node 1, is dropped once and kept out for as
// long as it babbles.
func TestBabblingNodeIsDamped(t *testing.T) {
	for _, name := range []string{"default", "aggressive"} {
		for _, coherent := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/coherent=%v", name, coherent), func(t *testing.T) {
				c := newCluster(t, 5, profiles[name])
				c.formed()
				flip := false
				c.rewrite = func(hb *Heartbeat) {
					if hb.From == 5 {
						if flip {
							hb.View = hb.View.Remove(1)
							if coherent {
								hb.Members = hb.Members.Remove(1)
							}
						}
						flip = !flip
					}
				}
				start := c.now
				long := 10 * c.d.RejoinHoldDownMax
				c.run(start + long)
				// Two drops before the first hold-down, then at most one
				// per hold-down that fits; one drop for the incoherent
				// babbler.
				least, want, at, h := 2, 2, time.Duration(0), c.d.RejoinHoldDown
				for at+h <= long {
					want++
					at += h
					h = min(2*h, c.d.RejoinHoldDownMax)
				}
				if !coherent {
					least, want = 1, 1
				}
				for _, n := range c.nodes[1:5] {
					if n.stoppedAt >= 0 {
						t.Errorf("node %d self-fenced at %v\n%s", n.id, n.stoppedAt, n.log())
					}
					drops, in := 0, true
					for _, d := range n.decisions {
						if d.Kind == MembershipChanged && d.At > start {
							if in && !d.Members.Has(5) {
								drops++
							}
							in = d.Members.Has(5)
						}
					}
					if drops > want || drops < least {
						t.Errorf("node %d dropped the babbling node %d times in %v, want %d..%d\n%s", n.id, drops, long, least, want, n.log())
					}
					t.Logf("node %d: %d drops in %v (at most %d)", n.id, drops, long, want)
				}
			})
		}
	}
}

// A coordinator that starts while a peer restarts (it sees the peer's old
// incarnation, then the new one counting) never fences the new
// incarnation, even while that one has not yet proved on the network that
// it hears us (here it never can: our packets to it are lost): a
// restarted node runs no packages, and a fence, which names the node,
// would land on the new incarnation. A peer that stays dead in the
// incarnation we first saw is fenced as before.
func TestNoFenceOfARestartedIncarnation(t *testing.T) {
	for _, restart := range []bool{true, false} {
		t.Run(map[bool]string{true: "restarted", false: "dead"}[restart], func(t *testing.T) {
			c := newCluster(t, 3, profiles["default"])
			c.formed()
			c.nodes[3].down = true
			c.mute(3)
			c.cut(1, 3) // node 3 never hears node 1's new incarnation
			c.restart(1, 1777, false)
			c.run(c.now + c.d.HeartbeatInterval)
			if restart {
				c.block[3][1], c.block[3][2] = false, false
				c.restart(3, 3777, false)
			}
			c.run(c.now + 3*c.d.TakeoverAfter)
			n := c.nodes[1]
			if st := n.m.Status(); !st.Quorate || st.Members != SetOf(1, 2) {
				t.Fatalf("node 1 is not quorate with {1,2}: %v (%v)\n%s", st.Members, st.Reason, n.log())
			}
			var fenced []Incarnation
			for _, d := range n.decisions {
				if d.Kind == FenceRequested && d.Peer == 3 {
					fenced = append(fenced, d.Inc)
				}
			}
			switch {
			case restart && len(fenced) > 0:
				t.Errorf("node 1 fenced node 3 (incarnations %v) after seeing it restart\n%s", fenced, n.log())
			case !restart && (len(fenced) == 0 || fenced[0] != 3001):
				t.Errorf("node 1 fenced %v, want node 3's dead incarnation 3001\n%s", fenced, n.log())
			}
			if n.count(TakeoverAllowed) != 1 {
				t.Errorf("node 1 allowed %d takeovers of node 3, want 1\n%s", n.count(TakeoverAllowed), n.log())
			}
		})
	}
}

// TestFenceWithdrawnWhenTheVictimRestarts: the coordinator asks to fence a
// crashed member; the fence has no outcome yet (the test's fencing
// component never answers, as one queued behind a slow fence) when the
// node comes back with a new incarnation. Fencing keys name a node, so the
// request, were it still to run, would remove the newcomer's key: the
// machine withdraws it (Ready.WithdrawFence, FenceWithdrawn) and asks for
// no other; the newcomer joins (the crashed incarnation's packages are
// its start-up's to stop, or taken over at the watchdog deadline, never
// for a fence that did not happen).
func TestFenceWithdrawnWhenTheVictimRestarts(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	crash := c.now
	c.nodes[3].down = true
	c.mute(3)
	n := c.nodes[1]
	for c.now < crash+3*c.d.DeadAfter && n.count(FenceRequested) == 0 {
		c.run(c.now + c.d.HeartbeatInterval)
	}
	if n.count(FenceRequested) != 1 {
		t.Fatalf("node 1 asked to fence %d times after node 3 crashed, want 1\n%s", n.count(FenceRequested), n.log())
	}
	asked := n.decisions[slices.IndexFunc(n.decisions, func(d Decision) bool { return d.Kind == FenceRequested })]
	c.heal()
	c.restart(3, 3777, false)
	c.run(c.now + 3*c.d.TakeoverAfter)
	want := Target{Node: 3, Inc: asked.Inc}
	if !slices.Equal(n.withdrawn, []Target{want}) {
		t.Errorf("node 1 withdrew %v, want [%v]\n%s", n.withdrawn, want, n.log())
	}
	if n.count(FenceWithdrawn) != 1 || n.count(FenceRequested) != 1 {
		t.Errorf("node 1: %d withdrawals and %d fence requests, want 1 and 1\n%s", n.count(FenceWithdrawn), n.count(FenceRequested), n.log())
	}
	for _, d := range n.decisions {
		if d.Kind == TakeoverAllowed && d.Peer == 3 && d.Reason != TakeoverWatchdog.String() {
			t.Errorf("takeover of node 3 after the withdrawal: %v, want none, or one at the watchdog deadline", d)
		}
	}
	if st := n.m.Status(); !st.Quorate || st.Members != SetOf(1, 2, 3) {
		t.Errorf("node 1 is not quorate with {1,2,3} after node 3's restart: %v (%v)\n%s", st.Members, st.Reason, n.log())
	}
}
