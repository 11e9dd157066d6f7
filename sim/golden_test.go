package sim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected logs of the golden scenarios in testdata/")

// separator divides a scenario file into its script and its expected log.
const separator = "----\n"

// TestGolden runs every scenario in testdata/*.txt and compares its
// decision log with the expected one below the "----" line. After a
// deliberate change, regenerate with `go test ./sim -run Golden -rewrite`
// and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			script, want, _ := strings.Cut(string(b), separator)
			got, err := RunScript(strings.NewReader(script), file)
			if err != nil {
				t.Fatal(err)
			}
			if *rewrite {
				if err := os.WriteFile(file, []byte(script+separator+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: decision log differs (rerun with -rewrite and review the diff)\n--- got\n%s--- want\n%s", file, got, want)
			}
			if strings.Contains(got, "VIOLATION") || strings.Contains(got, "CHECK FAILED") {
				t.Errorf("%s: the scenario breaks an invariant or does not re-form:\n%s", file, got)
			}
		})
	}
}
