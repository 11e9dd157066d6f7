package fence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoPaths: a device-mapper device has no underlying devices.
var ErrNoPaths = errors.New("device has no underlying path devices")

// PathDevices resolves dev to the devices PR commands must go to, reading
// the sysfs tree at sysfs ("/sys"): a plain disk is its own path; a
// device-mapper device (dm-N, /dev/mapper/NAME) is the union of its slaves
// (/sys/block/dm-N/slaves), resolved again when a slave is itself a dm
// device (a linear map over a multipath map), so registration goes out on
// every path of a multipath LUN. SG_IO on a dm device reaches only one
// path, and PREEMPT AND ABORT through dm is not reliably passed on with
// its abort: commands go to the path devices themselves.
//
// devDir is where device nodes live ("/dev"); dev is a path under it, or a
// symlink to one (/dev/mapper/NAME, /dev/disk/by-id/...).
func PathDevices(sysfs, devDir, dev string) ([]string, error) {
	name, err := blockName(sysfs, devDir, dev)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	var walk func(name string, depth int) error
	walk = func(name string, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%s: device-mapper stack deeper than 8 below %s", name, dev)
		}
		slaves, err := os.ReadDir(filepath.Join(sysfs, "block", name, "slaves"))
		switch {
		case errors.Is(err, os.ErrNotExist) || (err == nil && len(slaves) == 0 && !strings.HasPrefix(name, "dm-")):
			if !seen[name] {
				seen[name] = true
				out = append(out, filepath.Join(devDir, name))
			}
			return nil
		case err != nil:
			return fmt.Errorf("slaves of %s: %w", name, err)
		case len(slaves) == 0:
			return fmt.Errorf("%s (%s): %w in %s", dev, name, ErrNoPaths, filepath.Join(sysfs, "block", name, "slaves"))
		}
		names := make([]string, 0, len(slaves))
		for _, s := range slaves {
			names = append(names, s.Name())
		}
		sort.Strings(names)
		for _, s := range names {
			if err := walk(s, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(name, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// blockName is the kernel name (sdc, dm-3, nvme0n1) of dev: for a block
// device node, the name sysfs gives its device number
// (/sys/dev/block/MAJ:MIN, so /dev/mapper/NAME made by dmsetup without
// udev works too); otherwise the name of the node dev resolves to in
// devDir.
func blockName(sysfs, devDir, dev string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", fmt.Errorf("device %s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		link := filepath.Join(sysfs, "dev", "block", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
		target, err := os.Readlink(link)
		if err != nil {
			return "", fmt.Errorf("device %s: %w", dev, err)
		}
		return filepath.Base(target), nil
	}
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return "", fmt.Errorf("device %s: %w", dev, err)
	}
	if filepath.Dir(real) != filepath.Clean(devDir) {
		return "", fmt.Errorf("device %s resolves to %s, not a block device or a device node in %s", dev, real, devDir)
	}
	return filepath.Base(real), nil
}
