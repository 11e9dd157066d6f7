package diskhb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultIOTimeout is the deadline a Device gives an I/O when NewDevice is
// passed a timeout <= 0: the default quorum-disk I/O timeout of the
// cluster timing (config.DefaultIOTimeout, 400ms).
const DefaultIOTimeout = 400 * time.Millisecond

// latencyWindow is how many recent completed I/Os Stats computes its
// latency percentiles over: 256 I/Os, about 25 s of a node's disk heartbeat
// at the default 200ms interval (two I/Os per interval).
const latencyWindow = 256

// Device gives every I/O on a BlockDevice a deadline, so a hung LUN turns
// into an error in bounded time instead of a blocked caller.
//
// On an O_DIRECT block device (OpenBlock) on linux/amd64 and linux/arm64,
// the caller's goroutine submits its I/O with Linux AIO (io_submit) and
// waits for it in io_getevents until its deadline, as sanlock does; an I/O
// that misses its deadline is left to a reaper goroutine. On any other
// BlockDevice, or when the kernel refuses an AIO context, one goroutine per
// Device issues the I/Os. Either way the I/Os run one at a time. An I/O's
// deadline is the earlier of the context's deadline and now + the Device's
// timeout.
//
// Guarantees:
//   - Read, Write and Close return by the deadline (Close at once), whatever
//     the device does. A caller whose I/O is not complete at its deadline
//     gets an error wrapping ErrTimeout and context.DeadlineExceeded.
//   - At most one I/O is in flight on the BlockDevice. While an I/O that
//     timed out is still in the kernel, a new I/O waits for it to return,
//     within the new I/O's own deadline, and then runs in what is left of
//     it; if the stuck I/O has not returned by then, the new I/O fails
//     with ErrBusy without being started. So a stall a little longer than
//     one deadline fails one I/O, not the ones after it. The Device logs
//     once when the stuck I/O finally returns.
//   - Callers' buffers are never handed to the kernel: Write copies p into
//     an aligned buffer of its own and Read returns a fresh buffer, so a
//     late completion never touches memory the caller has reused.
//   - Misaligned offsets and lengths fail with ErrAlignment before any I/O.
//   - A cancelled context returns its caller at once with context.Canceled;
//     an I/O it had started keeps the device busy until it returns, as a
//     timed-out one does. A context already over starts no I/O.
//   - All methods are safe for concurrent use.
//
// Cost: on the AIO path, two system calls (io_submit, io_getevents)
// where a bare pread or pwrite makes one, and a context.AfterFunc for a
// context that can be cancelled. On the goroutine path, each I/O is handed
// to the I/O goroutine and its result handed back, two goroutine wake-ups
// on top of the system call. `mtc bench disk` measures the Device against
// dd (docs/BENCHMARKS.md).
//
// Non-guarantees:
//   - A write that timed out may still land, entirely or (on hardware
//     without atomic sector writes) in part, after the caller saw ErrTimeout.
//     Treat its outcome as unknown.
//   - A timeout is not a fence: the stuck I/O cannot be cancelled.
//   - On the AIO path the caller's own io_submit queues the request: the
//     block layer returns it at once on a hung device, but makes it wait
//     while the device's request queue is frozen (reconfigured) or has no
//     free request left, which a hung device holding all of them can
//     cause.
//   - Concurrent callers are served one at a time in no particular order;
//     time spent waiting for another caller's I/O counts against the
//     deadline.
type Device struct {
	bd      BlockDevice
	timeout time.Duration
	log     *slog.Logger

	reqs chan *request // to the I/O goroutine; unbuffered
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the BlockDevice is closed

	// AIO path (device_aio.go), nil on the goroutine path.
	aio *aioRing
	// sem is held by the goroutine using aio: the caller whose I/O is in
	// flight, or the reaper of an I/O that timed out.
	sem chan struct{}

	mu      sync.Mutex
	closed  bool
	running *request      // I/O being executed by the goroutine, if any
	stuck   *request      // I/O that timed out and has not returned
	stuckCh chan struct{} // closed when the device becomes stuck
	// unstuckCh is closed when the stuck I/O returns (made by markStuck).
	unstuckCh chan struct{}
	closeErr  error
	aioDown   bool // the AIO ring is destroyed
	stats     DeviceStats
	lat       [latencyWindow]time.Duration
	latN      int // completed I/Os recorded in lat (total, not capped)
}

type opKind int

const (
	opRead opKind = iota
	opWrite
)

func (k opKind) String() string {
	if k == opRead {
		return "read"
	}
	return "write"
}

type request struct {
	op  opKind
	off int64
	buf []byte // aligned; owned by the I/O goroutine until done

	res chan result // buffered 1

	// Guarded by Device.mu.
	started   time.Time
	done      bool
	abandoned bool // the caller gave up on it (deadline or cancellation)
}

type result struct {
	err     error
	latency time.Duration
}

// DeviceStats are a Device's counters since NewDevice.
type DeviceStats struct {
	// Reads and Writes count the I/Os issued to the BlockDevice, and
	// ReadBytes and WrittenBytes their sizes.
	Reads, Writes           uint64
	ReadBytes, WrittenBytes uint64
	// Timeouts counts I/Os whose caller got ErrTimeout (or gave up on a
	// cancelled context) before the I/O completed, including callers whose
	// deadline passed while they waited for another caller's I/O.
	Timeouts uint64
	// Busy counts I/Os refused with ErrBusy because an earlier I/O was stuck.
	Busy uint64
	// Errors counts I/Os the BlockDevice completed with an error.
	Errors uint64
	// Late counts I/Os that completed after their caller had timed out.
	Late uint64
	// LastError is the most recent error returned to a caller (nil if none)
	// and LastErrorAt when it happened.
	LastError   error
	LastErrorAt time.Time
	// Stuck is true while an I/O that timed out is still in the kernel.
	Stuck bool
	// Latency percentiles of the most recent completed I/Os (at most
	// latencyWindow; Samples says how many), including late ones.
	Samples       int
	P50, P99, Max time.Duration
}

// NewDevice sets up the AIO context or starts the I/O goroutine for bd
// (a fallback to the goroutine is logged at debug level). timeout is the default
// deadline of each I/O (DefaultIOTimeout when <= 0); log receives the
// device's events (a nil log discards them). The Device owns bd: Close
// closes it.
func NewDevice(bd BlockDevice, timeout time.Duration, log *slog.Logger) *Device {
	if timeout <= 0 {
		timeout = DefaultIOTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Device{
		bd:      bd,
		timeout: timeout,
		log:     log,
		reqs:    make(chan *request),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		stuckCh: make(chan struct{}),
	}
	if d.setupAIO() {
		return d
	}
	go d.loop()
	return d
}

// SectorSize is the logical sector size of the underlying device.
func (d *Device) SectorSize() int { return d.bd.SectorSize() }

// Size is the usable size in bytes of the underlying device.
func (d *Device) Size() int64 { return d.bd.Size() }

// Timeout is the default deadline of one I/O.
func (d *Device) Timeout() time.Duration { return d.timeout }

// Read reads n bytes at off into a new aligned buffer and returns it. off
// and n must be multiples of SectorSize.
func (d *Device) Read(ctx context.Context, off int64, n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("read at offset %d: length %d: %w", off, n, ErrAlignment)
	}
	buf := AlignedBuffer(n)
	if err := CheckIO("read", buf, off, d.bd.SectorSize(), d.bd.Size()); err != nil {
		return nil, err
	}
	if err := d.do(ctx, opRead, off, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Write writes p at off. off and len(p) must be multiples of SectorSize; p
// need not be aligned in memory (it is copied into an aligned buffer), and
// the caller may reuse p as soon as Write returns.
func (d *Device) Write(ctx context.Context, off int64, p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("write at offset %d: empty buffer: %w", off, ErrAlignment)
	}
	buf := AlignedBuffer(len(p))
	copy(buf, p)
	if err := CheckIO("write", buf, off, d.bd.SectorSize(), d.bd.Size()); err != nil {
		return err
	}
	return d.do(ctx, opWrite, off, buf)
}

func (d *Device) do(ctx context.Context, op opKind, off int64, buf []byte) error {
	now := time.Now()
	deadline := now.Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, err))
	}
	if ctx.Err() != nil || !deadline.After(now) {
		// The context's deadline has passed (its Err may lag its
		// deadline by a timer tick): start no I/O.
		d.mu.Lock()
		d.stats.Timeouts++
		d.mu.Unlock()
		return d.fail(d.timeoutErr(op, off, 0, "the context's deadline had already passed"))
	}
	for {
		err := d.try(ctx, op, off, buf, now, deadline)
		if !errors.Is(err, errStuckWait) {
			return err
		}
		// An earlier I/O timed out while this one waited for its turn:
		// wait for it to return, within this I/O's own deadline.
	}
}

// errStuckWait sends a caller back to waiting for a stuck I/O to return;
// it never reaches a caller of Read or Write.
var errStuckWait = errors.New("an earlier I/O got stuck")

// waitUnstuck waits, until the caller's deadline, for the stuck I/O s to
// return (unstuck is closed then). A stall shorter than this I/O's own
// deadline thus delays it rather than failing it; only when the stuck I/O
// is still in flight at the deadline does it fail with ErrBusy, never
// started.
func (d *Device) waitUnstuck(ctx context.Context, op opKind, off int64, now, deadline time.Time, s *request, unstuck <-chan struct{}) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	busy := func() error {
		d.mu.Lock()
		d.stats.Busy++
		since := time.Since(s.started)
		d.mu.Unlock()
		return d.fail(fmt.Errorf("%s at offset %d: %w (a %s at offset %d has been in flight for %v; waited %v for it)",
			op, off, ErrBusy, s.op, s.off, since.Round(time.Millisecond), time.Since(now).Round(time.Millisecond)))
	}
	select {
	case <-unstuck:
		return nil
	case <-timer.C:
		return busy()
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return busy()
		}
		return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ctx.Err()))
	case <-d.quit:
		return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ErrClosed))
	}
}

// try performs one attempt of an I/O: it waits for a stuck I/O to return,
// then for its turn, then for its completion, all within deadline. It
// returns errStuckWait when an earlier I/O got stuck while it waited for
// its turn.
func (d *Device) try(ctx context.Context, op opKind, off int64, buf []byte, now, deadline time.Time) error {
	req := &request{op: op, off: off, buf: buf, res: make(chan result, 1)}

	d.mu.Lock()
	for {
		if d.closed {
			d.mu.Unlock()
			return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ErrClosed))
		}
		s := d.stuck
		if s == nil {
			break
		}
		unstuck := d.unstuckCh
		d.mu.Unlock()
		if err := d.waitUnstuck(ctx, op, off, now, deadline, s, unstuck); err != nil {
			return err
		}
		d.mu.Lock()
	}
	stuckCh := d.stuckCh
	d.mu.Unlock()
	if !time.Now().Before(deadline) {
		d.mu.Lock()
		d.stats.Timeouts++
		d.mu.Unlock()
		return d.fail(d.timeoutErr(op, off, deadline.Sub(now), "waiting for a stuck I/O to return"))
	}
	if d.aio != nil {
		return d.doAIO(ctx, op, off, buf, now, deadline, stuckCh)
	}

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()

	// Hand the request to the I/O goroutine, waiting for another caller's
	// I/O to finish if there is one.
	if err := awaitTurn(d, ctx, timer, d.reqs, req, op, off, now, deadline, stuckCh); err != nil {
		return err
	}

	var cause error
	select {
	case r := <-req.res:
		return d.finish(op, off, r.err)
	case <-timer.C:
	case <-ctx.Done():
		cause = ctx.Err()
	case <-d.quit:
		cause = ErrClosed
	}
	d.mu.Lock()
	if req.done {
		// Completed while the timer fired: take the result.
		d.mu.Unlock()
		return d.finish(op, off, (<-req.res).err)
	}
	req.abandoned = true
	closed := errors.Is(cause, ErrClosed)
	if !closed {
		d.stats.Timeouts++
	}
	started := !req.started.IsZero()
	if started {
		d.markStuck(req)
	}
	d.mu.Unlock()

	if !started {
		// Handed off but not yet started: the I/O goroutine drops it.
		switch {
		case closed:
			return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ErrClosed))
		case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
			return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, cause))
		}
		return d.fail(d.timeoutErr(op, off, deadline.Sub(now), "the I/O had not started"))
	}
	return d.abandoned(op, off, cause, now, deadline)
}

// awaitTurn sends v on ch, which is how a caller gets its turn on the
// device (the goroutine path hands its request to the I/O goroutine, the
// AIO path takes the ring), unless its deadline (timer), its context, an
// earlier I/O getting stuck, or Close comes first: then it returns the
// caller's error.
func awaitTurn[T any](d *Device, ctx context.Context, timer *time.Timer, ch chan<- T, v T, op opKind, off int64, now, deadline time.Time, stuckCh chan struct{}) error {
	timedOut := func() error {
		d.mu.Lock()
		d.stats.Timeouts++
		d.mu.Unlock()
		return d.fail(d.timeoutErr(op, off, deadline.Sub(now), "waiting for another I/O to complete"))
	}
	select {
	case ch <- v:
		return nil
	case <-timer.C:
		return timedOut()
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return timedOut()
		}
		return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ctx.Err()))
	case <-stuckCh:
		return errStuckWait
	case <-d.quit:
		return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ErrClosed))
	}
}

// abandoned returns the error of a caller that gave up on an I/O in flight
// (cause is ErrClosed, the context's error, or nil for the deadline), and
// logs it.
func (d *Device) abandoned(op opKind, off int64, cause error, now, deadline time.Time) error {
	switch {
	case errors.Is(cause, ErrClosed):
		return d.fail(fmt.Errorf("%s at offset %d: device closed with the I/O in flight: %w", op, off, ErrClosed))
	case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
		d.log.Warn("quorum disk I/O abandoned by its caller while in flight; new I/O on this device waits for it until its own deadline, then fails with ErrBusy",
			"op", op.String(), "offset", off, "cause", cause)
		return d.fail(fmt.Errorf("%s at offset %d: gave up on an I/O still in flight: %w", op, off, cause))
	}
	d.log.Warn("quorum disk I/O missed its deadline; new I/O on this device waits for it until its own deadline, then fails with ErrBusy",
		"op", op.String(), "offset", off, "deadline", deadline.Sub(now).Round(time.Millisecond))
	return d.fail(d.timeoutErr(op, off, deadline.Sub(now), "the device did not complete it"))
}

func (d *Device) timeoutErr(op opKind, off int64, after time.Duration, why string) error {
	return fmt.Errorf("%s at offset %d: %w after %v, %s: %w", op, off, ErrTimeout, after.Round(time.Millisecond), why, context.DeadlineExceeded)
}

// finish returns the BlockDevice's error, classified into the sentinels.
func (d *Device) finish(op opKind, off int64, err error) error {
	if err == nil {
		return nil
	}
	return d.fail(IOError(op.String(), off, err))
}

// fail records err as the last error and returns it.
func (d *Device) fail(err error) error {
	d.mu.Lock()
	d.stats.LastError = err
	d.stats.LastErrorAt = time.Now()
	d.mu.Unlock()
	return err
}

// loop is the I/O goroutine: it runs one request at a time until Close,
// then closes the BlockDevice.
func (d *Device) loop() {
	defer close(d.done)
	for {
		select {
		case req := <-d.reqs:
			d.run(req)
		case <-d.quit:
			err := d.bd.Close()
			d.mu.Lock()
			d.closeErr = err
			late := d.stuck != nil
			d.mu.Unlock()
			if late && err != nil {
				d.log.Warn("closing quorum disk device after its stuck I/O returned failed", "err", err)
			}
			return
		}
	}
}

func (d *Device) run(req *request) {
	d.mu.Lock()
	if d.closed {
		// Close won the race with this hand-off: do not start an I/O that
		// Close would then have to wait for.
		req.done = true
		d.mu.Unlock()
		req.res <- result{err: fmt.Errorf("%s at offset %d: %w", req.op, req.off, ErrClosed)}
		return
	}
	if req.abandoned {
		// The caller gave up between the hand-off and now and has its
		// error already: do not start the I/O.
		req.done = true
		d.mu.Unlock()
		return
	}
	req.started = time.Now()
	d.running = req
	if req.op == opRead {
		d.stats.Reads++
		d.stats.ReadBytes += uint64(len(req.buf))
	} else {
		d.stats.Writes++
		d.stats.WrittenBytes += uint64(len(req.buf))
	}
	d.mu.Unlock()

	var (
		n   int
		err error
	)
	if req.op == opRead {
		n, err = d.bd.ReadAt(req.buf, req.off)
	} else {
		n, err = d.bd.WriteAt(req.buf, req.off)
	}
	if err == nil && n != len(req.buf) {
		err = shortIO(req.op.String(), req.off, n, len(req.buf))
	}
	lat := time.Since(req.started)
	// The caller sets req.abandoned under d.mu when it gives up.
	d.complete(req, err, lat, func() bool { return req.abandoned })
	req.res <- result{err: err, latency: lat}
}

// complete books the completion of req (err its result, lat its latency)
// on either I/O path. late, called under d.mu, reports whether req's caller
// had given up; a late completion clears the busy state and is logged. It
// reports whether Close came while req was in flight.
func (d *Device) complete(req *request, err error, lat time.Duration, late func() bool) (closed bool) {
	d.mu.Lock()
	req.done = true
	d.running = nil
	d.lat[d.latN%latencyWindow] = lat
	d.latN++
	if err != nil {
		d.stats.Errors++
	}
	wasLate := late()
	if wasLate {
		d.stats.Late++
		if d.stuck == req {
			d.stuck = nil
			d.stats.Stuck = false
			d.stuckCh = make(chan struct{})
			close(d.unstuckCh)
		}
	}
	closed = d.closed
	d.mu.Unlock()

	switch {
	case wasLate && closed:
		d.log.Info("quorum disk I/O in flight at Close has returned; releasing the device",
			"op", req.op.String(), "offset", req.off, "after", lat.Round(time.Millisecond), "err", err)
	case wasLate:
		d.log.Warn("quorum disk I/O that missed its deadline has returned; the device accepts I/O again",
			"op", req.op.String(), "offset", req.off, "after", lat.Round(time.Millisecond), "err", err)
	}
	return closed
}

// markStuck records that req timed out while in flight: new I/O waits
// for it (within its own deadline) until it returns. Called with d.mu held.
func (d *Device) markStuck(req *request) {
	d.stuck = req
	d.stats.Stuck = true
	close(d.stuckCh)
	d.unstuckCh = make(chan struct{})
}

// Done returns a channel closed once the Device has closed its
// BlockDevice, after Close and after any I/O in flight has returned.
func (d *Device) Done() <-chan struct{} { return d.done }

// Stats returns a snapshot of the counters and recent latencies.
func (d *Device) Stats() DeviceStats {
	d.mu.Lock()
	s := d.stats
	n := min(d.latN, latencyWindow)
	lat := slices.Clone(d.lat[:n])
	d.mu.Unlock()
	s.Samples = n
	if n > 0 {
		slices.Sort(lat)
		s.P50 = lat[percentileIndex(n, 50)]
		s.P99 = lat[percentileIndex(n, 99)]
		s.Max = lat[n-1]
	}
	return s
}

// percentileIndex is the nearest-rank index of the p-th percentile in a
// sorted slice of n > 0 values.
func percentileIndex(n, p int) int {
	i := (p*n + 99) / 100 // ceil(p*n/100)
	return max(i-1, 0)
}

// Close stops the Device and closes the BlockDevice. It never waits for a
// hung I/O: when an I/O is in flight, Close returns nil at once and the
// BlockDevice is closed when that I/O returns. Otherwise it returns the
// BlockDevice's Close error. I/O after Close fails with ErrClosed; a second
// Close returns ErrClosed.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("close: %w", ErrClosed)
	}
	d.closed = true
	busy := d.running != nil
	close(d.quit)
	if busy && d.aio != nil {
		// Release the caller waiting for the I/O, as on the goroutine
		// path; the I/O's reaper closes the BlockDevice.
		d.aio.wake()
	}
	d.mu.Unlock()
	if busy {
		d.log.Info("quorum disk device closed with an I/O in flight; the device is released when it returns")
		return nil
	}
	if d.aio != nil {
		// No I/O in flight: io_destroy does not wait.
		return d.aioTeardown()
	}
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closeErr
}
