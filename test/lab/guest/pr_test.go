package guest

import (
	"context"
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ncw/directio"

	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestPRPreemptAbortFencesWriter: node1 and node2 register on a data LUN,
// node1 holds a Write Exclusive Registrants Only reservation and writes
// with O_DIRECT; node2 PREEMPT AND ABORTs node1. node1's writer must fail
// with EBADE (reservation conflict), its later writes too, while its reads
// and node2's writes go on, and the LUN must report node2's key alone and
// node2's reservation.
func TestPRPreemptAbortFencesWriter(t *testing.T) {
	san, ctx := lab(t)
	dev1, dev2 := dev(t, san, "node1", "data2"), dev(t, san, "node2", "data2")
	pr1, pr2 := labkit.PR{Dev: dev1}, labkit.PR{Dev: dev2}
	freshPR(t, ctx, pr2)
	t.Cleanup(func() { freshPR(t, context.Background(), pr2) })

	if err := pr1.Register(ctx, key1); err != nil {
		t.Fatal(err)
	}
	if err := pr2.Register(ctx, key2); err != nil {
		t.Fatal(err)
	}
	keys, _, err := pr2.ReadKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []uint64{key1, key2}) {
		t.Fatalf("registered keys = %#x, want %#x", keys, []uint64{key1, key2})
	}
	if err := pr1.Reserve(ctx, key1, labkit.WriteExclusiveRegistrantsOnly); err != nil {
		t.Fatal(err)
	}
	res, err := pr2.ReadReservation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (labkit.Reservation{Generation: res.Generation, Held: true, Key: key1, Type: labkit.WriteExclusiveRegistrantsOnly}); res != want {
		t.Fatalf("reservation before preempt = %+v, want %+v", res, want)
	}

	w, err := labkit.StartDirectWriter(ctx, dev1, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if !waitFor(ctx, func() bool { return w.Writes() >= 3 }) {
		t.Fatalf("node1's O_DIRECT writer made %d writes before the deadline; want it writing before the preempt: %v", w.Writes(), w.Stop())
	}

	t0 := time.Now()
	if err := pr2.PreemptAbort(ctx, key2, key1, labkit.WriteExclusiveRegistrantsOnly); err != nil {
		t.Fatal(err)
	}
	preempted := time.Since(t0)
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Fatalf("node1's writer still running after node2's PREEMPT AND ABORT (%d writes)", w.Writes())
	}
	werr := w.Stop()
	if !errors.Is(werr, syscall.EBADE) {
		t.Fatalf("node1's in-flight writer ended with %v; want EBADE (reservation conflict)", werr)
	}
	t.Logf("PREEMPT AND ABORT took %v; node1's writer failed %v after it was issued: %v", preempted, time.Since(t0), werr)

	if err := writeBlock(dev1, 9); !errors.Is(err, syscall.EBADE) {
		t.Errorf("a new write by fenced node1: %v; want EBADE", err)
	}
	if err := readBlock(dev1, 9); err != nil {
		t.Errorf("a read by fenced node1 under type 5 (reads stay allowed): %v", err)
	}
	if err := writeBlock(dev2, 9); err != nil {
		t.Errorf("a write by node2, the new holder: %v", err)
	}
	if err := pr1.Reserve(ctx, key1, labkit.WriteExclusiveRegistrantsOnly); err == nil {
		t.Errorf("fenced node1 took the reservation back with its removed key")
	}

	keys, _, err = pr1.ReadKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []uint64{key2}) {
		t.Errorf("keys after preempt = %#x, want only node2's %#x", keys, key2)
	}
	res, err = pr1.ReadReservation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (labkit.Reservation{Generation: res.Generation, Held: true, Key: key2, Type: labkit.WriteExclusiveRegistrantsOnly}); res != want {
		t.Errorf("reservation after preempt = %+v, want %+v", res, want)
	}
}

func writeBlock(dev string, block int64) error {
	f, err := directio.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := directio.AlignedBlock(directio.BlockSize)
	_, err = f.WriteAt(buf, block*int64(len(buf)))
	return err
}

func readBlock(dev string, block int64) error {
	f, err := directio.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := directio.AlignedBlock(directio.BlockSize)
	_, err = f.ReadAt(buf, block*int64(len(buf)))
	return err
}
