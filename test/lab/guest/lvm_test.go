package guest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestLVMSystemIDTakeoverAfterFencing: node1 owns a volume group (system ID
// node1) with a mounted ext4 LV on a shared LUN; node2 fences node1 with
// PREEMPT AND ABORT, takes the VG over by changing its system ID, and
// reads node1's data; node1, fenced, cannot write the VG's metadata back.
//
// All nodes share the guest's device-mapper, so node1's "crash" is played
// by node1 deactivating its LV (its host's dm table would be gone); what
// protects the data is the reservation and the system ID, both checked here.
func TestLVMSystemIDTakeoverAfterFencing(t *testing.T) {
	san, ctx := lab(t)
	dev1, dev2 := dev(t, san, "node1", "data1"), dev(t, san, "node2", "data1")
	pr1, pr2 := labkit.PR{Dev: dev1}, labkit.PR{Dev: dev2}
	node1 := labkit.LVMNode{Name: "node1", Devices: []string{dev1}}
	node2 := labkit.LVMNode{Name: "node2", Devices: []string{dev2}}
	const vg, lv = "vglab", "lv0"
	lvDev := "/dev/mapper/" + vg + "-" + lv

	freshPR(t, ctx, pr2)
	t.Cleanup(func() {
		ctx := context.Background()
		freshPR(t, ctx, pr2)
		// Leave the LUN blank for a rerun in the lab shell; a step that
		// finds nothing to undo fails, which is fine here.
		anyNode := labkit.LVMNode{Name: "cleanup", Devices: []string{dev2}}
		owners := `local/extra_system_ids=["node1","node2"]`
		for _, args := range [][]string{{"vgchange", "-an", vg}, {"vgremove", "-ff", "-y", vg}, {"pvremove", "-ff", "-y", dev2}} {
			if _, err := anyNode.Run(ctx, owners, args[0], args[1:]...); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	})
	run := func(n labkit.LVMNode, extra, cmd string, args ...string) {
		t.Helper()
		if _, err := n.Run(ctx, extra, cmd, args...); err != nil {
			t.Fatal(err)
		}
	}
	mnt := t.TempDir()

	// node1 registers, reserves (type 5) and builds its VG.
	for _, s := range []struct {
		pr  labkit.PR
		key uint64
	}{{pr1, key1}, {pr2, key2}} {
		if err := s.pr.Register(ctx, s.key); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr1.Reserve(ctx, key1, labkit.WriteExclusiveRegistrantsOnly); err != nil {
		t.Fatal(err)
	}
	run(node1, "", "pvcreate", "-y", dev1)
	run(node1, "", "vgcreate", vg, dev1)
	run(node1, "", "lvcreate", "-y", "-an", "-n", lv, "-L", "32M", vg)
	requireVG(t, ctx, node1, vg, "node1", false)
	run(node1, "", "lvchange", "-ay", vg+"/"+lv)
	mustRun(t, ctx, "mkfs.ext4", "-q", "-F", lvDev)
	mustRun(t, ctx, "mount", "-t", "ext4", lvDev, mnt)
	if err := os.WriteFile(filepath.Join(mnt, "owner"), []byte("node1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, "umount", mnt) // node1's host goes down
	run(node1, "", "vgchange", "-an", vg)

	// node2 sees a foreign VG and will not activate it as it stands.
	requireVG(t, ctx, node2, vg, "node1", true)
	if _, err := node2.Run(ctx, "", "vgchange", "-ay", vg); err == nil {
		if _, serr := os.Stat(lvDev); serr == nil {
			t.Fatalf("node2 activated node1's VG without taking it over")
		}
	}

	// node2 fences node1, then takes the VG over.
	if err := pr2.PreemptAbort(ctx, key2, key1, labkit.WriteExclusiveRegistrantsOnly); err != nil {
		t.Fatal(err)
	}
	run(node2, `local/extra_system_ids=["node1"]`, "vgchange", "-y", "--systemid", "node2", vg)
	requireVG(t, ctx, node2, vg, "node2", false)
	run(node2, "", "vgchange", "-ay", vg)
	mustRun(t, ctx, "mount", "-t", "ext4", lvDev, mnt)
	got, err := os.ReadFile(filepath.Join(mnt, "owner"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "node1\n" {
		t.Errorf("node2 reads owner=%q from the taken-over LV, want node1's %q", got, "node1\n")
	}
	if err := os.WriteFile(filepath.Join(mnt, "owner"), []byte("node2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, "umount", mnt)
	run(node2, "", "vgchange", "-an", vg)

	// Fenced node1 tries to take the VG back: its metadata write is refused.
	if _, err := node1.Run(ctx, `local/extra_system_ids=["node2"]`, "vgchange", "-y", "--systemid", "node1", vg); err == nil {
		t.Errorf("fenced node1 rewrote the VG's system ID")
	}
	requireVG(t, ctx, node2, vg, "node2", false)
}

// requireVG fails t unless n sees vg with system ID sysid.
func requireVG(t *testing.T, ctx context.Context, n labkit.LVMNode, vg, sysid string, foreign bool) {
	t.Helper()
	vgs, err := n.VGs(ctx, foreign)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vgs {
		if v.Name == vg {
			if v.SystemID != sysid {
				t.Fatalf("%s sees VG %s with system ID %q, want %q", n.Name, vg, v.SystemID, sysid)
			}
			return
		}
	}
	t.Fatalf("%s does not see VG %s (foreign=%v); it sees %+v", n.Name, vg, foreign, vgs)
}

func mustRun(t *testing.T, ctx context.Context, argv ...string) {
	t.Helper()
	if _, err := labkit.Run(ctx, argv...); err != nil {
		t.Fatal(err)
	}
}
