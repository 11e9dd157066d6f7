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
	pids []proc
}

// proc is one process: its pid and its start time (clock ticks since
// boot), which tells it from a later process given the same pid.
type proc struct {
	pid   int
	start uint64
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

// kill sends SIGKILL to every descendant seen last that still runs (the
// same pid with the same start time: a pid reused since by an unrelated
// process is left alone), and to the process group of each that leads
// one.
func (f *family) kill() int {
	f.mu.Lock()
	procs := append([]proc(nil), f.pids...)
	f.mu.Unlock()
	// Once more now: a descendant started since the last snapshot, while
	// the daemon still lives.
	procs = append(procs, descendants(f.root, f.self)...)
	n := 0
	for _, p := range procs {
		if st, ok := statOf(p.pid); !ok || st.start != p.start {
			continue
		}
		if pgid, err := unix.Getpgid(p.pid); err == nil && pgid == p.pid && pgid != unix.Getpgrp() {
			_ = unix.Kill(-pgid, unix.SIGKILL)
		}
		if unix.Kill(p.pid, unix.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// descendants lists every process below root (not root itself, not
// skip), from /proc: through the children lists of the tree's own threads
// where the kernel has them (CONFIG_PROC_CHILDREN), which reads a few
// files per descendant, else from every process's parent, which reads a
// file per process on the machine, five times a second.
func descendants(root, skip int) []proc {
	if out, ok := descendantsByChildren(root, skip); ok {
		return out
	}
	return descendantsByScan(root, skip)
}

// descendantsByChildren walks the tree down from root through
// /proc/PID/task/TID/children; ok is false when the kernel does not
// provide those files (or root is gone). The kernel builds each list
// while the tree may fork and exit, so one walk can miss a child that
// was just born; the next snapshot finds it, and kill unites the last
// snapshot with a fresh walk.
func descendantsByChildren(root, skip int) (out []proc, ok bool) {
	if _, err := os.Stat("/proc/" + strconv.Itoa(root) + "/task/" + strconv.Itoa(root) + "/children"); err != nil {
		return nil, false
	}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		dir := "/proc/" + strconv.Itoa(p) + "/task/"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			continue // gone since its parent listed it
		}
		for _, t := range tasks {
			b, err := os.ReadFile(dir + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range bytes.Fields(b) {
				c, err := strconv.Atoi(string(f))
				if err != nil || c == skip {
					continue
				}
				st, ok := statOf(c)
				if !ok {
					continue
				}
				out = append(out, proc{pid: c, start: st.start})
				queue = append(queue, c)
			}
		}
	}
	return out, true
}

// descendantsByScan reads every process's parent from /proc.
func descendantsByScan(root, skip int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]proc)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := statOf(pid); ok {
			children[st.ppid] = append(children[st.ppid], proc{pid: pid, start: st.start})
		}
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if c.pid == skip {
				continue
			}
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

type procStat struct {
	ppid  int
	start uint64
}

// statOf reads the parent and the start time of pid from /proc/PID/stat
// (fields 4 and 22; the command name before them may hold spaces and
// parentheses).
func statOf(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, false
	}
	// fields[0] is field 3 (state).
	fields := bytes.Fields(b[i+2:])
	if len(fields) < 20 {
		return procStat{}, false
	}
	pp, err1 := strconv.Atoi(string(fields[1]))
	start, err2 := strconv.ParseUint(string(fields[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{ppid: pp, start: start}, true
}
