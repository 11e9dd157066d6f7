package service

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cmd is a child process to start: always an argument vector, never a
// shell string.
type Cmd struct {
	Argv []string
	// Env is added to a minimal environment (PATH, LC_ALL=C); it is not
	// the runner's own environment, so a package's processes see only
	// what its definition gives them.
	Env []string
	Dir string
	// User, when set, is the account the process runs as (name or uid).
	User string
	// Log receives the process's output, one record per line.
	Log *slog.Logger
}

// Process is a started child: the leader of its own session and process
// group, and every process it forks that stays in that session.
type Process interface {
	PID() int
	// Done is closed when the leader has exited.
	Done() <-chan struct{}
	// ExitCode is the leader's exit status after Done; -1 when a signal
	// ended it.
	ExitCode() int
	// Signal sends sig to every live process of the session.
	Signal(sig syscall.Signal) error
	// Alive reports whether any process of the session still runs.
	Alive() bool
	// Reap collects the exit status of the session's processes that were
	// reparented to the runner and have exited, so that no zombie is left.
	Reap()
}

// Procs starts processes: Linux for real ones, Fake in tests.
type Procs interface {
	Start(c Cmd) (Process, error)
}

// Linux starts real processes, each as the leader of a new session (so of
// a new process group). NewLinux makes the runner a child subreaper
// (PR_SET_CHILD_SUBREAPER): a process a service forks and orphans is
// reparented to the runner instead of init, so it is still found by its
// session, signalled at halt and reaped (at every health-check interval
// and at halt). A process that calls setsid(2) itself leaves the session
// and is not tracked (cgroups would be needed), and becomes a zombie of the
// runner when it exits; daemons that double-fork should run in the
// foreground under mtc.
type Linux struct {
	mu sync.Mutex
}

var _ Procs = (*Linux)(nil)

// NewLinux makes the calling process a child subreaper and returns Linux.
func NewLinux() (*Linux, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return &Linux{}, nil
}

// basePath is the PATH of every child.
const basePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// credential resolves an account name or number, with its primary and
// supplementary groups.
func credential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of user %q: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			c.Groups = append(c.Groups, uint32(n))
		}
	}
	return c, nil
}

// Start implements Procs.
func (l *Linux) Start(c Cmd) (Process, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("empty argument vector")
	}
	path := c.Argv[0]
	if !strings.Contains(path, "/") {
		for _, dir := range filepath.SplitList(strings.TrimPrefix(basePath, "PATH=")) {
			if st, err := os.Stat(filepath.Join(dir, path)); err == nil && st.Mode()&0o111 != 0 {
				path = filepath.Join(dir, path)
				break
			}
		}
	}
	cred, err := credential(c.User)
	if err != nil {
		return nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	env := append([]string{basePath, "LC_ALL=C"}, c.Env...)
	p, err := os.StartProcess(path, c.Argv, &os.ProcAttr{
		Dir:   c.Dir,
		Env:   env,
		Files: []*os.File{devnull, outW, errW},
		Sys:   &syscall.SysProcAttr{Setsid: true, Credential: cred},
	})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start %s: %w", strings.Join(c.Argv, " "), err)
	}
	lp := &linuxProc{p: p, done: make(chan struct{})}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go pipeLog(&wg, outR, log, "stdout")
	go pipeLog(&wg, errR, log, "stderr")
	go func() {
		st, err := p.Wait()
		lp.code = -1
		if err == nil {
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Exited() {
				lp.code = ws.ExitStatus()
			}
		}
		close(lp.done)
		wg.Wait()
	}()
	return lp, nil
}

func pipeLog(wg *sync.WaitGroup, r io.ReadCloser, log *slog.Logger, stream string) {
	defer wg.Done()
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		log.Info(sc.Text(), "stream", stream)
	}
}

type linuxProc struct {
	p    *os.Process
	done chan struct{}
	code int
}

func (p *linuxProc) PID() int              { return p.p.Pid }
func (p *linuxProc) Done() <-chan struct{} { return p.done }
func (p *linuxProc) ExitCode() int         { <-p.done; return p.code }

// members scans /proc for the processes of the session (sid = leader's
// pid), reaping those that are zombies and children of ours (orphans
// reparented to us as subreaper).
func (p *linuxProc) members() []int {
	sid := p.p.Pid
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok || st.sid != sid {
			continue
		}
		if st.state == 'Z' {
			if st.ppid == self && pid != sid {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
			continue
		}
		out = append(out, pid)
	}
	return out
}

type procStat struct {
	state     byte
	ppid, sid int
}

// readStat reads the state, parent and session of pid from
// /proc/PID/stat (proc(5)); the command name may contain spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 4 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	sid, _ := strconv.Atoi(f[3])
	return procStat{state: f[0][0], ppid: ppid, sid: sid}, true
}

func (p *linuxProc) Signal(sig syscall.Signal) error {
	var errs []error
	members := p.members()
	// The process group is signalled only while one of its processes can
	// still exist: once all are gone, its number may be another group's.
	running := false
	select {
	case <-p.done:
	default:
		running = true
	}
	if running || len(members) > 0 {
		if err := unix.Kill(-p.p.Pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	for _, pid := range members {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *linuxProc) Reap() { p.members() }

func (p *linuxProc) Alive() bool {
	select {
	case <-p.done:
		return len(p.members()) > 0
	default:
		return true
	}
}
