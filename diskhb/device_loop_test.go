package diskhb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/test/testutil"
)

// hangTimeout is the deadline of the writes the real-kernel hang tests
// expect to hang.
const hangTimeout = 100 * time.Millisecond

// TestLoopHungDevice hangs a real block device (a loop device whose backing
// filesystem is frozen, so its writes block in the kernel) and checks the
// Device's guarantees against the kernel, not a fake: ErrTimeout at the
// deadline, ErrBusy while the write is stuck, one log line and recovery
// when it returns, and a Close that does not wait for it.
func TestLoopHungDevice(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			loop := testutil.NewFreezableLoopDevice(t, ss, 4<<20)
			bd, err := diskhb.OpenBlock(loop.Path)
			if err != nil {
				t.Fatal(err)
			}
			rec := newLogRecorder()
			// A long Device deadline, so the I/Os expected to succeed do so
			// on a loaded machine; those expected to hang get hangTimeout
			// from their context.
			dev := diskhb.NewDevice(bd, longTimeout, slog.New(rec))
			hung := func() context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
				t.Cleanup(cancel)
				return ctx
			}
			t.Cleanup(func() {
				_ = loop.Thaw()
				dev.Close()
				<-dev.Done()
			})
			ctx := context.Background()
			off := int64(ss)

			if err := dev.Write(ctx, off, bytes.Repeat([]byte{0xaa}, ss)); err != nil {
				t.Fatal(err)
			}
			if err := loop.Freeze(); err != nil {
				t.Fatal(err)
			}
			err = dev.Write(hung(), off, bytes.Repeat([]byte{0xbb}, ss))
			if !errors.Is(err, diskhb.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("write to a frozen device: %v; want ErrTimeout", err)
			}
			if _, err := dev.Read(ctx, off, ss); !errors.Is(err, diskhb.ErrBusy) {
				t.Fatalf("read while a write is stuck: %v; want ErrBusy", err)
			}
			if !dev.Stats().Stuck {
				t.Fatal("stats do not show the device stuck")
			}

			if err := loop.Thaw(); err != nil {
				t.Fatal(err)
			}
			rec.waitFor(t, "has returned")
			if err := dev.Write(ctx, off, bytes.Repeat([]byte{0xcc}, ss)); err != nil {
				t.Fatalf("write after the device came back: %v", err)
			}
			got, err := dev.Read(ctx, off, ss)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, bytes.Repeat([]byte{0xcc}, ss)) {
				t.Fatal("read back different data after recovery")
			}

			// Close while a write hangs returns at once; the device is
			// released when the write returns.
			if err := loop.Freeze(); err != nil {
				t.Fatal(err)
			}
			if err := dev.Write(hung(), off, bytes.Repeat([]byte{0xdd}, ss)); !errors.Is(err, diskhb.ErrTimeout) {
				t.Fatalf("write to a frozen device: %v; want ErrTimeout", err)
			}
			closed := make(chan error, 1)
			go func() { closed <- dev.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("Close with a hung write: %v", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("Close blocked on a write hung in the kernel")
			}
			select {
			case <-dev.Done():
				t.Fatal("device released while its write was still hung")
			default:
			}
			if err := loop.Thaw(); err != nil {
				t.Fatal(err)
			}
			<-dev.Done()
		})
	}
}
