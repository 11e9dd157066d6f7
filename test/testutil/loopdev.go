package testutil

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mtcluster/mtc/internal/loopdev"
)

// LoopDevice is a loop block device backed by a file in the test's
// temporary directory.
type LoopDevice struct {
	// Path is the device node, e.g. /dev/loop3.
	Path string
	// File is the backing file.
	File string
	// SectorSize is the logical sector size the device was created with.
	SectorSize int
	// Size is the size of the device in bytes.
	Size int64
}

// NewLoopDevice creates a zero-filled backing file of size bytes and
// attaches it as a loop device with the given logical sector size (512 or
// 4096) and direct I/O to the backing file, as
//
//	losetup --find --show --sector-size SECTOR --direct-io=on FILE
//
// The device is detached and the file removed in t.Cleanup. It needs root
// (see RequireRoot) and fails the test when losetup does.
func NewLoopDevice(t testing.TB, sectorSize int, size int64) *LoopDevice {
	t.Helper()
	RequireRoot(t, "creates loop devices")
	file := filepath.Join(t.TempDir(), fmt.Sprintf("loop-%d.img", sectorSize))
	dev, err := AttachLoop(file, sectorSize, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DetachLoop(dev); err != nil {
			t.Errorf("detach loop device: %v", err)
		}
	})
	return &LoopDevice{Path: dev, File: file, SectorSize: sectorSize, Size: size}
}

// AttachLoop attaches a loop device over a new file (see loopdev.Attach);
// the caller detaches it with DetachLoop.
func AttachLoop(file string, sectorSize int, size int64) (string, error) {
	return loopdev.Attach(file, sectorSize, size)
}

// DetachLoop detaches a loop device (losetup --detach DEV).
func DetachLoop(dev string) error { return loopdev.Detach(dev) }

// FreezableLoopDevice is a loop device whose writes can be made to hang in
// the kernel (see loopdev.Freezable).
type FreezableLoopDevice struct {
	LoopDevice
	// Mount is where the ext4 filesystem holding File is mounted.
	Mount string
	f     *loopdev.Freezable
}

// NewFreezableLoopDevice creates a FreezableLoopDevice of size bytes with
// the given logical sector size. Everything is undone in t.Cleanup, the
// filesystem thawed first so a test that fails while it is frozen cannot
// leave the kernel blocked. It needs root and mkfs.ext4, mount and
// fsfreeze; without them it skips (fails in CI).
func NewFreezableLoopDevice(t testing.TB, sectorSize int, size int64) *FreezableLoopDevice {
	t.Helper()
	RequireRoot(t, "creates loop devices and mounts a filesystem")
	for _, tool := range loopdev.FreezeTools {
		if _, err := exec.LookPath(tool); err != nil {
			if InCI() {
				t.Fatalf("needs %s (CI=true): install e2fsprogs and util-linux", tool)
			}
			t.Skipf("needs %s: install e2fsprogs and util-linux", tool)
		}
	}
	f, err := loopdev.NewFreezable(t.TempDir(), sectorSize, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("freezable loop device cleanup: %v", err)
		}
	})
	return &FreezableLoopDevice{LoopDevice: LoopDevice{Path: f.Dev, File: f.File, SectorSize: sectorSize, Size: size}, Mount: f.Mount, f: f}
}

// Freeze freezes the filesystem holding the backing file (fsfreeze -f):
// from now on writes to the device hang until Thaw.
func (f *FreezableLoopDevice) Freeze() error { return f.f.Freeze() }

// Thaw unfreezes the filesystem (fsfreeze -u); blocked writes proceed.
func (f *FreezableLoopDevice) Thaw() error { return f.f.Thaw() }
