package placement

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/test/testutil"
)

// The placement machine depends on nothing with I/O: of this module only
// the quorum machine's pure packages, and no package outside the standard
// library. The configuration package, which pulls in the package runner's
// OS edges (netlink, lvm2, SG_IO), must not reach it: placement has its
// own definition type and placement/fromconfig converts.
func TestDependsOnNothingWithIO(t *testing.T) {
	testutil.DependsOnlyOn(t, "placement",
		"github.com/mtcluster/mtc/placement",
		"github.com/mtcluster/mtc/quorum",
		"github.com/mtcluster/mtc/quorum/ident",
		"github.com/mtcluster/mtc/quorum/liveness",
		"github.com/mtcluster/mtc/config/timing")
}

// Of the standard library, the machine imports nothing that reaches the
// OS (fmt does, for Printf to files, which the machine never calls).
func TestImportsNoOS(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		switch imp {
		case "os", "os/exec", "os/signal", "net", "net/netip", "syscall", "io/fs", "io/ioutil", "log", "log/slog", "math/rand", "math/rand/v2", "crypto/rand", "sync", "unsafe":
			t.Errorf("package placement imports %s: the decision core takes every input from Step", imp)
		}
	}
}

// The machine never reads a clock or sleeps: time comes in with Step.
func TestNoClock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	banned := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && banned[sel.Sel.Name] {
				t.Errorf("%s: time.%s: the machine takes its time from Step", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
