package guest

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestFenceRejoinDropsStaleRegistration: node1's key registered and
// holding the reservation through a nexus that is no longer node1's (here
// node3's path plays an old session of node1). Unfence keeps it; Rejoin
// removes it with a PREEMPT of node1's own key, takes the reservation over
// and leaves node1's key registered exactly once; the stale nexus can no
// longer write. Our reads agree with sg_persist after each step.
func TestFenceRejoinDropsStaleRegistration(t *testing.T) {
	san, ctx := lab(t)
	d1, stale := dev(t, san, "node1", "data1"), dev(t, san, "node3", "data1")
	cleanLUNs(t, ctx, "data1")
	old := labkit.PR{Dev: stale}
	if err := old.Register(ctx, labKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := old.Reserve(ctx, labKey(1), labkit.WriteExclusiveRegistrantsOnly); err != nil {
		t.Fatal(err)
	}
	l, err := fence.OpenLUN(d1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := &fence.Fencer{Cluster: labCluster, Self: 1}
	if err := f.Unfence(ctx, []*fence.LUN{l}); err != nil {
		t.Fatal(err)
	}
	if k, _ := agree(t, ctx, "after unfence", d1); !slices.Equal(k.Keys, []uint64{labKey(1), labKey(1)}) {
		t.Fatalf("after unfence: keys %#x, want node1's twice (live and stale nexus)", k.Keys)
	}
	if err := f.Rejoin(ctx, []*fence.LUN{l}); err != nil {
		t.Fatal(err)
	}
	k, r := agree(t, ctx, "after rejoin", d1)
	if !slices.Equal(k.Keys, []uint64{labKey(1)}) || !r.Held || r.Key != labKey(1) || r.Type != scsi.WriteExclusiveRegistrantsOnly {
		t.Errorf("after rejoin: keys %#x, reservation %+v; want node1's key once, holding type 5", k.Keys, r)
	}
	clearUA(t, ctx, stale)
	if err := writeBlock(stale, 20); !errors.Is(err, syscall.EBADE) {
		t.Errorf("a write through the stale nexus after rejoin: %v, want EBADE", err)
	}
	if err := writeBlock(d1, 20); err != nil {
		t.Errorf("node1's write after rejoin: %v", err)
	}
}
