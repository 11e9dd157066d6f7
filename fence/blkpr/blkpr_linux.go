// Package blkpr issues persistent reservation commands through the Linux
// block layer's PR ioctls (include/uapi/linux/pr.h): IOC_PR_REGISTER,
// IOC_PR_RESERVE, IOC_PR_RELEASE, IOC_PR_PREEMPT, IOC_PR_PREEMPT_ABORT and
// IOC_PR_CLEAR since Linux 4.4, for every block driver with pr_ops (sd,
// NVMe, dm). IOC_PR_READ_KEYS and IOC_PR_READ_RESERVATION exist only in
// very new kernels: a Path detects them on first use and then reports
// ErrNotSupported for reads, so fencing through it cannot verify and
// fails closed.
//
// It is fencing's second backend, for devices SG_IO does not reach (NVMe
// namespaces). Differences from SG_IO that callers see:
//
//   - There is no TEST UNIT READY; the kernel retries unit attentions
//     itself, so TestUnitReady does nothing.
//   - APTPL is the driver's choice: Linux's sd sets it on every
//     registration; the APTPL flag of a request is not sent.
//   - ALL_TG_PT cannot be expressed (ErrNotSupported).
//   - REPORT CAPABILITIES has no ioctl (ErrNotSupported).
//   - Errors carry no sense data: the ioctl returns a SCSI-style result
//     (status byte, host byte) or an NVMe status, mapped to the same
//     sentinels as fence/scsi.
package blkpr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/fence/scsi"
)

// ioctl numbers: _IOW('p', 200..205, ...), _IOWR('p', 206, struct
// pr_read_keys), _IOR('p', 207, struct pr_read_reservation).
const (
	iocPRRegister        = 0x401870c8 // struct pr_registration, 24 bytes
	iocPRReserve         = 0x401070c9 // struct pr_reservation, 16 bytes
	iocPRRelease         = 0x401070ca // struct pr_reservation
	iocPRPreempt         = 0x401870cb // struct pr_preempt, 24 bytes
	iocPRPreemptAbort    = 0x401870cc // struct pr_preempt
	iocPRClear           = 0x401070cd // struct pr_clear, 16 bytes
	iocPRReadKeys        = 0xc01070ce // struct pr_read_keys, 16 bytes
	iocPRReadReservation = 0x801070cf // struct pr_read_reservation, 16 bytes
	prFlIgnoreKey        = 1
)

type prRegistration struct {
	OldKey, NewKey uint64
	Flags, pad     uint32
}

type prReservation struct {
	Key         uint64
	Type, Flags uint32
}

type prPreempt struct {
	OldKey, NewKey uint64
	Type, Flags    uint32
}

type prClear struct {
	Key        uint64
	Flags, pad uint32
}

type prReadKeys struct {
	Generation, NumKeys uint32
	KeysPtr             uint64
}

type prReadReservation struct {
	Key              uint64
	Generation, Type uint32
}

// The block layer numbers reservation types its own way (enum pr_type).
var toBlock = map[scsi.Type]uint32{
	scsi.WriteExclusive: 1, scsi.ExclusiveAccess: 2,
	scsi.WriteExclusiveRegistrantsOnly: 3, scsi.ExclusiveAccessRegistrantsOnly: 4,
	scsi.WriteExclusiveAllRegistrants: 5, scsi.ExclusiveAccessAllRegistrants: 6,
}

func fromBlock(t uint32) scsi.Type {
	for s, b := range toBlock {
		if b == t {
			return s
		}
	}
	return scsi.Type(0xf)
}

// Path is one block device.
type Path struct {
	f *os.File

	mu    sync.Mutex
	reads int // 0 unknown, 1 supported, -1 not supported
}

// Open opens dev for PR ioctls (read-only suffices; O_NONBLOCK so a device
// without a ready medium opens).
func Open(dev string) (*Path, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: %w", dev, scsi.ErrPath, err)
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		f.Close()
		return nil, fmt.Errorf("%s is not a block device: %w", dev, scsi.ErrNotSupported)
	}
	return &Path{f: f}, nil
}

// Name is the device path.
func (p *Path) Name() string { return p.f.Name() }

// Close closes the device.
func (p *Path) Close() error { return p.f.Close() }

// ioctl issues req in a goroutine so ctx bounds the wait (the ioctl itself
// cannot be abandoned; the goroutine keeps arg and keep, memory the kernel
// may still write, alive until it returns).
func (p *Path) ioctl(ctx context.Context, op string, req uintptr, arg unsafe.Pointer, keep ...any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s on %s: %w: %w", op, p.Name(), scsi.ErrTimeout, err)
	}
	type result struct {
		r1    uintptr
		errno unix.Errno
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		rc, err := p.f.SyscallConn()
		if err == nil {
			err = rc.Control(func(fd uintptr) {
				r.r1, _, r.errno = unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
			})
		}
		runtime.KeepAlive(arg)
		runtime.KeepAlive(keep)
		r.err = err
		ch <- r
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return fmt.Errorf("%s on %s: %w (%w; the command is still in the kernel)", op, p.Name(), scsi.ErrTimeout, ctx.Err())
	}
	if r.err != nil {
		return fmt.Errorf("%s on %s: %w: %w", op, p.Name(), scsi.ErrPath, r.err)
	}
	return mapResult(op+" on "+p.Name(), r.r1, r.errno)
}

// mapResult turns the ioctl's outcome into the scsi sentinels. A positive
// return is the driver's status: on SCSI the low byte is the SCSI status
// and bits 16-23 the host byte (Linux 6.3+ maps to PR_STS_* values with
// the same layout); NVMe before 6.3 returns its own status code, 0x83 for
// a reservation conflict.
func mapResult(op string, r1 uintptr, errno unix.Errno) error {
	switch {
	case errno == unix.ENOTTY || errno == unix.EOPNOTSUPP || errno == unix.EINVAL:
		return fmt.Errorf("%s: %w: %w", op, scsi.ErrNotSupported, errno)
	case errno == unix.EBADE:
		return fmt.Errorf("%s: %w: %w", op, scsi.ErrReservationConflict, errno)
	case errno == unix.ETIMEDOUT:
		return fmt.Errorf("%s: %w: %w", op, scsi.ErrTimeout, errno)
	case errno != 0:
		return fmt.Errorf("%s: %w: %w", op, scsi.ErrPath, errno)
	case r1 == 0:
		return nil
	}
	status, host := byte(r1), uint16(r1>>16&0xff)
	switch {
	case host != 0:
		return &scsi.StatusError{Op: op, Status: status, Host: host}
	case status == scsi.StatusReservationConflict || r1 == 0x83:
		return &scsi.StatusError{Op: op, Status: scsi.StatusReservationConflict}
	case status == scsi.StatusCheckCondition:
		return fmt.Errorf("%s: %w (result 0x%x; the block layer passes no sense data)", op, scsi.ErrCheckCondition, r1)
	}
	return fmt.Errorf("%s: %w: driver result 0x%x", op, scsi.ErrPath, r1)
}

// TestUnitReady does nothing: the kernel clears unit attentions of PR
// ioctls itself.
func (p *Path) TestUnitReady(context.Context) error { return nil }

// Out issues the PR OUT service action a through the matching ioctl.
func (p *Path) Out(ctx context.Context, a scsi.OutAction, t scsi.Type, o scsi.OutParams) error {
	op := "block PR " + a.String()
	if o.AllTgPt {
		return fmt.Errorf("%s on %s: ALL_TG_PT: %w by the block layer's PR ioctls", op, p.Name(), scsi.ErrNotSupported)
	}
	bt, ok := toBlock[t]
	needsType := a == scsi.Reserve || a == scsi.Release || a == scsi.Preempt || a == scsi.PreemptAndAbort
	if needsType && !ok {
		return fmt.Errorf("%s on %s: reservation type %v: %w", op, p.Name(), t, scsi.ErrNotSupported)
	}
	switch a {
	case scsi.Register, scsi.RegisterAndIgnoreExisting:
		r := &prRegistration{OldKey: o.Key, NewKey: o.ServiceKey}
		if a == scsi.RegisterAndIgnoreExisting {
			r.Flags = prFlIgnoreKey
		}
		return p.ioctl(ctx, op, iocPRRegister, unsafe.Pointer(r))
	case scsi.Reserve:
		return p.ioctl(ctx, op, iocPRReserve, unsafe.Pointer(&prReservation{Key: o.Key, Type: bt}))
	case scsi.Release:
		return p.ioctl(ctx, op, iocPRRelease, unsafe.Pointer(&prReservation{Key: o.Key, Type: bt}))
	case scsi.Clear:
		return p.ioctl(ctx, op, iocPRClear, unsafe.Pointer(&prClear{Key: o.Key}))
	case scsi.Preempt:
		return p.ioctl(ctx, op, iocPRPreempt, unsafe.Pointer(&prPreempt{OldKey: o.Key, NewKey: o.ServiceKey, Type: bt}))
	case scsi.PreemptAndAbort:
		return p.ioctl(ctx, op, iocPRPreemptAbort, unsafe.Pointer(&prPreempt{OldKey: o.Key, NewKey: o.ServiceKey, Type: bt}))
	}
	return fmt.Errorf("%s on %s: %w", op, p.Name(), scsi.ErrNotSupported)
}

func (p *Path) readsKnown() (supported, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads > 0, p.reads != 0
}

func (p *Path) setReads(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err == nil:
		p.reads = 1
	case errors.Is(err, scsi.ErrNotSupported):
		p.reads = -1
	}
}

// ReadsSupported probes (once) whether the kernel has the PR read
// ioctls for this device.
func (p *Path) ReadsSupported(ctx context.Context) bool {
	if ok, known := p.readsKnown(); known {
		return ok
	}
	_, err := p.ReadReservation(ctx)
	ok, _ := p.readsKnown()
	return ok && err == nil
}

// ReadKeys issues IOC_PR_READ_KEYS.
func (p *Path) ReadKeys(ctx context.Context) (scsi.Keys, error) {
	if ok, known := p.readsKnown(); known && !ok {
		return scsi.Keys{}, fmt.Errorf("block PR READ KEYS on %s: %w: this kernel has no IOC_PR_READ_KEYS", p.Name(), scsi.ErrNotSupported)
	}
	n := 64
	for {
		keys := make([]uint64, n)
		arg := &prReadKeys{NumKeys: uint32(n), KeysPtr: uint64(uintptr(unsafe.Pointer(&keys[0])))}
		err := p.ioctl(ctx, "block PR READ KEYS", iocPRReadKeys, unsafe.Pointer(arg), keys)
		p.setReads(err)
		if err != nil {
			return scsi.Keys{}, err
		}
		if int(arg.NumKeys) <= n {
			return scsi.Keys{Generation: arg.Generation, Keys: keys[:arg.NumKeys]}, nil
		}
		if n >= 1<<16 {
			return scsi.Keys{Generation: arg.Generation, Keys: keys, Truncated: true}, nil
		}
		n = int(arg.NumKeys)
	}
}

// ReadReservation issues IOC_PR_READ_RESERVATION.
func (p *Path) ReadReservation(ctx context.Context) (scsi.Reservation, error) {
	if ok, known := p.readsKnown(); known && !ok {
		return scsi.Reservation{}, fmt.Errorf("block PR READ RESERVATION on %s: %w: this kernel has no IOC_PR_READ_RESERVATION", p.Name(), scsi.ErrNotSupported)
	}
	var arg prReadReservation
	err := p.ioctl(ctx, "block PR READ RESERVATION", iocPRReadReservation, unsafe.Pointer(&arg))
	p.setReads(err)
	if err != nil {
		return scsi.Reservation{}, err
	}
	r := scsi.Reservation{Generation: arg.Generation}
	if arg.Type != 0 {
		r.Held, r.Key, r.Type = true, arg.Key, fromBlock(arg.Type)
	}
	return r, nil
}

// Capabilities: the block layer has no REPORT CAPABILITIES.
func (p *Path) Capabilities(context.Context) (scsi.Capabilities, error) {
	return scsi.Capabilities{}, fmt.Errorf("block PR on %s: REPORT CAPABILITIES: %w by the block layer", p.Name(), scsi.ErrNotSupported)
}
