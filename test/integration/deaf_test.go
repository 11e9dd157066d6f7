package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Deafen drops every heartbeat arriving at the node's namespace, on every
// heartbeat network, while its own heartbeats still go out: a NIC or a
// firewall that stopped receiving.
func (nd *Node) Deafen() {
	t := nd.c.t
	for k := 0; k < nd.c.nets; k++ {
		rules := fmt.Sprintf(`table inet mtcdeaf%[2]d {
	chain in { type filter hook input priority 0; policy accept; udp dport %[1]d drop; }
}
`, hbPort+k, k)
		f := filepath.Join(nd.c.dir, fmt.Sprintf("%s-deaf%d.nft", nd.Name, k))
		if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "ip", "netns", "exec", nd.NS, "nft", "-f", f)
	}
}

// One node stops receiving heartbeats but keeps sending them (the fault
// that used to reset every node of the cluster): the two others keep
// quorum the whole time, never self-fence, and only the deaf node stops
// and is killed by its watchdog.
func TestNetnsDeafNodeCostsOnlyItself(t *testing.T) {
	c := NewCluster(t, 3, defaultProfile)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	n1.Deafen()
	c.waitStoppedThenKilled(n1)
	// Hold the fault a while longer: nothing more may happen to the
	// majority.
	time.Sleep(3 * defaultProfile.Timing.FailureTimeout)
	for _, nd := range []*Node{n2, n3} {
		if nd.Exited() {
			t.Fatalf("%s exited: a healthy node paid for n1's deafness:\n%s", nd.Name, tail(nd.Log(), 40))
		}
		s, err := nd.Status()
		if err != nil {
			t.Fatal(err)
		}
		if !nd.QuorateWith("n2", "n3") || s.Stopped {
			t.Fatalf("%s is not quorate with {n2,n3} after n1 went deaf: state %s, members %v", nd.Name, s.State, s.Members)
		}
		for _, d := range s.Decisions {
			if d.Kind == "self-fence" || d.Kind == "quorum-lost" {
				t.Fatalf("%s decided %q (%s) although it hears n3 and its disk works:\n%s", nd.Name, d.Kind, d.Text, tail(nd.Log(), 40))
			}
		}
		if strings.Contains(nd.Log(), "decision: self-fence") {
			t.Fatalf("%s self-fenced:\n%s", nd.Name, tail(nd.Log(), 40))
		}
	}
}
