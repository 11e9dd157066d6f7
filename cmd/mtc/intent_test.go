package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/daemon"
)

// fakeCluster is a cluster file of three nodes, alpha, beta and gamma, on
// 127.0.0.1, .2 and .3, whose daemons are fake control servers: a node
// with a handler answers with it, the others are unreachable. It records
// the requests each node received.
type fakeCluster struct {
	cfg string
	mu  sync.Mutex
	got []fakeRequest
}

type fakeRequest struct {
	node string
	req  control.Request
}

var fakeUUID = "0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90"

func newFakeCluster(t *testing.T, handlers map[string]control.Handler) *fakeCluster {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(key, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeCluster{}
	ls, port := listenAll(t)
	cfg := strings.NewReplacer("/etc/mtc/cluster.key", key, "QDISK", filepath.Join(dir, "quorum.img"), "10.0.0.", "127.0.0.").Replace(testConfig) +
		fmt.Sprintf("\n[control]\nport = %d\n", port)
	f.cfg = filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"alpha", "beta", "gamma"} {
		h, ok := handlers[name]
		if !ok {
			ls[i].Close() // unreachable: connection refused
			continue
		}
		srv, err := control.NewServer(control.ServerConfig{Cluster: mustUUID(t, fakeUUID), Node: name, Key: bytes.Repeat([]byte{7}, 32),
			Log: slog.New(slog.DiscardHandler), Handler: func(ctx context.Context, req control.Request) (any, error) {
				f.mu.Lock()
				f.got = append(f.got, fakeRequest{name, req})
				f.mu.Unlock()
				return h(ctx, req)
			}})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ls[i])
		t.Cleanup(func() { ls[i].Close() })
	}
	return f
}

// listenAll listens on one port on 127.0.0.1, .2 and .3.
func listenAll(t *testing.T) ([]net.Listener, int) {
	t.Helper()
	for try := 0; try < 20; try++ {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l1.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l1}
		for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == 3 {
			return ls, port
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatal("no port free on 127.0.0.1-3")
	return nil, 0
}

// requests are the requests received, in order, as "node command".
func (f *fakeCluster) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// mtc runs mtc with args plus --config and returns its exit status and
// output.
func (f *fakeCluster) mtc(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append(args, "--config", f.cfg), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// answer is a handler answering res (or err) to every request.
func answer(res any, err error) control.Handler {
	return func(context.Context, control.Request) (any, error) { return res, err }
}

func intentArgs(t *testing.T, r fakeRequest) daemon.IntentArgs {
	t.Helper()
	if r.req.Command != daemon.CommandIntent {
		t.Fatalf("%s got command %q, want %q", r.node, r.req.Command, daemon.CommandIntent)
	}
	var a daemon.IntentArgs
	if err := json.Unmarshal(r.req.Args, &a); err != nil {
		t.Fatalf("intent args %s: %v", r.req.Args, err)
	}
	return a
}

// asHost makes this machine's host name name for the test.
func asHost(t *testing.T, name string) {
	old := hostname
	hostname = func() (string, error) { return name, nil }
	t.Cleanup(func() { hostname = old })
}

var dbRunning = daemon.PackageView{Name: "db", Owner: "beta", State: "running", Target: "beta", Switching: true,
	Since: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}

// Every command sends its intent, with the package, node and wait it was
// given, to the node named like this host; a done outcome exits 0 and
// prints what happened and the package's line.
func TestIntentCommands(t *testing.T) {
	asHost(t, "alpha")
	for _, c := range []struct {
		args []string
		want daemon.IntentArgs
		says string
	}{
		{[]string{"run", "db"}, daemon.IntentArgs{Kind: daemon.IntentRun, Package: "db", Wait: time.Minute}, "run db: done"},
		{[]string{"run", "db", "--on", "beta", "--wait", "5s"}, daemon.IntentArgs{Kind: daemon.IntentRun, Package: "db", Node: "beta", Wait: 5 * time.Second}, "run db on beta: done"},
		{[]string{"halt", "db", "--no-wait"}, daemon.IntentArgs{Kind: daemon.IntentHalt, Package: "db"}, "halt db: done"},
		{[]string{"move", "db", "--to", "beta"}, daemon.IntentArgs{Kind: daemon.IntentMove, Package: "db", Node: "beta", Wait: time.Minute}, "move db to beta: done in 3.2s (intent 17, committed by gamma)"},
		{[]string{"enable", "db"}, daemon.IntentArgs{Kind: daemon.IntentEnable, Package: "db"}, "enable db: done"},
		{[]string{"disable", "db"}, daemon.IntentArgs{Kind: daemon.IntentDisable, Package: "db"}, "disable db: done"},
		{[]string{"maintenance", "db", "on"}, daemon.IntentArgs{Kind: daemon.IntentMaintenanceOn, Package: "db"}, "maintenance db on: done"},
		{[]string{"maintenance", "db", "off", "--wait", "2s"}, daemon.IntentArgs{Kind: daemon.IntentMaintenanceOff, Package: "db", Wait: 2 * time.Second}, "maintenance db off: done"},
		{[]string{"node", "drain", "beta"}, daemon.IntentArgs{Kind: daemon.IntentDrain, Node: "beta", Wait: time.Minute}, "node drain beta: done"},
		{[]string{"node", "undrain", "beta"}, daemon.IntentArgs{Kind: daemon.IntentUndrain, Node: "beta"}, "node undrain beta: done"},
		{[]string{"clear", "db"}, daemon.IntentArgs{Kind: daemon.IntentClear, Package: "db"}, "clear db: done"},
		{[]string{"clear", "db", "--node", "gamma"}, daemon.IntentArgs{Kind: daemon.IntentClear, Package: "db", Node: "gamma"}, "clear db on gamma: done"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := daemon.IntentResult{ID: 17, Kind: c.want.Kind, Coordinator: "gamma", Outcome: daemon.OutcomeDone, Took: 3210 * time.Millisecond,
				Packages: []daemon.PackageView{dbRunning}}
			f := newFakeCluster(t, map[string]control.Handler{"alpha": answer(res, nil), "beta": answer(res, nil)})
			code, out, errOut := f.mtc(t, c.args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			got := f.requests()
			if len(got) != 1 || got[0].node != "alpha" {
				t.Fatalf("requests %+v, want one to alpha", got)
			}
			if a := intentArgs(t, got[0]); a != c.want {
				t.Errorf("sent %+v, want %+v", a, c.want)
			}
			if to := got[0].req.Timeout; to != c.want.Wait+commitTime {
				t.Errorf("handler timeout %v for wait %v", to, c.want.Wait)
			}
			if !strings.Contains(out, c.says) || !strings.Contains(out, "(intent 17, committed by gamma)") {
				t.Errorf("output lacks %q:\n%s", c.says, out)
			}
			if !strings.Contains(strings.Join(strings.Fields(out), " "), "db running beta") {
				t.Errorf("output lacks the package's line:\n%s", out)
			}
		})
	}
}

// The node named like this host is asked first; when it does not answer
// the others are asked in turn, and one that cannot reach a quorate
// coordinator is passed over too.
func TestIntentFallsBackToOtherNodes(t *testing.T) {
	asHost(t, "beta")
	done := daemon.IntentResult{ID: 3, Coordinator: "gamma", Outcome: daemon.OutcomeDone}
	notQuorate := &control.CodedError{Code: daemon.CodeNotQuorate, Err: errors.New("node alpha holds no quorum: retry once the cluster is quorate")}
	f := newFakeCluster(t, map[string]control.Handler{"alpha": answer(nil, notQuorate), "gamma": answer(done, nil)})
	code, out, errOut := f.mtc(t, "halt", "db")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var nodes []string
	for _, r := range f.requests() {
		nodes = append(nodes, r.node)
	}
	if !slices.Equal(nodes, []string{"alpha", "gamma"}) {
		t.Fatalf("asked %v (beta unreachable first), want alpha then gamma", nodes)
	}
	if !strings.Contains(out, "halt db: done") {
		t.Fatalf("output:\n%s", out)
	}
	// --via names the node to ask first.
	f = newFakeCluster(t, map[string]control.Handler{"alpha": answer(done, nil), "gamma": answer(done, nil)})
	if code, _, errOut := f.mtc(t, "halt", "db", "--via", "gamma"); code != exitOK || f.requests()[0].node != "gamma" {
		t.Fatalf("--via gamma: exit %d (%s), asked %+v", code, errOut, f.requests())
	}
}

// The exit status tells refused (4), not done in time (5) and no quorum
// (6) apart; the daemon's message reaches the operator.
func TestIntentExitStatus(t *testing.T) {
	asHost(t, "alpha")
	inMaint := &control.CodedError{Code: daemon.CodeRefused, Err: errors.New("package db is in maintenance: run `mtc maintenance db off` first")}
	notQuorate := &control.CodedError{Code: daemon.CodeNotQuorate, Err: errors.New("no quorate coordinator")}
	for _, c := range []struct {
		name     string
		handlers map[string]control.Handler
		args     []string
		code     int
		stderr   []string
		stdout   []string
	}{
		{name: "refused", handlers: map[string]control.Handler{"alpha": answer(nil, inMaint)}, args: []string{"move", "db", "--to", "beta"},
			code: exitRefused, stderr: []string{"move db to beta: package db is in maintenance: run `mtc maintenance db off` first (answered by alpha)"}},
		{name: "unknown package", handlers: map[string]control.Handler{"alpha": answer(nil, &control.CodedError{Code: daemon.CodeUnknownPackage, Err: errors.New("no package dbx")})},
			args: []string{"run", "dbx"}, code: exitRefused, stderr: []string{"no package dbx"}},
		{name: "rejected", handlers: map[string]control.Handler{"alpha": answer(daemon.IntentResult{ID: 4, Coordinator: "alpha", Outcome: daemon.OutcomeRejected,
			Reason: "beta is drained: run `mtc node undrain beta` first"}, nil)}, args: []string{"move", "db", "--to", "beta"},
			code: exitRefused, stderr: []string{"rejected, nothing changed: beta is drained: run `mtc node undrain beta` first"}, stdout: []string{"move db to beta: rejected"}},
		{name: "not done", handlers: map[string]control.Handler{"alpha": answer(daemon.IntentResult{ID: 5, Coordinator: "alpha", Outcome: daemon.OutcomeCommitted,
			Reason: "waiting for the fence of gamma", Packages: []daemon.PackageView{{Name: "db", State: "halted", Target: "beta", Switching: true, Waiting: "waiting for the fence of gamma"}}}, nil)},
			args: []string{"run", "db", "--wait", "2s"}, code: exitNotDone,
			stderr: []string{"run db: committed, but not done within 2s: waiting for the fence of gamma", "mtc status --watch"},
			stdout: []string{"run db: committed", "still waiting: waiting for the fence of gamma"}},
		{name: "committed without waiting", handlers: map[string]control.Handler{"alpha": answer(daemon.IntentResult{ID: 6, Coordinator: "alpha", Outcome: daemon.OutcomeCommitted, Reason: "starting on beta"}, nil)},
			args: []string{"run", "db", "--no-wait"}, code: exitOK, stdout: []string{"run db: committed", "not waited for: starting on beta"}},
		{name: "not quorate", handlers: map[string]control.Handler{"alpha": answer(nil, notQuorate), "beta": answer(nil, notQuorate)},
			args: []string{"halt", "db"}, code: exitNoQuorum, stderr: []string{"halt db: no daemon could commit it", "no quorate coordinator", "node unreachable: gamma"}},
		{name: "nobody answers", handlers: map[string]control.Handler{}, args: []string{"node", "drain", "beta"},
			code: exitNoQuorum, stderr: []string{"node drain beta: no daemon could commit it", "node unreachable: alpha", "node unreachable: beta", "node unreachable: gamma"}},
		{name: "unknown node", handlers: map[string]control.Handler{"alpha": answer(daemon.IntentResult{Outcome: daemon.OutcomeDone}, nil)}, args: []string{"move", "db", "--to", "zeta"},
			code: exitRefused, stderr: []string{"move db to zeta: node zeta is not in", "(its nodes: alpha, beta, gamma)"}},
		{name: "other error", handlers: map[string]control.Handler{"alpha": answer(nil, errors.New("disk on fire"))}, args: []string{"enable", "db"},
			code: exitFailed, stderr: []string{"enable db: disk on fire (answered by alpha)"}},
		{name: "bad wait", handlers: map[string]control.Handler{}, args: []string{"run", "db", "--wait=-1s"}, code: exitUsage, stderr: []string{"--wait -1s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCluster(t, c.handlers)
			code, out, errOut := f.mtc(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout %s\nstderr %s", code, c.code, out, errOut)
			}
			for _, w := range c.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, w := range c.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if c.name == "unknown node" && len(f.requests()) != 0 {
				t.Errorf("an unknown node was sent: %+v", f.requests())
			}
		})
	}
}

// --json prints the daemon's answer as it is, and keeps the exit status.
func TestIntentJSON(t *testing.T) {
	asHost(t, "alpha")
	res := daemon.IntentResult{ID: 9, Kind: daemon.IntentMove, Package: "db", Node: "beta", Coordinator: "alpha", Outcome: daemon.OutcomeCommitted,
		Reason: "halting on alpha", Took: time.Second, Packages: []daemon.PackageView{dbRunning}}
	f := newFakeCluster(t, map[string]control.Handler{"alpha": answer(res, nil)})
	code, out, _ := f.mtc(t, "move", "db", "--to", "beta", "--wait", "1s", "--json")
	var got daemon.IntentResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if code != exitNotDone || got.ID != 9 || got.Reason != "halting on alpha" || len(got.Packages) != 1 || got.Packages[0].Owner != "beta" {
		t.Fatalf("exit %d, %+v", code, got)
	}
	f = newFakeCluster(t, map[string]control.Handler{"alpha": answer(nil, &control.CodedError{Code: daemon.CodeRefused, Err: errors.New("in maintenance")})})
	code, out, _ = f.mtc(t, "halt", "db", "--json")
	var e struct{ Error, Code, Node string }
	if err := json.Unmarshal([]byte(out), &e); err != nil || code != exitRefused || e.Code != daemon.CodeRefused || e.Error != "in maintenance" || e.Node != "alpha" {
		t.Fatalf("exit %d, %q (%v)", code, out, err)
	}
}

// A daemon answering with another cluster key is not believed.
func TestIntentWrongKey(t *testing.T) {
	asHost(t, "alpha")
	f := newFakeCluster(t, map[string]control.Handler{"alpha": answer(daemon.IntentResult{Outcome: daemon.OutcomeDone}, nil)})
	cfg, _ := os.ReadFile(f.cfg)
	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, bytes.Repeat([]byte{8}, 32), 0o600)
	os.WriteFile(f.cfg, bytes.Replace(cfg, []byte(filepath.Join(filepath.Dir(f.cfg), "cluster.key")), []byte(other), 1), 0o644)
	code, _, errOut := f.mtc(t, "halt", "db")
	if code != exitFailed || !strings.Contains(errOut, "authentication failed") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A daemon that takes the request and never answers: the command gives up
// after --wait and the margins, and says the intent may have been
// committed (exit 1, not 6: something may have changed).
func TestIntentNoAnswer(t *testing.T) {
	asHost(t, "alpha")
	oldCommit, oldCall := commitTime, callTime
	commitTime, callTime = 500*time.Millisecond, 300*time.Millisecond
	defer func() { commitTime, callTime = oldCommit, oldCall }()
	release := make(chan struct{})
	defer close(release)
	f := newFakeCluster(t, map[string]control.Handler{"alpha": func(context.Context, control.Request) (any, error) {
		<-release // ignores its deadline, as a hung daemon would
		return daemon.IntentResult{Outcome: daemon.OutcomeDone}, nil
	}, "beta": answer(daemon.IntentResult{Outcome: daemon.OutcomeDone}, nil)})
	code, _, errOut := f.mtc(t, "disable", "db")
	if code != exitFailed || !strings.Contains(errOut, "disable db: no answer within 800ms: the command may have been committed") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if r := f.requests(); len(r) != 1 {
		t.Fatalf("asked %d nodes after a request was taken: %+v", len(r), r)
	}
}
