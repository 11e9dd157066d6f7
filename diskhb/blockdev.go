package diskhb

// BlockDevice is the operating-system edge of the quorum disk: positioned
// I/O on a LUN, a loop device or a regular file. Implementations:
// the O_DIRECT device returned by OpenBlock, and the fault-injecting
// fake in package diskhb/fakedev.
//
// Offsets and lengths passed to ReadAt and WriteAt are multiples of
// SectorSize, and buffers are aligned for direct I/O. The methods may block
// for ever on a hung device; the Device wrapper turns that into a deadline.
type BlockDevice interface {
	// SectorSize is the logical block size in bytes (512 or 4096).
	SectorSize() int
	// Size is the usable size in bytes.
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Close() error
}
