package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// newArbiterCluster is a two-node cluster whose quorum disk is one of the
// LUNs fenced with persistent reservations, so the machines are told the
// fence may arbitrate a tie (quorum.Config.FenceArbiter).
func newArbiterCluster(t *testing.T, san *fakeSAN) *testCluster {
	t.Helper()
	return newTestClusterWith(t, 2, func(tc *testCluster) {
		tc.fenceLUNs = san.luns
		for _, cn := range tc.cl.Nodes {
			san.guardDisk(tc.disk.Path(cn.Name), cn.Name)
		}
		tc.options = func(name string, o *Options) { o.DiskPath = "quorum" }
	})
}

// A two-node split where both nodes still reach the storage: the fence
// decides. Exactly one node fences the other and carries on alone with a
// takeover allowed because it fenced; the other finds its key preempted
// and stops; the storage refuses the loser's writes. In every trial, the
// lower id (which fences first) or the higher one.
func TestArbiterTwoNodeSplit(t *testing.T) {
	for trial := range 3 {
		san := newFakeSAN()
		tc := newArbiterCluster(t, san)
		a, b := tc.nodes[0], tc.nodes[1]
		if !a.d.fence.fencesQuorumDisk(a.d.opt.DiskPath) {
			t.Fatal("the daemon did not tell the machine its quorum disk is fenced with persistent reservations")
		}
		tc.waitFor("both quorate", func() bool { return quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2") })
		cut := time.Now()
		tc.net.Partition([]netip.Addr{a.addr}, []netip.Addr{b.addr})
		var win, lose *testNode
		var loser string
		tc.waitFor("one node alone with the other fenced, the other stopped", func() bool {
			switch {
			case quorateWith(a, "n1") && b.d.Status().Stopped:
				win, lose, loser = a, b, "n2"
			case quorateWith(b, "n2") && a.d.Status().Stopped:
				win, lose, loser = b, a, "n1"
			default:
				return false
			}
			_, ok := takeoverOf(win, loser)
			return ok
		})
		r, _ := takeoverOf(win, loser)
		t.Logf("trial %d: %s won; split to takeover allowed %v (reason %s)", trial, win.d.self.Name, time.Since(cut).Round(time.Millisecond), r.Reason)
		if r.Reason != quorum.TakeoverFenced.String() {
			t.Fatalf("takeover of %s for %q, want %q", loser, r.Reason, quorum.TakeoverFenced)
		}
		for _, lun := range fakeLUNs {
			if san.registered(lun, loser) || !san.registered(lun, win.d.self.Name) {
				t.Fatalf("%s after the split: %+v", lun, san.t.State(lun))
			}
		}
		// The fence decided, not the tie-break lock's claim.
		byFence := false
		for _, d := range win.d.Status().Decisions {
			if d.Kind == quorum.TieWon.String() && d.Reason == "peer fenced" {
				byFence = true
			}
		}
		if !byFence {
			t.Fatalf("%s won the tie, but not by the fence: %+v", win.d.self.Name, win.d.Status().Decisions)
		}
		if ls := lose.d.Status(); ls.Quorate {
			t.Fatalf("the loser %s is quorate: %+v", loser, ls.Members)
		}
		for _, n := range tc.nodes {
			n.stop()
		}
	}
}
