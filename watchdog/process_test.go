package watchdog

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/test/testutil"
)

const supervisorEnv = "MTC_WATCHDOG_TEST_SUPERVISOR"

// TestMain lets the test binary act as the supervisor process, the way the
// mtc binary does with `mtc watchdog-supervise`.
func TestMain(m *testing.M) {
	if os.Getenv(supervisorEnv) == "1" {
		fs := flag.NewFlagSet("supervise", flag.ExitOnError)
		timeout := fs.Duration("timeout", 0, "")
		pgid := fs.Int("pgid", 0, "")
		args := os.Args[1:]
		for len(args) > 0 && !strings.HasPrefix(args[0], "--timeout") {
			args = args[1:]
		}
		_ = fs.Parse(args)
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		err := Supervise(os.Stdin, os.Stdout, *timeout, *pgid, log)
		switch {
		case err == nil:
			os.Exit(0)
		case errors.Is(err, ErrFired):
			os.Exit(3)
		default:
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// victim starts a process in its own group, standing in for the daemon.
func victim(t *testing.T) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	return cmd, done
}

func startSupervisor(t *testing.T, pgid int, timeout time.Duration) (*Process, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	p, err := StartProcess(ProcessConfig{
		Timeout: timeout,
		PGID:    pgid,
		Command: []string{os.Args[0], "-test.run=^$"},
		Env:     append(os.Environ(), supervisorEnv+"=1"),
		Stderr:  logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(p.SupervisorPID(), syscall.SIGKILL)
		<-p.Done()
	})
	return p, logs
}

// killBound is how long a test waits for the supervisor to act: far above
// any timeout used here, so a slow machine does not fail the test; the
// test asserts what happens, never how fast.
const killBound = 60 * time.Second

func waitKilled(t *testing.T, done <-chan error, logs *testutil.SyncBuffer) {
	t.Helper()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("victim exited with %v, want killed by SIGKILL", err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("victim ended with %v, want SIGKILL", ws)
		}
	case <-time.After(killBound):
		t.Fatalf("victim still alive %v after the last feed; supervisor log:\n%s", killBound, logs)
	}
}

func TestProcessWatchdogKillsStoppedGroup(t *testing.T) {
	v, done := victim(t)
	p, logs := startSupervisor(t, v.Process.Pid, 500*time.Millisecond)
	if err := p.Feed(); err != nil {
		t.Fatal(err)
	}
	// Freeze the whole watched group, as a hung daemon would be.
	if err := syscall.Kill(-v.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitKilled(t, done, logs)
	<-p.Done()
	if code := p.cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("supervisor exit code %d, want 3 (fired); log:\n%s", code, logs)
	}
	if !strings.Contains(logs.String(), "watchdog fired") {
		t.Fatalf("supervisor log does not say it fired:\n%s", logs)
	}
	if err := p.Feed(); !errors.Is(err, ErrSupervisorGone) {
		t.Fatalf("Feed after firing: %v, want ErrSupervisorGone", err)
	}
}

func alive(t *testing.T, done <-chan error) bool {
	t.Helper()
	select {
	case err := <-done:
		t.Logf("victim exited: %v", err)
		return false
	default:
		return true
	}
}

func TestProcessWatchdogFeedingKeepsAlive(t *testing.T) {
	v, done := victim(t)
	const timeout = 500 * time.Millisecond
	p, logs := startSupervisor(t, v.Process.Pid, timeout)
	// Feed every timeout/5 for four timeouts: a supervisor that ignored
	// the feeds would have killed the victim three times over.
	for i := 0; i < 20; i++ {
		if err := p.Feed(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(timeout / 5)
	}
	if !alive(t, done) {
		t.Fatalf("victim killed although fed; log:\n%s", logs)
	}
	// Then stop feeding: it fires.
	waitKilled(t, done, logs)
}

func TestProcessWatchdogDisarm(t *testing.T) {
	v, done := victim(t)
	const timeout = 300 * time.Millisecond
	p, logs := startSupervisor(t, v.Process.Pid, timeout)
	if err := p.Feed(); err != nil {
		t.Fatal(err)
	}
	if err := p.Disarm(); err != nil {
		t.Fatalf("Disarm: %v; log:\n%s", err, logs)
	}
	// The supervisor has exited (Disarm waits for it), so nothing is left
	// that could kill the victim; check that it did not do so on its way out.
	time.Sleep(2 * timeout)
	if !alive(t, done) {
		t.Fatalf("victim killed after disarm; log:\n%s", logs)
	}
	if err := p.Feed(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Feed after Disarm: %v, want ErrClosed", err)
	}
}

// A daemon that closes (or crashes) without disarming leaves the watchdog
// armed.
func TestProcessWatchdogCloseStaysArmed(t *testing.T) {
	v, done := victim(t)
	p, logs := startSupervisor(t, v.Process.Pid, 300*time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitKilled(t, done, logs)
	if !strings.Contains(logs.String(), "closed without disarm") {
		t.Fatalf("log does not explain the close:\n%s", logs)
	}
}

func TestProcessWatchdogRefusesOwnGroup(t *testing.T) {
	_, err := StartProcess(ProcessConfig{Timeout: time.Second, PGID: 1, Command: []string{os.Args[0]}})
	if err == nil {
		t.Fatal("StartProcess accepted process group 1")
	}
}

func TestNoneWarnsEveryMinute(t *testing.T) {
	var buf bytes.Buffer
	var now time.Duration
	n := NewNone(slog.New(slog.NewTextHandler(&buf, nil)), func() time.Duration { return now })
	count := func() int { return strings.Count(buf.String(), "NO WATCHDOG") }
	if count() != 1 {
		t.Fatalf("no warning at start: %q", buf.String())
	}
	now = 30 * time.Second
	_ = n.Feed()
	if count() != 1 {
		t.Fatal("warned again before a minute")
	}
	now = 61 * time.Second
	_ = n.Feed()
	if count() != 2 {
		t.Fatal("no warning after a minute")
	}
}

func TestFake(t *testing.T) {
	f := &Fake{}
	_ = f.Feed()
	_ = f.Feed()
	if f.Feeds() != 2 {
		t.Fatalf("feeds %d", f.Feeds())
	}
	if err := f.Disarm(); err != nil || !f.Disarmed() {
		t.Fatal(err)
	}
	if err := f.Feed(); !errors.Is(err, ErrClosed) {
		t.Fatalf("feed after disarm: %v", err)
	}
}

func TestOpenDeviceErrors(t *testing.T) {
	if _, err := OpenDevice("/nonexistent/watchdog", 3*time.Second); err == nil || !strings.Contains(err.Error(), "/nonexistent/watchdog") {
		t.Fatalf("missing device: %v", err)
	}
	if _, err := OpenDevice("/dev/null", 1500*time.Millisecond); !errors.Is(err, ErrTimeoutUnsupported) {
		t.Fatalf("fractional timeout: %v", err)
	}
	// /dev/null accepts the open but not the watchdog ioctls.
	if _, err := OpenDevice("/dev/null", 3*time.Second); !errors.Is(err, ErrTimeoutUnsupported) {
		t.Fatalf("non-watchdog device: %v", err)
	}
}

// A service runs in a session of its own, outside the daemon's group;
// the daemon is killed first (kill -9), so its service is reparented
// before the watchdog fires. The supervisor kills it all the same.
func TestProcessWatchdogKillsServicesOfADeadDaemon(t *testing.T) {
	pidFile := t.TempDir() + "/service.pid"
	cmd := exec.Command("sh", "-c", `setsid sleep 300 & echo $! > `+pidFile+`; wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var service int
	deadline := time.Now().Add(killBound)
	for service == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			fmt.Sscan(string(b), &service)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if service == 0 {
		t.Fatal("the service did not start")
	}
	t.Cleanup(func() { _ = syscall.Kill(service, syscall.SIGKILL) })
	p, logs := startSupervisor(t, cmd.Process.Pid, 700*time.Millisecond)
	if err := p.Feed(); err != nil {
		t.Fatal(err)
	}
	// Let the supervisor see the service once, then kill the daemon.
	time.Sleep(3 * snapshotInterval)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	_ = p.Close()
	<-p.Done()
	for time.Now().Before(deadline) {
		if syscall.Kill(service, 0) != nil {
			return // gone
		}
		// A zombie reaped by init counts as gone once its state says so.
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", service)); bytes.Contains(b, []byte(") Z ")) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the service (pid %d) outlived the watchdog; supervisor log:\n%s", service, logs)
}

// A pid the supervisor listed may be reused by an unrelated process once
// the one it listed is gone: the kill checks the start time and leaves
// such a process alone.
func TestFamilyKillSparesAReusedPid(t *testing.T) {
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	st, ok := statOf(cmd.Process.Pid)
	if !ok {
		t.Fatal("no /proc stat for the sleep")
	}
	f := &family{root: -1, self: os.Getpid(), pids: []proc{{pid: cmd.Process.Pid, start: st.start + 1}}}
	if n := f.kill(); n != 0 {
		t.Fatalf("killed %d processes listed with another start time", n)
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
		t.Fatalf("the process with the reused pid was killed: %v", err)
	}
	f.pids[0].start = st.start
	if n := f.kill(); n != 1 {
		t.Fatalf("killed %d, want the listed process", n)
	}
}

// The two ways of listing the daemon's descendants agree: the walk through
// the threads' children lists, and the scan of every process's parent. A
// shell that started two sleeps in its own session, one of them in a
// subshell of its own, is found with all its descendants by both.
func TestDescendantsWalkMatchesScan(t *testing.T) {
	if _, ok := descendantsByChildren(os.Getpid(), -1); !ok {
		t.Skip("the kernel has no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN): only the scan is used")
	}
	cmd := exec.Command("setsid", "sh", "-c", "sleep 300 & (sleep 300 & wait) & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	set := func(ps []proc) map[proc]bool {
		m := map[proc]bool{}
		for _, p := range ps {
			m[p] = true
		}
		return m
	}
	var walk, scan map[proc]bool
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		w, _ := descendantsByChildren(os.Getpid(), -1)
		walk, scan = set(w), set(descendantsByScan(os.Getpid(), -1))
		if len(walk) >= 4 && len(scan) >= 4 {
			break
		}
	}
	if len(walk) < 4 {
		t.Fatalf("the walk found %d descendants, want the shell, its subshell and two sleeps: %v", len(walk), walk)
	}
	for p := range scan {
		if !walk[p] {
			t.Errorf("the scan found %v, the walk did not (walk %v)", p, walk)
		}
	}
	for p := range walk {
		if !scan[p] {
			t.Errorf("the walk found %v, the scan did not (scan %v)", p, scan)
		}
	}
}
