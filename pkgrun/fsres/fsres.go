// Package fsres checks, mounts and unmounts a package's filesystems.
//
// Mount runs the filesystem's fsck policy, then mounts with mount(2); both
// are skipped when the device is already mounted there. Unmount never
// unmounts lazily (MNT_DETACH would hide a filesystem that is still being
// written, and the next node would mount it while this one writes): when
// umount(2) says EBUSY it finds the processes holding the filesystem
// through /proc (open files, working directory, root, mapped files; never
// fuser, which stats paths and can hang on a dead mount), sends them
// SIGTERM, then SIGKILL half-way to the unmount timeout, and retries. A
// filesystem still busy at the timeout is ErrStillBusy: the halt has failed
// and the node must be reset, because the filesystem cannot be released
// any other way.
//
// Every OS edge goes through the OS interface: Linux is the real one,
// Fake an in-memory model of mounts and holder processes with Render.
package fsres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"
)

// FsckPolicy says when Mount checks a filesystem first.
type FsckPolicy int

const (
	// FsckAuto runs `fsck -p`, which checks only what the filesystem marks
	// as needing it (an unclean journal replay, a mount count) and repairs
	// what is safe (the default).
	FsckAuto FsckPolicy = iota
	// FsckNever skips the check (journaling filesystems whose own log
	// replay suffices, or XFS whose fsck is a no-op).
	FsckNever
	// FsckAlways forces a full check on every start (`fsck -f -p`).
	FsckAlways
)

func (p FsckPolicy) String() string {
	return [...]string{"auto", "never", "always"}[p]
}

// Filesystem is one filesystem of a package.
type Filesystem struct {
	// Device is the block device, typically an LV (/dev/VG/LV).
	Device string
	// MountPoint is an existing absolute directory.
	MountPoint string
	// Type is the filesystem type given to mount(2) and fsck -t (ext4, xfs).
	Type string
	// Options are the mount options, as in fstab ("noatime,data=ordered").
	Options string
	Fsck    FsckPolicy
	// UnmountTimeout bounds Unmount, holders' killing included.
	UnmountTimeout time.Duration
	// KillHolders, when false, makes a busy unmount fail at once instead
	// of signalling the holders.
	KillHolders bool
}

func (f Filesystem) String() string { return f.Device + " on " + f.MountPoint }

// Holder is a process that keeps a filesystem busy.
type Holder struct {
	PID  int
	Comm string
	// How is "fd 3 /srv/db/x", "cwd", "root", "exe" or "maps /srv/db/lib.so".
	How string
}

// OS is the system as Manager sees it.
type OS interface {
	// MountedAt returns the source device of the mount at mountpoint, or
	// ok false when nothing is mounted there.
	MountedAt(mountpoint string) (device string, ok bool, err error)
	// Resolve returns the canonical path of a device (symbolic links
	// followed), as MountedAt reports it.
	Resolve(device string) string
	// Fsck runs fsck on device with the given extra flags and returns its
	// exit status (fsck(8): 0 clean, 1 repaired, 2 repaired and reboot
	// advised, 4 errors left, 8 and above operational errors).
	Fsck(ctx context.Context, device, fstype string, force bool) (int, error)
	// Mount is mount(2).
	Mount(device, mountpoint, fstype string, flags uintptr, data string) error
	// Unmount is umount(2) without MNT_DETACH.
	Unmount(mountpoint string) error
	// Holders lists the processes that use something under mountpoint.
	Holders(mountpoint string) ([]Holder, error)
	// Kill sends sig to pid.
	Kill(pid int, sig syscall.Signal) error
}

// Errors.
var (
	// ErrStillBusy: the filesystem was still busy at the unmount timeout.
	// The halt has failed; the node must be reset.
	ErrStillBusy = errors.New("filesystem still busy after its holders were killed: halt failed: node must be reset")
	// ErrFsck: fsck left errors uncorrected.
	ErrFsck = errors.New("fsck left errors uncorrected")
	// ErrOtherDevice: another device is mounted at the mount point.
	ErrOtherDevice = errors.New("another device is mounted at the mount point")
)

// BusyError is an unmount that did not complete, with the holders seen last.
type BusyError struct {
	FS      Filesystem
	Holders []Holder
	// Reason is ErrStillBusy, or syscall.EBUSY when KillHolders is off.
	Reason error
}

func (e *BusyError) Error() string {
	hs := make([]string, len(e.Holders))
	for i, h := range e.Holders {
		hs[i] = fmt.Sprintf("%d (%s, %s)", h.PID, h.Comm, h.How)
	}
	return fmt.Sprintf("unmount %s: %v; holders: %s", e.FS, e.Reason, strings.Join(hs, ", "))
}

func (e *BusyError) Unwrap() error { return e.Reason }

// Manager mounts and unmounts filesystems.
type Manager struct {
	os  OS
	log *slog.Logger
	// Poll is how often a busy unmount is retried.
	Poll time.Duration
}

// NewManager returns a Manager over os.
func NewManager(os OS, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{os: os, log: log, Poll: 20 * time.Millisecond}
}

// mountFlags splits fstab options into mount(2) flags and data.
func mountFlags(opts string) (uintptr, string) {
	known := map[string]uintptr{
		"ro": syscall.MS_RDONLY, "nosuid": syscall.MS_NOSUID, "nodev": syscall.MS_NODEV,
		"noexec": syscall.MS_NOEXEC, "sync": syscall.MS_SYNCHRONOUS, "dirsync": syscall.MS_DIRSYNC,
		"noatime": syscall.MS_NOATIME, "nodiratime": syscall.MS_NODIRATIME, "relatime": syscall.MS_RELATIME,
		"rw": 0, "defaults": 0,
	}
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts, ",") {
		if o == "" {
			continue
		}
		if f, ok := known[o]; ok {
			flags |= f
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// Mounted reports whether fs is mounted.
func (m *Manager) Mounted(fs Filesystem) (bool, error) {
	dev, ok, err := m.os.MountedAt(fs.MountPoint)
	if err != nil || !ok {
		return false, err
	}
	if dev != m.os.Resolve(fs.Device) {
		return false, fmt.Errorf("%s: %w (%s): unmount it first", fs.MountPoint, ErrOtherDevice, dev)
	}
	return true, nil
}

// Mount checks fs per its policy and mounts it, unless it is mounted
// already.
func (m *Manager) Mount(ctx context.Context, fs Filesystem) error {
	ok, err := m.Mounted(fs)
	if err != nil || ok {
		return err
	}
	if fs.Fsck != FsckNever {
		code, err := m.os.Fsck(ctx, fs.Device, fs.Type, fs.Fsck == FsckAlways)
		if err != nil {
			return fmt.Errorf("fsck %s: %w", fs.Device, err)
		}
		switch {
		case code == 1 || code == 2:
			m.log.Warn("fsck repaired the filesystem", "device", fs.Device, "exit", code)
		case code != 0:
			return fmt.Errorf("fsck %s: exit status %d: %w: run fsck -t %s %s by hand and read what it reports", fs.Device, code, ErrFsck, fs.Type, fs.Device)
		}
	}
	flags, data := mountFlags(fs.Options)
	if err := m.os.Mount(fs.Device, fs.MountPoint, fs.Type, flags, data); err != nil {
		return fmt.Errorf("mount -t %s %s %s: %w", fs.Type, fs.Device, fs.MountPoint, err)
	}
	m.log.Info("filesystem mounted", "device", fs.Device, "mountpoint", fs.MountPoint)
	return nil
}

// Unmount unmounts fs if it is mounted; see the package doc for a busy one.
func (m *Manager) Unmount(ctx context.Context, fs Filesystem) error {
	if _, ok, err := m.os.MountedAt(fs.MountPoint); err != nil || !ok {
		return err
	}
	timeout := fs.UnmountTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	start := time.Now()
	killAt := start.Add(timeout / 2)
	deadline := start.Add(timeout)
	sig := syscall.SIGTERM
	var holders []Holder
	signalled := map[int]syscall.Signal{} // the last signal sent to each holder
	for {
		err := m.os.Unmount(fs.MountPoint)
		if err == nil {
			m.log.Info("filesystem unmounted", "device", fs.Device, "mountpoint", fs.MountPoint)
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("umount %s: %w", fs.MountPoint, err)
		}
		if hs, herr := m.os.Holders(fs.MountPoint); herr == nil {
			holders = hs
		} else {
			m.log.Error("cannot list the holders of a busy filesystem", "mountpoint", fs.MountPoint, "err", herr)
		}
		if !fs.KillHolders {
			return &BusyError{FS: fs, Holders: holders, Reason: syscall.EBUSY}
		}
		now := time.Now()
		if now.After(deadline) || ctx.Err() != nil {
			return &BusyError{FS: fs, Holders: holders, Reason: ErrStillBusy}
		}
		if now.After(killAt) {
			sig = syscall.SIGKILL
		}
		for _, h := range holders {
			if signalled[h.PID] == sig {
				continue
			}
			signalled[h.PID] = sig
			m.log.Warn("signalling a process that keeps a filesystem busy", "mountpoint", fs.MountPoint, "pid", h.PID, "comm", h.Comm, "how", h.How, "signal", sig.String())
			if err := m.os.Kill(h.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				m.log.Error("kill failed", "pid", h.PID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(m.Poll):
		}
	}
}
