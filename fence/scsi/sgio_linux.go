package scsi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl numbers of the SCSI generic driver (include/scsi/sg.h).
const (
	sgIO            = 0x2285
	sgGetVersionNum = 0x2282
	sgInterfaceID   = 'S'
	sgDxferNone     = -1
	sgDxferToDev    = -2
	sgDxferFromDev  = -3
)

// sgIOHdr is struct sg_io_hdr of include/scsi/sg.h, 88 bytes on 64-bit
// Linux (sgio_linux_test.go checks size and offsets).
type sgIOHdr struct {
	InterfaceID    int32
	DxferDirection int32
	CmdLen         uint8
	MxSbLen        uint8
	IovecCount     uint16
	DxferLen       uint32
	Dxferp         unsafe.Pointer
	Cmdp           unsafe.Pointer
	Sbp            unsafe.Pointer
	Timeout        uint32 // milliseconds
	Flags          uint32
	PackID         int32
	UsrPtr         unsafe.Pointer
	Status         uint8
	MaskedStatus   uint8
	MsgStatus      uint8
	SbLenWr        uint8
	HostStatus     uint16
	DriverStatus   uint16
	Resid          int32
	Duration       uint32 // milliseconds
	Info           uint32
}

// SG is the SG_IO transport over an open block or sg device.
type SG struct {
	f *os.File
}

// OpenSG opens dev as sg_persist does (read-write with O_NONBLOCK, so a
// device without a ready medium opens; read-only when write access is
// refused, which root's SG_IO does not need) and checks that it answers
// SG_IO. A device that does not (no SCSI behind it: NVMe, a dm device
// with more than one target) fails with ErrNotSupported.
func OpenSG(dev string) (*SG, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		f, err = os.OpenFile(dev, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: %w", dev, ErrPath, err)
	}
	var v int32
	var errno error
	cerr := withFd(f, func(fd uintptr) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, sgGetVersionNum, uintptr(unsafe.Pointer(&v)))
		if e != 0 {
			errno = e
		}
	})
	if err := errors.Join(cerr, errno); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s does not take SCSI commands (SG_GET_VERSION_NUM): %w: %w", dev, ErrNotSupported, err)
	}
	return &SG{f: f}, nil
}

// Name is the device path.
func (s *SG) Name() string { return s.f.Name() }

// Close closes the device. A command still stuck in the kernel keeps the
// descriptor until it returns.
func (s *SG) Close() error { return s.f.Close() }

func withFd(f *os.File, fn func(fd uintptr)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(fn)
}

// Do issues r with SG_IO. The sg_io_hdr timeout is r.Timeout shortened to
// ctx's deadline; if ctx ends first Do returns ErrTimeout at once and the
// ioctl finishes in the background (the kernel cannot abandon it), still
// owning r's buffers.
func (s *SG) Do(ctx context.Context, r *Request) (Result, error) {
	tmo, err := deadline(ctx, r)
	if err != nil {
		return Result{}, err
	}
	if len(r.CDB) == 0 || len(r.CDB) > 255 || len(r.Sense) > 255 {
		return Result{}, fmt.Errorf("%s: CDB of %d bytes or sense buffer of %d: %w", r.Op, len(r.CDB), len(r.Sense), ErrBadResponse)
	}
	h := &sgIOHdr{
		InterfaceID: sgInterfaceID,
		CmdLen:      uint8(len(r.CDB)),
		MxSbLen:     uint8(len(r.Sense)),
		Cmdp:        unsafe.Pointer(&r.CDB[0]),
		Timeout:     uint32(min(tmo.Milliseconds(), 1<<31)),
	}
	if len(r.Sense) > 0 {
		h.Sbp = unsafe.Pointer(&r.Sense[0])
	}
	switch r.Dir {
	case DirNone:
		h.DxferDirection = sgDxferNone
	case DirToDevice:
		h.DxferDirection = sgDxferToDev
	case DirFromDevice:
		h.DxferDirection = sgDxferFromDev
	}
	if r.Dir != DirNone && len(r.Data) > 0 {
		h.DxferLen = uint32(len(r.Data))
		h.Dxferp = unsafe.Pointer(&r.Data[0])
	}
	type done struct {
		res Result
		err error
	}
	ch := make(chan done, 1)
	go func() {
		var errno unix.Errno
		cerr := withFd(s.f, func(fd uintptr) {
			_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, sgIO, uintptr(unsafe.Pointer(h)))
		})
		runtime.KeepAlive(r)
		switch {
		case cerr != nil:
			ch <- done{err: fmt.Errorf("%s on %s: %w: %w", r.Op, s.Name(), ErrPath, cerr)}
		case errno == unix.EINVAL || errno == unix.ENOTTY || errno == unix.EOPNOTSUPP:
			ch <- done{err: fmt.Errorf("%s on %s: SG_IO: %w: %w", r.Op, s.Name(), ErrNotSupported, errno)}
		case errno != 0:
			ch <- done{err: fmt.Errorf("%s on %s: SG_IO: %w: %w", r.Op, s.Name(), ErrPath, errno)}
		default:
			ch <- done{res: Result{
				Status:   h.Status,
				Host:     h.HostStatus,
				Driver:   h.DriverStatus,
				SenseLen: int(h.SbLenWr),
				Resid:    int(h.Resid),
				Duration: time.Duration(h.Duration) * time.Millisecond,
			}}
		}
	}()
	select {
	case d := <-ch:
		return d.res, d.err
	case <-ctx.Done():
		return Result{}, &timeoutError{op: r.Op + " on " + s.Name(), cause: ctx.Err().Error() + "; the command is still in the kernel"}
	}
}
