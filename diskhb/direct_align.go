package diskhb

import (
	"fmt"
	"unsafe"

	"github.com/ncw/directio"
)

// MemAlign is the memory alignment of buffers returned by AlignedBuffer:
// 4096 bytes, a multiple of every logical sector size MT-Cluster supports
// (512 and 4096), so one buffer serves any quorum disk.
const MemAlign = directio.AlignSize

// AlignedBuffer returns a zeroed n-byte buffer whose first byte is aligned
// to MemAlign, as O_DIRECT requires. n must be a positive multiple of the
// device's sector size for the buffer to be usable in an I/O; AlignedBuffer
// itself only rejects n <= 0 (it returns nil), leaving the length check to
// the I/O that uses it.
func AlignedBuffer(n int) []byte {
	if n <= 0 {
		return nil
	}
	return directio.AlignedBlock(n)
}

// CheckIO reports whether an I/O of buffer p at offset off is acceptable to
// bd: offset, length and buffer address aligned to bd's sector size, and the
// range within bd's size. Every BlockDevice in this module calls it before an
// I/O reaches the device, so a misaligned I/O never reaches the kernel; the
// error wraps ErrAlignment, or ErrIO for a range past the end.
func CheckIO(op string, p []byte, off int64, sectorSize int, size int64) error {
	ss := int64(sectorSize)
	switch {
	case len(p) == 0:
		return fmt.Errorf("%s at offset %d: empty buffer: %w", op, off, ErrAlignment)
	case off < 0 || off%ss != 0:
		return fmt.Errorf("%s at offset %d: offset is not a multiple of the %d-byte sector: %w", op, off, sectorSize, ErrAlignment)
	case int64(len(p))%ss != 0:
		return fmt.Errorf("%s at offset %d: length %d is not a multiple of the %d-byte sector: %w", op, off, len(p), sectorSize, ErrAlignment)
	case uintptr(unsafe.Pointer(&p[0]))%uintptr(sectorSize) != 0:
		return fmt.Errorf("%s at offset %d: buffer address is not %d-byte aligned (allocate it with AlignedBuffer): %w", op, off, sectorSize, ErrAlignment)
	case off+int64(len(p)) > size:
		return fmt.Errorf("%s of %d bytes at offset %d: beyond the end of the %d-byte device: %w", op, len(p), off, size, ErrIO)
	}
	return nil
}
