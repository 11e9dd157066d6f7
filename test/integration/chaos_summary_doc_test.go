package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/internal/benchdoc"
)

// TestChaosSummaryKeepsTheLabSection writes a batch's summary into a copy
// of docs/CHAOS.md the way `make chaos` does: the host section is replaced,
// the hand-written QEMU lab section after it is kept.
func TestChaosSummaryKeepsTheLabSection(t *testing.T) {
	orig, err := os.ReadFile("../../docs/CHAOS.md")
	if err != nil {
		t.Fatal(err)
	}
	const lab = "## In the QEMU lab: one node loses its quorum-disk path"
	if !strings.Contains(string(orig), lab) {
		t.Fatalf("docs/CHAOS.md has no %q section to keep", lab)
	}
	file := filepath.Join(t.TempDir(), "CHAOS.md")
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	results := []trialResult{
		{Kind: "crash", Seed: 7, Passed: true, Downtime: 2100 * time.Millisecond},
		{Kind: "crash", Seed: 8, Passed: false, Downtime: 3 * time.Second, Problems: []string{"planted"}},
	}
	body := chaosSummary(results, 7, "crash", "", time.Minute)
	if err := benchdoc.ReplaceSectionIn(file, chaosIntro, "chaos", body); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	got := string(b)
	for _, want := range []string{
		"| crash | 2 | 1 | 1 (8) |",
		"- crash seed 8: planted;",
		lab,
		"`make chaos CHAOS_TRIALS=2 CHAOS_SEED=7 CHAOS_KINDS=crash`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the rewritten file lacks %q", want)
		}
	}
	if strings.Count(got, "## On the host:") != 1 || strings.Contains(got, "CHAOS_TRIALS=200") {
		t.Errorf("the old host section was not replaced:\n%s", got)
	}
	if strings.Index(got, lab) < strings.Index(got, "<!-- /bench:chaos -->") {
		t.Errorf("the lab section moved into or before the host section")
	}
}
