package guest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/quorum"
)

// TestFenceRace: two survivors of a split fence each other at the same
// moment, 20 times. LIO serializes the preempts: in every trial exactly
// one ends with a proof and the other with ErrSelfFenced, and the LUN
// keeps exactly one of the two keys.
func TestFenceRace(t *testing.T) {
	san, ctx := lab(t)
	const lun = "data1"
	d1, d2 := dev(t, san, "node1", lun), dev(t, san, "node2", lun)
	cleanLUNs(t, ctx, lun)
	open := func(d string) []*fence.LUN {
		l, err := fence.OpenLUN(d, fence.BackendSGIO)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return []*fence.LUN{l}
	}
	l1, l2 := open(d1), open(d2)
	f1, f2 := &fence.Fencer{Cluster: labCluster, Self: 1}, &fence.Fencer{Cluster: labCluster, Self: 2}
	wins := map[quorum.NodeID]int{}
	for trial := range 20 {
		cleanLUN(t, ctx, lun)
		if err := f1.Unfence(ctx, l1); err != nil {
			t.Fatalf("trial %d: node1 unfence: %v", trial, err)
		}
		if err := f2.Unfence(ctx, l2); err != nil {
			t.Fatalf("trial %d: node2 unfence: %v", trial, err)
		}
		var p1, p2 fence.Proof
		var e1, e2 error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; p1, e1 = f1.Fence(ctx, 2, 2, l1) }()
		go func() { defer wg.Done(); <-start; p2, e2 = f2.Fence(ctx, 1, 1, l2) }()
		t0 := time.Now()
		close(start)
		wg.Wait()
		took := time.Since(t0)
		if p1.Valid() == p2.Valid() {
			t.Fatalf("trial %d: node1 %v (%v), node2 %v (%v): want exactly one proof", trial, p1, e1, p2, e2)
		}
		winner, loser := quorum.NodeID(1), e2
		if p2.Valid() {
			winner, loser = 2, e1
		}
		if !errors.Is(loser, fence.ErrSelfFenced) {
			t.Errorf("trial %d: the loser's error %v, want ErrSelfFenced", trial, loser)
		}
		keys, _ := agree(t, ctx, "after the race", dev(t, san, "node3", lun))
		if want := []uint64{labKey(winner)}; !slices.Equal(keys.Keys, want) {
			t.Errorf("trial %d: keys %#x, want the winner node%d's %#x alone", trial, keys.Keys, winner, want)
		}
		wins[winner]++
		t.Logf("trial %d: node%d won in %v; loser: %v", trial, winner, took, loser)
	}
	t.Logf("wins: node1 %d, node2 %d", wins[1], wins[2])
}
