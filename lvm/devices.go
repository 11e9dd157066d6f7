package lvm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Devices identifies block devices, to tell whether a VG's physical
// volumes lie on the LUNs a fencing proof covers. Paths are compared by
// device number, not by name: /dev/mapper/mpatha, /dev/dm-3 and a
// /dev/disk/by-id link are one device.
type Devices interface {
	// Number returns the device number of the block device at path.
	Number(path string) (uint64, error)
	// Under returns the devices dev is built on: the whole disk of a
	// partition, the slaves of a device-mapper device (the paths of a
	// multipath map, the PV under a linear map); none for a whole disk.
	Under(dev uint64) ([]uint64, error)
}

// SysDevices is Devices over stat(2) and sysfs (Root, "/sys" when empty).
type SysDevices struct{ Root string }

var _ Devices = SysDevices{}

// Number implements Devices.
func (d SysDevices) Number(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("device %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("device %s: not a block device", path)
	}
	return st.Rdev, nil
}

// Under implements Devices.
func (d SysDevices) Under(dev uint64) ([]uint64, error) {
	root := d.Root
	if root == "" {
		root = "/sys"
	}
	dir := filepath.Join(root, "dev", "block", fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)))
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		// A partition's sysfs directory lies inside its disk's; dir is a
		// symbolic link to it, resolved before going up.
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return nil, err
		}
		n, err := devFile(filepath.Join(filepath.Dir(real), "dev"))
		if err != nil {
			return nil, err
		}
		return []uint64{n}, nil
	}
	slaves, err := os.ReadDir(filepath.Join(dir, "slaves"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, s := range slaves {
		n, err := devFile(filepath.Join(dir, "slaves", s.Name(), "dev"))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// devFile reads a sysfs dev file ("MAJ:MIN").
func devFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: %q is not MAJOR:MINOR", path, b)
	}
	return unix.Mkdev(uint32(ma), uint32(mi)), nil
}

// maxStack bounds how deep a device stack is followed.
const maxStack = 8

// leaves adds dev and every device below it to set.
func leaves(d Devices, dev uint64, set map[uint64]bool, depth int) error {
	set[dev] = true
	if depth >= maxStack {
		return fmt.Errorf("device %d:%d: stack deeper than %d", unix.Major(dev), unix.Minor(dev), maxStack)
	}
	under, err := d.Under(dev)
	if err != nil {
		return err
	}
	for _, u := range under {
		if err := leaves(d, u, set, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// coveredBy reports whether every write to dev reaches only devices in
// fenced: dev is one of them, or it is built on devices that all are.
func coveredBy(d Devices, dev uint64, fenced map[uint64]bool, depth int) (bool, error) {
	if fenced[dev] {
		return true, nil
	}
	if depth >= maxStack {
		return false, nil
	}
	under, err := d.Under(dev)
	if err != nil || len(under) == 0 {
		return false, err
	}
	for _, u := range under {
		ok, err := coveredBy(d, u, fenced, depth+1)
		if !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}
