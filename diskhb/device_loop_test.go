package diskhb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/test/testutil"
)

// aioSupported is whether Devices on O_DIRECT block devices use Linux AIO
// on this platform (aio_linux.go).
var aioSupported = runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64")

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
			if diskhb.UsesAIO(dev) != aioSupported {
				t.Fatalf("Device uses AIO: %v; want %v on %s/%s", diskhb.UsesAIO(dev), aioSupported, runtime.GOOS, runtime.GOARCH)
			}
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
			// A new I/O waits for the stuck one within its own deadline,
			// then fails with ErrBusy.
			if _, err := dev.Read(hung(), off, ss); !errors.Is(err, diskhb.ErrBusy) {
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

// TestLoopHungDeviceCancelAndClose checks, on a write hung in the kernel,
// that a cancelled context and Close each return the waiting caller at
// once (on the AIO path they wake it out of io_getevents), and that the
// device stays busy until the write returns.
func TestLoopHungDeviceCancelAndClose(t *testing.T) {
	loop := testutil.NewFreezableLoopDevice(t, 512, 4<<20)
	bd, err := diskhb.OpenBlock(loop.Path)
	if err != nil {
		t.Fatal(err)
	}
	rec := newLogRecorder()
	dev := diskhb.NewDevice(bd, longTimeout, slog.New(rec))
	t.Cleanup(func() {
		_ = loop.Thaw()
		dev.Close()
		<-dev.Done()
	})
	ctx := context.Background()
	if err := loop.Freeze(); err != nil {
		t.Fatal(err)
	}

	// Cancelled while in flight: context.Canceled long before the
	// deadline, then ErrBusy.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(hangTimeout, cancel)
	t0 := time.Now()
	err = dev.Write(cctx, 512, bytes.Repeat([]byte{0xee}, 512))
	if !errors.Is(err, context.Canceled) || errors.Is(err, diskhb.ErrTimeout) {
		t.Fatalf("write cancelled in flight: %v; want context.Canceled", err)
	}
	if took := time.Since(t0); took > time.Minute {
		t.Fatalf("cancelled write returned after %v", took)
	}
	short, cancelShort := context.WithTimeout(ctx, hangTimeout)
	defer cancelShort()
	if _, err := dev.Read(short, 0, 512); !errors.Is(err, diskhb.ErrBusy) {
		t.Fatalf("read after a cancelled in-flight write: %v; want ErrBusy", err)
	}
	if err := loop.Thaw(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "has returned")
	if st := dev.Stats(); st.Stuck || st.Late != 1 || st.Timeouts != 1 {
		t.Fatalf("stats after the cancelled write returned: %+v", st)
	}

	// Close while a caller waits for its hung write: the caller gets
	// ErrClosed at once, Close does not wait, and the device is released
	// when the write returns.
	if err := loop.Freeze(); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- dev.Write(ctx, 512, bytes.Repeat([]byte{0xef}, 512)) }()
	// Wait until the write is in flight.
	for dev.Stats().Writes < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := dev.Close(); err != nil {
		t.Fatalf("Close with a hung write: %v", err)
	}
	select {
	case err := <-werr:
		if !errors.Is(err, diskhb.ErrClosed) {
			t.Fatalf("write in flight at Close: %v; want ErrClosed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not release the caller of a hung write")
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
}

// TestDeviceAIOSelection checks which Devices use Linux AIO: an O_DIRECT
// block device does; a regular file (where io_submit may do the I/O
// synchronously) and the in-memory fake do not.
func TestDeviceAIOSelection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, make([]byte, 64*512), 0o600); err != nil {
		t.Fatal(err)
	}
	fbd, err := diskhb.OpenFile(file, 512)
	if err != nil {
		t.Fatal(err)
	}
	fdev := diskhb.NewDevice(fbd, longTimeout, nil)
	defer fdev.Close()
	if diskhb.UsesAIO(fdev) {
		t.Error("a Device on a regular file uses AIO")
	}
	_, _, dev, _ := newDev(t, 512, longTimeout)
	if diskhb.UsesAIO(dev) {
		t.Error("a Device on the fake uses AIO")
	}

	loop := testutil.NewLoopDevice(t, 4096, loopSize)
	bd, err := diskhb.OpenBlock(loop.Path)
	if err != nil {
		t.Fatal(err)
	}
	ldev := diskhb.NewDevice(bd, longTimeout, nil)
	if diskhb.UsesAIO(ldev) != aioSupported {
		t.Fatalf("a Device on a loop device uses AIO: %v; want %v", diskhb.UsesAIO(ldev), aioSupported)
	}
	// Every error path of the ring: past the end (refused before any
	// I/O), then round trips.
	ctx := context.Background()
	if _, err := ldev.Read(ctx, loopSize, 4096); !errors.Is(err, diskhb.ErrIO) {
		t.Fatalf("read past the end: %v; want ErrIO", err)
	}
	p := bytes.Repeat([]byte{0x42}, 2*4096)
	if err := ldev.Write(ctx, 4096, p); err != nil {
		t.Fatal(err)
	}
	got, err := ldev.Read(ctx, 4096, 2*4096)
	if err != nil || !bytes.Equal(got, p) {
		t.Fatalf("read back: %v", err)
	}
	if st := ldev.Stats(); st.Reads != 1 || st.Writes != 1 || st.Samples != 2 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := ldev.Close(); err != nil {
		t.Fatal(err)
	}
	<-ldev.Done()
	if _, err := bd.ReadAt(diskhb.AlignedBuffer(4096), 0); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("BlockDevice not closed by the Device: %v", err)
	}
}

// TestLoopConcurrentCallersWithHangs runs concurrent callers through one
// Device on a real device that is frozen and thawed over and over (run it
// with -race): every call returns success, ErrTimeout or ErrBusy, every
// call is counted once, and once thawed for good the device works again.
func TestLoopConcurrentCallersWithHangs(t *testing.T) {
	loop := testutil.NewFreezableLoopDevice(t, 512, 4<<20)
	bd, err := diskhb.OpenBlock(loop.Path)
	if err != nil {
		t.Fatal(err)
	}
	dev := diskhb.NewDevice(bd, 20*time.Millisecond, nil)
	t.Cleanup(func() {
		_ = loop.Thaw()
		dev.Close()
		<-dev.Done()
	})
	stop := make(chan struct{})
	flipped := make(chan error, 1)
	go func() {
		var err error
		defer func() { flipped <- err }()
		for {
			select {
			case <-stop:
				return // thawed
			default:
			}
			if err = loop.Freeze(); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
			if err = loop.Thaw(); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	const callers, calls = 6, 100
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	errs := make(chan error, callers*calls)
	for c := range callers {
		wg.Go(func() {
			off := int64(c+1) * 512
			for i := range calls {
				var err error
				if i%2 == 0 {
					err = dev.Write(context.Background(), off, bytes.Repeat([]byte{byte(i)}, 512))
				} else {
					_, err = dev.Read(context.Background(), off, 512)
				}
				switch {
				case err == nil:
					mu.Lock()
					ok++
					mu.Unlock()
				case errors.Is(err, diskhb.ErrTimeout), errors.Is(err, diskhb.ErrBusy):
					time.Sleep(time.Millisecond)
				default:
					errs <- err
				}
				_ = dev.Stats()
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-flipped; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("unexpected error: %v", err)
	}
	st := dev.Stats()
	if uint64(ok)+st.Timeouts+st.Busy != callers*calls {
		t.Fatalf("%d successes + %d timeouts + %d busy != %d calls", ok, st.Timeouts, st.Busy, callers*calls)
	}
	var werr error
	for range 30000 {
		werr = dev.Write(context.Background(), 0, bytes.Repeat([]byte{0x77}, 512))
		if !errors.Is(werr, diskhb.ErrBusy) && !errors.Is(werr, diskhb.ErrTimeout) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if werr != nil {
		t.Fatalf("write after the last thaw: %v", werr)
	}
	t.Logf("%d of %d calls succeeded; stats %+v", ok, callers*calls, dev.Stats())
}
