//go:build linux

package diskhb

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// FencedErrno is the errno with which the kernel refuses an I/O because of
// a SCSI persistent reservation (RESERVATION CONFLICT): EBADE on Linux.
const FencedErrno = unix.EBADE

// DefaultFileSectorSize is the sector size OpenBlock assumes for a regular
// file: 512 bytes, the smallest logical block size of real disks.
const DefaultFileSectorSize = 512

// OpenBlock opens the quorum disk at path for direct I/O
// (O_DIRECT|O_RDWR|O_CLOEXEC).
//
// For a block device the logical sector size comes from the BLKSSZGET ioctl
// and the size from BLKGETSIZE64 (the values `blockdev --getss --getsize64
// DEV` prints). A regular file is accepted for tests and demonstrations and
// is opened as by OpenFile(path, DefaultFileSectorSize).
//
// The returned BlockDevice checks every I/O itself (offset, length and
// buffer address aligned to the sector size, range within the device) and
// returns an error wrapping ErrAlignment rather than letting a misaligned
// I/O reach the kernel. Kernel errors are classified by IOError: EBADE wraps
// ErrFenced, anything else ErrIO, with the errno kept in the chain; a short
// transfer wraps ErrIO. Its methods may block for as long as the kernel
// does: wrap it in a Device for deadlines.
func OpenBlock(path string) (BlockDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("open quorum disk %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		return openBlockDev(path)
	case unix.S_IFREG:
		return OpenFile(path, DefaultFileSectorSize)
	default:
		return nil, fmt.Errorf("open quorum disk %s: neither a block device nor a regular file: %w", path, ErrGeometry)
	}
}

// OpenFile opens a regular file as a quorum disk with the given logical
// sector size (512 or 4096), for tests and demonstrations. The usable size
// is the file size rounded down to whole sectors; create the file first,
// e.g. `truncate -s 1M FILE`.
//
// The file is opened with O_DIRECT. A filesystem that refuses O_DIRECT
// (tmpfs before Linux 6.6, some FUSE filesystems) gets O_DSYNC instead:
// every write still reaches the file before it returns, but reads may come
// from the page cache, which is harmless for a file only this host writes
// and wrong for a file shared between hosts (use a block device there). The
// alignment checks are the same either way, so code tested on such a file
// behaves the same on a LUN.
//
// If path is a block device, OpenFile opens it as OpenBlock does and fails
// with ErrGeometry when its logical sector size is not sectorSize.
func OpenFile(path string, sectorSize int) (BlockDevice, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return nil, fmt.Errorf("open quorum disk %s: sector size %d: must be 512 or 4096: %w", path, sectorSize, ErrGeometry)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("open quorum disk %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		bd, err := openBlockDev(path)
		if err != nil {
			return nil, err
		}
		if bd.SectorSize() != sectorSize {
			bd.Close()
			return nil, fmt.Errorf("open quorum disk %s: block device has %d-byte logical sectors, not %d: %w", path, bd.SectorSize(), sectorSize, ErrGeometry)
		}
		return bd, nil
	case unix.S_IFREG:
	default:
		return nil, fmt.Errorf("open quorum disk %s: neither a block device nor a regular file: %w", path, ErrGeometry)
	}
	direct := true
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		direct = false
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_DSYNC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open quorum disk %s: %w", path, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open quorum disk %s: %w", path, err)
	}
	size := st.Size - st.Size%int64(sectorSize)
	if size == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("open quorum disk %s: file is %d bytes, smaller than one %d-byte sector; size it first (truncate -s 1M %s): %w", path, st.Size, sectorSize, path, ErrGeometry)
	}
	return &directDevice{path: path, fd: fd, sectorSize: sectorSize, size: size, direct: direct}, nil
}

func openBlockDev(path string) (*directDevice, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_DIRECT, 0)
	if err != nil {
		return nil, fmt.Errorf("open quorum disk %s: %w", path, err)
	}
	ss, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open quorum disk %s: BLKSSZGET: %w", path, err)
	}
	size, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open quorum disk %s: BLKGETSIZE64: %w", path, err)
	}
	if ss != 512 && ss != 4096 {
		unix.Close(fd)
		return nil, fmt.Errorf("open quorum disk %s: logical sector size %d is not supported (512 or 4096): %w", path, ss, ErrGeometry)
	}
	return &directDevice{path: path, fd: fd, sectorSize: ss, size: int64(size), direct: true, block: true}, nil
}

// directDevice is the BlockDevice of OpenBlock and OpenFile: a file
// descriptor used with pread/pwrite. It may be used from several goroutines;
// Close defers closing the descriptor until the I/Os in progress return, so
// Close never waits for a hung I/O and a descriptor number is never reused
// while an I/O still refers to it.
type directDevice struct {
	path       string
	fd         int
	sectorSize int
	size       int64
	direct     bool // false: the filesystem refused O_DIRECT, O_DSYNC is used
	block      bool // a block device, not a regular file

	mu       sync.Mutex
	inflight int
	closed   bool
	fdClosed bool
	closeErr error
}

var _ BlockDevice = (*directDevice)(nil)

func (d *directDevice) SectorSize() int { return d.sectorSize }
func (d *directDevice) Size() int64     { return d.size }

// String describes the device for logs, e.g.
// "/dev/sdb (512-byte sectors, 1073741824 bytes, O_DIRECT)".
func (d *directDevice) String() string {
	mode := "O_DIRECT"
	if !d.direct {
		mode = "O_DSYNC (filesystem refused O_DIRECT)"
	}
	return fmt.Sprintf("%s (%d-byte sectors, %d bytes, %s)", d.path, d.sectorSize, d.size, mode)
}

func (d *directDevice) ReadAt(p []byte, off int64) (int, error) {
	return d.io("read", p, off)
}

func (d *directDevice) WriteAt(p []byte, off int64) (int, error) {
	return d.io("write", p, off)
}

func (d *directDevice) io(op string, p []byte, off int64) (int, error) {
	if err := CheckIO(op, p, off, d.sectorSize, d.size); err != nil {
		return 0, fmt.Errorf("%s: %w", d.path, err)
	}
	if err := d.acquire(); err != nil {
		return 0, fmt.Errorf("%s: %s at offset %d: %w", d.path, op, off, err)
	}
	defer d.release()
	var (
		n   int
		err error
	)
	for {
		if op == "read" {
			n, err = unix.Pread(d.fd, p, off)
		} else {
			n, err = unix.Pwrite(d.fd, p, off)
		}
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", d.path, IOError(op, off, err))
	}
	if n != len(p) {
		return n, fmt.Errorf("%s: %w", d.path, shortIO(op, off, n, len(p)))
	}
	return n, nil
}

func (d *directDevice) acquire() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.inflight++
	return nil
}

func (d *directDevice) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight--
	if d.closed && d.inflight == 0 && !d.fdClosed {
		d.fdClosed = true
		d.closeErr = unix.Close(d.fd)
	}
}

// Close closes the device. With no I/O in progress it closes the descriptor
// and returns the result; otherwise it returns nil at once and the
// descriptor is closed when the last I/O in progress returns. I/O started
// after Close fails with ErrClosed. A second Close returns ErrClosed.
func (d *directDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%s: close: %w", d.path, ErrClosed)
	}
	d.closed = true
	if d.inflight > 0 {
		return nil
	}
	d.fdClosed = true
	if err := unix.Close(d.fd); err != nil {
		return fmt.Errorf("%s: close: %w", d.path, err)
	}
	return nil
}

// aioFD lets a Device submit this device's I/O itself with Linux AIO: it
// returns the descriptor and the path for errors, and false for a regular
// file. On a block device opened with O_DIRECT, io_submit returns once the
// request is queued; a filesystem may instead do the I/O inside io_submit
// (an allocating write, a file opened with O_DSYNC), which would block the
// caller on a hung disk.
func (d *directDevice) aioFD() (int, string, bool) { return d.fd, d.path, d.block && d.direct }
