// Package loopdev creates loop block devices for tests and benchmarks: a
// plain one over a sparse file, and a "freezable" one whose writes can be
// made to hang in the kernel, as on a hung LUN. It drives losetup, mkfs.ext4,
// mount and fsfreeze with argument vectors and LC_ALL=C. Everything needs
// root.
package loopdev

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Attach creates file with size zero bytes and attaches it as a loop device
// with the given logical sector size (512 or 4096) and direct I/O to the
// backing file, returning the device node:
//
//	losetup --find --show --sector-size SECTOR --direct-io=on FILE
//
// The caller detaches it with Detach.
func Attach(file string, sectorSize int, size int64) (string, error) {
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
	out, err := Run("losetup", "--find", "--show", "--sector-size", strconv.Itoa(sectorSize), "--direct-io=on", file)
	if err != nil {
		return "", err
	}
	dev := strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("losetup --show printed %q, not a loop device", out)
	}
	return dev, nil
}

// Detach detaches a loop device (losetup --detach DEV).
func Detach(dev string) error {
	_, err := Run("losetup", "--detach", dev)
	return err
}

// Run runs a tool with LC_ALL=C and returns its standard output; a failure
// carries the command line and the tool's standard error.
func Run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// FreezeTools are the programs NewFreezable needs (from e2fsprogs and
// util-linux).
var FreezeTools = []string{"losetup", "mkfs.ext4", "mount", "umount", "fsfreeze"}

// Freezable is a loop device whose backing file lives on its own small ext4
// filesystem (itself on a loop device), so that the filesystem can be
// frozen: while frozen, writes to the device block in the kernel until
// Thaw, as on a hung LUN. Reads of data already on disk may still complete.
type Freezable struct {
	// Dev is the device node of the freezable loop device.
	Dev string
	// File is its backing file, on the ext4 filesystem mounted at Mount.
	File  string
	Mount string
	undo  []func() error
}

// NewFreezable builds a Freezable of size bytes with the given logical
// sector size, with its files under dir. Close undoes everything.
func NewFreezable(dir string, sectorSize int, size int64) (_ *Freezable, err error) {
	for _, tool := range FreezeTools {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("a freezable loop device needs %s (install e2fsprogs and util-linux): %w", tool, err)
		}
	}
	f := &Freezable{}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fsSize := size + 16<<20 // room for the ext4 metadata and journal
	fsSize -= fsSize % 512
	lower, err := Attach(filepath.Join(dir, "fs.img"), 512, fsSize)
	if err != nil {
		return nil, err
	}
	f.undo = append(f.undo, func() error { return Detach(lower) })
	if _, err := Run("mkfs.ext4", "-q", lower); err != nil {
		return nil, err
	}
	f.Mount = filepath.Join(dir, "mnt")
	if err := os.Mkdir(f.Mount, 0o700); err != nil {
		return nil, err
	}
	if _, err := Run("mount", lower, f.Mount); err != nil {
		return nil, err
	}
	f.undo = append(f.undo, func() error { _, err := Run("umount", f.Mount); return err })
	f.File = filepath.Join(f.Mount, fmt.Sprintf("loop-%d.img", sectorSize))
	if f.Dev, err = Attach(f.File, sectorSize, size); err != nil {
		return nil, err
	}
	dev := f.Dev
	f.undo = append(f.undo, func() error { return Detach(dev) })
	// Runs first on Close: never leave the filesystem frozen (an error
	// only means it was not frozen).
	f.undo = append(f.undo, func() error { _ = f.Thaw(); return nil })
	return f, nil
}

// Freeze freezes the filesystem holding the backing file (fsfreeze
// --freeze): from now on writes to the device hang until Thaw.
func (f *Freezable) Freeze() error {
	_, err := Run("fsfreeze", "--freeze", f.Mount)
	return err
}

// Thaw unfreezes the filesystem (fsfreeze --unfreeze); blocked writes proceed.
func (f *Freezable) Thaw() error {
	_, err := Run("fsfreeze", "--unfreeze", f.Mount)
	return err
}

// Close thaws, detaches and unmounts, in reverse order of creation, and
// returns the first error.
func (f *Freezable) Close() error {
	var first error
	for i := len(f.undo) - 1; i >= 0; i-- {
		if err := f.undo[i](); err != nil && first == nil {
			first = err
		}
	}
	f.undo = nil
	return first
}
