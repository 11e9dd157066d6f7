package diskhb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
)

// testTimeout is the deadline of I/Os that tests expect to time out: short
// so the suite stays fast. I/Os expected to succeed get longTimeout, so a
// loaded machine cannot fail them. Nothing asserts how long an I/O took.
const testTimeout = 30 * time.Millisecond

// longTimeout is a deadline no test reaches.
const longTimeout = time.Hour

// logRecorder is a slog.Handler that keeps the messages it receives and
// signals each on a channel, so tests wait for an event instead of sleeping.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func newLogRecorder() *logRecorder { return &logRecorder{ch: make(chan string, 64)} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.mu.Unlock()
	select {
	case r.ch <- rec.Message:
	default:
	}
	return nil
}

// waitFor blocks until a message containing substr is logged.
func (r *logRecorder) waitFor(t *testing.T, substr string) {
	t.Helper()
	guard := time.After(time.Minute)
	for {
		select {
		case m := <-r.ch:
			if bytes.Contains([]byte(m), []byte(substr)) {
				return
			}
		case <-guard:
			t.Fatalf("no log message containing %q within a minute", substr)
		}
	}
}

func (r *logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if bytes.Contains([]byte(m), []byte(substr)) {
			n++
		}
	}
	return n
}

func newDev(t *testing.T, sectorSize int, timeout time.Duration) (*fakedev.Disk, *fakedev.Path, *diskhb.Device, *logRecorder) {
	t.Helper()
	disk := fakedev.NewDisk(sectorSize, 64)
	p := disk.Path("node1")
	rec := newLogRecorder()
	dev := diskhb.NewDevice(p, timeout, slog.New(rec))
	t.Cleanup(func() {
		p.Release()
		dev.Close()
	})
	return disk, p, dev, rec
}

func sector(ss int, fill byte) []byte { return bytes.Repeat([]byte{fill}, ss) }

func TestDeviceRoundTrip(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			disk, _, dev, _ := newDev(t, ss, longTimeout)
			ctx := context.Background()
			if dev.SectorSize() != ss || dev.Size() != int64(ss)*64 {
				t.Fatalf("geometry %d/%d, want %d/%d", dev.SectorSize(), dev.Size(), ss, ss*64)
			}
			// An unaligned caller buffer is fine: Write copies it.
			p := make([]byte, 2*ss+1)[1:]
			copy(p, sector(ss, 0xa5))
			copy(p[ss:], sector(ss, 0x5a))
			if err := dev.Write(ctx, int64(3*ss), p); err != nil {
				t.Fatal(err)
			}
			if got := disk.Peek(int64(3*ss), 2*ss); !bytes.Equal(got, p) {
				t.Fatal("stored data differs from what was written")
			}
			got, err := dev.Read(ctx, int64(3*ss), 2*ss)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, p) {
				t.Fatal("read data differs from what was written")
			}
			st := dev.Stats()
			if st.Reads != 1 || st.Writes != 1 || st.Errors != 0 || st.Samples != 2 || st.Max < st.P50 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestDeviceHangTimesOutThenBusyThenRecovers(t *testing.T) {
	// The Device's own deadline is long so that the I/Os expected to
	// succeed do so on a loaded machine; the hung write gets a short one
	// from its context.
	disk, p, dev, rec := newDev(t, 512, longTimeout)
	ctx := context.Background()
	p.Hang()

	short, cancelShort := context.WithTimeout(ctx, testTimeout)
	defer cancelShort()
	err := dev.Write(short, 512, sector(512, 1))
	if !errors.Is(err, diskhb.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write on a hung path: %v; want ErrTimeout and DeadlineExceeded", err)
	}
	if errors.Is(err, diskhb.ErrIO) || errors.Is(err, diskhb.ErrBusy) {
		t.Fatalf("timeout also matches another sentinel: %v", err)
	}
	// While the write is stuck, a new I/O waits for it until its own
	// deadline, then fails with ErrBusy without being started.
	for range 3 {
		short, cancel := context.WithTimeout(ctx, testTimeout)
		_, err := dev.Read(short, 0, 512)
		cancel()
		if !errors.Is(err, diskhb.ErrBusy) {
			t.Fatalf("read while an I/O is stuck: %v; want ErrBusy", err)
		}
	}
	st := dev.Stats()
	if !st.Stuck || st.Timeouts != 1 || st.Busy != 3 || st.Writes != 1 || st.Reads != 0 {
		t.Fatalf("stats while stuck: %+v", st)
	}
	if !errors.Is(st.LastError, diskhb.ErrBusy) {
		t.Fatalf("last error %v, want ErrBusy", st.LastError)
	}

	p.Release()
	rec.waitFor(t, "has returned")
	if n := rec.count("has returned"); n != 1 {
		t.Fatalf("logged the stuck I/O's return %d times, want once", n)
	}
	// The late write landed: its outcome is unknown to the caller, which
	// is why callers must not assume a timed-out write failed.
	if !bytes.Equal(disk.Peek(512, 512), sector(512, 1)) {
		t.Fatal("the released write did not land")
	}
	if err := dev.Write(ctx, 1024, sector(512, 2)); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	st = dev.Stats()
	if st.Stuck || st.Late != 1 || st.Writes != 2 {
		t.Fatalf("stats after recovery: %+v", st)
	}
}

func TestDeviceDeadlineIsEarlierOfContextAndTimeout(t *testing.T) {
	t.Run("context earlier", func(t *testing.T) {
		_, p, dev, _ := newDev(t, 512, longTimeout)
		p.Hang()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if _, err := dev.Read(ctx, 0, 512); !errors.Is(err, diskhb.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read with a short context deadline on a hung path: %v", err)
		}
	})
	t.Run("device timeout earlier", func(t *testing.T) {
		_, p, dev, _ := newDev(t, 512, testTimeout)
		p.Hang()
		ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
		defer cancel()
		if _, err := dev.Read(ctx, 0, 512); !errors.Is(err, diskhb.ErrTimeout) {
			t.Fatalf("read with a long context deadline on a hung path: %v", err)
		}
	})
	t.Run("context already over", func(t *testing.T) {
		_, p, dev, _ := newDev(t, 512, longTimeout)
		expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		if err := dev.Write(expired, 0, sector(512, 1)); !errors.Is(err, diskhb.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write with a past deadline: %v; want ErrTimeout", err)
		}
		cancelled, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if _, err := dev.Read(cancelled, 0, 512); !errors.Is(err, context.Canceled) {
			t.Fatalf("read with a cancelled context: %v; want context.Canceled", err)
		}
		if r, w := p.Ops(); r != 0 || w != 0 {
			t.Fatalf("%d reads, %d writes reached the device; want none", r, w)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		_, p, dev, _ := newDev(t, 512, longTimeout)
		applied := make(chan struct{}, 1)
		p.SetHook(func(op fakedev.Op) fakedev.Fault {
			if op.Seq != 1 {
				return fakedev.Fault{}
			}
			applied <- struct{}{}
			return fakedev.Fault{Hang: true}
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-applied; cancel() }()
		_, err := dev.Read(ctx, 0, 512)
		if !errors.Is(err, context.Canceled) || errors.Is(err, diskhb.ErrTimeout) {
			t.Fatalf("read cancelled in flight: %v; want context.Canceled", err)
		}
		short, cancelShort := context.WithTimeout(context.Background(), testTimeout)
		defer cancelShort()
		if _, err := dev.Read(short, 0, 512); !errors.Is(err, diskhb.ErrBusy) {
			t.Fatalf("read after a cancelled in-flight read: %v; want ErrBusy", err)
		}
	})
}

// A stall a little longer than one I/O's deadline fails that I/O only:
// the next one waits for the late completion within its own deadline and
// then succeeds, instead of being refused as busy.
func TestDeviceLateCompletionDoesNotFailTheNext(t *testing.T) {
	_, p, dev, _ := newDev(t, 512, longTimeout)
	ctx := context.Background()
	p.Hang()
	short, cancelShort := context.WithTimeout(ctx, testTimeout)
	defer cancelShort()
	if err := dev.Write(short, 512, sector(512, 1)); !errors.Is(err, diskhb.ErrTimeout) {
		t.Fatalf("write on a hung path: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := dev.Read(ctx, 0, 512) // waits: the Device's deadline is long
		done <- err
	}()
	// The read is waiting for the stuck write; releasing it lets the read run.
	for dev.Stats().Reads != 0 {
		t.Fatal("a read started while a write was stuck")
	}
	time.Sleep(testTimeout)
	p.Release()
	if err := <-done; err != nil {
		t.Fatalf("read issued while the write was stuck, which returned within the read's deadline: %v", err)
	}
	if st := dev.Stats(); st.Busy != 0 || st.Late != 1 || st.Reads != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestDeviceErrorMapping(t *testing.T) {
	ctx := context.Background()
	t.Run("fenced", func(t *testing.T) {
		_, p, dev, _ := newDev(t, 512, longTimeout)
		p.SetFenced(true)
		err := dev.Write(ctx, 0, sector(512, 1))
		if !errors.Is(err, diskhb.ErrFenced) || !errors.Is(err, diskhb.FencedErrno) {
			t.Fatalf("fenced write: %v; want ErrFenced wrapping EBADE", err)
		}
		if errors.Is(err, diskhb.ErrIO) {
			t.Fatalf("fenced write also matches ErrIO: %v", err)
		}
		// Reads are allowed under a write-exclusive reservation.
		if _, err := dev.Read(ctx, 0, 512); err != nil {
			t.Fatalf("read on a fenced path: %v", err)
		}
	})
	t.Run("eio", func(t *testing.T) {
		_, p, dev, _ := newDev(t, 512, longTimeout)
		p.SetFailIO(true)
		for _, do := range []func() error{
			func() error { return dev.Write(ctx, 0, sector(512, 1)) },
			func() error { _, err := dev.Read(ctx, 0, 512); return err },
		} {
			err := do()
			if !errors.Is(err, diskhb.ErrIO) || !errors.Is(err, syscall.EIO) || errors.Is(err, diskhb.ErrFenced) {
				t.Fatalf("I/O on a failed path: %v; want ErrIO wrapping EIO and not ErrFenced", err)
			}
		}
		if st := dev.Stats(); st.Errors != 2 || !errors.Is(st.LastError, diskhb.ErrIO) {
			t.Fatalf("stats %+v", st)
		}
		p.SetFailIO(false)
		if err := dev.Write(ctx, 0, sector(512, 1)); err != nil {
			t.Fatalf("write after the path came back: %v", err)
		}
	})
	t.Run("unclassified", func(t *testing.T) {
		// A BlockDevice that returns a bare errno still yields ErrIO.
		dev := diskhb.NewDevice(rawErrDevice{}, longTimeout, nil)
		defer dev.Close()
		err := dev.Write(ctx, 0, sector(512, 1))
		if !errors.Is(err, diskhb.ErrIO) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("bare ENOSPC: %v; want ErrIO wrapping ENOSPC", err)
		}
		err = dev.Write(ctx, 512, sector(512, 1))
		if !errors.Is(err, diskhb.ErrFenced) || errors.Is(err, diskhb.ErrIO) {
			t.Fatalf("bare EBADE: %v; want ErrFenced only", err)
		}
		_, err = dev.Read(ctx, 0, 512)
		if !errors.Is(err, diskhb.ErrIO) {
			t.Fatalf("short read: %v; want ErrIO", err)
		}
	})
}

// rawErrDevice returns unclassified errors: ENOSPC for writes at 0, EBADE
// for other writes, and short reads.
type rawErrDevice struct{}

func (rawErrDevice) SectorSize() int { return 512 }
func (rawErrDevice) Size() int64     { return 4096 }
func (rawErrDevice) Close() error    { return nil }
func (rawErrDevice) ReadAt(p []byte, off int64) (int, error) {
	return len(p) / 2, nil
}
func (rawErrDevice) WriteAt(p []byte, off int64) (int, error) {
	if off == 0 {
		return 0, syscall.ENOSPC
	}
	return 0, diskhb.FencedErrno
}

func TestDeviceAlignment(t *testing.T) {
	ctx := context.Background()
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			_, p, dev, _ := newDev(t, ss, longTimeout)
			cases := []struct {
				name string
				do   func() error
				want error
			}{
				{"write at unaligned offset", func() error { return dev.Write(ctx, 1, sector(ss, 1)) }, diskhb.ErrAlignment},
				{"write at half-sector offset", func() error { return dev.Write(ctx, int64(ss/2), sector(ss, 1)) }, diskhb.ErrAlignment},
				{"write of a partial sector", func() error { return dev.Write(ctx, 0, make([]byte, ss-1)) }, diskhb.ErrAlignment},
				{"write of 1.5 sectors", func() error { return dev.Write(ctx, 0, make([]byte, ss+ss/2)) }, diskhb.ErrAlignment},
				{"empty write", func() error { return dev.Write(ctx, 0, nil) }, diskhb.ErrAlignment},
				{"negative offset", func() error { return dev.Write(ctx, -int64(ss), sector(ss, 1)) }, diskhb.ErrAlignment},
				{"read of zero bytes", func() error { _, err := dev.Read(ctx, 0, 0); return err }, diskhb.ErrAlignment},
				{"read of a partial sector", func() error { _, err := dev.Read(ctx, 0, ss+1); return err }, diskhb.ErrAlignment},
				{"read at unaligned offset", func() error { _, err := dev.Read(ctx, 7, ss); return err }, diskhb.ErrAlignment},
				{"read past the end", func() error { _, err := dev.Read(ctx, dev.Size(), ss); return err }, diskhb.ErrIO},
				{"write across the end", func() error { return dev.Write(ctx, dev.Size()-int64(ss), make([]byte, 2*ss)) }, diskhb.ErrIO},
			}
			for _, c := range cases {
				if err := c.do(); !errors.Is(err, c.want) {
					t.Errorf("%s: %v; want %v", c.name, err, c.want)
				}
			}
			if r, w := p.Ops(); r != 0 || w != 0 {
				t.Fatalf("%d reads and %d writes reached the device; want none", r, w)
			}
			if st := dev.Stats(); st.Reads != 0 || st.Writes != 0 {
				t.Fatalf("stats count refused I/O as issued: %+v", st)
			}
		})
	}
}

func TestDeviceCloseDuringHang(t *testing.T) {
	_, p, dev, _ := newDev(t, 512, longTimeout)
	applied := make(chan struct{}, 1)
	p.SetHook(func(op fakedev.Op) fakedev.Fault {
		if op.Seq == 1 {
			applied <- struct{}{}
		}
		return fakedev.Fault{}
	})
	p.Hang()
	werr := make(chan error, 1)
	go func() { werr <- dev.Write(context.Background(), 0, sector(512, 1)) }()
	<-applied

	closed := make(chan error, 1)
	go func() { closed <- dev.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close with a hung I/O: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close blocked on a hung I/O")
	}
	// The caller of the hung write is released by Close too.
	if err := <-werr; !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("write in flight at Close: %v; want ErrClosed", err)
	}
	if _, err := dev.Read(context.Background(), 0, 512); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("read after Close: %v; want ErrClosed", err)
	}
	if err := dev.Close(); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("second Close: %v; want ErrClosed", err)
	}
	select {
	case <-dev.Done():
		t.Fatal("device released its BlockDevice while an I/O was still hung")
	default:
	}
	p.Release()
	<-dev.Done()
	// The Device closed the path once the I/O returned.
	if err := p.Close(); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("path not closed by the Device: Close returned %v", err)
	}
}

func TestDeviceCloseIdle(t *testing.T) {
	_, p, dev, _ := newDev(t, 512, longTimeout)
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	<-dev.Done()
	if err := p.Close(); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("path not closed by the Device: Close returned %v", err)
	}
	if err := dev.Write(context.Background(), 0, sector(512, 1)); !errors.Is(err, diskhb.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

// TestDeviceConcurrentWriters runs several writers, each on its own sector,
// through one Device; run it with -race.
func TestDeviceConcurrentWriters(t *testing.T) {
	const writers, rounds = 8, 50
	disk, _, dev, _ := newDev(t, 512, longTimeout)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			off := int64(w+1) * 512
			buf := make([]byte, 512)
			for r := range rounds {
				for i := range buf {
					buf[i] = byte(w*rounds + r)
				}
				if err := dev.Write(ctx, off, buf); err != nil {
					errs <- err
					return
				}
				got, err := dev.Read(ctx, off, 512)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, buf) {
					errs <- fmt.Errorf("writer %d round %d: read back different data", w, r)
					return
				}
				_ = dev.Stats()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		if got := disk.Peek(int64(w+1)*512, 512); !bytes.Equal(got, sector(512, byte(w*rounds+rounds-1))) {
			t.Fatalf("writer %d's sector holds another writer's data", w)
		}
	}
	if st := dev.Stats(); st.Writes != writers*rounds || st.Reads != writers*rounds {
		t.Fatalf("stats %+v", st)
	}
}

// TestDeviceConcurrentCallersDuringHang checks that no caller blocks past
// its deadline when the device hangs under concurrent load: each gets
// ErrTimeout or ErrBusy.
func TestDeviceConcurrentCallersDuringHang(t *testing.T) {
	_, p, dev, _ := newDev(t, 512, testTimeout)
	p.Hang()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				err = dev.Write(context.Background(), int64(i)*512, sector(512, byte(i)))
			} else {
				_, err = dev.Read(context.Background(), int64(i)*512, 512)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	timeouts := 0
	for err := range errs {
		switch {
		case errors.Is(err, diskhb.ErrTimeout):
			timeouts++
		case errors.Is(err, diskhb.ErrBusy):
		default:
			t.Fatalf("caller during a hang got %v; want ErrTimeout or ErrBusy", err)
		}
	}
	if timeouts == 0 {
		t.Fatal("no caller saw the hang as a timeout")
	}
	st := dev.Stats()
	if st.Writes+st.Reads != 1 {
		t.Fatalf("%d I/Os reached a hung device; want exactly one in flight", st.Writes+st.Reads)
	}
}

// TestDeviceStressHangs runs concurrent callers against a path that hangs
// on a seeded schedule and is released over and over, under the race
// detector. Every call must return, with success, ErrTimeout or ErrBusy;
// once released for good the device must accept I/O again and its
// counters must add up.
func TestDeviceStressHangs(t *testing.T) {
	disk, p, dev, _ := newDev(t, 512, 2*time.Millisecond)
	p.SetHook(func(op fakedev.Op) fakedev.Fault {
		return fakedev.Fault{Hang: op.Seq%5 == 0}
	})
	stop := make(chan struct{})
	released := make(chan struct{})
	go func() {
		defer close(released)
		for {
			select {
			case <-stop:
				return
			default:
				p.Release()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	const callers, calls = 6, 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	errs := make(chan error, callers*calls)
	for c := range callers {
		wg.Go(func() {
			for i := range calls {
				var err error
				off := int64(c) * 512
				if i%2 == 0 {
					err = dev.Write(context.Background(), off, sector(512, byte(i)))
				} else {
					_, err = dev.Read(context.Background(), off, 512)
				}
				switch {
				case err == nil:
					mu.Lock()
					ok++
					mu.Unlock()
				case errors.Is(err, diskhb.ErrTimeout), errors.Is(err, diskhb.ErrBusy):
				default:
					errs <- err
				}
				_ = dev.Stats()
			}
		})
	}
	wg.Wait()
	// Every call is counted exactly once: a success, a timeout or a refusal.
	if st := dev.Stats(); uint64(ok)+st.Timeouts+st.Busy != callers*calls {
		t.Fatalf("%d successes + %d timeouts + %d busy != %d calls", ok, st.Timeouts, st.Busy, callers*calls)
	}
	close(stop)
	<-released
	p.SetHook(nil)
	p.Release()
	close(errs)
	for err := range errs {
		t.Fatalf("unexpected error under hangs: %v", err)
	}
	// Wait for any stuck I/O to return, then the device works again (its
	// 2ms deadline may be missed on a loaded machine: retry).
	var err error
	for range 2000 {
		err = dev.Write(context.Background(), 0, sector(512, 0xee))
		if !errors.Is(err, diskhb.ErrBusy) && !errors.Is(err, diskhb.ErrTimeout) {
			break
		}
		p.Release()
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatalf("write after the last release: %v", err)
	}
	if !bytes.Equal(disk.Peek(0, 512), sector(512, 0xee)) {
		t.Fatal("final write did not land")
	}
	st := dev.Stats()
	if st.Stuck || st.Errors != 0 || uint64(ok)+1 > st.Reads+st.Writes {
		t.Fatalf("stats %+v after %d successful calls", st, ok)
	}
	t.Logf("%d of %d calls succeeded; stats %+v", ok, callers*calls, st)
}
