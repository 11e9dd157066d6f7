package guest

import (
	"errors"
	"slices"
	"testing"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestFenceBlockPRBackend: the block layer's PR ioctls on real SCSI
// disks. Registrations, a reservation and a PREEMPT AND ABORT made through
// IOC_PR_* are what sg_persist then reads; a fenced node's RESERVE comes
// back as ErrReservationConflict. Whether the kernel has the PR read
// ioctls is detected, not required: with them our reads must agree with
// sg_persist, without them Unfence must fail closed (ErrNotSupported).
func TestFenceBlockPRBackend(t *testing.T) {
	san, ctx := lab(t)
	devs := []string{dev(t, san, "node1", "data2"), dev(t, san, "node2", "data2"), dev(t, san, "node3", "data2")}
	cleanLUNs(t, ctx, "data2")
	var paths []fence.Path
	for _, d := range devs {
		p, err := fence.OpenPath(d, fence.BackendBlockPR)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		paths = append(paths, p)
	}
	k1, k2 := labKey(1), labKey(2)
	wero := scsi.WriteExclusiveRegistrantsOnly
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("register node1", paths[0].Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: k1}))
	must("register node2", paths[1].Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: k2}))
	must("reserve node1", paths[0].Out(ctx, scsi.Reserve, wero, scsi.OutParams{Key: k1}))
	keys, _, err := labkit.PR{Dev: devs[2]}.ReadKeys(ctx)
	must("sg_persist read keys", err)
	res, err := labkit.PR{Dev: devs[2]}.ReadReservation(ctx)
	must("sg_persist read reservation", err)
	if !slices.Equal(keys, []uint64{k1, k2}) || !res.Held || res.Key != k1 || res.Type != labkit.WriteExclusiveRegistrantsOnly {
		t.Fatalf("after block PR register and reserve: keys %#x, reservation %+v", keys, res)
	}
	caps, err := labkit.PR{Dev: devs[2]}.ReportCapabilities(ctx)
	must("sg_persist report capabilities", err)
	t.Logf("after registering through the block layer, the target reports PTPL_A %v (Linux's sd asks for APTPL on every registration)", caps.PTPLA)

	reads := fence.ProbeReads(ctx, paths[2])
	t.Logf("block PR read ioctls on this kernel: %v", reads)
	if reads {
		agree(t, ctx, "block PR reads available", devs[2])
		k, err := paths[2].ReadKeys(ctx)
		must("block PR read keys", err)
		if !slices.Equal(k.Keys, keys) {
			t.Errorf("block PR READ KEYS %#x, sg_persist %#x", k.Keys, keys)
		}
	}

	must("node2 preempt and abort node1", paths[1].Out(ctx, scsi.PreemptAndAbort, wero, scsi.OutParams{Key: k2, ServiceKey: k1}))
	keys, _, err = labkit.PR{Dev: devs[2]}.ReadKeys(ctx)
	must("sg_persist read keys", err)
	res, err = labkit.PR{Dev: devs[2]}.ReadReservation(ctx)
	must("sg_persist read reservation", err)
	if !slices.Equal(keys, []uint64{k2}) || !res.Held || res.Key != k2 {
		t.Errorf("after block PR preempt and abort: keys %#x, reservation %+v; want node2's alone", keys, res)
	}
	// The block layer has no TEST UNIT READY: clear node1's unit attention
	// (registrations preempted) with ours so RESERVE meets the conflict.
	clearUA(t, ctx, devs[0], devs[2])
	if err := paths[0].Out(ctx, scsi.Reserve, wero, scsi.OutParams{Key: k1}); !errors.Is(err, fence.ErrReservationConflict) {
		t.Errorf("fenced node1's RESERVE through the block layer: %v, want ErrReservationConflict", err)
	}

	f := &fence.Fencer{Cluster: labCluster, Self: 3}
	err = f.Unfence(ctx, []*fence.LUN{{Name: devs[2], Paths: paths[2:]}})
	switch {
	case reads && err != nil:
		t.Errorf("unfence through block PR with reads: %v", err)
	case !reads && !errors.Is(err, fence.ErrNotSupported):
		t.Errorf("unfence through block PR without reads: %v, want ErrNotSupported (cannot verify: fail closed)", err)
	}
	keys, _, err = labkit.PR{Dev: devs[2]}.ReadKeys(ctx)
	must("sg_persist read keys", err)
	if !slices.Contains(keys, labKey(3)) {
		t.Errorf("node3's block PR registration missing: %#x", keys)
	}
}
