package diskhb_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
)

// BenchmarkDeviceOverhead measures what a Device adds to an I/O that costs
// nothing: a one-sector write to the in-memory fake through a Device, and
// the same write on the bare fake path. Needs no root.
func BenchmarkDeviceOverhead(b *testing.B) {
	for _, ss := range []int{512, 4096} {
		disk := fakedev.NewDisk(ss, 8)
		b.Run("bare/"+strconv.Itoa(ss), func(b *testing.B) {
			p := disk.Path("bare")
			buf := diskhb.AlignedBuffer(ss)
			for b.Loop() {
				if _, err := p.WriteAt(buf, int64(ss)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("device/"+strconv.Itoa(ss), func(b *testing.B) {
			dev := diskhb.NewDevice(disk.Path("device"), longTimeout, nil)
			defer dev.Close()
			buf := make([]byte, ss)
			ctx := context.Background()
			for b.Loop() {
				if err := dev.Write(ctx, int64(ss), buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
