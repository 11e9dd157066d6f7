package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mtcluster/mtc/test/testutil"
)

// openDir returns a directory every user may enter, removed after t.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mtc-status-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asNobody runs test (this binary's test of that name) again as user
// nobody with env added, from a copy of the binary in dir (the test
// binary may sit in a directory only root can enter), and returns what it
// printed.
func asNobody(t *testing.T, dir, test string, env ...string) string {
	t.Helper()
	self, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "daemon.test")
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, self)
	self.Close()
	if cerr := out.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, got)
	}
	return string(got)
}

// A user other than root who runs `mtc status` against a daemon's socket
// (mode 0660, root's) is told to run as root, not asked whether the
// daemon runs.
func TestStatusAsNonRootSaysPermissionDenied(t *testing.T) {
	if sock := os.Getenv("MTC_TEST_STATUS_SOCKET"); sock != "" {
		_, err := QueryStatus(context.Background(), sock)
		fmt.Printf("QUERY: %v\n", err)
		return
	}
	testutil.RequireRoot(t, "queries the status socket as another user")
	dir := openDir(t)
	sock := filepath.Join(dir, "unit.sock")
	l, err := ListenStatus(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := asNobody(t, dir, "TestStatusAsNonRootSaysPermissionDenied", "MTC_TEST_STATUS_SOCKET="+sock)
	if !strings.Contains(got, "QUERY: status socket "+sock+": permission denied: run as root") {
		t.Fatalf("a non-root query said:\n%s", got)
	}
}

// The status socket answers root only, by the caller's credentials: even
// with the socket and its directory open to everybody (a mode changed by
// mistake), a process of another user gets "permission denied: run as
// root" and no status.
func TestStatusSocketRootOnlyByPeerCredentials(t *testing.T) {
	if path := os.Getenv("MTC_PEERCRED_QUERY"); path != "" {
		_, err := QueryStatus(context.Background(), path)
		if errors.Is(err, ErrNotRoot) {
			fmt.Printf("REFUSED: %v\n", err)
			return
		}
		fmt.Printf("ANSWERED: %v\n", err)
		return
	}
	testutil.RequireRoot(t, "runs a query as another user")
	tc := newTestCluster(t, 2)
	dir := openDir(t)
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
	if s, err := QueryStatus(context.Background(), path); err != nil || s.Node != "n1" {
		t.Fatalf("root's query: %+v, %v", s.Node, err)
	}
	got := asNobody(t, dir, "TestStatusSocketRootOnlyByPeerCredentials", "MTC_PEERCRED_QUERY="+path)
	if !strings.HasPrefix(got, "REFUSED: ") || !strings.Contains(got, "permission denied: run as root (the caller is uid 65534)") {
		t.Fatalf("a query as uid 65534: %s", got)
	}
}
