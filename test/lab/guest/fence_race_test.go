package guest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
)

// beforePreempt runs fn once, just before the first PREEMPT AND ABORT that
// goes out through the path: the other survivor's whole fence then lands
// between this survivor's read of the keys and its preempt.
type beforePreempt struct {
	fence.Path
	once sync.Once
	fn   func()
}

func (b *beforePreempt) Out(ctx context.Context, a scsi.OutAction, t scsi.Type, p scsi.OutParams) error {
	if a == scsi.PreemptAndAbort {
		b.once.Do(b.fn)
	}
	return b.Path.Out(ctx, a, t, p)
}

// TestFenceRace: two survivors of a split fence each other, 20 trials,
// alternating who goes first and how the two fences interleave: one
// survivor's fence lands between the other's read of the keys and its
// PREEMPT AND ABORT (which then meets RESERVATION CONFLICT from the
// target: its nexus is no longer registered), or one fence follows the
// other (the second finds its own key gone before sending anything).
// Every trial must end with exactly one proof, the other survivor's
// ErrSelfFenced, and the winner's key alone on the LUN.
//
// The two PREEMPT AND ABORTs are never in flight at the same instant:
// that soft-locks Debian 6.1's LIO iSCSI target (see the README's
// pitfalls); the interleavings above are the outcomes the target's
// serialization can produce.
func TestFenceRace(t *testing.T) {
	san, ctx := lab(t)
	const lun = "data1"
	d1, d2 := dev(t, san, "node1", lun), dev(t, san, "node2", lun)
	cleanLUNs(t, ctx, lun)
	open := func(d string) *fence.LUN {
		l, err := fence.OpenLUN(d, fence.BackendSGIO)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	lun1, lun2 := open(d1), open(d2)
	fencers := map[quorum.NodeID]*fence.Fencer{1: {Cluster: labCluster, Self: 1}, 2: {Cluster: labCluster, Self: 2}}
	luns := map[quorum.NodeID]*fence.LUN{1: lun1, 2: lun2}
	other := map[quorum.NodeID]quorum.NodeID{1: 2, 2: 1}
	for trial := range 20 {
		cleanLUN(t, ctx, lun)
		for n := quorum.NodeID(1); n <= 2; n++ {
			if err := fencers[n].Unfence(ctx, []*fence.LUN{luns[n]}); err != nil {
				t.Fatalf("trial %d: node%d unfence: %v", trial, n, err)
			}
		}
		// winner fences loser; the loser tries to fence the winner.
		winner := quorum.NodeID(1 + trial%2)
		loser := other[winner]
		interleaved := trial/2%2 == 0
		var wp fence.Proof
		var we error
		fenceWinner := func() { wp, we = fencers[winner].Fence(ctx, loser, 1, []*fence.LUN{luns[winner]}) }
		t0 := time.Now()
		var lp fence.Proof
		var le error
		if interleaved {
			hooked := &fence.LUN{Name: luns[loser].Name, Paths: []fence.Path{&beforePreempt{Path: luns[loser].Paths[0], fn: fenceWinner}}}
			lp, le = fencers[loser].Fence(ctx, winner, 1, []*fence.LUN{hooked})
		} else {
			fenceWinner()
			lp, le = fencers[loser].Fence(ctx, winner, 1, []*fence.LUN{luns[loser]})
		}
		took := time.Since(t0)
		if !wp.Valid() || we != nil || lp.Valid() {
			t.Fatalf("trial %d (interleaved %v): node%d %v (%v), node%d %v (%v): want node%d's proof alone", trial, interleaved, winner, wp, we, loser, lp, le, winner)
		}
		if !errors.Is(le, fence.ErrSelfFenced) {
			t.Errorf("trial %d: node%d's error %v, want ErrSelfFenced", trial, loser, le)
		}
		if interleaved && !errors.Is(le, fence.ErrReservationConflict) {
			t.Errorf("trial %d: node%d's preempt after being fenced: %v, want the target's RESERVATION CONFLICT", trial, loser, le)
		}
		keys, _ := agree(t, ctx, "after the race", dev(t, san, "node3", lun))
		if want := []uint64{labKey(winner)}; !slices.Equal(keys.Keys, want) {
			t.Errorf("trial %d: keys %#x, want the winner node%d's %#x alone", trial, keys.Keys, winner, want)
		}
		t.Logf("trial %d: node%d fenced node%d (interleaved %v) in %v; node%d: %v", trial, winner, loser, interleaved, took, loser, le)
	}
}
