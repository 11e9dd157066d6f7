package placement

import (
	"flag"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the golden scenarios in testdata/")

// TestGolden runs every scenario of testdata/*.txt (the datadriven form
// package internal/golden reads, as sim/testdata). A scenario must break
// no invariant of the checker and must settle after every step. After a
// deliberate change, regenerate with `go test ./placement -run Golden
// -rewrite` and review the diff.
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", *rewrite,
		func(string) func(string, int) (string, error) {
			s := &script{}
			return func(cmd string, _ int) (string, error) { return s.do(cmd) }
		},
		func(out string) string {
			if strings.Contains(out, "VIOLATION") || strings.Contains(out, "NOT SETTLED") {
				return "the scenario breaks an invariant or does not settle"
			}
			return ""
		})
}
