package scsi

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of a Device.
const (
	// DefaultTimeout bounds one command when the caller's context has a
	// later deadline or none. PR OUT on a target that aborts a victim's
	// commands can take seconds; 10 s is generous yet short enough that a
	// dead path does not stall fencing for long.
	DefaultTimeout = 10 * time.Second
	// DefaultUARetries: how often a command that met a unit attention is
	// retried after clearing it with TEST UNIT READY. After a preempt a
	// nexus may hold several (2A/03, 2A/04, 2A/05, 29/xx).
	DefaultUARetries = 4
	// keysAlloc is the first READ KEYS allocation length: 8 + 8*511 keys,
	// far more than 16 nodes times their paths. A target with more keys
	// is asked again with what it said it needs (up to 65535).
	keysAlloc = 4096
	// maxAlloc is the largest 2-byte allocation length.
	maxAlloc = 0xffff
)

// Device issues persistent reservation commands to one I_T nexus (one
// path to one LUN) over a Transport.
type Device struct {
	T         Transport
	Timeout   time.Duration // per command; 0 means DefaultTimeout
	UARetries int           // 0 means DefaultUARetries; negative means none
}

func (d *Device) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

func (d *Device) retries() int {
	switch {
	case d.UARetries < 0:
		return 0
	case d.UARetries == 0:
		return DefaultUARetries
	}
	return d.UARetries
}

// exec runs the command built by mk (a fresh Request per attempt: a
// request's buffers are never reused), clearing unit attentions with TEST
// UNIT READY and retrying up to UARetries times. A unit attention means
// the target did not run the command, so the retry is safe for PR OUT too.
func (d *Device) exec(ctx context.Context, mk func() *Request) (*Request, Result, error) {
	var lastUA error
	for attempt := 0; attempt <= d.retries(); attempt++ {
		r := mk()
		res, err := Exec(ctx, d.T, r)
		if !errors.Is(err, ErrUnitAttention) {
			return r, res, err
		}
		lastUA = err
		if err := d.clearUA(ctx); err != nil {
			return r, res, err
		}
	}
	return nil, Result{}, fmt.Errorf("%w (still after %d retries, each after TEST UNIT READY)", lastUA, d.retries())
}

// clearUA issues TEST UNIT READY until it reports no unit attention (each
// report clears one), at most UARetries+1 times. NOT READY and other
// sense are left to the retried command to report.
func (d *Device) clearUA(ctx context.Context) error {
	for i := 0; i <= d.retries(); i++ {
		r := NewRequest("TEST UNIT READY", TestUnitReadyCDB(), DirNone, nil, d.timeout())
		_, err := Exec(ctx, d.T, r)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrUnitAttention):
			continue
		case errors.Is(err, ErrPath):
			return err
		default:
			return nil
		}
	}
	return nil
}

// TestUnitReady issues TEST UNIT READY, clearing pending unit attentions.
func (d *Device) TestUnitReady(ctx context.Context) error {
	_, _, err := d.exec(ctx, func() *Request {
		return NewRequest("TEST UNIT READY", TestUnitReadyCDB(), DirNone, nil, d.timeout())
	})
	return err
}

func (d *Device) in(ctx context.Context, a InAction, alloc int) ([]byte, error) {
	r, res, err := d.exec(ctx, func() *Request {
		return NewRequest("PERSISTENT RESERVE IN ("+a.String()+")", PRInCDB(a, uint16(alloc)), DirFromDevice, make([]byte, alloc), d.timeout())
	})
	if err != nil {
		return nil, err
	}
	n := len(r.Data) - res.Resid
	if n < 0 || n > len(r.Data) {
		n = len(r.Data)
	}
	return r.Data[:n], nil
}

// ReadKeys issues PERSISTENT RESERVE IN, READ KEYS.
func (d *Device) ReadKeys(ctx context.Context) (Keys, error) {
	alloc := keysAlloc
	for {
		b, err := d.in(ctx, ReadKeys, alloc)
		if err != nil {
			return Keys{}, err
		}
		k, err := ParseReadKeys(b)
		if err != nil || !k.Truncated || alloc == maxAlloc {
			return k, err
		}
		alloc = min(k.Needed, maxAlloc)
	}
}

// ReadReservation issues PERSISTENT RESERVE IN, READ RESERVATION.
func (d *Device) ReadReservation(ctx context.Context) (Reservation, error) {
	b, err := d.in(ctx, ReadReservation, 24)
	if err != nil {
		return Reservation{}, err
	}
	return ParseReadReservation(b)
}

// ReportCapabilities issues PERSISTENT RESERVE IN, REPORT CAPABILITIES.
func (d *Device) ReportCapabilities(ctx context.Context) (Capabilities, error) {
	b, err := d.in(ctx, ReportCapabilities, 8)
	if err != nil {
		return Capabilities{}, err
	}
	return ParseCapabilities(b)
}

// Out issues PERSISTENT RESERVE OUT with service action a, type t and
// parameters p.
func (d *Device) Out(ctx context.Context, a OutAction, t Type, p OutParams) error {
	_, _, err := d.exec(ctx, func() *Request {
		return NewRequest("PERSISTENT RESERVE OUT ("+a.String()+")", PROutCDB(a, t), DirToDevice, PROutData(p), d.timeout())
	})
	return err
}
