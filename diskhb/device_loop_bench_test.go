package diskhb_test

import (
	"context"
	"testing"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/test/testutil"
)

// The benchmarks below measure one-sector I/O on a loop device (root only;
// they skip otherwise): through a Device, as the heartbeat does, and on the
// bare BlockDevice, so the Device's overhead is the difference. The p50-µs
// and p99-µs metrics are the Device's own latency percentiles over its
// most recent I/Os. `mtc bench disk` compares the same I/O with dd.

func BenchmarkDeviceWrite512(b *testing.B)  { benchDevice(b, 512, true) }
func BenchmarkDeviceRead512(b *testing.B)   { benchDevice(b, 512, false) }
func BenchmarkDeviceWrite4096(b *testing.B) { benchDevice(b, 4096, true) }
func BenchmarkDeviceRead4096(b *testing.B)  { benchDevice(b, 4096, false) }

// With a context that can be cancelled, as the heartbeat's: on the AIO
// path the Device registers a context.AfterFunc for each I/O.
func BenchmarkDeviceWrite512Cancelable(b *testing.B) { benchDeviceCtx(b, 512, true, true) }
func BenchmarkDeviceRead512Cancelable(b *testing.B)  { benchDeviceCtx(b, 512, false, true) }

func BenchmarkBlockWrite512(b *testing.B)  { benchBlock(b, 512, true) }
func BenchmarkBlockRead512(b *testing.B)   { benchBlock(b, 512, false) }
func BenchmarkBlockWrite4096(b *testing.B) { benchBlock(b, 4096, true) }
func BenchmarkBlockRead4096(b *testing.B)  { benchBlock(b, 4096, false) }

func openLoop(b *testing.B, ss int) diskhb.BlockDevice {
	loop := testutil.NewLoopDevice(b, ss, loopSize)
	bd, err := diskhb.OpenBlock(loop.Path)
	if err != nil {
		b.Fatal(err)
	}
	return bd
}

func benchDevice(b *testing.B, ss int, write bool) { benchDeviceCtx(b, ss, write, false) }

func benchDeviceCtx(b *testing.B, ss int, write, cancelable bool) {
	// A long deadline: a benchmark on a loaded host measures the slow I/O
	// instead of failing on it.
	dev := diskhb.NewDevice(openLoop(b, ss), longTimeout, nil)
	defer dev.Close()
	ctx := context.Background()
	if cancelable {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	p := make([]byte, ss)
	off := int64(ss)
	for b.Loop() {
		var err error
		if write {
			err = dev.Write(ctx, off, p)
		} else {
			_, err = dev.Read(ctx, off, ss)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	st := dev.Stats()
	b.ReportMetric(float64(st.P50.Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(st.P99.Nanoseconds())/1e3, "p99-µs")
}

func benchBlock(b *testing.B, ss int, write bool) {
	bd := openLoop(b, ss)
	defer bd.Close()
	p := diskhb.AlignedBuffer(ss)
	off := int64(ss)
	for b.Loop() {
		var err error
		if write {
			_, err = bd.WriteAt(p, off)
		} else {
			_, err = bd.ReadAt(p, off)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
