// Package testutil holds helpers shared by the project's tests.
package testutil

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in continuous integration, where a
// test that cannot run is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips t when the process is not root, with a reason naming
// what the test needs. In CI it fails instead, so a missing privilege never
// turns into a silently green run.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatalf("needs root (%s) and CI=true: run the suite as root", why)
	}
	t.Skipf("needs root: %s; run as root (make test) to include it", why)
}
