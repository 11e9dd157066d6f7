package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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

// AttachLoop creates file with size zero bytes and attaches it as a loop
// device with the given logical sector size and direct I/O, returning the
// device node. The caller detaches it with DetachLoop.
func AttachLoop(file string, sectorSize int, size int64) (string, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return "", fmt.Errorf("loop device: sector size %d: must be 512 or 4096", sectorSize)
	}
	if size <= 0 || size%int64(sectorSize) != 0 {
		return "", fmt.Errorf("loop device: size %d: must be a positive multiple of %d", size, sectorSize)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("loop device backing file: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("loop device backing file %s: %w", file, err)
	}
	out, err := run("losetup", "--find", "--show", "--sector-size", strconv.Itoa(sectorSize), "--direct-io=on", file)
	if err != nil {
		return "", err
	}
	dev := strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("losetup --show printed %q, not a loop device", out)
	}
	return dev, nil
}

// DetachLoop detaches a loop device (losetup --detach DEV).
func DetachLoop(dev string) error {
	_, err := run("losetup", "--detach", dev)
	return err
}

func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// FreezableLoopDevice is a loop device whose backing file lives on its own
// small ext4 filesystem (itself on a loop device), so that the filesystem
// can be frozen: while frozen, writes to the device block in the kernel
// until Thaw, as on a hung LUN. Reads of data already on disk may still
// complete.
type FreezableLoopDevice struct {
	LoopDevice
	// Mount is where the ext4 filesystem holding File is mounted.
	Mount string
}

// NewFreezableLoopDevice creates a FreezableLoopDevice of size bytes with
// the given logical sector size. Everything is undone in t.Cleanup, the
// filesystem thawed first so a test that fails while it is frozen cannot
// leave the kernel blocked. It needs root and mkfs.ext4, mount and
// fsfreeze; without them it skips (fails in CI).
func NewFreezableLoopDevice(t testing.TB, sectorSize int, size int64) *FreezableLoopDevice {
	t.Helper()
	RequireRoot(t, "creates loop devices and mounts a filesystem")
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "fsfreeze", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			if InCI() {
				t.Fatalf("needs %s (CI=true): install e2fsprogs and util-linux", tool)
			}
			t.Skipf("needs %s: install e2fsprogs and util-linux", tool)
		}
	}
	dir := t.TempDir()
	fsSize := size + 16<<20 // room for the ext4 metadata and journal
	lower, err := AttachLoop(filepath.Join(dir, "fs.img"), 512, fsSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DetachLoop(lower); err != nil {
			t.Errorf("detach loop device: %v", err)
		}
	})
	if _, err := run("mkfs.ext4", "-q", lower); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := run("mount", lower, mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := run("umount", mnt); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	file := filepath.Join(mnt, fmt.Sprintf("loop-%d.img", sectorSize))
	dev, err := AttachLoop(file, sectorSize, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DetachLoop(dev); err != nil {
			t.Errorf("detach loop device: %v", err)
		}
	})
	f := &FreezableLoopDevice{LoopDevice: LoopDevice{Path: dev, File: file, SectorSize: sectorSize, Size: size}, Mount: mnt}
	t.Cleanup(func() { _ = f.Thaw() }) // runs first; an error means it was not frozen
	return f
}

// Freeze freezes the filesystem holding the backing file (fsfreeze -f):
// from now on writes to the device hang until Thaw.
func (f *FreezableLoopDevice) Freeze() error {
	_, err := run("fsfreeze", "--freeze", f.Mount)
	return err
}

// Thaw unfreezes the filesystem (fsfreeze -u); blocked writes proceed.
func (f *FreezableLoopDevice) Thaw() error {
	_, err := run("fsfreeze", "--unfreeze", f.Mount)
	return err
}
