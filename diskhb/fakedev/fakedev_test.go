package fakedev_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
)

func fill(n int, b byte) []byte {
	buf := diskhb.AlignedBuffer(n)
	for i := range buf {
		buf[i] = b
	}
	return buf
}

func TestSharedStorageAcrossPaths(t *testing.T) {
	d := fakedev.NewDisk(512, 8)
	a, b := d.Path("a"), d.Path("b")
	if d.Path("a") != a {
		t.Fatal("the same name returned a different path")
	}
	if _, err := a.WriteAt(fill(512, 7), 512); err != nil {
		t.Fatal(err)
	}
	got := diskhb.AlignedBuffer(512)
	if _, err := b.ReadAt(got, 512); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fill(512, 7)) {
		t.Fatal("path b does not see path a's write")
	}
}

func TestFaultsArePerPath(t *testing.T) {
	d := fakedev.NewDisk(512, 8)
	a, b := d.Path("a"), d.Path("b")
	a.SetFailIO(true)
	b.SetFenced(true)
	c := d.Path("c")
	if _, err := a.ReadAt(diskhb.AlignedBuffer(512), 0); !errors.Is(err, diskhb.ErrIO) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("failed path a: %v", err)
	}
	if _, err := b.WriteAt(fill(512, 1), 0); !errors.Is(err, diskhb.ErrFenced) || !errors.Is(err, diskhb.FencedErrno) || errors.Is(err, diskhb.ErrIO) {
		t.Fatalf("fenced path b write: %v", err)
	}
	if _, err := b.ReadAt(diskhb.AlignedBuffer(512), 0); err != nil {
		t.Fatalf("fenced path b read: %v", err)
	}
	if _, err := c.WriteAt(fill(512, 1), 0); err != nil {
		t.Fatalf("healthy path c: %v", err)
	}
	if !bytes.Equal(d.Peek(0, 512), fill(512, 1)) {
		t.Fatal("healthy path's write did not land")
	}
}

func TestApplyHangHasNoEffect(t *testing.T) {
	d := fakedev.NewDisk(4096, 4)
	p := d.Path("n")
	p.Hang()
	r := p.Apply(fakedev.Write, fill(4096, 9), 4096)
	if !r.Hung || r.Err != nil || r.N != 0 {
		t.Fatalf("apply on a hung path: %+v", r)
	}
	if !bytes.Equal(d.Peek(4096, 4096), make([]byte, 4096)) {
		t.Fatal("a hung write changed the storage")
	}
	if _, w := p.Ops(); w != 0 {
		t.Fatal("a hung write was counted")
	}
	p.Release()
	r = p.Apply(fakedev.Write, fill(4096, 9), 4096)
	if r.Hung || r.Err != nil || r.N != 4096 {
		t.Fatalf("apply after release: %+v", r)
	}
}

func TestBlockingIOWaitsForRelease(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	p.Hang()
	released := p.Released()
	done := make(chan error, 1)
	go func() {
		_, err := p.WriteAt(fill(512, 3), 0)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write on a hung path returned (%v) before Release", err)
	default:
	}
	p.Release()
	<-released
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Peek(0, 512), fill(512, 3)) {
		t.Fatal("released write did not land")
	}
}

func TestTornWrite(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	if _, err := p.WriteAt(fill(512, 0xaa), 0); err != nil {
		t.Fatal(err)
	}
	p.TearNextWrite(100)
	n, err := p.WriteAt(fill(512, 0xbb), 0)
	if err != nil || n != 512 {
		t.Fatalf("torn write reported %d, %v; want full success", n, err)
	}
	want := append(bytes.Repeat([]byte{0xbb}, 100), bytes.Repeat([]byte{0xaa}, 412)...)
	if !bytes.Equal(d.Peek(0, 512), want) {
		t.Fatal("torn write: want the first 100 bytes new, the rest old")
	}
	// One-shot: the next write lands whole.
	if _, err := p.WriteAt(fill(512, 0xcc), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Peek(0, 512), fill(512, 0xcc)) {
		t.Fatal("the write after a torn one did not land whole")
	}
}

func TestBitFlips(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	p.FlipNextWrite(9) // byte 1, bit 1
	if _, err := p.WriteAt(fill(512, 0), 0); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 512)
	want[1] = 2
	if !bytes.Equal(d.Peek(0, 512), want) {
		t.Fatal("flip on write: stored data not flipped at byte 1 bit 1")
	}

	p.FlipNextRead(0)
	got := diskhb.AlignedBuffer(512)
	if _, err := p.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want2 := bytes.Clone(want)
	want2[0] = 1
	if !bytes.Equal(got, want2) {
		t.Fatal("flip on read: returned data not flipped at byte 0 bit 0")
	}
	if !bytes.Equal(d.Peek(0, 512), want) {
		t.Fatal("flip on read changed the storage")
	}

	d.FlipBit(511, 7)
	if d.Peek(511, 1)[0] != 0x80 {
		t.Fatal("Disk.FlipBit did not flip the stored bit")
	}
}

func TestDropWrites(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	p.SetDropWrites(true)
	if n, err := p.WriteAt(fill(512, 5), 0); err != nil || n != 512 {
		t.Fatalf("dropped write reported %d, %v; want success", n, err)
	}
	if !bytes.Equal(d.Peek(0, 512), make([]byte, 512)) {
		t.Fatal("a dropped write landed")
	}
	p.SetDropWrites(false)
	if _, err := p.WriteAt(fill(512, 5), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Peek(0, 512), fill(512, 5)) {
		t.Fatal("write after dropping stopped did not land")
	}
}

func TestLatency(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	p.SetLatency(5 * time.Millisecond)
	if r := p.Apply(fakedev.Read, diskhb.AlignedBuffer(512), 0); r.Latency != 5*time.Millisecond || r.Err != nil {
		t.Fatalf("apply with latency: %+v", r)
	}
}

func TestAlignmentRefusedBeforeFaults(t *testing.T) {
	d := fakedev.NewDisk(4096, 4)
	p := d.Path("n")
	p.Hang() // a misaligned I/O is refused even on a hung path
	buf := diskhb.AlignedBuffer(2 * 4096)
	for name, r := range map[string]fakedev.Result{
		"offset":  p.Apply(fakedev.Write, buf[:4096], 512),
		"length":  p.Apply(fakedev.Write, buf[:512], 0),
		"memory":  p.Apply(fakedev.Read, buf[512:512+4096], 0),
		"too far": p.Apply(fakedev.Read, buf[:4096], 4*4096),
	} {
		want := diskhb.ErrAlignment
		if name == "too far" {
			want = diskhb.ErrIO
		}
		if r.Hung || !errors.Is(r.Err, want) {
			t.Errorf("%s: %+v; want %v", name, r, want)
		}
	}
}

func TestClosedPath(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadAt(diskhb.AlignedBuffer(512), 0); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("read on a closed path: %v", err)
	}
	if err := p.Close(); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	p.Reopen()
	if _, err := p.ReadAt(diskhb.AlignedBuffer(512), 0); err != nil {
		t.Fatalf("read after Reopen: %v", err)
	}
}

// TestHookSeededScheduleReplays checks that a hook driven by a seeded
// generator yields the same outcomes on every run, so a failing
// simulation seed replays exactly.
func TestHookSeededScheduleReplays(t *testing.T) {
	run := func(seed uint64) []string {
		d := fakedev.NewDisk(512, 16)
		p := d.Path("n")
		rng := rand.New(rand.NewPCG(seed, 0))
		p.SetHook(func(op fakedev.Op) fakedev.Fault {
			switch rng.IntN(5) {
			case 0:
				return fakedev.Fault{EIO: true}
			case 1:
				return fakedev.Fault{Fenced: true}
			case 2:
				return fakedev.Fault{TornBytes: 1 + rng.IntN(511)}
			}
			return fakedev.Fault{}
		})
		var out []string
		for i := range 200 {
			r := p.Apply(fakedev.Write, fill(512, byte(i)), int64(i%16)*512)
			s := "ok"
			if r.Err != nil {
				s = r.Err.Error()
			}
			out = append(out, s)
		}
		out = append(out, string(d.Peek(0, 16*512)))
		return out
	}
	a, b := run(42), run(42)
	if len(a) != len(b) {
		t.Fatal("different lengths")
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 diverged at step %d: %q vs %q", i, a[i], b[i])
		}
	}
	c := run(43)
	same := true
	for i := range a {
		if a[i] != c[i] {
			same = false
		}
	}
	if same {
		t.Fatal("seeds 42 and 43 gave identical schedules: the hook is not applied")
	}
}

func TestResetClearsFaults(t *testing.T) {
	d := fakedev.NewDisk(512, 4)
	p := d.Path("n")
	p.SetFailIO(true)
	p.SetFenced(true)
	p.SetDropWrites(true)
	p.TearNextWrite(10)
	p.SetHook(func(fakedev.Op) fakedev.Fault { return fakedev.Fault{EIO: true} })
	p.Reset()
	if _, err := p.WriteAt(fill(512, 4), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Peek(0, 512), fill(512, 4)) {
		t.Fatal("write after Reset did not land whole")
	}
}

func TestNewDiskRejectsBadGeometry(t *testing.T) {
	for _, c := range []struct {
		ss      int
		sectors int64
	}{{1024, 4}, {512, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewDisk(%d, %d) did not panic", c.ss, c.sectors)
				}
			}()
			fakedev.NewDisk(c.ss, c.sectors)
		}()
	}
}
