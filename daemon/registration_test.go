package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
)

func isReadKeys(cdb []byte) bool {
	return cdb[0] == scsi.OpPersistentReserveIn && scsi.InAction(cdb[1]&0x1f) == scsi.ReadKeys
}

// lastDecision is the reason of node n's last decision of kind k ("" if
// none).
func lastDecision(n *testNode, k quorum.DecisionKind) (string, bool) {
	var why string
	found := false
	for _, d := range n.d.Status().Decisions {
		if d.Kind == k.String() {
			why, found = d.Reason, true
		}
	}
	return why, found
}

// A late fence that removes a member's key from the data LUN alone
// (nothing the daemon writes there, so no write is refused) is found by
// the member's registration check: it stops as fenced by a peer, its
// status names the LUN, and it does not register again.
func TestLateDataFenceFoundByTheCheck(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	_, _, c := tc.threeQuorate()
	f := &fence.Fencer{Cluster: tc.cl.UUID, Self: 1}
	if _, err := f.Fence(context.Background(), 3, 0, []*fence.LUN{san.lun("data", "n1")}); err != nil {
		t.Fatal(err)
	}
	tc.waitFor("n3 stopped", func() bool { return c.d.Status().Stopped })
	if why, _ := lastDecision(c, quorum.SelfFence); why != "fenced by a peer" {
		t.Fatalf("n3 self-fenced with reason %q, want \"fenced by a peer\"", why)
	}
	if why, ok := lastDecision(c, quorum.RegistrationLost); !ok || !strings.Contains(why, "data") {
		t.Fatalf("n3's registration-lost decision: %q (%v), want one naming the data LUN", why, ok)
	}
	if s := c.d.Status().Fencing; !strings.Contains(s.Registration, "data: gone") || s.RegistrationChecked.IsZero() {
		t.Errorf("n3's status: registration %q checked %v, want the data LUN gone", s.Registration, s.RegistrationChecked)
	}
	// It held quorum: it must not register again (the survivors fence it
	// on every LUN once it has left).
	if san.registered("data", "n3") || hasDecision(c, quorum.RejoinRequested) != 0 {
		t.Errorf("n3 registered again after holding quorum: data %v, %d re-registrations", san.registered("data", "n3"), hasDecision(c, quorum.RejoinRequested))
	}
}

// A check that cannot read a LUN (its READ KEYS fails on the path) is no
// fence: the node goes on, reports it once, and reports the next check
// that reads every LUN again.
func TestUnreadableLUNIsNoFence(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	_, _, c := tc.threeQuorate()
	san.port("data", "n3").Inject(prfake.Fault{Match: isReadKeys, PathFail: true})
	tc.waitFor("n3 reports the data LUN unread", func() bool { return hasDecision(c, quorum.RegistrationUnread) == 1 })
	if c.d.Status().Stopped || hasDecision(c, quorum.RegistrationLost) != 0 {
		t.Fatal("n3 took a failed READ KEYS for a removed key")
	}
	tc.waitFor("n3 reads every LUN again", func() bool { return hasDecision(c, quorum.RegistrationRead) == 1 })
	if !quorateWith(c, "n1", "n2", "n3") {
		t.Fatalf("n3 not quorate with every node: %+v", c.d.Status())
	}
}

// waitForCheck waits until n has completed a registration check after
// since, and returns when it did.
func waitForCheck(tc *testCluster, n *testNode, since time.Time) time.Time {
	tc.t.Helper()
	var at time.Time
	tc.waitFor(n.d.self.Name+" checked its registration", func() bool {
		at = n.d.Status().Fencing.RegistrationChecked
		return at.After(since)
	})
	return at
}
