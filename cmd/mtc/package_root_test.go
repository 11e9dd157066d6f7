package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/test/testutil"
)

// TestMain lets the root tests run this test binary as mtc (in a network
// namespace, as a separate process that outlives a command's return).
func TestMain(m *testing.M) {
	if os.Getenv("MTC_TEST_AS_MTC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// mtcIn returns the command running this binary as mtc in namespace ns.
func mtcIn(ns string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), "MTC_TEST_AS_MTC=1")
	return cmd
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// children lists the pids whose parent is pid and whose command line is
// argv.
func children(pid int, argv ...string) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil || string(cl) != strings.Join(argv, "\x00")+"\x00" {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+2:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, p)
		}
	}
	return out
}

// mtc package start, then halt, of a package with a VIP and a route on a
// interface of a fresh network namespace and a service: the OS state
// is checked after each, from outside the command.
func TestPackageStartHaltRoot(t *testing.T) {
	testutil.RequireRoot(t, "mtc package start adds addresses in a network namespace and runs a service")
	ns := fmt.Sprintf("mtcpkg%d", os.Getpid())
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	// The kernel here may lack the dummy driver: a veth pair inside the
	// namespace serves as the package's interface.
	sh(t, "ip", "-n", ns, "link", "add", "dummy0", "type", "veth", "peer", "name", "peer0")
	sh(t, "ip", "-n", ns, "link", "set", "peer0", "up")
	sh(t, "ip", "-n", ns, "link", "set", "dummy0", "up")

	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	doc := `name = "small"
nodes = ["alpha"]
[[ip]]
address = "10.99.0.50/24"
interface = "dummy0"
[[route]]
destination = "10.98.0.0/16"
gateway = "10.99.0.1"
metric = 7
` + strings.TrimPrefix(smallDoc, "name = \"small\"\nnodes = [\"alpha\"]\n")
	sock, state := smallPackage(t, cfg, doc)
	flags := []string{"--config", cfg, "--node", "alpha", "--socket", sock, "--state-dir", state, "small"}

	addr := func() string { return sh(t, "ip", "-n", ns, "-o", "addr", "show", "dev", "dummy0") }
	route := func() string { return sh(t, "ip", "-n", ns, "route", "show", "10.98.0.0/16") }

	start := mtcIn(ns, append([]string{"package", "start"}, flags...)...)
	stdout, err := start.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	start.Stderr = &stderr
	if err := start.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { start.Process.Kill(); start.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var startOut strings.Builder
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mtc package start ended before the package ran:\n%s\n%s", startOut.String(), stderr.String())
			}
			startOut.WriteString(l + "\n")
			if strings.HasPrefix(l, "package small running on alpha") {
				break wait
			}
		case <-deadline:
			t.Fatalf("mtc package start did not report the package running:\n%s\n%s", startOut.String(), stderr.String())
		}
	}
	for _, want := range []string{"start at ", ": ok in ", "ok        start    address 10.99.0.50/24", "route 10.98.0.0/16", "service sleeper"} {
		if !strings.Contains(startOut.String(), want) {
			t.Errorf("start timeline lacks %q:\n%s", want, startOut.String())
		}
	}
	t.Logf("start:\n%s", startOut.String())
	if a := addr(); !strings.Contains(a, "inet 10.99.0.50/24") {
		t.Errorf("after start, dummy0 lacks the VIP:\n%s", a)
	}
	if r := route(); !strings.Contains(r, "via 10.99.0.1 dev dummy0") || !strings.Contains(r, "metric 7") {
		t.Errorf("after start, the route is missing: %q", r)
	}
	sleepers := children(start.Process.Pid, "/bin/sleep", "1000")
	if len(sleepers) != 1 {
		t.Errorf("after start, %d sleep 1000 children of the runner (pid %d), want 1", len(sleepers), start.Process.Pid)
	}

	out, err := mtcIn(ns, append([]string{"package", "status"}, flags...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("package small on alpha: running (supervised by pid %d)", start.Process.Pid)) {
		t.Errorf("status: %v\n%s", err, out)
	}

	// A second start is refused while the first supervises the package.
	out, err = mtcIn(ns, append([]string{"package", "start"}, flags...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already started by hand on this node") {
		t.Errorf("second start: %v\n%s", err, out)
	}

	out, err = mtcIn(ns, append([]string{"package", "halt"}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("halt: %v\n%s", err, out)
	}
	t.Logf("halt:\n%s", out)
	for _, want := range []string{"halt at ", ": ok in ", "service sleeper", "address 10.99.0.50/24"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("halt timeline lacks %q:\n%s", want, out)
		}
	}
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- start.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mtc package start exited with %v after the halt:\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("mtc package start still runs after the halt")
	}
	if a := addr(); strings.Contains(a, "10.99.0.50") {
		t.Errorf("after halt, dummy0 still has the VIP:\n%s", a)
	}
	if r := route(); strings.TrimSpace(r) != "" {
		t.Errorf("after halt, the route is still there: %q", r)
	}
	for _, p := range sleepers {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); !strings.Contains(string(st), ") Z") {
				t.Errorf("after halt, the service (pid %d) still runs", p)
			}
		}
	}

	// Halting again, with no runner, runs the halt plan here: nothing to
	// do, and it says so step by step.
	out, err = mtcIn(ns, append([]string{"package", "halt"}, flags...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok in ") {
		t.Errorf("second halt: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(state, "small.json")); err != nil {
		t.Errorf("state file: %v", err)
	}
	_ = io.Discard
}

// A start whose pre_start script fails exits 1, prints the failed step and
// the rollback, and leaves nothing behind.
func TestPackageStartRollbackRoot(t *testing.T) {
	testutil.RequireRoot(t, "mtc package start adds addresses in a network namespace")
	ns := fmt.Sprintf("mtcpkgrb%d", os.Getpid())
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, "ip", "-n", ns, "link", "add", "vip0", "type", "veth", "peer", "name", "peer0")
	sh(t, "ip", "-n", ns, "link", "set", "peer0", "up")
	sh(t, "ip", "-n", ns, "link", "set", "vip0", "up")
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	sock, state := smallPackage(t, cfg, `name = "small"
nodes = ["alpha"]
[[ip]]
address = "fd00:99::50/64"
interface = "vip0"
[scripts.pre_start]
command = ["/bin/false"]
timeout = "5s"
`)
	out, err := mtcIn(ns, "package", "start", "--config", cfg, "--node", "alpha", "--socket", sock, "--state-dir", state, "small").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("start: %v, want exit status 1\n%s", err, out)
	}
	t.Logf("start:\n%s", out)
	for _, want := range []string{"ok        start    address fd00:99::50/64", "failed    start    pre_start", "ok        rollback"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if a := sh(t, "ip", "-n", ns, "-o", "addr", "show", "dev", "vip0"); strings.Contains(a, "fd00:99::50") {
		t.Errorf("after the rollback, vip0 still has the address:\n%s", a)
	}
}
