package diskhb

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The AIO path of a Device. When the BlockDevice is the O_DIRECT block
// device of OpenBlock, the caller's goroutine submits the I/O itself
// (io_submit) and waits for its completion in io_getevents with a timeout
// of the time left to the deadline: no other goroutine is woken for an I/O
// that completes in time. An I/O that misses its deadline is handed to a
// reaper goroutine, which holds the ring until the completion arrives,
// logs it and makes the device accept I/O again. A cancelled context or
// Close wakes the waiting caller through an eventfd that an IOCB_CMD_POLL
// of the same AIO context watches, so cancellation returns at once as on
// the goroutine path.

// aioFile is implemented by BlockDevices whose I/O a Device can submit
// itself with Linux AIO (the O_DIRECT device of direct_linux.go).
type aioFile interface {
	// aioFD returns the descriptor, a name for errors, and whether AIO
	// may be used on it.
	aioFD() (fd int, name string, ok bool)
}

// setupAIO selects the AIO path when the BlockDevice allows it and the
// kernel sets up an AIO context; otherwise the Device uses its I/O
// goroutine.
func (d *Device) setupAIO() bool {
	f, ok := d.bd.(aioFile)
	if !ok {
		d.log.Debug("quorum disk device has no O_DIRECT descriptor; its I/O runs on a goroutine of its own")
		return false
	}
	fd, name, ok := f.aioFD()
	if !ok {
		d.log.Debug("quorum disk device is not an O_DIRECT block device; its I/O runs on a goroutine of its own", "device", name)
		return false
	}
	r, err := newAIORing(fd, name)
	if err != nil {
		d.log.Debug("Linux AIO unavailable for the quorum disk; its I/O runs on a goroutine of its own", "device", name, "err", err)
		return false
	}
	d.aio = r
	d.sem = make(chan struct{}, 1)
	return true
}

func (d *Device) doAIO(ctx context.Context, op opKind, off int64, buf []byte, now, deadline time.Time, stuckCh chan struct{}) error {
	// Take the ring, waiting for another caller's I/O if there is one.
	select {
	case d.sem <- struct{}{}:
	default:
		if err := d.waitRing(ctx, op, off, now, deadline, stuckCh); err != nil {
			return err
		}
		if !time.Now().Before(deadline) {
			// The deadline passed as the ring came free: start no I/O
			// that would only leave the device busy.
			<-d.sem
			d.mu.Lock()
			d.stats.Timeouts++
			d.mu.Unlock()
			return d.fail(d.timeoutErr(op, off, deadline.Sub(now), "waiting for another I/O to complete"))
		}
	}
	req := &request{op: op, off: off, buf: buf}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.sem
		return d.fail(fmt.Errorf("%s at offset %d: %w", op, off, ErrClosed))
	}
	// Not stuck: the reaper of a stuck I/O holds the ring until it clears
	// d.stuck.
	req.started = time.Now()
	d.running = req
	if op == opRead {
		d.stats.Reads++
		d.stats.ReadBytes += uint64(len(buf))
	} else {
		d.stats.Writes++
		d.stats.WrittenBytes += uint64(len(buf))
	}
	d.mu.Unlock()

	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, d.aioWake)
		defer stop()
	}
	if err := d.aio.submit(op == opWrite, buf, off); err != nil {
		// Nothing in flight: the I/O failed.
		return d.finish(op, off, d.aioDone(req, fmt.Errorf("%s: %w", d.aio.name, IOError(op.String(), off, err)), false))
	}

	var cause error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		evs, err := d.aio.getevents(1, left)
		if isEINTR(err) {
			continue
		}
		if err != nil {
			cause = fmt.Errorf("%s at offset %d: io_getevents: %w: %w", op, off, ErrIO, err)
			break
		}
		if res, got, woken := d.aioEvents(evs); got {
			return d.finish(op, off, d.aioDone(req, d.aio.result(op, off, len(buf), res), false))
		} else if woken {
			if err := ctx.Err(); err != nil {
				cause = err
				break
			}
			d.mu.Lock()
			closed := d.closed
			d.mu.Unlock()
			if closed {
				cause = ErrClosed
				break
			}
		}
	}
	if cause == nil || errors.Is(cause, context.DeadlineExceeded) {
		// The completion may have arrived as the wait timed out.
		if evs, err := d.aio.getevents(0, 0); err == nil {
			if res, got, _ := d.aioEvents(evs); got {
				return d.finish(op, off, d.aioDone(req, d.aio.result(op, off, len(buf), res), false))
			}
		}
	}

	// Give up on the I/O: the reaper takes the ring (and keeps buf
	// referenced) until it completes.
	d.mu.Lock()
	req.abandoned = true
	if !errors.Is(cause, ErrClosed) {
		d.stats.Timeouts++
	}
	d.markStuck(req)
	d.mu.Unlock()
	go d.aioReap(req)
	if errors.Is(cause, ErrIO) {
		d.log.Error("waiting for a quorum disk I/O failed; new I/O on this device waits for it until its own deadline, then fails with ErrBusy",
			"op", op.String(), "offset", off, "err", cause)
		return d.fail(cause)
	}
	return d.abandoned(op, off, cause, now, deadline)
}

// waitRing waits for the caller holding the ring, as the goroutine path
// waits to hand its request over.
func (d *Device) waitRing(ctx context.Context, op opKind, off int64, now, deadline time.Time, stuckCh chan struct{}) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	return awaitTurn(d, ctx, timer, d.sem, struct{}{}, op, off, now, deadline, stuckCh)
}

// aioEvents sorts reaped events: got and res for the I/O's completion,
// woken for the wake poll, which it re-arms.
func (d *Device) aioEvents(evs []ioEvent) (res int64, got, woken bool) {
	for _, ev := range evs {
		switch ev.data {
		case aioTagIO:
			res, got = ev.res, true
		case aioTagWake:
			woken = true
		}
	}
	if woken {
		if err := d.aio.armWake(); err != nil {
			// Cancellation and Close no longer wake a waiting caller,
			// which still returns at its deadline.
			d.log.Warn("re-arming the quorum disk's AIO wake-up failed; a cancelled I/O returns at its deadline", "err", err)
		}
	}
	return res, got, woken
}

// aioDone records the completion of req (err is its result) and releases
// the ring, or closes the device if Close came while req was in flight.
// late is true for a completion reaped after its caller gave up.
func (d *Device) aioDone(req *request, err error, late bool) error {
	closed := d.complete(req, err, time.Since(req.started), func() bool { return late })
	if closed {
		// Close returned without closing the BlockDevice because this
		// I/O was in flight.
		d.aioTeardown()
	} else {
		<-d.sem
	}
	return err
}

// aioReap waits for the completion of an I/O whose caller gave up, holding
// the ring meanwhile, so that new I/O waits for it (or fails with ErrBusy
// at its own deadline) until it returns.
// req.buf stays referenced until then: the kernel may still write to it.
func (d *Device) aioReap(req *request) {
	for {
		evs, err := d.aio.getevents(1, -1)
		if isEINTR(err) {
			continue
		}
		if err != nil {
			d.log.Error("waiting for a stuck quorum disk I/O failed; the device stays busy", "op", req.op.String(), "offset", req.off, "err", err)
			return
		}
		if res, got, _ := d.aioEvents(evs); got {
			d.aioDone(req, d.aio.result(req.op, req.off, len(req.buf), res), true)
			return
		}
	}
}

// aioWake wakes the caller waiting for its I/O (its context is done).
func (d *Device) aioWake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.aioDown {
		d.aio.wake()
	}
}

// aioTeardown destroys the AIO context and closes the BlockDevice; no I/O
// is in flight.
func (d *Device) aioTeardown() error {
	d.mu.Lock()
	d.aioDown = true
	late := d.stats.Late > 0
	d.mu.Unlock()
	if err := d.aio.destroy(); err != nil {
		d.log.Warn("releasing the quorum disk's AIO context failed", "err", err)
	}
	err := d.bd.Close()
	d.mu.Lock()
	d.closeErr = err
	d.mu.Unlock()
	if late && err != nil {
		d.log.Warn("closing quorum disk device after its stuck I/O returned failed", "err", err)
	}
	close(d.done)
	return err
}
