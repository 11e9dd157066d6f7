package sim

import (
	"flag"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the golden scenarios in testdata/")

// TestGolden runs every scenario in testdata/*.txt (the datadriven form
// package internal/golden reads) and compares each command's output with
// the expected one. A scenario must break no safety invariant and no
// liveness property. After a deliberate change, regenerate with
// `go test ./sim -run Golden -rewrite` and review the diff.
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", *rewrite,
		func(file string) func(string, int) (string, error) { return NewScript(file).Do },
		func(out string) string {
			if strings.Contains(out, "VIOLATION") || strings.Contains(out, "LIVENESS") || strings.Contains(out, "NOT re-formed") || strings.Contains(out, "EXPECT FAILED") {
				return "the scenario breaks an invariant or a liveness property, does not re-form, or fails an expectation"
			}
			return ""
		})
}
