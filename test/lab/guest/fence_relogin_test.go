package guest

import (
	"context"
	"slices"
	"testing"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestFenceReregisterAfterRelogin: node3 unfences on data1 and data2,
// logs out of the target and in again (new SCSI devices, a new session).
// Whether the target kept the registration of the nexus is logged (LIO
// keys it on initiator name and ISID, which open-iscsi keeps per iface);
// either way Unfence on the new paths leaves node3's key registered exactly
// once per LUN, node3 writes again, and our reads agree with sg_persist.
// node3's dm path to the quorum LUN is pointed at its new device after.
func TestFenceReregisterAfterRelogin(t *testing.T) {
	san, ctx := lab(t)
	cleanLUNs(t, ctx, fenceLUNs...)
	f := &fence.Fencer{Cluster: labCluster, Self: 3, Log: testLogger(t)}
	open := func(san *labkit.SAN) []*fence.LUN {
		var out []*fence.LUN
		for _, l := range fenceLUNs {
			lun, err := fence.OpenLUN(dev(t, san, "node3", l), "")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, lun)
		}
		return out
	}
	luns := open(san)
	if err := f.Unfence(ctx, luns); err != nil {
		t.Fatal(err)
	}
	for _, l := range luns {
		l.Close()
	}
	if err := labkit.ISCSILogout(ctx, "node3"); err != nil {
		t.Fatal(err)
	}
	loggedIn := false
	t.Cleanup(func() {
		ctx := context.Background()
		san := san
		if !loggedIn {
			s, err := labkit.ISCSILogin(ctx, "/sys", "node3")
			if err != nil {
				t.Errorf("log node3 in again: %v", err)
				return
			}
			san = s
		}
		under, err := san.Dev("node3", "quorum")
		if err != nil {
			t.Error(err)
			return
		}
		p, err := labkit.OpenDMPath(ctx, labkit.DMName("node3", "quorum"), under)
		if err == nil {
			err = p.Restore(ctx)
		}
		if err != nil {
			t.Errorf("point node3's quorum dm path at %s: %v", under, err)
		}
	})
	if _, err := labkit.WaitPaths(ctx, "/sys", "node3", 0); err != nil {
		t.Fatal(err)
	}
	san2, err := labkit.ISCSILogin(ctx, "/sys", "node3")
	if err != nil {
		t.Fatal(err)
	}
	loggedIn = true
	san = san2
	for _, l := range fenceLUNs {
		k, _ := agree(t, ctx, "after node3's new session", dev(t, san, "node2", l))
		t.Logf("%s: node3's registration survived logout and login: %v (keys %#x)", l, slices.Contains(k.Keys, labKey(3)), k.Keys)
	}
	luns = open(san)
	defer func() {
		for _, l := range luns {
			l.Close()
		}
	}()
	clearUA(t, ctx, dev(t, san, "node3", "data1"), dev(t, san, "node3", "data2"))
	if err := f.Unfence(ctx, luns); err != nil {
		t.Fatalf("unfence on node3's new session: %v", err)
	}
	for _, l := range fenceLUNs {
		k, r := agree(t, ctx, "after unfencing the new session", dev(t, san, "node2", l))
		if n := countKey(k.Keys, labKey(3)); n != 1 {
			t.Errorf("%s: node3's key registered %d times after the new session, want once", l, n)
		}
		if !r.Held {
			t.Errorf("%s: no reservation after unfencing node3's new session", l)
		}
		if err := writeBlock(dev(t, san, "node3", l), 21); err != nil {
			t.Errorf("%s: node3's write on its new session: %v", l, err)
		}
	}
}

func countKey(keys []uint64, k uint64) int {
	n := 0
	for _, x := range keys {
		if x == k {
			n++
		}
	}
	return n
}
