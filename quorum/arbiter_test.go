package quorum

import (
	"testing"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// arbiterCluster is a formed two-node cluster whose machines are told the
// quorum LUN has persistent reservations (arbiter) or not.
func arbiterCluster(t *testing.T, arbiter bool) *testCluster {
	t.Helper()
	c := newCluster(t, 2, timing.DefaultTiming())
	for _, n := range c.nodes[1:] {
		cfg := n.m.cfg
		cfg.FenceArbiter = arbiter
		n.m = New(cfg)
	}
	c.formed()
	return c
}

// firstAt is the local time of n's first decision of kind k at or after
// from (-1: none).
func (n *tcNode) firstAt(k DecisionKind, from time.Duration) time.Duration {
	for _, d := range n.decisions {
		if d.Kind == k && d.At >= from {
			return d.At
		}
	}
	return -1
}

// runFencing runs the cluster until until, answering every fence request
// of a live node with fenced after took (true: Fenced; false: FenceFailed
// with SelfFenced).
func (c *testCluster) runFencing(until, took time.Duration, fenced func(by NodeID) bool) {
	seen := map[NodeID]int{}
	for c.now < until {
		c.run(min(until, c.now+time.Millisecond))
		for _, n := range c.nodes[1:] {
			for i := seen[n.id]; i < len(n.decisions); i++ {
				d := n.decisions[i]
				if d.Kind != FenceRequested || n.down {
					continue
				}
				var ev Event = Fenced{Node: d.Peer, Inc: d.Inc}
				if !fenced(n.id) {
					ev = FenceFailed{Node: d.Peer, Inc: d.Inc, Err: "own key gone", SelfFenced: true}
				}
				c.push(c.now+took, n.id, ev)
			}
			seen[n.id] = len(n.decisions)
		}
	}
}

// With the fence as arbiter, the survivor of a two-node cluster asks to
// fence its dead peer before it holds quorum, and the verified fence makes
// it quorate and allows the takeover at once: no tie-break claim, and far
// sooner than the lock would.
func TestArbiterDecidesTwoNodeCrash(t *testing.T) {
	quorate := map[bool]time.Duration{}
	for _, arbiter := range []bool{true, false} {
		c := arbiterCluster(t, arbiter)
		crash := c.now
		c.nodes[2].down = true
		c.runFencing(crash+15*time.Second, 20*time.Millisecond, func(NodeID) bool { return true })
		n := c.nodes[1]
		gained := n.firstAt(QuorumGained, crash)
		if gained < 0 {
			t.Fatalf("arbiter=%v: node 1 never regained quorum:\n%s", arbiter, n.log())
		}
		quorate[arbiter] = gained - crash
		req, take := n.firstAt(FenceRequested, crash), n.firstAt(TakeoverAllowed, crash)
		if arbiter {
			if req < 0 || req >= gained {
				t.Errorf("arbiter: fence requested at %v, quorum regained at %v: the request must come first", req, gained)
			}
			if claim := n.firstAt(TieClaimStarted, crash); claim >= 0 && claim < gained && n.firstAt(TieWon, crash) < gained {
				t.Errorf("arbiter: the lock decided before the fence")
			}
		} else if req >= 0 && req < gained {
			t.Errorf("no arbiter: fence requested at %v before quorum at %v", req, gained)
		}
		if take < gained {
			t.Errorf("arbiter=%v: takeover allowed at %v, before quorum at %v", arbiter, take, gained)
		}
	}
	if quorate[true] >= quorate[false] {
		t.Errorf("crash to quorum: %v with the arbiter, %v with the lock; the arbiter must be faster", quorate[true], quorate[false])
	}
	t.Logf("crash to quorum again: arbiter %v, tie-break lock %v", quorate[true], quorate[false])
}

// A 1|1 split where node 1 wins the fence race: node 2's fence finds its
// own key gone (SelfFenced) and it stops at once; node 1 holds quorum
// alone, and the two never hold quorum at once with different sets.
func TestArbiterRaceLoserStops(t *testing.T) {
	c := arbiterCluster(t, true)
	split := c.now
	c.cut(1, 2)
	c.cut(2, 1)
	both := false
	for c.now < split+10*time.Second && !both {
		c.runFencing(c.now+time.Millisecond, 20*time.Millisecond, func(by NodeID) bool { return by == 1 })
		a, b := c.nodes[1].m.Status(), c.nodes[2].m.Status()
		both = a.Quorate && b.Quorate && a.Members != b.Members
	}
	if both {
		t.Fatalf("both nodes quorate with different member sets at %v:\n%s", c.now, c.describe())
	}
	if c.nodes[2].stoppedAt < 0 {
		t.Fatalf("node 2 lost the fence race and did not stop:\n%s", c.nodes[2].log())
	}
	if !c.nodes[1].m.Status().Quorate || c.nodes[1].firstAt(TakeoverAllowed, split) < 0 {
		t.Fatalf("node 1 won the fence race but holds no quorum or took nothing over:\n%s", c.nodes[1].log())
	}
	// The higher-id node asks FenceStagger after the departure, the
	// lower-id one at once.
	r1, r2 := c.nodes[1].firstAt(FenceRequested, split), c.nodes[2].firstAt(FenceRequested, split)
	if r1 < 0 || (r2 >= 0 && r2-r1 < FenceStagger(c.nodes[2].m.cfg.Nodes, 2, c.d)-c.d.HeartbeatInterval) {
		t.Errorf("fence requests at %v (node 1) and %v (node 2): node 2 must wait FenceStagger", r1, r2)
	}
}

// Without a verified fence the arbiter decides nothing: a fence that keeps
// failing leaves the tie to the lock.
func TestArbiterNeedsVerifiedFence(t *testing.T) {
	c := arbiterCluster(t, true)
	crash := c.now
	c.nodes[2].down = true
	c.run(crash + 3*time.Second)
	n := c.nodes[1]
	if w := n.firstAt(TieWon, crash); n.firstAt(QuorumGained, crash) >= 0 && (w < 0 || n.firstAt(QuorumGained, crash) < w) {
		t.Fatalf("node 1 regained quorum without a fence or the lock:\n%s", n.log())
	}
	if n.firstAt(FenceRequested, crash) < 0 {
		t.Fatalf("node 1 never asked to fence its dead peer:\n%s", n.log())
	}
}
