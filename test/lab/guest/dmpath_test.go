package guest

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestDMPathFaults checks the lab's fault injection on one node's path
// against the real device-mapper: an error table fails I/O with EIO while
// another node's path to the same LUN keeps working; dm-delay makes I/O
// slower than a diskhb deadline time out (ErrTimeout) yet complete under a
// longer one; a suspended path's I/O completes once resumed; Restore brings
// back the plain linear map.
func TestDMPathFaults(t *testing.T) {
	san, ctx := lab(t)
	// node2's and node1's paths to the quorum LUN; the heartbeat test uses
	// the same devices but never at the same time (tests run one by one).
	p2, err := labkit.OpenDMPath(ctx, labkit.DMName("node2", "quorum"), dev(t, san, "node2", "quorum"))
	if err != nil {
		t.Fatal(err)
	}
	p1, err := labkit.OpenDMPath(ctx, labkit.DMName("node1", "quorum"), dev(t, san, "node1", "quorum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*labkit.DMPath{p1, p2} {
		if err := p.Restore(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if err := p2.Restore(context.Background()); err != nil {
			t.Errorf("restore %s: %v", p2.Name, err)
		}
	})

	// Error table: node2 cut off, node1 not.
	if err := p2.Fail(ctx); err != nil {
		t.Fatal(err)
	}
	if err := readBlock(p2.Dev(), 1); !errors.Is(err, syscall.EIO) {
		t.Errorf("read through %s with an error table: %v; want EIO", p2.Name, err)
	}
	if err := readBlock(p1.Dev(), 1); err != nil {
		t.Errorf("read through %s while only %s is failed: %v", p1.Name, p2.Name, err)
	}

	// Restore: the plain linear map again.
	if err := p2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if tbl, err := p2.Table(ctx); err != nil || !strings.Contains(tbl, " linear ") {
		t.Errorf("table of %s after Restore: %q, %v; want a linear map", p2.Name, tbl, err)
	}
	if err := readBlock(p2.Dev(), 1); err != nil {
		t.Errorf("read through restored %s: %v", p2.Name, err)
	}

	// dm-delay: 1.5 s per I/O. A 300 ms deadline expires; a 30 s one does not.
	const delay = 1500 * time.Millisecond
	if err := p2.Delay(ctx, delay); err != nil {
		t.Fatal(err)
	}
	if tbl, err := p2.Table(ctx); err != nil || !strings.Contains(tbl, " delay ") {
		t.Errorf("table of %s after Delay: %q, %v; want a delay map", p2.Name, tbl, err)
	}
	for _, c := range []struct {
		timeout time.Duration
		want    error
	}{{300 * time.Millisecond, diskhb.ErrTimeout}, {30 * time.Second, nil}} {
		bd, err := diskhb.OpenBlock(p2.Dev())
		if err != nil {
			t.Fatal(err)
		}
		d := diskhb.NewDevice(bd, c.timeout, nil)
		t0 := time.Now()
		_, err = d.Read(ctx, 0, d.SectorSize())
		took := time.Since(t0)
		d.Close()
		<-d.Done() // the delayed I/O has returned
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("read with a %v deadline through a %v delay: %v; want %v", c.timeout, delay, err, c.want)
		}
		t.Logf("read with a %v deadline through a %v delay returned after %v: %v", c.timeout, delay, took, err)
	}

	// Suspended: a read hangs past its deadline and returns after Resume.
	if err := p2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	bd, err := diskhb.OpenBlock(p2.Dev())
	if err != nil {
		t.Fatal(err)
	}
	d := diskhb.NewDevice(bd, 300*time.Millisecond, nil)
	if err := p2.Hang(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(ctx, 0, d.SectorSize()); !errors.Is(err, diskhb.ErrTimeout) {
		t.Errorf("read through suspended %s: %v; want ErrTimeout", p2.Name, err)
	}
	if err := p2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	d.Close()
	select {
	case <-d.Done(): // the hung read has returned
	case <-ctx.Done():
		t.Fatalf("read through %s still in flight after Resume", p2.Name)
	}
	if _, err := os.Stat(p2.Dev()); err != nil {
		t.Errorf("%s gone after the faults: %v", p2.Dev(), err)
	}
}
