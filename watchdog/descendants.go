package watchdog

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The process watchdog kills the daemon's process group, but the services
// the daemon supervises run in sessions of their own (package
// pkgrun/service), so a kill of the group alone would leave them running
// after the "reset". The supervisor therefore keeps a recent list of the
// daemon's descendants (snapshotInterval old at most) and kills them too:
// when the daemon dies first (kill -9), its children are reparented at
// once and can no longer be found from it.

// snapshotInterval is how often the supervisor lists the daemon's
// descendants.
const snapshotInterval = 200 * time.Millisecond

// family follows the descendants of one process.
type family struct {
	root int
	self int // the supervisor, never killed
	mu   sync.Mutex
	pids []int
}

// watch refreshes the list until stop is closed; a process that has
// died keeps the last list.
func (f *family) watch(stop <-chan struct{}) {
	t := time.NewTicker(snapshotInterval)
	defer t.Stop()
	for {
		if d := descendants(f.root, f.self); len(d) > 0 {
			f.mu.Lock()
			f.pids = d
			f.mu.Unlock()
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// kill sends SIGKILL to every descendant seen last and its process group.
func (f *family) kill() int {
	f.mu.Lock()
	pids := append([]int(nil), f.pids...)
	f.mu.Unlock()
	// Once more now: a descendant started since the last snapshot, while
	// the daemon still lives.
	pids = append(pids, descendants(f.root, f.self)...)
	n := 0
	for _, pid := range pids {
		if pgid, err := unix.Getpgid(pid); err == nil && pgid > 1 && pgid != unix.Getpgrp() {
			_ = unix.Kill(-pgid, unix.SIGKILL)
		}
		if unix.Kill(pid, unix.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// descendants lists every process below root (not root itself, not
// skip), from /proc.
func descendants(root, skip int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]int)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := ppidOf(pid); ok {
			children[pp] = append(children[pp], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if c == skip {
				continue
			}
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// ppidOf reads the parent of pid from /proc/PID/stat (the field after the
// command name, which may hold spaces and parentheses).
func ppidOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	fields := bytes.Fields(b[i+2:])
	if len(fields) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(string(fields[1]))
	return pp, err == nil
}
