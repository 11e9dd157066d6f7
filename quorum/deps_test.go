package quorum

import (
	"os/exec"
	"strings"
	"testing"
)

// The decision core depends on nothing with I/O: of this module only its
// own pure sub-packages and the timing bases, and no package outside the
// standard library. A configuration type that drags in the package
// runner's OS edges (netlink, lvm2, SG_IO) must not reach it.
func TestCoreDependsOnNothingWithIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	allowed := map[string]bool{
		"github.com/mtcluster/mtc/quorum":          true,
		"github.com/mtcluster/mtc/quorum/ident":    true,
		"github.com/mtcluster/mtc/quorum/liveness": true,
		"github.com/mtcluster/mtc/config/timing":   true,
	}
	for _, dep := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(dep, "/")
		if !strings.Contains(first, ".") || strings.HasPrefix(dep, "vendor/") {
			continue // the standard library
		}
		if !allowed[dep] {
			t.Errorf("package quorum depends on %s: the decision core must depend only on pure packages", dep)
		}
	}
}
