package diskhb

import (
	"errors"
	"fmt"
	"syscall"
)

// IOError classifies an error returned by a read or write of a block device
// into this package's sentinels, keeping the original error (usually a
// syscall.Errno) in the chain so errors.Is(err, syscall.EIO) still works:
//
//   - FencedErrno (EBADE on Linux: the kernel's code for a SCSI
//     RESERVATION CONFLICT status) wraps ErrFenced;
//   - an error that already wraps one of ErrFenced, ErrIO, ErrAlignment,
//     ErrClosed, ErrTimeout or ErrBusy is returned unchanged;
//   - anything else wraps ErrIO.
//
// EACCES is deliberately not taken as fencing: Linux reports reservation
// conflicts as EBADE since 4.13 (BLK_STS_RESV_CONFLICT) and EACCES on a
// block device means a permission problem. Kernels older than 4.13 report
// a reservation conflict as EIO, so there a fenced write is an ErrIO and the
// node learns it is fenced from its next slot-write failure and the quorum
// rules, not from the error code.
//
// IOError(op, off, nil) is nil. Fakes use IOError to produce exactly the
// errors the real device produces.
func IOError(op string, off int64, err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrFenced, ErrIO, ErrAlignment, ErrClosed, ErrTimeout, ErrBusy} {
		if errors.Is(err, s) {
			return err
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno == FencedErrno {
		return fmt.Errorf("%s at offset %d: %w: %w", op, off, ErrFenced, err)
	}
	return fmt.Errorf("%s at offset %d: %w: %w", op, off, ErrIO, err)
}

// shortIO is the error for a read or write that transferred fewer bytes
// than asked without a kernel error (for example a read past the end of a
// file that shrank).
func shortIO(op string, off int64, n, want int) error {
	return fmt.Errorf("%s at offset %d: short %s, %d of %d bytes: %w", op, off, op, n, want, ErrIO)
}
