package scsi

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every failure of a command wraps exactly one of them
// (tested with errors.Is), so a caller can tell a fenced node from a
// broken path from a device without PR support.
var (
	// ErrReservationConflict: the target refused the command because of a
	// persistent reservation (status 0x18). For a node that expected to be
	// registered it means: this node has been fenced.
	ErrReservationConflict = errors.New("reservation conflict")
	// ErrUnitAttention: the target reported a unit attention condition
	// (sense key 6) instead of running the command; the command did not
	// take effect. A *SenseError carries the ASC/ASCQ (2A/03 reservations
	// preempted, 2A/04 reservations released, 2A/05 registrations
	// preempted, 29/xx reset). Clear it with TEST UNIT READY and retry.
	ErrUnitAttention = errors.New("unit attention")
	// ErrNotSupported: the device does not implement the command or the
	// field (ILLEGAL REQUEST with invalid opcode or invalid field in the
	// CDB or parameter list), or the backend cannot issue it at all.
	ErrNotSupported = errors.New("not supported by the device")
	// ErrPath: the command did not reach the target or its answer did not
	// come back (ioctl failure, host or driver status, transport
	// failure). The target's state is unknown.
	ErrPath = errors.New("path failure")
	// ErrTimeout: the command's deadline passed (context or sg_io_hdr
	// timeout). Also a path failure: errors.Is(err, ErrPath) holds too.
	ErrTimeout = errors.New("command timed out")
	// ErrCheckCondition: CHECK CONDITION with sense data that is none of
	// the cases above (medium error, not ready, aborted command, ...).
	ErrCheckCondition = errors.New("check condition")
	// ErrBadResponse: the device's parameter data or sense data does not
	// decode.
	ErrBadResponse = errors.New("malformed response from the device")
)

// SenseError is a CHECK CONDITION with its decoded sense data. It matches
// (errors.Is) the sentinel its sense key and ASC/ASCQ select:
// ErrUnitAttention, ErrNotSupported, ErrReservationConflict never (that is
// a status, not sense) or ErrCheckCondition.
type SenseError struct {
	Op    string // the command, e.g. "PERSISTENT RESERVE OUT (PREEMPT AND ABORT)"
	Sense Sense
}

func (e *SenseError) Error() string {
	return fmt.Sprintf("%s: %v: %v", e.Op, e.kind(), e.Sense)
}

func (e *SenseError) kind() error {
	switch {
	case e.Sense.Key == KeyUnitAttention:
		return ErrUnitAttention
	case e.Sense.Key == KeyIllegalRequest && e.Sense.ASCQ == 0 && (e.Sense.ASC == 0x20 || e.Sense.ASC == 0x24 || e.Sense.ASC == 0x26):
		// 20/00 invalid command operation code, 24/00 invalid field in
		// CDB, 26/00 invalid field in parameter list.
		return ErrNotSupported
	case e.Sense.Key == KeyNotReady && e.Sense.ASC == 0x04 && e.Sense.ASCQ == 0x0a:
		// 04/0A asymmetric access state transition: another path.
		return ErrPath
	}
	return ErrCheckCondition
}

// Unwrap lets errors.Is find the sentinel.
func (e *SenseError) Unwrap() error { return e.kind() }

// StatusError is a command that ended with a status other than GOOD and
// CHECK CONDITION, or with a host or driver status: RESERVATION CONFLICT,
// BUSY, TASK SET FULL, or a transport failure.
type StatusError struct {
	Op     string
	Status byte   // SCSI status byte
	Host   uint16 // host (transport) status, DID_*
	Driver uint16 // driver status, DRIVER_*
}

func (e *StatusError) Error() string {
	if e.Status == StatusReservationConflict && e.Host == 0 {
		return fmt.Sprintf("%s: %v (status 0x18)", e.Op, ErrReservationConflict)
	}
	return fmt.Sprintf("%s: %v: status 0x%02x (%s), host status 0x%02x (%s), driver status 0x%02x",
		e.Op, e.Unwrap(), e.Status, statusName(e.Status), e.Host, hostName(e.Host), e.Driver)
}

// Unwrap lets errors.Is find the sentinel.
func (e *StatusError) Unwrap() error {
	if e.Status == StatusReservationConflict && e.Host == 0 {
		return ErrReservationConflict
	}
	return ErrPath
}

// timeoutError is a deadline miss: ErrTimeout and ErrPath at once.
type timeoutError struct {
	op    string
	cause string
}

func (e *timeoutError) Error() string   { return fmt.Sprintf("%s: %v (%s)", e.op, ErrTimeout, e.cause) }
func (e *timeoutError) Unwrap() []error { return []error{ErrTimeout, ErrPath} }
