package fsres

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHoldersThroughProc: processes using a directory through an open
// file, their working directory and a mapped file are found (no root
// needed: the processes are our own).
func TestHoldersThroughProc(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "data")
	os.WriteFile(f, []byte("x\n"), 0o644)
	fd := exec.Command("tail", "-f", f)
	cwd := exec.Command("sleep", "600")
	cwd.Dir = dir
	other := exec.Command("sleep", "600")
	for _, c := range []*exec.Cmd{fd, cwd, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { c.Process.Kill(); c.Wait() }()
	}
	// tail opens the file after it starts.
	var hs []Holder
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if hs, err = (Linux{}).Holders(dir); err != nil {
			t.Fatal(err)
		}
		if len(hs) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := map[int]string{}
	for _, h := range hs {
		got[h.PID] = h.How
	}
	if !strings.HasPrefix(got[fd.Process.Pid], "fd ") || !strings.HasSuffix(got[fd.Process.Pid], f) {
		t.Errorf("tail: %q", got[fd.Process.Pid])
	}
	if got[cwd.Process.Pid] != "cwd" {
		t.Errorf("sleep in the directory: %q", got[cwd.Process.Pid])
	}
	if how, ok := got[other.Process.Pid]; ok {
		t.Errorf("an unrelated process is a holder: %s", how)
	}
	// A sibling directory with the same prefix is not "under" it.
	if under(dir+"x/file", dir) || !under(dir+"/a", dir) || !under(dir, dir) {
		t.Error("under() is wrong about prefixes")
	}
}

func TestMountFlags(t *testing.T) {
	flags, data := mountFlags("noatime,nodev,data=ordered,ro,errors=remount-ro")
	if flags != syscall.MS_NOATIME|syscall.MS_NODEV|syscall.MS_RDONLY || data != "data=ordered,errors=remount-ro" {
		t.Errorf("flags %#x data %q", flags, data)
	}
}

func TestMountinfo(t *testing.T) {
	if got := unescapeMountinfo(`/srv/my\040data`); got != "/srv/my data" {
		t.Errorf("unescape: %q", got)
	}
	if _, ok, err := (Linux{}).MountedAt("/proc"); err != nil || !ok {
		t.Errorf("/proc not seen mounted: %v %v", ok, err)
	}
	if _, ok, _ := (Linux{}).MountedAt(t.TempDir()); ok {
		t.Error("a plain directory seen as a mount point")
	}
}

func fs() Filesystem {
	return Filesystem{Device: "/dev/vg/lv", MountPoint: "/srv/x", Type: "ext4", UnmountTimeout: 100 * time.Millisecond, KillHolders: true}
}

func TestFsckPolicy(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		policy FsckPolicy
		exit   int
		runs   int
		err    error
	}{
		{FsckAuto, 0, 1, nil},
		{FsckAuto, 1, 1, nil},
		{FsckAlways, 2, 1, nil},
		{FsckAuto, 4, 1, ErrFsck},
		{FsckNever, 4, 0, nil},
	} {
		f := NewFake()
		f.FsckExit["/dev/vg/lv"] = tc.exit
		m := NewManager(f, nil)
		x := fs()
		x.Fsck = tc.policy
		err := m.Mount(ctx, x)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s exit %d: %v, want %v", tc.policy, tc.exit, err, tc.err)
		}
		if f.Fscks["/dev/vg/lv"] != tc.runs {
			t.Errorf("%s: %d fsck runs", tc.policy, f.Fscks["/dev/vg/lv"])
		}
		mounted := strings.Contains(f.Render(), "/srv/x")
		if mounted != (err == nil) {
			t.Errorf("%s exit %d: mounted %v after %v", tc.policy, tc.exit, mounted, err)
		}
		// Mounting again checks nothing and mounts nothing.
		if err == nil {
			if err := m.Mount(ctx, x); err != nil || f.Fscks["/dev/vg/lv"] != tc.runs {
				t.Errorf("second Mount: %v, %d fsck runs", err, f.Fscks["/dev/vg/lv"])
			}
		}
	}
}

func TestMountPointTaken(t *testing.T) {
	f := NewFake()
	f.Mount("/dev/sdz1", "/srv/x", "ext4", 0, "")
	m := NewManager(f, nil)
	if err := m.Mount(context.Background(), fs()); !errors.Is(err, ErrOtherDevice) {
		t.Errorf("mount over another device: %v", err)
	}
	if err := m.Unmount(context.Background(), fs()); err != nil {
		t.Fatal(err)
	}
}

func TestBusyUnmountPolicies(t *testing.T) {
	ctx := context.Background()
	setup := func(p FakeProc) (*Fake, *Manager) {
		f := NewFake()
		f.Mount("/dev/vg/lv", "/srv/x", "ext4", 0, "")
		f.AddProc(&p)
		m := NewManager(f, nil)
		m.Poll = time.Millisecond
		return f, m
	}
	// Without KillHolders a busy unmount fails at once and names the holder.
	f, m := setup(FakeProc{PID: 7, Comm: "psql", Paths: []string{"/srv/x/base"}})
	x := fs()
	x.KillHolders = false
	err := m.Unmount(ctx, x)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, syscall.EBUSY) || len(be.Holders) != 1 || be.Holders[0].PID != 7 || !f.Alive(7) {
		t.Errorf("busy unmount without killing: %v", err)
	}
	// A holder that ignores TERM is killed with KILL.
	f, m = setup(FakeProc{PID: 8, Comm: "psql", Paths: []string{"/srv/x"}, IgnoreTERM: true})
	if err := m.Unmount(ctx, fs()); err != nil || f.Alive(8) || strings.Contains(f.Render(), "mount") {
		t.Errorf("unmount with a TERM-ignoring holder: %v\n%s", err, f.Render())
	}
	// One that survives KILL: still busy at the timeout, node must be reset.
	f, m = setup(FakeProc{PID: 9, Comm: "psql", Paths: []string{"/srv/x"}, Unkillable: true})
	start := time.Now()
	err = m.Unmount(ctx, fs())
	if !errors.Is(err, ErrStillBusy) || !strings.Contains(err.Error(), "node must be reset") {
		t.Errorf("unkillable holder: %v", err)
	}
	if time.Since(start) < fs().UnmountTimeout {
		t.Errorf("gave up after %v, before the unmount timeout", time.Since(start))
	}
	if !strings.Contains(f.Render(), "mount -t ext4 /dev/vg/lv /srv/x") {
		t.Error("reported busy but unmounted")
	}
}
