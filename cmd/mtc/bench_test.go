package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
	"github.com/mtcluster/mtc/test/testutil"
)

func TestSummarise(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 µs, unsorted
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	s := summarise(d)
	if s.n != 100 || s.p50 != 50*time.Microsecond || s.p99 != 99*time.Microsecond || s.mean != 50500*time.Nanosecond {
		t.Fatalf("summarise(1..100µs) = %+v", s)
	}
	if d[0] != 100*time.Microsecond {
		t.Fatal("summarise reordered its input")
	}
	if s := summarise(nil); s.n != 0 {
		t.Fatalf("summarise(nil) = %+v", s)
	}
}

// TestLoopBenchDisk runs the disk benchmark end to end on its own loop
// devices with small counts. It checks that every measurement is present,
// never what the numbers are.
func TestLoopBenchDisk(t *testing.T) {
	testutil.RequireRoot(t, "creates loop devices")
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var out strings.Builder
	cmd := &BenchDiskCmd{Out: file, Count: 100, Rounds: 1, Duration: time.Second, HangSamples: 2}
	if err := cmd.Run(&out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), out.String()) {
		t.Fatal("the file does not hold the printed section")
	}
	for _, want := range []string{
		"mtc bench disk --count=100 --rounds=1 --duration=1s --hang-samples=2 --out=" + file,
		"| 512 | write |", "| 512 | read |", "| 4096 | write |", "| 4096 | read |",
		"| 512 | WriteSlot |", "| 4096 | ReadSlots |",
		"| 512 | 200ms |", "| 4096 | 200ms |",
		"### A hung device", "| 400ms | 2 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckOverwrite(t *testing.T) {
	ctx := context.Background()
	newDev := func() (*fakedev.Disk, *diskhb.Device) {
		disk := fakedev.NewDisk(512, 8192)
		dev := diskhb.NewDevice(disk.Path("bench"), time.Minute, nil)
		t.Cleanup(func() { dev.Close() })
		return disk, dev
	}
	const end = 2 << 20

	_, dev := newDev()
	if err := checkOverwrite(ctx, dev, end); err != nil {
		t.Fatalf("zeroed device refused: %v", err)
	}

	disk, dev := newDev()
	disk.Poke(end-512, []byte{1})
	if err := checkOverwrite(ctx, dev, end); err == nil || !strings.Contains(err.Error(), "non-zero byte at offset 2096640") {
		t.Fatalf("device with data: %v", err)
	}
	disk.Poke(end-512, []byte{0})
	disk.Poke(end, []byte{1}) // beyond what the benchmark writes
	if err := checkOverwrite(ctx, dev, end); err != nil {
		t.Fatalf("data past the benchmark's region refused: %v", err)
	}

	for name, want := range map[string]bool{benchClusterName: true, "production": false} {
		_, dev := newDev()
		h := diskhb.Header{ClusterUUID: uuid.New(), ClusterName: name, Slots: 4,
			HeartbeatInterval: time.Second, IOTimeout: time.Second, FailureTimeout: 3 * time.Second, WatchdogTimeout: 5 * time.Second}
		if err := diskhb.Format(ctx, dev, h, false); err != nil {
			t.Fatal(err)
		}
		err := checkOverwrite(ctx, dev, end)
		if (err == nil) != want {
			t.Errorf("quorum disk of cluster %q: %v; want allowed=%v", name, err, want)
		}
	}
}
