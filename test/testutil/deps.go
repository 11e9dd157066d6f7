package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// DependsOnlyOn checks that the package in the current directory, named
// name, depends on no module package but those allowed (itself included)
// and on nothing outside the standard library: what a pure decision core
// must hold to. It skips when `go list` cannot run.
func DependsOnlyOn(t *testing.T, name string, allowed ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	ok := make(map[string]bool, len(allowed))
	for _, a := range allowed {
		ok[a] = true
	}
	for _, dep := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(dep, "/")
		if !strings.Contains(first, ".") || strings.HasPrefix(dep, "vendor/") {
			continue // the standard library
		}
		if !ok[dep] {
			t.Errorf("package %s depends on %s: the decision core must depend only on pure packages", name, dep)
		}
	}
}
