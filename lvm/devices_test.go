package lvm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSysDevicesUnder reads a sysfs tree laid out as the kernel's: a
// partition lies inside its disk's directory, a device-mapper device
// lists its slaves.
func TestSysDevicesUnder(t *testing.T) {
	root := t.TempDir()
	mk := func(dir, dev string, extra ...string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Join(root, dir), 0o755))
		must(t, os.WriteFile(filepath.Join(root, dir, "dev"), []byte(dev+"\n"), 0o644))
		for _, e := range extra {
			must(t, os.WriteFile(filepath.Join(root, dir, e), []byte("1\n"), 0o644))
		}
	}
	mk("devices/sdb", "8:16")
	mk("devices/sdb/sdb1", "8:17", "partition")
	mk("devices/sdc", "8:32")
	mk("devices/dm-0", "253:0")
	must(t, os.MkdirAll(filepath.Join(root, "devices/dm-0/slaves"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "dev/block"), 0o755))
	for link, target := range map[string]string{
		"dev/block/8:16": "../../devices/sdb", "dev/block/8:17": "../../devices/sdb/sdb1",
		"dev/block/8:32": "../../devices/sdc", "dev/block/253:0": "../../devices/dm-0",
		"devices/dm-0/slaves/sdb": "../../sdb", "devices/dm-0/slaves/sdc": "../../sdc",
	} {
		must(t, os.Symlink(target, filepath.Join(root, link)))
	}
	d := SysDevices{Root: root}
	for dev, want := range map[uint64][]uint64{
		unix.Mkdev(8, 16):  nil,
		unix.Mkdev(8, 17):  {unix.Mkdev(8, 16)},
		unix.Mkdev(253, 0): {unix.Mkdev(8, 16), unix.Mkdev(8, 32)},
	} {
		got, err := d.Under(dev)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Under(%d:%d) = %v, %v; want %v", unix.Major(dev), unix.Minor(dev), got, err, want)
		}
	}
	if _, err := d.Number(filepath.Join(root, "devices/sdb/dev")); err == nil {
		t.Error("Number of a regular file succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
