package diskhb

import "errors"

// Sentinel errors. Each cause of failure has its own error so callers can
// tell a hung device from a dead path from a foreign disk; all are returned
// wrapped with context, so test them with errors.Is.
var (
	// ErrTimeout means an I/O did not complete within its deadline. The
	// I/O may still be in flight in the kernel.
	ErrTimeout = errors.New("disk I/O deadline exceeded")
	// ErrBusy means an earlier I/O on the device is still in flight (it
	// timed out and has not returned); no new I/O is started until it does.
	ErrBusy = errors.New("disk busy: an earlier I/O is still in flight")
	// ErrIO is a failed read or write reported by the device or kernel.
	ErrIO = errors.New("disk I/O error")
	// ErrFenced is a write refused because this node's SCSI reservation
	// key was removed (EBADE from the kernel): this node is fenced.
	ErrFenced = errors.New("write refused by a SCSI reservation: this node is fenced")
	// ErrClosed is an I/O attempted on a closed device.
	ErrClosed = errors.New("device closed")
	// ErrAlignment is a buffer or offset not aligned to the logical sector size.
	ErrAlignment = errors.New("I/O not aligned to the logical sector size")

	// ErrNotFormatted means the header sector carries no MT-Cluster magic.
	ErrNotFormatted = errors.New("not an MT-Cluster quorum disk (no header magic)")
	// ErrVersion means the header or slot was written by an unknown format version.
	ErrVersion = errors.New("unsupported quorum disk format version")
	// ErrChecksum means a record's CRC32C does not match its contents: a
	// torn or corrupted write. Its contents are unknown, never free.
	ErrChecksum = errors.New("checksum mismatch (torn or corrupted sector)")
	// ErrForeignCluster means the record belongs to another cluster (UUID differs).
	ErrForeignCluster = errors.New("quorum disk belongs to another cluster")
	// ErrGeometry means the header disagrees with the device or the
	// configuration (sector size, slot count, device too small).
	ErrGeometry = errors.New("quorum disk geometry mismatch")
	// ErrTimingMismatch means the timing bases stored in the header differ
	// from the local configuration; a node must not join with different timeouts.
	ErrTimingMismatch = errors.New("quorum disk timings differ from the configuration")
)

// Errors found by reading back our own slot after writing it.
var (
	// ErrWriteVerify means our slot did not read back as written: the
	// write was lost, torn or corrupted on its way to the disk although the
	// device reported success. It counts as a failed write.
	ErrWriteVerify = errors.New("own slot did not read back as written")
	// ErrSlotConflict means our slot holds another incarnation's record:
	// a second daemon is running with this node id. It counts as a failed
	// write; an operator must stop one of them.
	ErrSlotConflict = errors.New("own slot written by another daemon with the same node id")
)
