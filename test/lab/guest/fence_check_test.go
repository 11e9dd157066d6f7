package guest

import (
	"slices"
	"testing"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/quorum"
)

// TestFenceCheckRegistration: node1 and node2 unfence on data1 and data2;
// node1's registration check (fence.Fencer.CheckRegistration, READ KEYS
// over SG_IO, what the daemon runs every period) finds its key on both,
// once per path; node2 fences node1 on data2 alone (a fence that has
// reached one LUN, or one whose preempt there landed late); node1's check
// reads through the REGISTRATIONS PREEMPTED unit attention its nexus got
// and finds its key gone from data2 and still on data1, and the LIO
// target's keys agree with sg_persist's.
func TestFenceCheckRegistration(t *testing.T) {
	san, ctx := lab(t)
	cleanLUNs(t, ctx, fenceLUNs...)
	luns := func(n quorum.NodeID, names ...string) []*fence.LUN {
		t.Helper()
		var out []*fence.LUN
		for _, l := range names {
			lun, err := fence.OpenLUN(dev(t, san, nodeName(n), l), "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lun.Close() })
			out = append(out, lun)
		}
		return out
	}
	fencer := func(n quorum.NodeID) *fence.Fencer {
		return &fence.Fencer{Cluster: labCluster, Self: n, Log: testLogger(t).With("node", n)}
	}
	for n := quorum.NodeID(1); n <= 2; n++ {
		if err := fencer(n).Unfence(ctx, luns(n, fenceLUNs...)); err != nil {
			t.Fatalf("node%d unfence: %v", n, err)
		}
	}
	regs, err := fencer(1).CheckRegistration(ctx, luns(1, fenceLUNs...))
	if err != nil || regs.Err() != nil || len(regs.Gone()) != 0 {
		t.Fatalf("node1 registered: %v (%v, %v)", regs, err, regs.Err())
	}
	for _, r := range regs {
		if r.Nexuses != r.Paths {
			t.Errorf("%s: node1's key registered %d times over %d paths", r.LUN, r.Nexuses, r.Paths)
		}
	}

	if _, err := fencer(2).Fence(ctx, 1, 7, luns(2, "data2")); err != nil {
		t.Fatal(err)
	}
	regs, err = fencer(1).CheckRegistration(ctx, luns(1, fenceLUNs...))
	if err != nil || regs.Err() != nil {
		t.Fatalf("node1 after the fence of data2: %v (%v, %v)", regs, err, regs.Err())
	}
	if got := regs.Gone(); !slices.Equal(got, []string{dev(t, san, "node1", "data2")}) {
		t.Fatalf("node1's key gone from %v, want data2 alone (%v)", got, regs)
	}
	for _, l := range fenceLUNs {
		k, _ := agree(t, ctx, "after the fence of data2", dev(t, san, "node2", l))
		if has := slices.Contains(k.Keys, labKey(1)); has != (l == "data1") {
			t.Errorf("%s: node1's key registered %v, by sg_persist's reading", l, has)
		}
	}
}
