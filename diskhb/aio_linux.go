//go:build linux && (amd64 || arm64)

package diskhb

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux AIO (io_setup(2), io_submit(2), io_getevents(2), io_destroy(2)),
// which golang.org/x/sys/unix does not wrap. The structures follow
// include/uapi/linux/aio_abi.h; aio_linux_test.go checks their layout.

// Opcodes of struct iocb's aio_lio_opcode.
const (
	iocbCmdPread  = 0 // IOCB_CMD_PREAD
	iocbCmdPwrite = 1 // IOCB_CMD_PWRITE
	iocbCmdPoll   = 5 // IOCB_CMD_POLL, Linux 4.18
)

// aio_data tags telling the ring's two kinds of iocb apart in events.
const (
	aioTagIO   = 1 // the Device's read or write
	aioTagWake = 2 // the poll on the wake eventfd
)

// iocb is struct iocb: 64 bytes on every architecture.
type iocb struct {
	data      uint64  // aio_data, returned in the event
	_         [8]byte // aio_key and aio_rw_flags (their order depends on the byte order); zero
	opcode    uint16  // aio_lio_opcode
	reqPrio   int16   // aio_reqprio
	fildes    uint32  // aio_fildes
	buf       uint64  // aio_buf; for IOCB_CMD_POLL the poll events
	nbytes    uint64  // aio_nbytes
	offset    int64   // aio_offset
	reserved2 uint64  // aio_reserved2
	flags     uint32  // aio_flags
	resfd     uint32  // aio_resfd
}

// ioEvent is struct io_event: 32 bytes.
type ioEvent struct {
	data uint64 // aio_data of the iocb
	obj  uint64 // address of the iocb
	res  int64  // bytes transferred, or -errno; for a poll, the events
	res2 int64
}

// aioRing is one AIO context for a Device's O_DIRECT descriptor, with an
// eventfd that is always being polled by an iocb of the same context, so
// that writing to the eventfd wakes a goroutine waiting in io_getevents
// (a cancelled context, Close).
//
// It is not safe for concurrent use, except wake: the Device lets one
// goroutine at a time submit and reap.
type aioRing struct {
	ctx       uintptr // aio_context_t
	fd        int     // the device's descriptor, opened with O_DIRECT
	name      string  // the device's path, prefixed to its errors
	wakeFD    int     // eventfd
	pollArmed bool

	cb     iocb
	pollCB iocb
	events [2]ioEvent
}

// newAIORing sets up an AIO context for fd (io_setup) and arms the poll
// of its wake eventfd. It fails, leaving nothing behind, on a kernel
// without AIO or without IOCB_CMD_POLL, or when the system's AIO limit
// (fs.aio-max-nr) is reached.
func newAIORing(fd int, name string) (*aioRing, error) {
	r := &aioRing{fd: fd, name: name, wakeFD: -1}
	// Two iocbs at most are outstanding: the I/O and the poll.
	if _, _, e := unix.RawSyscall(unix.SYS_IO_SETUP, 2, uintptr(unsafe.Pointer(&r.ctx)), 0); e != 0 {
		return nil, fmt.Errorf("io_setup: %w", e)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		r.destroy()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	r.wakeFD = wfd
	if err := r.armWake(); err != nil {
		r.destroy()
		return nil, err
	}
	return r, nil
}

// submit starts a read or write of buf at off. buf must stay referenced
// until its event has been reaped.
func (r *aioRing) submit(write bool, buf []byte, off int64) error {
	r.cb = iocb{
		data:   aioTagIO,
		opcode: iocbCmdPread,
		fildes: uint32(r.fd),
		buf:    uint64(uintptr(unsafe.Pointer(&buf[0]))),
		nbytes: uint64(len(buf)),
		offset: off,
	}
	if write {
		r.cb.opcode = iocbCmdPwrite
	}
	return r.submitCB(&r.cb)
}

func (r *aioRing) submitCB(cb *iocb) error {
	ptrs := [1]*iocb{cb}
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, r.ctx, 1, uintptr(unsafe.Pointer(&ptrs[0])))
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return e
		case n != 1:
			return unix.EAGAIN
		}
		return nil
	}
}

// getevents waits for at least min events for at most timeout (for ever
// when timeout < 0; not at all when it is 0). An EINTR is returned to the
// caller, which retries with the time it has left.
func (r *aioRing) getevents(min int, timeout time.Duration) ([]ioEvent, error) {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(timeout.Nanoseconds())
		ts = &t
	}
	n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, r.ctx, uintptr(min), uintptr(len(r.events)),
		uintptr(unsafe.Pointer(&r.events[0])), uintptr(unsafe.Pointer(ts)), 0)
	if e != 0 {
		return nil, e
	}
	return r.events[:n], nil
}

// armWake drains the wake eventfd and submits the poll on it.
func (r *aioRing) armWake() error {
	var b [8]byte
	if _, err := unix.Read(r.wakeFD, b[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("reading the wake eventfd: %w", err)
	}
	r.pollCB = iocb{data: aioTagWake, opcode: iocbCmdPoll, fildes: uint32(r.wakeFD), buf: unix.POLLIN}
	if err := r.submitCB(&r.pollCB); err != nil {
		return fmt.Errorf("io_submit of IOCB_CMD_POLL: %w", err)
	}
	r.pollArmed = true
	return nil
}

// wake makes a goroutine waiting in getevents return with the poll's
// event. Safe for concurrent use until destroy.
func (r *aioRing) wake() {
	var one [8]byte
	one[0] = 1 // little-endian uint64 1 (amd64, arm64)
	_, _ = unix.Write(r.wakeFD, one[:])
}

// result turns a read's or write's event into the error the BlockDevice
// would return: the errno classified by IOError, a short transfer as ErrIO.
func (r *aioRing) result(op opKind, off int64, want int, res int64) error {
	if res < 0 {
		return fmt.Errorf("%s: %w", r.name, IOError(op.String(), off, unix.Errno(-res)))
	}
	if res != int64(want) {
		return fmt.Errorf("%s: %w", r.name, shortIO(op.String(), off, int(res), want))
	}
	return nil
}

// destroy destroys the context (io_destroy cancels the poll, and waits for
// a read or write still in flight: call it only when there is none) and
// closes the eventfd.
func (r *aioRing) destroy() error {
	var err error
	if r.ctx != 0 {
		if _, _, e := unix.Syscall(unix.SYS_IO_DESTROY, r.ctx, 0, 0); e != 0 {
			err = fmt.Errorf("io_destroy: %w", e)
		}
		r.ctx = 0
	}
	if r.wakeFD >= 0 {
		unix.Close(r.wakeFD)
		r.wakeFD = -1
	}
	return err
}

// isEINTR reports whether err is EINTR.
func isEINTR(err error) bool { return err == unix.EINTR }
