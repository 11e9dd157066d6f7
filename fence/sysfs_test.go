package fence

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/test/testutil"
)

// fakeSysfs builds /sys/block/NAME/slaves/SLAVE entries and /dev nodes
// (regular files; PathDevices reads names only).
func fakeSysfs(t *testing.T, tree map[string][]string) (sysfs, dev string) {
	t.Helper()
	root := t.TempDir()
	sysfs, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for name, slaves := range tree {
		dir := filepath.Join(sysfs, "block", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if slaves != nil {
			if err := os.MkdirAll(filepath.Join(dir, "slaves"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range slaves {
			if err := os.WriteFile(filepath.Join(dir, "slaves", s), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dev, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dev, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dev, "mapper"), 0o755); err != nil {
		t.Fatal(err)
	}
	return sysfs, dev
}

func TestPathDevices(t *testing.T) {
	sysfs, dev := fakeSysfs(t, map[string][]string{
		"sdb":     {}, // a plain disk (sysfs gives it an empty slaves dir)
		"sdc":     {},
		"sdd":     {},
		"dm-0":    {"sdd", "sdc"}, // multipath over two paths
		"dm-1":    {"dm-0"},       // linear over the multipath map
		"dm-2":    {},             // a dm device with no table
		"nvme0n1": nil,            // no slaves dir at all
	})
	if err := os.Symlink("../dm-1", filepath.Join(dev, "mapper", "vg-lv")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dev  string
		want []string
		err  error
	}{
		{"sdb", []string{"sdb"}, nil},
		{"nvme0n1", []string{"nvme0n1"}, nil},
		{"dm-0", []string{"sdc", "sdd"}, nil},
		{"mapper/vg-lv", []string{"sdc", "sdd"}, nil},
		{"dm-2", nil, ErrNoPaths},
	} {
		got, err := PathDevices(sysfs, dev, filepath.Join(dev, c.dev))
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s: error %v, want %v", c.dev, err, c.err)
			continue
		}
		var want []string
		for _, w := range c.want {
			want = append(want, filepath.Join(dev, w))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", c.dev, got, want)
		}
	}
	if _, err := PathDevices(sysfs, dev, filepath.Join(dev, "sdz")); err == nil {
		t.Error("a missing device resolved")
	}
}

// TestPathDevicesLoop: a real block device node resolves through its
// device number, and a loop device is not something PR commands reach.
func TestPathDevicesLoop(t *testing.T) {
	testutil.RequireRoot(t, "attaches a loop device")
	l := testutil.NewLoopDevice(t, 512, 1<<20)
	got, err := PathDevices("/sys", "/dev", l.Path)
	if err != nil || !slices.Equal(got, []string{l.Path}) {
		t.Fatalf("PathDevices(%s) = %v, %v", l.Path, got, err)
	}
	if _, err := OpenPath(l.Path, BackendSGIO); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SG_IO on a loop device: %v, want ErrNotSupported", err)
	}
	p, err := OpenPath(l.Path, "")
	if err != nil {
		t.Fatalf("OpenPath(%s) chose no backend: %v", l.Path, err)
	}
	defer p.Close()
	if p.Backend() != BackendBlockPR {
		t.Errorf("loop device backend %s, want %s", p.Backend(), BackendBlockPR)
	}
	ctx := ctxT(t)
	if err := p.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: 1}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("block PR REGISTER on a loop device (no pr_ops): %v, want ErrNotSupported", err)
	}
	if ProbeReads(ctx, p) {
		t.Error("a loop device claims to read PR state")
	}
}
