package quorum

import (
	"fmt"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// A restarted node whose fresh registration a peer's fence removed (the
// fence was meant for its predecessor; keys name a node) before it held
// quorum registers again and joins, without a stop: one re-registration,
// no self-fence, quorate with every node afterwards. Its writes refused
// while the re-registration is due do not count as further fences.
func TestFencedBeforeQuorumRejoins(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	c.restart(3, 3777, false)
	c.fenced[3] = true
	c.run(c.now + 3*c.d.TakeoverAfter)
	n := c.nodes[3]
	if n.stoppedAt >= 0 || n.count(SelfFence) != 0 {
		t.Fatalf("node 3 stopped at %v\n%s", n.stoppedAt, n.log())
	}
	if c.rejoins[3] != 1 || n.count(RejoinRequested) != 1 || n.count(RejoinDone) != 1 {
		t.Fatalf("node 3: %d re-registrations asked, %d requested, %d done; want 1 each\n%s",
			c.rejoins[3], n.count(RejoinRequested), n.count(RejoinDone), n.log())
	}
	for _, m := range c.nodes[1:] {
		if st := m.m.Status(); !st.Quorate || st.Members != SetOf(1, 2, 3) {
			t.Fatalf("node %d not quorate with every node: %v (%v)\n%s", m.id, st.Members, st.Reason, m.log())
		}
	}
	if st := n.m.Status(); st.Rejoining || st.Rejoins != 1 {
		t.Fatalf("node 3's status: rejoining=%v rejoins=%d", st.Rejoining, st.Rejoins)
	}
}

// While the re-registration is due or under way the node is not quorate
// (LossRejoining), so it cannot start a package whose storage it cannot
// reach, and it asks for the re-registration one heartbeat interval after
// the refused write (a fence still under way ends first), once.
func TestRejoinBlocksQuorumUntilDone(t *testing.T) {
	n, d := oneNode(t)
	n.Step(0, Tick{})
	rd := n.Ready()
	n.Advance()
	if len(rd.Disk) != 1 || rd.Disk[0].Kind != DiskWriteSlot {
		t.Fatalf("first request %+v, want a slot write", rd.Disk)
	}
	n.Step(0, DiskDone{Op: rd.Disk[0].Op, Kind: DiskWriteSlot, Result: IOFenced})
	rd = n.Ready()
	n.Advance()
	if rd.Status.Stopped || !rd.Status.Rejoining || rd.Rejoin || rd.Status.Reason.Kind != LossRejoining {
		t.Fatalf("after the refused write: stopped=%v rejoining=%v rejoin=%v reason=%v", rd.Status.Stopped, rd.Status.Rejoining, rd.Rejoin, rd.Status.Reason)
	}
	if rd.NextTick > d.HeartbeatInterval {
		t.Fatalf("next tick %v, after the re-registration is due (%v)", rd.NextTick, d.HeartbeatInterval)
	}
	for len(rd.Disk) > 0 { // the round's read
		n.Step(0, DiskDone{Op: rd.Disk[0].Op, Kind: rd.Disk[0].Kind, Result: IOOK, Lock: LockObservation{Valid: true}})
		rd = n.Ready()
		n.Advance()
	}
	// The read and the next writes, refused, while it is due.
	asked := 0
	for now := d.HeartbeatInterval / 4; now <= 3*d.HeartbeatInterval; now += d.HeartbeatInterval / 4 {
		n.Step(now, Tick{})
		for range 10 {
			rd = n.Ready()
			n.Advance()
			if rd.Rejoin {
				asked++
				if now < d.HeartbeatInterval {
					t.Fatalf("re-registration asked at %v, before its backoff (%v)", now, d.HeartbeatInterval)
				}
			}
			if rd.Status.Quorate {
				t.Fatalf("quorate at %v while re-registering", now)
			}
			// No peer may count it in meanwhile: it publishes itself
			// alone and unsettled (a peer admits a newcomer only once
			// settled).
			for _, hb := range rd.Send {
				if hb.Members != SetOf(n.self) || hb.Flags&FlagSettled != 0 {
					t.Fatalf("published members %v flags %b at %v while re-registering", hb.Members, hb.Flags, now)
				}
			}
			if len(rd.Disk) == 0 {
				break
			}
			r := rd.Disk[0]
			res := IOFenced
			if r.Kind == DiskRead {
				res = IOOK
			}
			n.Step(now, DiskDone{Op: r.Op, Kind: r.Kind, Result: res, Lock: LockObservation{Valid: true}})
		}
	}
	if asked != 1 || n.Status().Rejoins != 1 || n.Status().Stopped {
		t.Fatalf("asked %d times, rejoins %d, stopped %v: want one re-registration, running", asked, n.Status().Rejoins, n.Status().Stopped)
	}
	now := 3 * d.HeartbeatInterval
	n.Step(now, Rejoined{})
	rd = n.Ready()
	n.Advance()
	var log []Decision
	log = append(log, rd.Decisions...)
	// The key is back: the slot is written at once, not a heartbeat
	// later (the write deadline has run since the last write landed).
	if len(rd.Disk) == 0 || rd.Disk[0].Kind != DiskWriteSlot {
		t.Fatalf("after the re-registration: disk requests %+v, want a slot write at once", rd.Disk)
	}
	for len(rd.Disk) > 0 {
		r := rd.Disk[0]
		n.Step(now, DiskDone{Op: r.Op, Kind: r.Kind, Result: IOOK, Lock: LockObservation{Valid: true}})
		rd = n.Ready()
		n.Advance()
		log = append(log, rd.Decisions...)
	}
	for t := now + d.HeartbeatInterval; t <= now+d.HeartbeatInterval+d.EndorseGuard; t += d.HeartbeatInterval {
		rd = serveDisk(n, t)
		log = append(log, rd.Decisions...)
	}
	if !rd.Status.Quorate || rd.Status.Rejoining {
		t.Fatalf("not quorate after the re-registration: %+v\n%v", rd.Status, log)
	}
}

// refuseNextWrite steps n at now, serving reads, until it issues a slot
// write, and refuses that write (IOFenced); it returns the Ready after.
func refuseNextWrite(t *testing.T, n *Node, now time.Duration) Ready {
	t.Helper()
	for range 4 {
		n.Step(now, Tick{})
		rd := n.Ready()
		n.Advance()
		for len(rd.Disk) > 0 {
			r := rd.Disk[0]
			if r.Kind == DiskWriteSlot {
				n.Step(now, DiskDone{Op: r.Op, Kind: r.Kind, Result: IOFenced})
				rd = n.Ready()
				n.Advance()
				return rd
			}
			n.Step(now, DiskDone{Op: r.Op, Kind: r.Kind, Result: IOOK, Lock: LockObservation{Valid: true}})
			rd = n.Ready()
			n.Advance()
		}
		now += n.t.HeartbeatInterval
	}
	t.Fatal("no slot write issued")
	return Ready{}
}

// The rule's conditions, each alone making a removed key stop the node at
// once as before: it held quorum (Armed), packages of an earlier
// incarnation are not confirmed stopped, a member set it computed held a
// peer. With the planted Unsafe.RejoinWhenArmed an armed node registers
// again (the simulation's checker must catch that: sim's planted bug
// rejoin-when-armed).
func TestFencedStopsUnlessTheRuleHolds(t *testing.T) {
	d := timing.DefaultTiming().Derive()
	mk := func(leftovers bool, unsafe Unsafe) *Node {
		return New(Config{Self: 1, Nodes: []Member{{ID: 1, Votes: 1}}, Timing: d, Incarnation: 7, LeftoversRunning: leftovers, Unsafe: unsafe})
	}
	cases := []struct {
		name   string
		setup  func() *Node
		rejoin bool
	}{
		{"never quorate", func() *Node { return mk(false, Unsafe{}) }, true},
		{"armed", func() *Node { n := mk(false, Unsafe{}); healthy(n, d, 0, d.EndorseGuard); return n }, false},
		{"armed, planted rejoin-when-armed", func() *Node {
			n := mk(false, Unsafe{RejoinWhenArmed: true})
			healthy(n, d, 0, d.EndorseGuard)
			return n
		}, true},
		{"leftovers running", func() *Node { return mk(true, Unsafe{}) }, false},
		{"leftovers stopped", func() *Node { n := mk(true, Unsafe{}); n.Step(0, LeftoversStopped{}); return n }, true},
		{"a peer in a member set it computed", func() *Node { n := mk(false, Unsafe{}); n.rj.shared = true; return n }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.setup()
			if tc.name == "armed" || tc.name == "armed, planted rejoin-when-armed" {
				if !n.Status().Armed {
					t.Fatal("setup: not armed")
				}
			}
			rd := refuseNextWrite(t, n, n.now+d.HeartbeatInterval)
			if got := rd.Status.Rejoining; got != tc.rejoin {
				t.Fatalf("rejoining=%v, want %v (stopped=%v)", got, tc.rejoin, rd.Status.Stopped)
			}
			if stopped := rd.Status.Stopped && rd.StopPackages; stopped == tc.rejoin {
				t.Fatalf("stopped=%v with rejoining=%v", stopped, tc.rejoin)
			}
		})
	}
}

// A re-registration that fails is retried after a doubling backoff, at
// most MaxRejoins times in the incarnation; then the node stops as fenced.
func TestRejoinFailuresAreBounded(t *testing.T) {
	c := newCluster(t, 3, profiles["long"])
	c.formed()
	c.restart(3, 3777, false)
	c.fenced[3] = true
	c.rejoinErr[3] = "path failed"
	c.run(c.now + 3*c.d.TakeoverAfter)
	n := c.nodes[3]
	if c.rejoins[3] != MaxRejoins || n.count(RejoinFailed) != MaxRejoins {
		t.Fatalf("%d re-registrations asked, %d failed; want %d\n%s", c.rejoins[3], n.count(RejoinFailed), MaxRejoins, n.log())
	}
	var why string
	var at []time.Duration
	for _, dec := range n.decisions {
		switch dec.Kind {
		case SelfFence:
			why = dec.Reason
		case RejoinRequested:
			at = append(at, dec.At)
		}
	}
	if n.stoppedAt < 0 || why != "fenced by a peer" {
		t.Fatalf("node 3 stopped at %v (%q), want a stop as fenced\n%s", n.stoppedAt, why, n.log())
	}
	for i := 2; i < len(at); i++ {
		if at[i]-at[i-1] <= at[i-1]-at[i-2] {
			t.Fatalf("re-registration requests at %v: the backoff does not grow", at)
		}
	}
	if n.everQ {
		t.Fatal("node 3 held quorum while fenced")
	}
}

// A node re-registering after a peer's fence joins no member set until
// its key is back: it publishes itself alone and unsettled, so no peer
// counts it in while the storage refuses it, and a re-registration that
// fails (a path failure) can be retried. Before, it joined its peers'
// member set while the first attempt was under way, and the failure then
// stopped it (sim seed 55 of the suite).
func TestRejoiningNodeStaysOutOfMemberSets(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.formed()
	c.restart(3, 3777, false)
	// The fence lands once node 3 hears its peers and they hear it.
	c.run(c.now + 2*c.d.HeartbeatInterval)
	c.fenced[3] = true
	c.rejoinErr[3] = "rejoin: LUN data: test unit ready: path failure (DID_TRANSPORT_DISRUPTED)"
	var bad []string
	c.tap = func(to NodeID, at time.Duration, hb Heartbeat) {
		if hb.From == 3 && c.nodes[3].m.Status().Rejoining && (hb.Members != SetOf(3) || hb.Flags&FlagSettled != 0) {
			bad = append(bad, fmt.Sprintf("%v: members %v flags %b", at, hb.Members, hb.Flags))
		}
	}
	for end := c.now + 3*c.d.TakeoverAfter; c.rejoins[3] == 0 && c.now < end; {
		c.run(c.now + c.d.HeartbeatInterval/4)
	}
	c.rejoinErr[3] = ""
	c.run(c.now + 3*c.d.TakeoverAfter)
	n := c.nodes[3]
	if n.stoppedAt >= 0 || n.count(RejoinFailed) == 0 {
		t.Fatalf("node 3: stopped at %v, %d failed re-registrations (want running after one failed)\n%s", n.stoppedAt, n.count(RejoinFailed), n.log())
	}
	if len(bad) > 0 {
		t.Fatalf("node 3 published while re-registering: %v", bad)
	}
	for _, m := range c.nodes[1:] {
		if st := m.m.Status(); !st.Quorate || st.Members != SetOf(1, 2, 3) {
			t.Fatalf("node %d not quorate with every node: %v (%v)\n%s", m.id, st.Members, st.Reason, m.log())
		}
	}
}

// TestNoFenceOfANodeStartingAsQuorumForms: node 3 starts a moment before
// the coordinator's first quorum, its packets arriving while it has not
// yet heard the others (so they do not count it alive: it has not echoed
// them). The coordinator's start-up fences spare it for hearsWithin after
// its first packet (proving): it proves itself within that and joins
// without a fence, whose key, naming the node, would have removed the
// registration it had just made. A node that stays deaf is fenced once
// the spare has run out, no earlier.
func TestNoFenceOfANodeStartingAsQuorumForms(t *testing.T) {
	for _, deaf := range []bool{false, true} {
		t.Run(map[bool]string{false: "hears", true: "deaf"}[deaf], func(t *testing.T) {
			c := newCluster(t, 3, profiles["default"])
			c.nodes[3].down = true
			var first time.Duration = -1
			c.tap = func(to NodeID, at time.Duration, hb Heartbeat) {
				if to == 1 && hb.From == 3 && first < 0 {
					first = at
				}
			}
			n := c.nodes[1]
			// Node 1 started at 7ms; its start-up guard ends EndorseGuard
			// later, and it is quorate with node 2 a step after.
			c.run(7*time.Millisecond + c.d.EndorseGuard - c.d.HeartbeatInterval/4)
			if n.m.Status().Quorate {
				t.Fatalf("node 1 is quorate at %v, before the start-up guard\n%s", c.now, n.log())
			}
			if deaf {
				c.deaf(3)
			}
			c.restart(3, 3777, false)
			for !n.m.Status().Quorate && c.now < 10*c.d.EndorseGuard {
				c.run(c.now + c.d.HeartbeatInterval/8)
			}
			if st := n.m.Status(); !st.Quorate || first < 0 || st.Members.Has(3) {
				t.Fatalf("node 1 quorate %v with %v, node 3 heard at %v: not the race this test is for\n%s", st.Quorate, st.Members, first, n.log())
			}
			c.run(c.now + 3*c.d.TakeoverAfter)
			var asked []time.Duration
			for _, d := range n.decisions {
				if d.Kind == FenceRequested && d.Peer == 3 {
					asked = append(asked, d.At)
				}
			}
			switch {
			case !deaf && len(asked) > 0:
				t.Errorf("node 1 fenced node 3 at %v, which started as it formed quorum\n%s", asked, n.log())
			case !deaf && (c.nodes[3].stoppedAt >= 0 || n.m.Status().Members != SetOf(1, 2, 3)):
				t.Errorf("node 3 stopped at %v, node 1's members %v; want it joined\n%s", c.nodes[3].stoppedAt, n.m.Status().Members, c.nodes[3].log())
			case deaf && len(asked) == 0:
				t.Errorf("node 1 never fenced the deaf node 3\n%s", n.log())
			case deaf && asked[0] < first+c.d.SuspectAfter+c.d.HeartbeatInterval:
				t.Errorf("node 1 fenced the deaf node 3 at %v, before its spare ran out (first packet at %v)\n%s", asked[0], first, n.log())
			}
		})
	}
}
