package diskhb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/test/testutil"
)

// loopSize is the size of the loop devices in these tests: 1 MiB, room for
// a quorum disk of any supported slot count.
const loopSize = 1 << 20

func TestLoopDirectIO(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			loop := testutil.NewLoopDevice(t, ss, loopSize)
			bd, err := diskhb.OpenBlock(loop.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer bd.Close()
			if bd.SectorSize() != ss {
				t.Fatalf("BLKSSZGET gave %d, losetup was asked for %d", bd.SectorSize(), ss)
			}
			if bd.Size() != loopSize {
				t.Fatalf("BLKGETSIZE64 gave %d, want %d", bd.Size(), loopSize)
			}
			if s := fmt.Sprint(bd); !bytes.Contains([]byte(s), []byte("O_DIRECT")) {
				t.Fatalf("device description %q does not say O_DIRECT", s)
			}

			buf := diskhb.AlignedBuffer(2 * ss)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			if n, err := bd.WriteAt(buf, int64(5*ss)); err != nil || n != len(buf) {
				t.Fatalf("aligned write: %d, %v", n, err)
			}
			got := diskhb.AlignedBuffer(2 * ss)
			if n, err := bd.ReadAt(got, int64(5*ss)); err != nil || n != len(got) {
				t.Fatalf("aligned read: %d, %v", n, err)
			}
			if !bytes.Equal(got, buf) {
				t.Fatal("read back different data")
			}
			// The data reached the backing file, not just a cache.
			raw, err := os.ReadFile(loop.File)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw[5*ss:7*ss], buf) {
				t.Fatal("backing file does not hold the written data")
			}

			big := diskhb.AlignedBuffer(2 * ss)
			for name, do := range map[string]func() (int, error){
				"offset of half a sector": func() (int, error) { return bd.WriteAt(big[:ss], int64(ss/2)) },
				"offset of one byte":      func() (int, error) { return bd.ReadAt(big[:ss], 1) },
				"length of half a sector": func() (int, error) { return bd.WriteAt(big[:ss/2], 0) },
				"length of 1.5 sectors":   func() (int, error) { return bd.ReadAt(big[:ss+ss/2], 0) },
				"buffer off by 256 bytes": func() (int, error) { return bd.ReadAt(big[256:256+ss], 0) },
			} {
				if n, err := do(); !errors.Is(err, diskhb.ErrAlignment) || n != 0 {
					t.Errorf("%s: %d, %v; want ErrAlignment", name, n, err)
				}
			}
			if _, err := bd.ReadAt(got[:ss], loopSize); !errors.Is(err, diskhb.ErrIO) {
				t.Errorf("read past the end: %v; want ErrIO", err)
			}
		})
	}
}

// TestLoopWritersDoNotInterfere opens the loop device once per simulated
// node, as each node of a cluster does, and has every node write its own
// sector at the same time; every sector must hold exactly its writer's data.
func TestLoopWritersDoNotInterfere(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			const nodes, rounds = 8, 100
			loop := testutil.NewLoopDevice(t, ss, loopSize)
			ctx := context.Background()
			devs := make([]*diskhb.Device, nodes)
			for i := range devs {
				bd, err := diskhb.OpenBlock(loop.Path)
				if err != nil {
					t.Fatal(err)
				}
				// Deadlines are not under test here: a loaded CI host may stall
				// an I/O past the default timeout.
				devs[i] = diskhb.NewDevice(bd, longTimeout, nil)
				defer devs[i].Close()
			}
			var wg sync.WaitGroup
			errs := make(chan error, nodes)
			for i, dev := range devs {
				wg.Go(func() {
					off := int64((i + 1) * ss)
					for r := range rounds {
						p := bytes.Repeat([]byte{byte(i*rounds + r)}, ss)
						if err := dev.Write(ctx, off, p); err != nil {
							errs <- err
							return
						}
						// Read every node's sector, as the disk heartbeat does.
						if _, err := dev.Read(ctx, int64(ss), nodes*ss); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			check := devs[0]
			all, err := check.Read(ctx, int64(ss), nodes*ss)
			if err != nil {
				t.Fatal(err)
			}
			for i := range nodes {
				want := bytes.Repeat([]byte{byte(i*rounds + rounds - 1)}, ss)
				if !bytes.Equal(all[i*ss:(i+1)*ss], want) {
					t.Errorf("node %d's sector does not hold its last write", i)
				}
			}
		})
	}
}

func TestLoopOpenFileChecksSectorSize(t *testing.T) {
	loop := testutil.NewLoopDevice(t, 4096, loopSize)
	if _, err := diskhb.OpenFile(loop.Path, 512); !errors.Is(err, diskhb.ErrGeometry) {
		t.Fatalf("OpenFile(4096-byte device, 512): %v; want ErrGeometry", err)
	}
	bd, err := diskhb.OpenFile(loop.Path, 4096)
	if err != nil {
		t.Fatal(err)
	}
	bd.Close()
}

// TestFileDirectIO needs no root: a regular file stands in for the disk.
func TestFileDirectIO(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(file, make([]byte, 64*ss+100), 0o600); err != nil {
				t.Fatal(err)
			}
			bd, err := diskhb.OpenFile(file, ss)
			if err != nil {
				t.Fatal(err)
			}
			if bd.SectorSize() != ss || bd.Size() != int64(64*ss) {
				t.Fatalf("geometry %d/%d; want %d/%d (size rounded down to whole sectors)", bd.SectorSize(), bd.Size(), ss, 64*ss)
			}
			dev := diskhb.NewDevice(bd, longTimeout, nil)
			ctx := context.Background()
			p := bytes.Repeat([]byte{0x3c}, ss)
			if err := dev.Write(ctx, int64(ss), p); err != nil {
				t.Fatal(err)
			}
			got, err := dev.Read(ctx, int64(ss), ss)
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("read back: %v", err)
			}
			if err := dev.Write(ctx, 3, p); !errors.Is(err, diskhb.ErrAlignment) {
				t.Fatalf("misaligned write: %v", err)
			}
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := bd.ReadAt(diskhb.AlignedBuffer(ss), 0); !errors.Is(err, diskhb.ErrClosed) {
				t.Fatalf("read after close: %v", err)
			}
		})
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.img")
	if err := os.WriteFile(small, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := diskhb.OpenFile(small, 512); !errors.Is(err, diskhb.ErrGeometry) {
		t.Errorf("file smaller than a sector: %v; want ErrGeometry", err)
	}
	if _, err := diskhb.OpenFile(small, 1024); !errors.Is(err, diskhb.ErrGeometry) {
		t.Errorf("sector size 1024: %v; want ErrGeometry", err)
	}
	if _, err := diskhb.OpenBlock(dir); !errors.Is(err, diskhb.ErrGeometry) {
		t.Errorf("directory: %v; want ErrGeometry", err)
	}
	if _, err := diskhb.OpenBlock(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v; want not-exist", err)
	}
}
