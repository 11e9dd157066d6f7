package fsres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory OS: the mount table, the fsck result of each
// device, and processes that hold paths. umount(2) fails with EBUSY while
// a live process holds a path under the mount point; a process dies on
// SIGTERM unless it ignores it, and on SIGKILL unless it is unkillable (a
// process in uninterruptible sleep on dead storage).
type Fake struct {
	mu     sync.Mutex
	mounts map[string]fakeMount
	// FsckExit is the fsck exit status per device (default 0).
	FsckExit map[string]int
	// Fscks counts the fsck runs per device.
	Fscks map[string]int
	procs map[int]*FakeProc
	// Fail, when set, is called before every change with its command
	// line; a non-nil result is returned instead.
	Fail func(op string) error
}

type fakeMount struct {
	device, fstype string
	flags          uintptr
	data           string
}

// FakeProc is a process of a Fake.
type FakeProc struct {
	PID        int
	Comm       string
	Paths      []string
	IgnoreTERM bool
	Unkillable bool
	dead       bool
}

var _ OS = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{mounts: map[string]fakeMount{}, FsckExit: map[string]int{}, Fscks: map[string]int{}, procs: map[int]*FakeProc{}}
}

// AddProc adds a live process.
func (f *Fake) AddProc(p *FakeProc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs[p.PID] = p
}

// Alive reports whether pid is alive.
func (f *Fake) Alive(pid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.procs[pid]
	return ok && !p.dead
}

func (f *Fake) fail(format string, args ...any) error {
	if f.Fail == nil {
		return nil
	}
	return f.Fail(fmt.Sprintf(format, args...))
}

func (f *Fake) MountedAt(mp string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.mounts[mp]
	return m.device, ok, nil
}

func (f *Fake) Resolve(device string) string { return device }

func (f *Fake) Fsck(ctx context.Context, device, fstype string, force bool) (int, error) {
	if err := f.fail("fsck -t %s %s", fstype, device); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Fscks[device]++
	return f.FsckExit[device], ctx.Err()
}

func (f *Fake) Mount(device, mp, fstype string, flags uintptr, data string) error {
	if err := f.fail("mount -t %s %s %s", fstype, device, mp); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mounts[mp]; ok {
		return syscall.EBUSY
	}
	for _, m := range f.mounts {
		if m.device == device {
			return syscall.EBUSY
		}
	}
	f.mounts[mp] = fakeMount{device: device, fstype: fstype, flags: flags, data: data}
	return nil
}

func (f *Fake) holdersLocked(mp string) []Holder {
	var hs []Holder
	for _, p := range f.procs {
		if p.dead {
			continue
		}
		for _, path := range p.Paths {
			if under(path, mp) {
				hs = append(hs, Holder{PID: p.PID, Comm: p.Comm, How: "fd " + path})
				break
			}
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].PID < hs[j].PID })
	return hs
}

func (f *Fake) Unmount(mp string) error {
	if err := f.fail("umount %s", mp); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mounts[mp]; !ok {
		return syscall.EINVAL
	}
	if len(f.holdersLocked(mp)) > 0 {
		return syscall.EBUSY
	}
	delete(f.mounts, mp)
	return nil
}

func (f *Fake) Holders(mp string) ([]Holder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holdersLocked(mp), nil
}

func (f *Fake) Kill(pid int, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.procs[pid]
	if !ok || p.dead {
		return syscall.ESRCH
	}
	switch {
	case sig == syscall.SIGKILL && !p.Unkillable:
		p.dead = true
	case sig == syscall.SIGTERM && !p.IgnoreTERM && !p.Unkillable:
		p.dead = true
	}
	return nil
}

// Render returns the mounts as mount commands and the live holder
// processes, one per line, sorted.
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for mp, m := range f.mounts {
		s := fmt.Sprintf("mount -t %s %s %s", m.fstype, m.device, mp)
		if m.flags != 0 || m.data != "" {
			s += fmt.Sprintf(" flags=%#x data=%q", m.flags, m.data)
		}
		lines = append(lines, s)
	}
	for _, p := range f.procs {
		if !p.dead {
			lines = append(lines, fmt.Sprintf("proc %d %s holds %s", p.PID, p.Comm, strings.Join(p.Paths, ",")))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
