package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// labMembers is the cluster as node1's VG owner check sees it: nodeN is
// node id N with LVM system ID nodeN.
type labMembers struct {
	live map[string]bool
	inc  map[string]quorum.Incarnation
}

func (m labMembers) NodeOfSystemID(id string) (string, bool) { return id, m.IsNode(id) }
func (m labMembers) IsNode(n string) bool                    { _, ok := m.NodeID(n); return ok }
func (m labMembers) NodeID(n string) (quorum.NodeID, bool) {
	for id := quorum.NodeID(1); id <= 3; id++ {
		if nodeName(id) == n {
			return id, true
		}
	}
	return 0, false
}
func (m labMembers) Live(n string) bool                          { return m.live[n] }
func (m labMembers) LastIncarnation(n string) quorum.Incarnation { return m.inc[n] }

// TestLVMTakeoverWithFencingProof: node2 owns VG vgtake (system ID node2)
// on data1, activated through package lvm, and writes to its LV with
// O_DIRECT through its own path. node1 takes the VG over through package
// lvm only with a proof from a real fence.Fence of node2 covering data1:
// refused while node2 is a live member (with or without a proof), refused
// without a proof (none, the zero Proof, a proof of an earlier
// incarnation), refused with a proof of a fence on data2 only
// (ErrProofDoesNotCover); then node1 fences node2 on data1: node2's
// writer gets EBADE, node1's takeover changes the system ID to node1 and
// activates the LV over node1's own path, node1 writes to it, and node2's
// writes through its path still get EBADE. Deactivate releases the VG.
func TestLVMTakeoverWithFencingProof(t *testing.T) {
	san, ctx := lab(t)
	const vg, lv = "vgtake", "lv0"
	lvDev := "/dev/mapper/" + vg + "-" + lv
	dev1, dev2 := dev(t, san, "node1", "data1"), dev(t, san, "node2", "data1")
	lvm1 := labkit.LVMNode{Name: "node1", Devices: []string{dev1}}
	lvm2 := labkit.LVMNode{Name: "node2", Devices: []string{dev2}}
	// Cleanups run last first: the LUNs' reservations are cleared before
	// the VG is removed, so that the removal may write whoever was fenced.
	t.Cleanup(func() {
		ctx := context.Background()
		anyNode := labkit.LVMNode{Name: "cleanup", Devices: []string{dev1}}
		labkit.Run(ctx, "dmsetup", "remove", vg+"-"+lv)
		owners := `local/extra_system_ids=["node1","node2"]`
		for _, args := range [][]string{{"vgremove", "-ff", "-y", vg}, {"pvremove", "-ff", "-y", dev1}} {
			if _, err := anyNode.Run(ctx, owners, args[0], args[1:]...); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	})
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

	// node2 builds its VG and activates it through package lvm.
	for _, args := range [][]string{{"pvcreate", "-y", dev2}, {"vgcreate", vg, dev2}, {"lvcreate", "-y", "-an", "-n", lv, "-L", "32M", vg}} {
		if _, err := lvm2.Run(ctx, "", args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	const node2Inc, node2Later quorum.Incarnation = 0x2222, 0x2223
	members := labMembers{live: map[string]bool{"node1": true, "node2": true}, inc: map[string]quorum.Incarnation{"node1": 0x1111, "node2": node2Inc}}
	spec := lvm.VGSpec{Name: vg}
	m2 := lvm.NewManager(labkit.LVMRunner{Node: lvm2}, lvm.SysDevices{}, "node2", "node2", members, testLogger(t).With("node", "node2"))
	if err := m2.Activate(ctx, spec, nil); err != nil {
		t.Fatalf("node2 activating its own VG: %v", err)
	}
	requireLVOn(t, lvDev, dev2)
	w, err := labkit.StartDirectWriter(ctx, lvDev, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if !waitFor(ctx, func() bool { return w.Writes() >= 3 }) {
		t.Fatalf("node2's writer made %d writes: %v", w.Writes(), w.Stop())
	}

	m1 := lvm.NewManager(labkit.LVMRunner{Node: lvm1}, lvm.SysDevices{}, "node1", "node1", members, testLogger(t).With("node", "node1"))
	refused := func(step string, proofs []fence.Proof, want error) {
		t.Helper()
		err := m1.Activate(ctx, spec, proofs)
		var oe *lvm.OwnerError
		if !errors.Is(err, want) || !errors.As(err, &oe) || oe.VG != vg || oe.Owner != "node2" {
			t.Fatalf("%s: node1's Activate: %v, want an *lvm.OwnerError wrapping %v", step, err, want)
		}
		t.Logf("%s: refused: %v", step, err)
		requireVG(t, ctx, lvm1, vg, "node2", true)
		requireLVOn(t, lvDev, dev2)
	}

	// (c) node2 is a live member: refused.
	refused("node2 live, no proof", nil, lvm.ErrOwnedByLiveMember)

	// (b) node2 no longer live, but not fenced: refused without a proof.
	members.live["node2"] = false
	refused("no proof", nil, lvm.ErrNoProof)
	refused("the zero proof", []fence.Proof{{}}, lvm.ErrNoProof)

	// A real fence of node2 on data2 only does not cover data1.
	onData2, err := fencer(1).Fence(ctx, 2, node2Inc, luns(1, "data2"))
	if err != nil {
		t.Fatalf("node1 fencing node2 on data2: %v", err)
	}
	refused("a proof on data2 only", []fence.Proof{onData2}, lvm.ErrProofDoesNotCover)
	select {
	case <-w.Done():
		t.Fatalf("node2's writer on data1 stopped after a fence on data2: %v", w.Stop())
	default:
	}

	// (a) node1 fences node2 on data1: node2's writer fails with EBADE.
	t0 := time.Now()
	proof, err := fencer(1).Fence(ctx, 2, node2Inc, luns(1, "data1"))
	if err != nil {
		t.Fatalf("node1 fencing node2 on data1: %v", err)
	}
	if !proof.Valid() || proof.Victim() != 2 || !proof.Covers(dev1) {
		t.Fatalf("proof %v", proof)
	}
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Fatalf("node2's writer still running after it was fenced (%d writes)", w.Writes())
	}
	if werr := w.Stop(); !errors.Is(werr, syscall.EBADE) {
		t.Fatalf("node2's writer through its LV ended with %v; want EBADE", werr)
	}
	t.Logf("fence of node2 on data1 took %v: %v", time.Since(t0), proof)

	// Still refused while node2 counts as live, and once node1 has seen a
	// later incarnation of node2 (the proof is about an earlier one).
	members.live["node2"] = true
	refused("node2 live, with a proof", []fence.Proof{proof}, lvm.ErrOwnedByLiveMember)
	members.live["node2"] = false
	members.inc["node2"] = node2Later
	refused("a proof of an earlier incarnation", []fence.Proof{proof}, lvm.ErrNoProof)
	members.inc["node2"] = node2Inc

	// node2's host is gone: its device-mapper table with it.
	mustRun(t, ctx, "dmsetup", "remove", vg+"-"+lv)

	t0 = time.Now()
	if err := m1.CheckTakeover(ctx, spec, []fence.Proof{onData2, proof}); err != nil {
		t.Fatalf("node1's CheckTakeover with the proof: %v", err)
	}
	if err := m1.Activate(ctx, spec, []fence.Proof{onData2, proof}); err != nil {
		t.Fatalf("node1's takeover with the proof: %v", err)
	}
	t.Logf("takeover through package lvm took %v", time.Since(t0))
	requireVG(t, ctx, lvm1, vg, "node1", false)
	requireLVOn(t, lvDev, dev1)
	rep, err := m1.Report(ctx, vg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AutoActivation || rep.ActiveLVs != 1 || rep.LVs != 1 || len(rep.PVs) != 1 || rep.PVs[0] != dev1 {
		t.Errorf("after the takeover node1 reports %+v, want autoactivation off, its LV active, PV %s", rep, dev1)
	}
	if err := writeBlock(lvDev, 16); err != nil {
		t.Errorf("node1's write to the taken-over LV: %v", err)
	}
	// Beyond the LV's extents (1 MiB + 32 MiB): a write there by node2
	// would corrupt nothing if it were let through.
	if err := writeBlock(dev2, 200<<20/4096); !errors.Is(err, syscall.EBADE) {
		t.Errorf("fenced node2's write through its path: %v, want EBADE", err)
	}
	// Activate again: nothing to do.
	if err := m1.Activate(ctx, spec, nil); err != nil {
		t.Errorf("node1's second Activate (VG now its own, no proof): %v", err)
	}

	if err := m1.Deactivate(ctx, spec); err != nil {
		t.Fatalf("node1's Deactivate: %v", err)
	}
	requireVG(t, ctx, lvm1, vg, "", false)
	if _, err := os.Stat(lvDev); err == nil {
		t.Errorf("%s still exists after Deactivate", lvDev)
	}
}

// requireLVOn fails t unless the device-mapper device lv is a map over
// the device path alone (the node's own path to the LUN).
func requireLVOn(t *testing.T, lv, path string) {
	t.Helper()
	d := lvm.SysDevices{}
	n, err := d.Number(lv)
	if err != nil {
		t.Fatal(err)
	}
	under, err := d.Under(n)
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.Number(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(under) != 1 || under[0] != want {
		var names []string
		for _, u := range under {
			names = append(names, fmt.Sprintf("%d:%d", unix.Major(u), unix.Minor(u)))
		}
		t.Fatalf("%s is a map over %v, want over %s (%d:%d) alone", lv, names, path, unix.Major(want), unix.Minor(want))
	}
}
