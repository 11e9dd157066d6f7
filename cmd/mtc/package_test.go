package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/pkgrun"
)

// smallPackage writes a package file into the packages directory beside
// cfg and returns the path of a socket nobody listens on and a state dir.
func smallPackage(t *testing.T, cfg, doc string) (sock, state string) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(cfg), "packages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "small.toml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(cfg), "none.sock"), filepath.Join(filepath.Dir(cfg), "state")
}

const smallDoc = `name = "small"
nodes = ["alpha"]
[[service]]
name = "sleeper"
command = ["/bin/sleep", "1000"]
halt_timeout = "2s"
`

// A running daemon (its status socket answers) refuses a by-hand start,
// before anything is touched.
func TestPackageStartRefusedWhileDaemonRuns(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	_, state := smallPackage(t, cfg, smallDoc)
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			json.NewEncoder(c).Encode(daemon.Status{Cluster: "payments", PID: 4242})
			c.Close()
		}
	}()
	_, err = runCLI(t, "package", "start", "--config", cfg, "--node", "alpha", "--socket", sock, "--state-dir", state, "small")
	if err == nil || !strings.Contains(err.Error(), "the cluster daemon of payments runs on this node (pid 4242") || !strings.Contains(err.Error(), "stop the daemon first") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state dir created although refused: %v", err)
	}
}

func TestPackageRefusals(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	sock, state := smallPackage(t, cfg, smallDoc)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node", "gamma", "small"}, "package small may not run on node gamma (its nodes: alpha); add the node to nodes in"},
		{[]string{"--node", "omega", "small"}, `"omega" is not a node of cluster payments: pass --node NAME`},
		{[]string{"--node", "alpha", "big"}, `no package "big" in`},
	} {
		args := append([]string{"package", "start", "--config", cfg, "--socket", sock, "--state-dir", state}, tc.args...)
		if _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
	// An invalid package is refused with its problems.
	smallPackage(t, cfg, strings.Replace(smallDoc, `"/bin/sleep"`, `"/nonexistent/sleep"`, 1))
	_, err := runCLI(t, "package", "start", "--config", cfg, "--socket", sock, "--state-dir", state, "--node", "alpha", "small")
	if err == nil || !strings.Contains(err.Error(), "small.toml:5:12: service[0].command[0]: the command /nonexistent/sleep does not exist") {
		t.Errorf("got %v", err)
	}
}

func TestPackageStatusNeverStarted(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	sock, state := smallPackage(t, cfg, smallDoc)
	out, err := runCLI(t, "package", "status", "--config", cfg, "--socket", sock, "--state-dir", state, "--node", "alpha", "small")
	if err != nil || !strings.Contains(out, "package small has not been started by hand on this node") {
		t.Errorf("got %v: %s", err, out)
	}
}

// A refused takeover says what to do.
func TestPackageExplainsRefusals(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("activate VG vg1: %w", lvm.ErrNoProof), "halt the package on the node that owns it"},
		{fmt.Errorf("activate VG vg1: %w", lvm.ErrOwnedByLiveMember), "never takes a volume group over from another node"},
		{fmt.Errorf("activate VG vg1: %w", lvm.ErrForeignOwner), "belongs to a system outside this cluster"},
		{fmt.Errorf("halt: %w", pkgrun.ErrNodeMustReset), "until this one is rebooted"},
	} {
		got := explain(tc.err)
		if !errors.Is(got, tc.err) || !strings.Contains(got.Error(), tc.want) {
			t.Errorf("explain(%v) = %v, want it to wrap the error and say %q", tc.err, got, tc.want)
		}
	}
}
