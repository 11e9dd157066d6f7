//go:build !linux

package diskhb

import (
	"errors"
	"fmt"
	"syscall"
)

// FencedErrno is Linux's EBADE, the errno of a SCSI reservation conflict.
// Other systems have no direct-I/O quorum disk support; the value only lets
// fakes produce the same errors as on Linux.
const FencedErrno = syscall.Errno(0x34)

// DefaultFileSectorSize is the sector size OpenBlock assumes for a regular
// file: 512 bytes, the smallest logical block size of real disks.
const DefaultFileSectorSize = 512

// OpenBlock is only supported on Linux, where O_DIRECT, BLKSSZGET and SCSI
// persistent reservations are available. Elsewhere it returns an error
// wrapping errors.ErrUnsupported.
func OpenBlock(path string) (BlockDevice, error) {
	return nil, fmt.Errorf("open quorum disk %s: direct I/O quorum disks need Linux: %w", path, errors.ErrUnsupported)
}

// OpenFile is only supported on Linux; see OpenBlock.
func OpenFile(path string, sectorSize int) (BlockDevice, error) {
	return nil, fmt.Errorf("open quorum disk %s: direct I/O quorum disks need Linux: %w", path, errors.ErrUnsupported)
}
