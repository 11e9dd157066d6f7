package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// labCluster is the cluster UUID the fencing lab tests derive keys from.
var labCluster = uuid.MustParse("3d5e0c1a-7b2f-4e69-a0d4-5c8f1b2e9a76")

var fenceLUNs = []string{"data1", "data2"}

func nodeName(n quorum.NodeID) string { return fmt.Sprintf("node%d", n) }

// openPath opens dev with our SG_IO backend.
func openPath(t *testing.T, dev string) fence.Path {
	t.Helper()
	p, err := fence.OpenPath(dev, fence.BackendSGIO)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// agree reads keys and reservation through dev with our SG_IO backend and
// with sg_persist and fails t unless both say the same; it returns ours.
func agree(t *testing.T, ctx context.Context, step string, dev string) (scsi.Keys, scsi.Reservation) {
	t.Helper()
	p := openPath(t, dev)
	keys, err := p.ReadKeys(ctx)
	if err != nil {
		t.Fatalf("%s: our READ KEYS on %s: %v", step, dev, err)
	}
	res, err := p.ReadReservation(ctx)
	if err != nil {
		t.Fatalf("%s: our READ RESERVATION on %s: %v", step, dev, err)
	}
	sk, sgen, err := labkit.PR{Dev: dev}.ReadKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := labkit.PR{Dev: dev}.ReadReservation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys.Keys, sk) || keys.Generation != sgen || keys.Truncated {
		t.Errorf("%s: READ KEYS on %s: ours %#x (generation %d), sg_persist %#x (generation %d)", step, dev, keys.Keys, keys.Generation, sk, sgen)
	}
	want := scsi.Reservation{Generation: sr.Generation, Held: sr.Held, Key: sr.Key, Type: scsi.Type(sr.Type)}
	if res != want {
		t.Errorf("%s: READ RESERVATION on %s: ours %+v, sg_persist %+v", step, dev, res, sr)
	}
	return keys, res
}

// clearUA clears unit attentions pending for dev's nexus (our TEST UNIT
// READY retries through them), so that a following sg_persist, which
// does not retry, sees the command's own outcome.
func clearUA(t *testing.T, ctx context.Context, devs ...string) {
	t.Helper()
	for _, d := range devs {
		if err := openPath(t, d).TestUnitReady(ctx); err != nil {
			t.Fatalf("TEST UNIT READY on %s: %v", d, err)
		}
	}
}

// cleanLUN leaves lun with no registration, no reservation and no unit
// attention pending on any node's path (a CLEAR gives the other
// registrants one, which the sg_persist of a later test would trip on).
// It finds the paths afresh: a test may have replaced a node's session.
func cleanLUN(t *testing.T, ctx context.Context, lun string) {
	t.Helper()
	san, err := labkit.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, n := range san.Nodes() {
		devs = append(devs, dev(t, san, n, lun))
	}
	clearUA(t, ctx, devs...)
	freshPR(t, ctx, labkit.PR{Dev: devs[0]})
	clearUA(t, ctx, devs...)
}

// cleanLUNs cleans the LUNs now and when t ends.
func cleanLUNs(t *testing.T, ctx context.Context, luns ...string) {
	t.Helper()
	for _, l := range luns {
		cleanLUN(t, ctx, l)
	}
	t.Cleanup(func() {
		for _, l := range luns {
			cleanLUN(t, context.Background(), l)
		}
	})
}

func labKey(n quorum.NodeID) uint64 { return uint64(fence.NodeKey(labCluster, n)) }

// TestFenceUnfenceThreeNodes: three nodes unfence on data1 and data2
// (node1 through a device-mapper map over its path, so registration goes
// through sysfs slaves to the path device); node1 writes with O_DIRECT
// through its dm map; node2 fences node1. node1's in-flight writer gets
// EBADE, node1 is gone from both LUNs and node2 holds the reservations;
// node3 still writes; node1, fenced, finds out (ErrSelfFenced) when it
// tries to fence and does not register again. After every step our READ
// KEYS and READ RESERVATION agree with sg_persist's.
func TestFenceUnfenceThreeNodes(t *testing.T) {
	san, ctx := lab(t)
	cleanLUNs(t, ctx, fenceLUNs...)
	dm := map[string]*labkit.DMPath{}
	for _, l := range fenceLUNs {
		p, err := labkit.OpenDMPath(ctx, labkit.DMName("node1", l), dev(t, san, "node1", l))
		if err != nil {
			t.Fatal(err)
		}
		dm[l] = p
		t.Cleanup(func() {
			if err := p.Remove(context.Background()); err != nil {
				t.Errorf("remove %s: %v", p.Name, err)
			}
		})
	}
	luns := func(n quorum.NodeID) []*fence.LUN {
		t.Helper()
		var out []*fence.LUN
		for _, l := range fenceLUNs {
			name := dev(t, san, nodeName(n), l)
			if n == 1 {
				name = dm[l].Dev()
			}
			lun, err := fence.OpenLUN(name, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lun.Close() })
			if len(lun.Paths) != 1 || lun.Paths[0].Name() != dev(t, san, nodeName(n), l) || lun.Paths[0].Backend() != fence.BackendSGIO {
				t.Fatalf("LUN %s of %s: paths %v, want its SG_IO path %s", name, nodeName(n), pathNames(lun), dev(t, san, nodeName(n), l))
			}
			out = append(out, lun)
		}
		return out
	}
	fencer := func(n quorum.NodeID) *fence.Fencer {
		return &fence.Fencer{Cluster: labCluster, Self: n, Log: testLogger(t).With("node", n)}
	}
	check := func(step string) map[string][]uint64 {
		keys := map[string][]uint64{}
		for _, l := range fenceLUNs {
			k, _ := agree(t, ctx, step, dev(t, san, "node3", l))
			keys[l] = k.Keys
		}
		return keys
	}

	for n := quorum.NodeID(1); n <= 3; n++ {
		t0 := time.Now()
		if err := fencer(n).Unfence(ctx, luns(n)); err != nil {
			t.Fatalf("node%d unfence: %v", n, err)
		}
		t.Logf("node%d unfenced on %v in %v", n, fenceLUNs, time.Since(t0))
		check(fmt.Sprintf("after node%d unfenced", n))
	}
	for _, l := range fenceLUNs {
		k, r := agree(t, ctx, "after unfencing", dev(t, san, "node2", l))
		got := slices.Sorted(slices.Values(k.Keys))
		if want := []uint64{labKey(1), labKey(2), labKey(3)}; !slices.Equal(got, want) {
			t.Fatalf("%s keys after unfencing: %#x, want %#x", l, got, want)
		}
		if !r.Held || r.Key != labKey(1) || r.Type != scsi.WriteExclusiveRegistrantsOnly {
			t.Fatalf("%s reservation after unfencing: %+v, want node1's type 5", l, r)
		}
	}

	w, err := labkit.StartDirectWriter(ctx, dm["data2"].Dev(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if !waitFor(ctx, func() bool { return w.Writes() >= 3 }) {
		t.Fatalf("node1's writer made %d writes: %v", w.Writes(), w.Stop())
	}

	t0 := time.Now()
	proof, err := fencer(2).Fence(ctx, 1, 0x5eed, luns(2))
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("node2 fencing node1: %v", err)
	}
	if !proof.Valid() || proof.Victim() != 1 || !slices.Equal(proof.LUNs(), []string{dev(t, san, "node2", "data1"), dev(t, san, "node2", "data2")}) {
		t.Errorf("proof %v", proof)
	}
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Fatalf("node1's writer still running after it was fenced (%d writes)", w.Writes())
	}
	werr := w.Stop()
	if !errors.Is(werr, syscall.EBADE) {
		t.Fatalf("node1's in-flight writer through %s ended with %v; want EBADE", dm["data2"].Dev(), werr)
	}
	t.Logf("fence of node1 on %d LUNs took %v; its writer failed %v after the fence began: %v", len(fenceLUNs), took, time.Since(t0), werr)

	keys := check("after node2 fenced node1")
	for _, l := range fenceLUNs {
		got := slices.Sorted(slices.Values(keys[l]))
		if want := []uint64{labKey(2), labKey(3)}; !slices.Equal(got, want) {
			t.Errorf("%s keys after the fence: %#x, want %#x", l, got, want)
		}
		_, r := agree(t, ctx, "after the fence", dev(t, san, "node1", l))
		if !r.Held || r.Key != labKey(2) || r.Type != scsi.WriteExclusiveRegistrantsOnly {
			t.Errorf("%s reservation after the fence: %+v, want node2's type 5", l, r)
		}
		if err := writeBlock(dm[l].Dev(), 17); !errors.Is(err, syscall.EBADE) {
			t.Errorf("%s: a new write by fenced node1: %v, want EBADE", l, err)
		}
		if err := writeBlock(dev(t, san, "node3", l), 17); err != nil {
			t.Errorf("%s: a write by node3: %v", l, err)
		}
	}

	if _, err := fencer(1).Fence(ctx, 3, 1, luns(1)); !errors.Is(err, fence.ErrSelfFenced) {
		t.Errorf("fenced node1 fencing node3: %v, want ErrSelfFenced", err)
	}
	keys = check("after fenced node1 tried to fence node3")
	for _, l := range fenceLUNs {
		if slices.Contains(keys[l], labKey(1)) || !slices.Contains(keys[l], labKey(3)) {
			t.Errorf("%s keys after fenced node1 tried: %#x", l, keys[l])
		}
	}

	// node1 rejoins: Unfence registers it again and the LUN takes its writes.
	if err := fencer(1).Unfence(ctx, luns(1)); err != nil {
		t.Fatalf("node1 unfencing again: %v", err)
	}
	check("after node1 unfenced again")
	if err := writeBlock(dm["data2"].Dev(), 17); err != nil {
		t.Errorf("node1's write after unfencing again: %v", err)
	}
}

// testLogger sends a component's records to t.Log (per-LUN fence timings
// among them).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func pathNames(l *fence.LUN) []string {
	var out []string
	for _, p := range l.Paths {
		out = append(out, p.Name())
	}
	return out
}
