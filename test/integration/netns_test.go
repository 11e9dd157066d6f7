package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// A crashed node is dropped by the two others, who keep quorum.
func TestNetnsKillOneOfThree(t *testing.T) {
	c := NewCluster(t, 3, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	n3.Kill()
	c.WaitFor("n1 and n2 agree that n3 is gone", func() bool {
		for _, nd := range []*Node{n1, n2} {
			s, err := nd.Status()
			if err != nil || !s.Quorate || s.Stopped {
				return false
			}
			p, ok := peer(s, "n3")
			if !ok || p.Member || p.State != quorum.PeerDead.String() {
				return false
			}
		}
		return n1.QuorateWith("n1", "n2") && n2.QuorateWith("n1", "n2")
	})
	// The operator's view of the same.
	out := run(t, binary(t), "status", "--socket", n1.Socket)
	for _, want := range []string{"state: quorate", "members: n1, n2", "n3 ", "dead"} {
		if !strings.Contains(out, want) {
			t.Fatalf("mtc status lacks %q:\n%s", want, out)
		}
	}
}

// neverQuorateAlone checks the decision log of a node that lost: it must
// never have gained quorum on its own side of the split.
func neverQuorateAlone(t *testing.T, nd *Node) {
	t.Helper()
	if bad := fmt.Sprintf("decision: quorum-gained {%d}", nd.ID); strings.Contains(nd.Log(), bad) {
		t.Fatalf("%s logged %q: both sides of the split held quorum", nd.Name, bad)
	}
}

// n1 loses the network (nftables drops the heartbeat port in its
// namespace): n2 and n3 keep quorum; n1 stops and its watchdog kills it.
func TestNetnsSplitOneTwo(t *testing.T) {
	c := NewCluster(t, 3, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	n1.CutNetwork()
	c.WaitFor("n2 and n3 quorate with {n2,n3}", func() bool {
		return n2.QuorateWith("n2", "n3") && n3.QuorateWith("n2", "n3")
	})
	c.waitStoppedThenKilled(n1)
	neverQuorateAlone(t, n1)
	// The majority side is untouched by the minority's watchdog.
	if n2.Exited() || n3.Exited() {
		t.Fatalf("a majority daemon exited: n2 %v, n3 %v", n2.Exited(), n3.Exited())
	}
	if !n2.QuorateWith("n2", "n3") || !n3.QuorateWith("n2", "n3") {
		t.Fatal("the majority lost quorum after the minority was killed")
	}
}

// Two nodes split 1|1: the quorum disk's tie-break lock lets exactly one
// side keep quorum; the other stops and is killed by its watchdog.
func TestNetnsSplitOneOneTieBreak(t *testing.T) {
	c := NewCluster(t, 2, defaultProfile)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	c.WaitAllQuorate(n1, n2)
	n1.CutNetwork()
	var winner, loser *Node
	c.WaitFor("one side quorate alone", func() bool {
		switch {
		case n1.QuorateWith("n1"):
			winner, loser = n1, n2
		case n2.QuorateWith("n2"):
			winner, loser = n2, n1
		default:
			return false
		}
		return true
	})
	c.waitStoppedThenKilled(loser)
	neverQuorateAlone(t, loser)
	// The check above reads the same decision the winner logs.
	if want := fmt.Sprintf("decision: quorum-gained {%d}", winner.ID); !strings.Contains(winner.Log(), want) {
		t.Fatalf("the winner %s did not log %q", winner.Name, want)
	}
	if winner.Exited() || !winner.QuorateWith(winner.Name) {
		t.Fatalf("the tie-break winner %s did not keep quorum alone", winner.Name)
	}
	t.Logf("tie-break winner: %s", winner.Name)
	for _, nd := range c.Nodes {
		for _, l := range strings.Split(nd.Log(), "\n") {
			if strings.Contains(l, "decision: ") {
				t.Logf("%s: %s", nd.Name, l)
			}
		}
	}
}

// A daemon frozen with SIGSTOP stops feeding its watchdog: its supervisor,
// in a process group of its own, kills the frozen group, and the others
// drop it.
func TestNetnsFrozenDaemonKilledByWatchdog(t *testing.T) {
	c := NewCluster(t, 3, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	if err := syscall.Kill(-n3.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.WaitFor("n3 killed by its watchdog while frozen", n3.Exited)
	if !n3.KilledBySIGKILL() {
		t.Fatalf("frozen n3 ended with %v, want SIGKILL", n3.waitErr())
	}
	if !strings.Contains(n3.Log(), "watchdog fired") {
		t.Fatalf("n3's log does not show its watchdog firing:\n%s", tail(n3.Log(), 20))
	}
	c.WaitFor("n1 and n2 quorate without n3", func() bool {
		return n1.QuorateWith("n1", "n2") && n2.QuorateWith("n1", "n2")
	})
}

// A crashed node that starts again (a new incarnation) is taken back.
func TestNetnsRestartedNodeRejoins(t *testing.T) {
	c := NewCluster(t, 3, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	before, err := n1.Status()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := peer(before, "n3")
	oldInc := old.Incarnation
	n3.Kill()
	c.WaitFor("n3 dropped", func() bool { return n1.QuorateWith("n1", "n2") && n2.QuorateWith("n1", "n2") })
	n3.Start()
	c.WaitAllQuorate(n1, n2, n3)
	s, err := n1.Status()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := peer(s, "n3")
	if p.Incarnation == oldInc || s.Network.Receive.Restarts["n3"] == 0 {
		t.Fatalf("n1 did not see n3's new incarnation: before %s, now %s, restarts %d", oldInc, p.Incarnation, s.Network.Receive.Restarts["n3"])
	}
}

// With two heartbeat networks, losing one of them changes nothing: the
// other still carries every heartbeat.
func TestNetnsOneOfTwoNetworksCut(t *testing.T) {
	c := NewClusterNets(t, 3, 2, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	n1.CutHeartbeatNetwork(0)
	// nftables refuses n1's sends on hb0: proof that the cut is in place.
	c.WaitFor("n1's sends on hb0 refused", func() bool {
		s, err := n1.Status()
		return err == nil && s.Network.Send.Errors["hb0"] > 0
	})
	// Watch for three failure timeouts, long enough for a node heard on
	// one network only to be dropped if the other were not counted.
	watch := time.Now().Add(3 * c.profile.Timing.FailureTimeout)
	for time.Now().Before(watch) {
		for _, nd := range c.Nodes {
			if !nd.QuorateWith("n1", "n2", "n3") {
				s, _ := nd.Status()
				t.Fatalf("%s left the full membership with one of two networks cut: %+v", nd.Name, s)
			}
		}
		time.Sleep(pollInterval)
	}
	s, err := n2.Status()
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := peer(s, "n1"); !p.NetAlive || p.State != quorum.PeerAlive.String() {
		t.Fatalf("n2 sees n1 as %+v with hb1 intact", p)
	}
}
