package guest

import (
	"context"
	"testing"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestFenceReregisterAfterRelogin: node3 unfences on data1 and data2,
// logs out of the target and in again (new SCSI devices, a new session).
// What the target kept is logged: in the lab, LIO keeps the old session's
// registration, registering the new session adds a second one of the same
// key, and a write on the new session before unfencing succeeds (the old
// registration holds the reservation). Unfence on the new session must
// leave node3 writing; Rejoin must leave its key exactly once per LUN,
// holding the reservation. Our reads agree with sg_persist throughout.
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
		t.Logf("%s: node3's key registered %d times after logout and login (keys %#x)", l, countKey(k.Keys, labKey(3)), k.Keys)
	}
	luns = open(san)
	defer func() {
		for _, l := range luns {
			l.Close()
		}
	}()
	clearUA(t, ctx, dev(t, san, "node3", "data1"), dev(t, san, "node3", "data2"))
	for _, l := range fenceLUNs {
		t.Logf("%s: a write on node3's new session before unfencing: %v", l, writeBlock(dev(t, san, "node3", l), 21))
	}
	if err := f.Unfence(ctx, luns); err != nil {
		t.Fatalf("unfence on node3's new session: %v", err)
	}
	for _, l := range fenceLUNs {
		k, r := agree(t, ctx, "after unfencing the new session", dev(t, san, "node2", l))
		t.Logf("%s: after unfencing the new session node3's key is registered %d times", l, countKey(k.Keys, labKey(3)))
		if countKey(k.Keys, labKey(3)) < 1 || !r.Held {
			t.Errorf("%s: after unfencing node3's new session: keys %#x, reservation %+v", l, k.Keys, r)
		}
		if err := writeBlock(dev(t, san, "node3", l), 21); err != nil {
			t.Errorf("%s: node3's write on its new session after unfencing: %v", l, err)
		}
	}
	if err := f.Rejoin(ctx, luns); err != nil {
		t.Fatalf("rejoin on node3's new session: %v", err)
	}
	for _, l := range fenceLUNs {
		k, r := agree(t, ctx, "after rejoin on the new session", dev(t, san, "node2", l))
		if n := countKey(k.Keys, labKey(3)); n != 1 || !r.Held || r.Key != labKey(3) {
			t.Errorf("%s: after rejoin: node3's key registered %d times, reservation %+v; want once, holding", l, n, r)
		}
		if err := writeBlock(dev(t, san, "node3", l), 21); err != nil {
			t.Errorf("%s: node3's write after rejoin: %v", l, err)
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
