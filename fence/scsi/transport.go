package scsi

import (
	"context"
	"fmt"
	"time"
)

// Direction is the direction of a command's data transfer.
type Direction int

// Data directions.
const (
	DirNone       Direction = iota // no data (TEST UNIT READY)
	DirToDevice                    // data-out (PERSISTENT RESERVE OUT)
	DirFromDevice                  // data-in (PERSISTENT RESERVE IN)
)

// SCSI status bytes (SAM-5 table 33).
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusConditionMet        = 0x04
	StatusBusy                = 0x08
	StatusReservationConflict = 0x18
	StatusTaskSetFull         = 0x28
	StatusACAActive           = 0x30
	StatusTaskAborted         = 0x40
)

func statusName(s byte) string {
	switch s {
	case StatusGood:
		return "GOOD"
	case StatusCheckCondition:
		return "CHECK CONDITION"
	case StatusConditionMet:
		return "CONDITION MET"
	case StatusBusy:
		return "BUSY"
	case StatusReservationConflict:
		return "RESERVATION CONFLICT"
	case StatusTaskSetFull:
		return "TASK SET FULL"
	case StatusACAActive:
		return "ACA ACTIVE"
	case StatusTaskAborted:
		return "TASK ABORTED"
	}
	return "unknown"
}

// Host (transport) status values, the kernel's DID_* codes.
const (
	HostOK                 = 0x00
	HostNoConnect          = 0x01
	HostBusBusy            = 0x02
	HostTimeOut            = 0x03
	HostBadTarget          = 0x04
	HostAbort              = 0x05
	HostError              = 0x07
	HostReset              = 0x08
	HostTransportDisrupted = 0x0e
	HostTransportFailfast  = 0x0f
	HostTransportMarginal  = 0x14
)

func hostName(h uint16) string {
	switch h {
	case HostOK:
		return "DID_OK"
	case HostNoConnect:
		return "DID_NO_CONNECT"
	case HostBusBusy:
		return "DID_BUS_BUSY"
	case HostTimeOut:
		return "DID_TIME_OUT"
	case HostBadTarget:
		return "DID_BAD_TARGET"
	case HostAbort:
		return "DID_ABORT"
	case HostError:
		return "DID_ERROR"
	case HostReset:
		return "DID_RESET"
	case HostTransportDisrupted:
		return "DID_TRANSPORT_DISRUPTED"
	case HostTransportFailfast:
		return "DID_TRANSPORT_FAILFAST"
	case HostTransportMarginal:
		return "DID_TRANSPORT_MARGINAL"
	}
	return "unknown"
}

// Driver status values (the kernel's DRIVER_* codes, low nibble).
const (
	DriverOK      = 0x00
	DriverTimeout = 0x06
	DriverSense   = 0x08 // sense data is valid; not an error by itself
)

// Request is one SCSI command. It owns its buffers: the CDB, the data-out
// bytes or the data-in buffer, and the sense buffer. A Request is used for
// one command only: after a deadline miss the kernel may still write into
// its buffers.
type Request struct {
	Op      string // human name for errors, e.g. "PERSISTENT RESERVE IN (READ KEYS)"
	CDB     []byte
	Dir     Direction
	Data    []byte // data-out bytes, or the data-in buffer (its length is the allocation length)
	Sense   []byte // sense buffer; NewRequest makes it SenseLen bytes
	Timeout time.Duration
}

// SenseLen is the sense buffer every Request gets: the largest sense data
// SPC-4 allows (252) plus its 8-byte header.
const SenseLen = 252

// NewRequest returns a request with its own sense buffer.
func NewRequest(op string, cdb []byte, dir Direction, data []byte, timeout time.Duration) *Request {
	return &Request{Op: op, CDB: cdb, Dir: dir, Data: data, Sense: make([]byte, SenseLen), Timeout: timeout}
}

// Result is what the transport reports of a command that was issued.
type Result struct {
	Status   byte   // SCSI status
	Host     uint16 // host status (DID_*)
	Driver   uint16 // driver status (DRIVER_*)
	SenseLen int    // bytes of sense data written into Request.Sense
	Resid    int    // data-in bytes not transferred
	Duration time.Duration
}

// Transport issues one command and reports its result. It returns an error
// only when the command could not be issued or its result is unknown (the
// ioctl failed, the deadline passed); such an error wraps ErrPath. Check
// interprets a Result.
type Transport interface {
	Do(ctx context.Context, r *Request) (Result, error)
}

// Check interprets a command's result, in order: SCSI status
// (RESERVATION CONFLICT, CHECK CONDITION with its sense data, other
// non-GOOD statuses), then host status, then driver status. Sense data
// that accompanies GOOD status (a recovered error) is not an error.
func Check(r *Request, res Result) error {
	switch res.Status {
	case StatusGood, StatusConditionMet:
	case StatusCheckCondition:
		if res.SenseLen == 0 {
			return fmt.Errorf("%s: %w without sense data (host status 0x%02x, driver status 0x%02x)", r.Op, ErrCheckCondition, res.Host, res.Driver)
		}
		s, err := ParseSense(r.Sense[:min(res.SenseLen, len(r.Sense))])
		if err != nil {
			return fmt.Errorf("%s: %w: %w", r.Op, ErrCheckCondition, err)
		}
		return &SenseError{Op: r.Op, Sense: s}
	default:
		return &StatusError{Op: r.Op, Status: res.Status, Host: res.Host, Driver: res.Driver}
	}
	if res.Host == HostTimeOut || res.Driver&0x0f == DriverTimeout {
		return &timeoutError{op: r.Op, cause: fmt.Sprintf("host status 0x%02x (%s), driver status 0x%02x", res.Host, hostName(res.Host), res.Driver)}
	}
	if res.Host != HostOK {
		return &StatusError{Op: r.Op, Status: res.Status, Host: res.Host, Driver: res.Driver}
	}
	if d := res.Driver & 0x0f; d != DriverOK && d != DriverSense {
		return &StatusError{Op: r.Op, Status: res.Status, Host: res.Host, Driver: res.Driver}
	}
	return nil
}

// Exec issues r on t and checks its result.
func Exec(ctx context.Context, t Transport, r *Request) (Result, error) {
	res, err := t.Do(ctx, r)
	if err != nil {
		return res, err
	}
	return res, Check(r, res)
}

// deadline is the command's timeout: r.Timeout, shortened to what is left
// of ctx. It fails when nothing is left.
func deadline(ctx context.Context, r *Request) (time.Duration, error) {
	d := r.Timeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if d <= 0 || left < d {
			d = left
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, &timeoutError{op: r.Op, cause: err.Error()}
	}
	if d <= 0 {
		return 0, &timeoutError{op: r.Op, cause: "no time left before the deadline"}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d, nil
}
