package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/test/testutil"
)

var (
	linuxOnce  sync.Once
	linuxProcs *Linux
	linuxErr   error
)

func procs(t *testing.T) *Linux {
	t.Helper()
	linuxOnce.Do(func() { linuxProcs, linuxErr = NewLinux() })
	if linuxErr != nil {
		t.Fatal(linuxErr)
	}
	return linuxProcs
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z'
}

// TestSubreaperCatchesOrphans: a service forks a child that outlives its
// parent; the orphan stays in the service's session, is killed at the halt
// and reaped.
func TestSubreaperCatchesOrphans(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "orphan.pid")
	sup := NewSupervisor(procs(t), "pkg", nil)
	spec := Spec{Name: "forker", Argv: []string{"sh", "-c", "sh -c 'sleep 600 & echo $! > " + pidfile + "'; exec sleep 600"}, HaltTimeout: time.Second}
	if err := sup.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	var orphan int
	waitFor(t, "the orphan's pid", func() bool {
		b, err := os.ReadFile(pidfile)
		orphan, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && orphan > 0
	})
	waitFor(t, "the orphan to be reparented to us", func() bool {
		st, ok := readStat(orphan)
		return ok && st.ppid == os.Getpid()
	})
	if err := sup.Stop(context.Background(), "forker"); err != nil {
		t.Fatal(err)
	}
	if alive(orphan) {
		t.Errorf("orphan %d survived the halt", orphan)
	}
	if _, ok := readStat(orphan); ok {
		t.Errorf("orphan %d was not reaped", orphan)
	}
}

// TestHaltTERMThenKILL: a service that ignores SIGTERM is killed at its
// halt timeout.
func TestHaltTERMThenKILL(t *testing.T) {
	sup := NewSupervisor(procs(t), "pkg", nil)
	spec := Spec{Name: "stubborn", Argv: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"}, HaltTimeout: 200 * time.Millisecond}
	if err := sup.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	pid := sup.Status("stubborn").PID
	time.Sleep(50 * time.Millisecond) // let the shell install its trap
	start := time.Now()
	if err := sup.Stop(context.Background(), "stubborn"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("stopped after %v: SIGTERM was not ignored, so the test proves nothing", d)
	}
	if alive(pid) {
		t.Error("still alive")
	}
}

// TestRestartWithBackoffThenFail: a service that exits at once is
// restarted Restarts times with doubling delays, then failed.
func TestRestartWithBackoffThenFail(t *testing.T) {
	sup := NewSupervisor(procs(t), "pkg", nil)
	failed := make(chan error, 1)
	sup.OnFailed = func(_ string, err error) { failed <- err }
	dir := t.TempDir()
	log := filepath.Join(dir, "starts")
	spec := Spec{Name: "crasher", Argv: []string{"sh", "-c", "date +%s.%N >> " + log + "; sleep 0.05; exit 3"}, Restarts: 3, RestartDelay: 40 * time.Millisecond}
	if err := sup.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("not failed")
	}
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "exit") {
		t.Errorf("failure %v", err)
	}
	st := sup.Status("crasher")
	if st.State != Failed || st.Restarts != 3 {
		t.Errorf("status %+v, want failed after 3 restarts", st)
	}
	b, _ := os.ReadFile(log)
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Errorf("%d starts, want 4", n)
	}
	if got := []time.Duration{spec.Backoff(1), spec.Backoff(2), spec.Backoff(3)}; got[0] != 40*time.Millisecond || got[1] != 80*time.Millisecond || got[2] != 160*time.Millisecond {
		t.Errorf("backoff %v", got)
	}
	if err := sup.Stop(context.Background(), "crasher"); err != nil {
		t.Errorf("Stop of a failed service: %v", err)
	}
}

// TestHealthCheckFailureRestarts: a running service whose health check
// fails is stopped and started again.
func TestHealthCheckFailureRestarts(t *testing.T) {
	dir := t.TempDir()
	healthy := filepath.Join(dir, "healthy")
	os.WriteFile(healthy, nil, 0o644)
	sup := NewSupervisor(procs(t), "pkg", nil)
	spec := Spec{Name: "svc", Argv: []string{"sleep", "600"}, Health: []string{"test", "-e", healthy},
		HealthInterval: 20 * time.Millisecond, Restarts: 5, RestartDelay: 10 * time.Millisecond, HaltTimeout: time.Second}
	if err := sup.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	first := sup.Status("svc").PID
	os.Remove(healthy)
	waitFor(t, "a restart", func() bool { return sup.Status("svc").Restarts > 0 })
	os.WriteFile(healthy, nil, 0o644)
	waitFor(t, "running again", func() bool { return sup.Status("svc").State == Running })
	if alive(first) {
		t.Error("the unhealthy instance still runs")
	}
	if st := sup.Status("svc"); st.PID == first || !strings.Contains(st.LastFailure, "exit status 1") {
		t.Errorf("status %+v", st)
	}
	sup.Stop(context.Background(), "svc")
}

// A FailFast service fails at its first exit.
func TestFailFast(t *testing.T) {
	sup := NewSupervisor(procs(t), "pkg", nil)
	failed := make(chan error, 1)
	sup.OnFailed = func(_ string, err error) { failed <- err }
	if err := sup.Start(context.Background(), Spec{Name: "ff", Argv: []string{"sh", "-c", "sleep 0.05; exit 1"}, Restarts: 10, FailFast: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("not failed")
	}
	if st := sup.Status("ff"); st.Restarts != 0 {
		t.Errorf("restarted %d times", st.Restarts)
	}
}

// TestScript: environment, exit status and timeout (the script's
// background child dies with it).
func TestScript(t *testing.T) {
	ctx := context.Background()
	p := procs(t)
	out := filepath.Join(t.TempDir(), "env")
	if err := RunScript(ctx, p, nil, Script{Name: "env", Argv: []string{"sh", "-c", "echo $MTC_X > " + out}, Env: []string{"MTC_X=yes"}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "yes" {
		t.Errorf("environment: %q", b)
	}
	var ee *ExitError
	if err := RunScript(ctx, p, nil, Script{Name: "fail", Argv: []string{"sh", "-c", "exit 4"}}); !errors.As(err, &ee) || ee.Code != 4 {
		t.Errorf("exit status: %v", err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	err := RunScript(ctx, p, nil, Script{Name: "hang", Argv: []string{"sh", "-c", "sleep 600 & echo $! > " + pidfile + "; wait"}, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("timeout: %v", err)
	}
	b, _ := os.ReadFile(pidfile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid == 0 || alive(pid) {
		t.Errorf("the script's child %q survived its timeout", b)
	}
	if err := RunScript(ctx, p, nil, Script{Name: "missing", Argv: []string{"/nonexistent/script"}}); err == nil {
		t.Error("a missing script ran")
	}
}

// The fake's processes obey the same rules as real ones where the
// supervisor can tell.
func TestFakeUnkillable(t *testing.T) {
	f := NewFake(func([]string) Behavior { return Behavior{Run: true, Unkillable: true} })
	sup := NewSupervisor(f, "pkg", nil)
	if err := sup.Start(context.Background(), Spec{Name: "d", Argv: []string{"dd"}, HaltTimeout: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := sup.Stop(context.Background(), "d"); !errors.Is(err, ErrUnkillable) || !strings.Contains(err.Error(), "node must be reset") {
		t.Errorf("Stop of an unkillable process: %v", err)
	}
}

func TestParseAgent(t *testing.T) {
	a, err := ParseAgent("ocf:heartbeat:IPaddr2")
	if err != nil || a.Path() != "/usr/lib/ocf/resource.d/heartbeat/IPaddr2" {
		t.Errorf("%v %v", a.Path(), err)
	}
	for _, bad := range []string{"heartbeat:IPaddr2", "ocf::x", "ocf:heartbeat:../../bin/sh", "lsb:foo:bar"} {
		if _, err := ParseAgent(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	env := strings.Join(Agent{Provider: "heartbeat", Type: "Dummy", Params: map[string]string{"state": "/x", "fake": "y"}}.env("pkg-d", "monitor"), " ")
	for _, want := range []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=pkg-d", "OCF_RESKEY_state=/x", "OCF_RESKEY_fake=y", "OCF_RESKEY_CRM_meta_timeout=20000"} {
		if !strings.Contains(env, want) {
			t.Errorf("agent environment lacks %s: %s", want, env)
		}
	}
}

// An agent's exit codes map to running, not running and errors; a hung
// action times out. The agent here is a script written by the test.
func TestAgentCodes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "resource.d", "test")
	os.MkdirAll(dir, 0o755)
	script := `#!/bin/sh
case "$1" in
start) exit ${OCF_RESKEY_start_rc:-0};;
monitor) [ -n "$OCF_RESKEY_hang" ] && sleep 600; exit ${OCF_RESKEY_monitor_rc:-0};;
stop) exit 0;;
esac
exit 3
`
	os.WriteFile(filepath.Join(dir, "Fake"), []byte(script), 0o755)
	ctx := context.Background()
	for _, tc := range []struct {
		params map[string]string
		action string
		code   int
	}{
		{nil, "monitor", OCFSuccess},
		{map[string]string{"monitor_rc": "7"}, "monitor", OCFNotRunning},
		{map[string]string{"start_rc": "5"}, "start", OCFErrInstalled},
		{nil, "reload", OCFErrUnimpl},
	} {
		a := Agent{Provider: "test", Type: "Fake", Root: root, Params: tc.params}
		code, err := a.Action(ctx, procs(t), Cmd{}, "x", tc.action)
		if err != nil || code != tc.code {
			t.Errorf("%s %v: %s, %v; want %s", tc.action, tc.params, OCFCodeName(code), err, OCFCodeName(tc.code))
		}
	}
	a := Agent{Provider: "test", Type: "Fake", Root: root, Params: map[string]string{"hang": "1"}, MonitorTimeout: 100 * time.Millisecond}
	if _, err := a.Action(ctx, procs(t), Cmd{}, "x", "monitor"); !errors.Is(err, ErrTimeout) {
		t.Errorf("hung monitor: %v", err)
	}
	// A start that fails is not running: Start reports it, typed.
	sup := NewSupervisor(procs(t), "pkg", nil)
	bad := Agent{Provider: "test", Type: "Fake", Root: root, Params: map[string]string{"start_rc": "6"}}
	var oe *OCFError
	if err := sup.Start(ctx, Spec{Name: "a", Agent: &bad}); !errors.As(err, &oe) || oe.Code != OCFErrConfigured {
		t.Errorf("start of a misconfigured agent: %v", err)
	}
}

// A service with User runs as that account.
func TestServiceUser(t *testing.T) {
	testutil.RequireRoot(t, "starts a process as another user")
	sup := NewSupervisor(procs(t), "pkg", nil)
	if err := sup.Start(context.Background(), Spec{Name: "u", Argv: []string{"sleep", "600"}, User: "nobody", HaltTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	defer sup.Stop(context.Background(), "u")
	status, err := os.ReadFile("/proc/" + strconv.Itoa(sup.Status("u").PID) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	want, err := credential("nobody")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] != strconv.Itoa(int(want.Uid)) {
			t.Errorf("runs as uid %s, want %d", f[1], want.Uid)
		}
	}
	if _, err := credential("no-such-user-here"); err == nil {
		t.Error("an unknown user accepted")
	}
}

// Orphans of a running service that exit are reaped while it runs, not
// left as zombies until the halt.
func TestOrphansReapedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "orphan.pid")
	sup := NewSupervisor(procs(t), "pkg", nil)
	spec := Spec{Name: "forker", Argv: []string{"sh", "-c", "sh -c 'sleep 0.2 & echo $! > " + pidfile + "'; exec sleep 600"},
		HealthInterval: 20 * time.Millisecond, HaltTimeout: time.Second}
	if err := sup.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	defer sup.Stop(context.Background(), "forker")
	var orphan int
	waitFor(t, "the orphan's pid", func() bool {
		b, err := os.ReadFile(pidfile)
		orphan, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && orphan > 0
	})
	waitFor(t, "the orphan to exit and be reaped", func() bool {
		_, ok := readStat(orphan)
		return !ok
	})
}
