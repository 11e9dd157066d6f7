package benchdoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")

	// Missing file: created with the introduction and the section.
	if err := ReplaceSection(file, "disk", "first\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "# Benchmarks") || !strings.Contains(string(b), "<!-- bench:disk -->\nfirst\n<!-- /bench:disk -->\n") {
		t.Fatalf("new file:\n%s", b)
	}

	// Another section and hand-written text survive a rewrite.
	other := "\nhand-written notes\n\n<!-- bench:sim -->\nsim numbers\n<!-- /bench:sim -->\n"
	if err := os.WriteFile(file, append(b, other...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceSection(file, "disk", "second\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file)
	got := string(b)
	if strings.Contains(got, "first") || !strings.Contains(got, "<!-- bench:disk -->\nsecond\n<!-- /bench:disk -->\n") {
		t.Fatalf("disk section not replaced:\n%s", got)
	}
	if !strings.Contains(got, other) {
		t.Fatalf("other content lost:\n%s", got)
	}
	if strings.Count(got, "<!-- bench:disk -->") != 1 {
		t.Fatalf("disk section duplicated:\n%s", got)
	}

	// A file without the section gets it appended.
	file2 := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(file2, []byte("# Mine\n\ntext\n"), 0o644)
	if err := ReplaceSection(file2, "disk", "x\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file2)
	if string(b) != "# Mine\n\ntext\n\n<!-- bench:disk -->\nx\n<!-- /bench:disk -->\n" {
		t.Fatalf("append:\n%q", b)
	}

	// An opening marker without its closing one is an error, not a guess.
	os.WriteFile(file2, []byte("<!-- bench:disk -->\nold\n"), 0o644)
	if err := ReplaceSection(file2, "disk", "x\n"); err == nil || !strings.Contains(err.Error(), "no closing") {
		t.Fatalf("unclosed section: %v", err)
	}
}

func TestCopySections(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "lab.md"), filepath.Join(dir, "BENCHMARKS.md")
	lab := "# Benchmarks\n\nintro\n\n<!-- bench:failover-pr -->\nnew pr\n<!-- /bench:failover-pr -->\n\n<!-- bench:fence-latency -->\nnew latency\n<!-- /bench:fence-latency -->\n"
	docs := "# Benchmarks\n\n<!-- bench:failover -->\nhost\n<!-- /bench:failover -->\n\n<!-- bench:failover-pr -->\nold pr\n<!-- /bench:failover-pr -->\n\nhand-written\n"
	for f, s := range map[string]string{from: lab, to: docs} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names, err := CopySections(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "failover-pr,fence-latency" {
		t.Errorf("copied %v", names)
	}
	b, _ := os.ReadFile(to)
	want := "# Benchmarks\n\n<!-- bench:failover -->\nhost\n<!-- /bench:failover -->\n\n<!-- bench:failover-pr -->\nnew pr\n<!-- /bench:failover-pr -->\n\nhand-written\n\n<!-- bench:fence-latency -->\nnew latency\n<!-- /bench:fence-latency -->\n"
	if string(b) != want {
		t.Errorf("after the copy:\n%s\nwant:\n%s", b, want)
	}

	// A section without its closing marker is refused, and nothing copied.
	if err := os.WriteFile(from, []byte("<!-- bench:x -->\nopen\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CopySections(from, to); err == nil || !strings.Contains(err.Error(), "no closing") {
		t.Errorf("unclosed section: %v", err)
	}
	if b2, _ := os.ReadFile(to); string(b2) != want {
		t.Errorf("the target changed after a refused copy:\n%s", b2)
	}
}

func TestReplaceSectionInStartsItsOwnDocument(t *testing.T) {
	file := filepath.Join(t.TempDir(), "CHAOS.md")
	if err := ReplaceSectionIn(file, "# Chaos\n\nabout the file\n", "chaos", "batch\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if string(b) != "# Chaos\n\nabout the file\n\n<!-- bench:chaos -->\nbatch\n<!-- /bench:chaos -->\n" {
		t.Fatalf("new document:\n%q", b)
	}
	// Text after the section (a hand-written one) survives the next batch.
	os.WriteFile(file, append(b, "\n## By hand\n\nkept\n"...), 0o644)
	if err := ReplaceSectionIn(file, "unused\n", "chaos", "next\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file)
	if string(b) != "# Chaos\n\nabout the file\n\n<!-- bench:chaos -->\nnext\n<!-- /bench:chaos -->\n\n## By hand\n\nkept\n" {
		t.Fatalf("second batch:\n%q", b)
	}
}

// TestCopySectionsFromANewFile: a results file ReplaceSection created,
// whose introduction quotes the markers in prose, copies its one section:
// only a marker at the start of a line counts.
func TestCopySectionsFromANewFile(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "results.md"), filepath.Join(dir, "BENCHMARKS.md")
	if err := ReplaceSection(from, "failover-pr", "measured\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(from); !strings.Contains(string(b), "`<!-- bench:NAME -->`") {
		t.Fatalf("the introduction no longer quotes a marker; this test needs another file:\n%s", b)
	}
	if err := os.WriteFile(to, []byte("# Benchmarks\n\n<!-- bench:failover-pr -->\nold\n<!-- /bench:failover-pr -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := CopySections(from, to)
	if err != nil || strings.Join(names, ",") != "failover-pr" {
		t.Fatalf("copied %v, %v", names, err)
	}
	if b, _ := os.ReadFile(to); string(b) != "# Benchmarks\n\n<!-- bench:failover-pr -->\nmeasured\n<!-- /bench:failover-pr -->\n" {
		t.Errorf("after the copy:\n%s", b)
	}
}
