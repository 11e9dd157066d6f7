package daemon

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mtcluster/mtc/test/testutil"
)

// The status socket answers root only, by the caller's credentials: even
// with the socket and its directory open to everybody (a mode changed by
// mistake), a process of another user gets "permission denied: run as
// root" and no status.
func TestStatusSocketRootOnlyByPeerCredentials(t *testing.T) {
	if path := os.Getenv("MTC_PEERCRED_QUERY"); path != "" {
		// The child, running as nobody.
		_, err := QueryStatus(context.Background(), path)
		if errors.Is(err, ErrNotRoot) {
			os.Stdout.WriteString("REFUSED: " + err.Error())
			os.Exit(0)
		}
		os.Stdout.WriteString("ANSWERED: " + errString(err))
		os.Exit(0)
	}
	testutil.RequireRoot(t, "runs a query as another user")
	tc := newTestCluster(t, 2)
	// A directory everybody may enter (t.TempDir's parent is root's).
	dir, err := os.MkdirTemp("", "mtc-peercred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "unit.sock")
	l, err := ListenStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go tc.nodes[0].d.ServeStatus(l)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	// Root is answered.
	if s, err := QueryStatus(context.Background(), path); err != nil || s.Node != "n1" {
		t.Fatalf("root's query: %+v, %v", s.Node, err)
	}
	// The test binary's own directory is root's: run a copy nobody can
	// reach.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "daemon.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestStatusSocketRootOnlyByPeerCredentials$")
	cmd.Env = append(os.Environ(), "MTC_PEERCRED_QUERY="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the query as nobody did not run: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "REFUSED: ") || !strings.Contains(string(out), "permission denied: run as root (the caller is uid 65534)") {
		t.Fatalf("a query as uid 65534: %s", out)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
