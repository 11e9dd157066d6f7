package quorum

import (
	"fmt"
	"testing"
	"time"
)

// TestHealKeepsTheMinorityTogether: a 2|3 partition of five heals before
// the minority self-fences. Each of nodes 4 and 5 then hears the majority
// before its fellow's row lists it, and on that row the clique {1,2,3,4}
// beats {4,5}: without deferDrops, 4 dropped 5 (and 5 dropped 4) for the
// newcomers a heartbeat before the rows agreed, and each drop cost a
// shrink guard. With it, each keeps its fellow until the fellow's next
// heartbeat, which lists the majority, and the five join at once. The
// cases spread the cadences differently, so the rows arrive in other
// orders.
func TestHealKeepsTheMinorityTogether(t *testing.T) {
	for _, name := range []string{"default", "aggressive"} {
		for _, stagger := range []time.Duration{3, 7, 11, 17, 23, 31, 37, 41} {
			t.Run(fmt.Sprintf("%s/%dms", name, stagger), func(t *testing.T) {
				c := newStaggered(t, 5, profiles[name], stagger*time.Millisecond)
				c.formed()
				for _, a := range []NodeID{1, 2, 3} {
					for _, b := range []NodeID{4, 5} {
						c.cut(a, b)
						c.cut(b, a)
					}
				}
				c.run(c.now + c.d.DeadAfter + c.d.HeartbeatInterval)
				for _, id := range []NodeID{4, 5} {
					if st := c.nodes[id].m.Status(); st.Members != SetOf(4, 5) || st.Stopped {
						t.Fatalf("node %d before the heal: members %v, stopped %v; want {4,5}, running\n%s", id, st.Members, st.Stopped, c.nodes[id].log())
					}
				}
				heal := c.now
				c.heal()
				c.run(c.now + 4*c.d.EndorseGuard)
				for _, id := range []NodeID{4, 5} {
					n := c.nodes[id]
					for _, d := range n.decisions {
						if d.Kind == MembershipChanged && d.At > heal && d.Members&SetOf(4, 5) != SetOf(4, 5) {
							t.Errorf("node %d dropped its fellow for the majority: %v at %v\n%s", id, d.Members, d.At, n.log())
							break
						}
					}
				}
				for _, n := range c.nodes[1:] {
					if st := n.m.Status(); !st.Quorate || st.Members != SetOf(1, 2, 3, 4, 5) || n.stoppedAt >= 0 {
						t.Errorf("node %d after the heal: quorate=%v members=%v stopped at %v; want quorate with all five\n%s", n.id, st.Quorate, st.Members, n.stoppedAt, n.log())
					}
				}
			})
		}
	}
}
