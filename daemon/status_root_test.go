package daemon

import (
	"context"
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

// A user other than root who runs `mtc status` against a daemon's socket
// (mode 0660, root's) is told to run as root, not asked whether the
// daemon runs. The test runs its own binary again as user nobody.
func TestStatusAsNonRootSaysPermissionDenied(t *testing.T) {
	if sock := os.Getenv("MTC_TEST_STATUS_SOCKET"); sock != "" {
		_, err := QueryStatus(context.Background(), sock)
		fmt.Printf("QUERY: %v\n", err)
		return
	}
	testutil.RequireRoot(t, "queries the status socket as another user")
	dir, err := os.MkdirTemp("", "mtc-status-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "unit.sock")
	l, err := ListenStatus(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The test binary may sit in a directory only root can enter.
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
	cmd := exec.Command(bin, "-test.run=^TestStatusAsNonRootSaysPermissionDenied$")
	cmd.Env = append(os.Environ(), "MTC_TEST_STATUS_SOCKET="+sock)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), "QUERY: status socket "+sock+": permission denied: run as root") {
		t.Fatalf("a non-root query said:\n%s", got)
	}
}
