package quorum

import (
	"testing"
	"time"
)

// A drop of a peer that is still heard both ways, made by the clique
// choice for an edge between other nodes, weighs half a drop (package
// doc, "Damping"). Node 1 drops node 5 once for a cut of their own link
// and re-admits it; then node 5 stops hearing node 4, node 4's view drops
// node 5 a moment before node 5's drops node 4, and node 1, on that row,
// chooses {1,2,3,4} and drops node 5 again while it hears it perfectly.
// That second drop is no second drop in a row: node 1 does not hold node 5
// down, and keeps it in the view it publishes, so its choice of a moment
// never becomes a broken edge that the other nodes' choices must route
// around. The contrast: a second cut of node 1's own link to node 5 is a
// second drop, and node 5 is held down for RejoinHoldDown after the heal;
// so is a clique drop followed at once by the cut of that link (node 1
// stops hearing node 5 within hearsWithin of the drop: the drop was the
// link's, and is made whole).
func TestCliqueDropWeighsHalf(t *testing.T) {
	for _, second := range []string{"clique", "link", "clique-then-link"} {
		t.Run(second, func(t *testing.T) {
			c := newCluster(t, 5, profiles["default"])
			c.formed()
			n1 := c.nodes[1]
			has5 := func() bool { return n1.m.Status().Members.Has(5) }
			waitFor := func(what string, ok func() bool, within time.Duration) {
				t.Helper()
				for end := c.now + within; !ok(); c.run(c.now + time.Millisecond) {
					if c.now > end {
						t.Fatalf("%s: not within %v\n%s", what, within, c.describe())
					}
				}
			}
			// The first drop: the link 1<->5 fails both ways.
			c.cut(1, 5)
			c.cut(5, 1)
			waitFor("node 1 drops node 5 for the cut", func() bool { return !has5() }, 2*c.d.DeadAfter)
			c.heal()
			waitFor("node 1 re-admits node 5 after the heal", has5, 2*c.d.EndorseGuard+2*c.d.RejoinHoldDown)
			c.run(c.now + c.d.HeartbeatInterval)

			// Node 1's views from here on, as the others receive them.
			var views []struct {
				at   time.Duration
				view Set
			}
			c.tap = func(to NodeID, at time.Duration, hb Heartbeat) {
				if hb.From == 1 && to == 2 {
					views = append(views, struct {
						at   time.Duration
						view Set
					}{at, hb.View})
				}
			}
			var dropped time.Duration
			switch second {
			case "clique":
				c.cut(4, 5)
				waitFor("node 1 drops node 5 for the edge 4-5", func() bool { return !has5() }, 3*c.d.DeadAfter)
				dropped = c.now
				if s := n1.m.Status().Members; s != SetOf(1, 2, 3, 4) {
					t.Fatalf("node 1 chose %v, want {1,2,3,4} (the scenario no longer makes a clique drop)", s)
				}
			case "link":
				c.cut(1, 5)
				c.cut(5, 1)
				waitFor("node 1 drops node 5 for the second cut", func() bool { return !has5() }, 2*c.d.DeadAfter)
				dropped = c.now
			case "clique-then-link":
				// The clique choice drops node 5 a moment before node 1's
				// own link to it fails: node 1 stops hearing it within
				// hearsWithin of the drop, and the drop is made whole.
				c.cut(4, 5)
				waitFor("node 1 drops node 5 for the edge 4-5", func() bool { return !has5() }, 3*c.d.DeadAfter)
				dropped = c.now
				c.cut(1, 5)
				c.cut(5, 1)
				c.run(c.now + c.d.SuspectAfter + c.d.HeartbeatInterval)
			}
			c.run(c.now + c.d.HeartbeatInterval)
			c.heal()
			healed := c.now
			// Node 1's views while it hears node 5 both ways: from the
			// drop on (the clique case), or from a few heartbeats after
			// the heal until the hold-down ends (the link case).
			omitted := func(from, to time.Duration) bool {
				for _, v := range views {
					if v.at > from && v.at < to && !v.view.Has(5) {
						return true
					}
				}
				return false
			}
			switch second {
			case "clique":
				waitFor("node 1 re-admits node 5", has5, 2*c.d.EndorseGuard)
				if omitted(dropped+c.d.HeartbeatInterval, c.now) {
					t.Errorf("node 1 left node 5 out of its view after dropping it for the clique choice alone (held down)\n%s", n1.log())
				}
				c.run(c.now + 2*c.d.HeartbeatInterval)
				if st := n1.m.Status(); !st.Quorate || st.Members != SetOf(1, 2, 3, 4, 5) {
					t.Errorf("node 1 is not quorate with every node after node 5's re-admission: %v (%v)\n%s", st.Members, st.Reason, n1.log())
				}
			case "link", "clique-then-link":
				end := healed + c.d.RejoinHoldDown - c.d.HeartbeatInterval
				for c.now < end {
					c.run(c.now + time.Millisecond)
					if has5() {
						t.Fatalf("node 1 re-admitted node 5 %v after the heal, before the hold-down of %v\n%s", c.now-healed, c.d.RejoinHoldDown, n1.log())
					}
				}
				if !omitted(healed+3*c.d.HeartbeatInterval, end) {
					t.Errorf("node 1 kept node 5 in its view after the second cut in a row (not held down)\n%s", n1.log())
				}
			}
			for _, n := range c.nodes[1:4] {
				if n.stoppedAt >= 0 {
					t.Errorf("node %d self-fenced at %v\n%s", n.id, n.stoppedAt, n.log())
				}
			}
		})
	}
}

// A peer whose heartbeat lists a member its own view leaves out publishes
// views that do not describe its hearing (a healthy node's member set is
// a clique of its own row, its view), and its drops weigh whole for
// hearsWithin after such a heartbeat: the half weight spares a healthy
// peer dropped for a moment's clique choice, and must not let a babbler,
// whose random views list us every other heartbeat, put its hold-down
// off. The contrast is a coherent peer whose views and member set both
// leave node 3 out: it looks like a healthy node that stopped hearing
// node 3, and node 1, which hears it both ways, weighs its drop half. A
// half drop is made whole when an incoherent heartbeat follows within
// hearsWithin, and an incoherent peer is left out of the view and the
// member set meanwhile. Node 5's slot writes carry the same heartbeats,
// so its rows do not change with the path they come by.
func TestIncoherentViewsWeighWhole(t *testing.T) {
	// without3: node 5's views leave node 3 out; so do its member sets
	// if coherent, and if not they list node 3 (and, with ghost, node 6,
	// which no view can list: no row changes, only the coherence).
	without3 := func(coherent, ghost bool) func(hb *Heartbeat) {
		return func(hb *Heartbeat) {
			if hb.From != 5 {
				return
			}
			hb.View = hb.View.Remove(3)
			if coherent {
				hb.Members = hb.Members.Remove(3)
			}
			if ghost {
				hb.Members = hb.Members.Add(6)
			}
		}
	}
	setup := func(t *testing.T) (*testCluster, *Node, *peer) {
		c := newCluster(t, 5, profiles["default"])
		c.rewriteSlots = true
		c.formed()
		return c, c.nodes[1].m, c.nodes[1].m.peers[5]
	}
	check := func(t *testing.T, c *testCluster, what string, incoherent bool, weight int) {
		t.Helper()
		n1, p := c.nodes[1].m, c.nodes[1].m.peers[5]
		if !n1.heardBothWays(p) {
			t.Fatalf("%s: node 1 does not hear node 5 both ways (the scenario no longer tests the weight)\n%s", what, c.describe())
		}
		if got := n1.incoherent(p); got != incoherent {
			t.Errorf("%s: node 1 judges node 5 incoherent=%v, want %v", what, got, incoherent)
		}
		if got := n1.dropWeight(p); got != weight {
			t.Errorf("%s: a drop of node 5 would weigh %d halves, want %d", what, got, weight)
		}
	}
	// heartbeat: one of node 5's heartbeats reaches node 1.
	heartbeat := func(c *testCluster) { c.run(c.now + c.d.HeartbeatInterval + c.delay) }

	t.Run("coherent", func(t *testing.T) {
		c, _, _ := setup(t)
		c.rewrite = without3(true, false)
		heartbeat(c)
		check(t, c, "coherent views and members without node 3", false, halfDrop)
	})
	t.Run("incoherent", func(t *testing.T) {
		c, n1, p := setup(t)
		c.rewrite = without3(false, false)
		heartbeat(c)
		check(t, c, "members listing node 3, which the view leaves out", true, fullDrop)
		if n1.members.Has(5) || n1.inView(p) {
			t.Errorf("node 1 keeps the incoherent node 5 (member %v, in its view %v)\n%s", n1.members.Has(5), n1.inView(p), c.nodes[1].log())
		}
		c.rewrite = nil
		c.run(c.now + n1.hearsWithin() + c.d.HeartbeatInterval)
		check(t, c, "coherent again for hearsWithin", false, halfDrop)
	})
	t.Run("half-made-whole", func(t *testing.T) {
		c, n1, p := setup(t)
		c.rewrite = without3(true, false)
		for end := c.now + 2*c.d.DeadAfter; n1.members.Has(5); c.run(c.now + time.Millisecond) {
			if c.now > end {
				t.Fatalf("node 1 kept node 5 although its row lacks node 3\n%s", c.describe())
			}
		}
		if p.drops != halfDrop {
			t.Fatalf("node 1's clique drop of node 5, heard both ways, counted %d halves, want %d\n%s", p.drops, halfDrop, c.nodes[1].log())
		}
		c.rewrite = without3(true, true)
		heartbeat(c)
		if n1.members.Has(5) {
			t.Fatalf("node 1 re-admitted node 5 (the rows changed)\n%s", c.nodes[1].log())
		}
		check(t, c, "a member set listing node 6", true, fullDrop)
		if p.drops != fullDrop {
			t.Errorf("a half drop followed within hearsWithin by an incoherent heartbeat counts %d halves, want %d\n%s", p.drops, fullDrop, c.nodes[1].log())
		}
	})
}
