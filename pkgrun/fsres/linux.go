package fsres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Linux is the real OS: /proc/self/mountinfo, fsck(8), mount(2),
// umount(2), /proc/PID and kill(2).
type Linux struct {
	// Proc is the proc filesystem's mount point ("/proc").
	Proc string
}

var _ OS = Linux{}

func (l Linux) proc() string {
	if l.Proc == "" {
		return "/proc"
	}
	return l.Proc
}

// unescapeMountinfo decodes the octal escapes (\040 for a space) of
// /proc/self/mountinfo fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountedAt reads /proc/self/mountinfo (proc(5)); the last mount at a
// path is the visible one.
func (l Linux) MountedAt(mountpoint string) (string, bool, error) {
	data, err := os.ReadFile(filepath.Join(l.proc(), "self", "mountinfo"))
	if err != nil {
		return "", false, err
	}
	mp := filepath.Clean(mountpoint)
	dev, ok := "", false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		if unescapeMountinfo(f[4]) == mp {
			dev, ok = unescapeMountinfo(f[sep+2]), true
		}
	}
	if ok {
		// The kernel reports the device it resolved (/dev/dm-3 for
		// /dev/vg/lv, /dev/loop0): compare resolved paths.
		return l.Resolve(dev), true, nil
	}
	return "", false, sc.Err()
}

// Resolve follows symbolic links (/dev/vg/lv -> /dev/dm-3).
func (Linux) Resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// Fsck runs `fsck -T -t TYPE -p [-f] DEVICE` with LC_ALL=C.
func (l Linux) Fsck(ctx context.Context, device, fstype string, force bool) (int, error) {
	argv := []string{"-T", "-t", fstype, "-p"}
	if force {
		argv = append(argv, "-f")
	}
	cmd := exec.CommandContext(ctx, "fsck", append(argv, device)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return 0, nil
}

// Mount is mount(2).
func (Linux) Mount(device, mountpoint, fstype string, flags uintptr, data string) error {
	return unix.Mount(device, mountpoint, fstype, flags, data)
}

// Unmount is umount(2) with UMOUNT_NOFOLLOW, never MNT_DETACH.
func (Linux) Unmount(mountpoint string) error {
	return unix.Unmount(mountpoint, unix.UMOUNT_NOFOLLOW)
}

// Kill is kill(2).
func (Linux) Kill(pid int, sig syscall.Signal) error { return unix.Kill(pid, sig) }

// under reports whether path is mountpoint or inside it.
func under(path, mountpoint string) bool {
	path = strings.TrimSuffix(path, " (deleted)")
	return path == mountpoint || strings.HasPrefix(path, strings.TrimSuffix(mountpoint, "/")+"/")
}

// Holders scans /proc/PID/{cwd,root,exe,fd/*,maps} of every process: only
// readlink and reads of proc files, which do not touch the filesystem in
// question.
func (l Linux) Holders(mountpoint string) ([]Holder, error) {
	mp := filepath.Clean(mountpoint)
	ents, err := os.ReadDir(l.proc())
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []Holder
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join(l.proc(), e.Name())
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		add := func(how string) {
			out = append(out, Holder{PID: pid, Comm: strings.TrimSpace(string(comm)), How: how})
		}
		found := false
		for _, link := range []string{"cwd", "root", "exe"} {
			if t, err := os.Readlink(filepath.Join(dir, link)); err == nil && under(t, mp) {
				add(link)
				found = true
				break
			}
		}
		if found {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if t, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && under(t, mp) {
				add("fd " + fd.Name() + " " + t)
				found = true
				break
			}
		}
		if found {
			continue
		}
		if maps, err := os.ReadFile(filepath.Join(dir, "maps")); err == nil {
			for _, line := range strings.Split(string(maps), "\n") {
				if i := strings.Index(line, " /"); i >= 0 && under(strings.TrimSpace(line[i:]), mp) {
					add("maps " + strings.TrimSpace(line[i:]))
					break
				}
			}
		}
	}
	return out, nil
}
