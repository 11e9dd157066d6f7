package sim

import (
	"strings"
	"testing"
)

// TestLateDataFenceScript pins what the race of docs/liveness-findings.md,
// A7, leaves behind: a registration gone from the data LUN alone (the
// golden scenario testdata/late-fence-data-lun.txt). With the checks, the
// member stops at its next check and nothing breaks; with a driver that
// answers every check without reading (registration-check-skipped) it
// stays a quorate member without its data LUN, and rule 8 catches it. The
// race itself (two coordinators' fences of one incarnation around its
// re-registration, the later landing on the quorum LUN before it and on
// the data LUN after it) arose in history 1993 of the suite until the
// start-up fences behind it were spared (A9); none of the suite's
// histories 1-12,000 shows it any more, so the script stands in for it.
func TestLateDataFenceScript(t *testing.T) {
	const script = "nodes 3\nrun 3s\npreempt 3 data\nrun 20s\ncheck\n"
	log, err := RunScript(strings.NewReader(script), "late-fence")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, "VIOLATION") || strings.Contains(log, "LIVENESS") || !strings.Contains(log, "n3 self-fence (fenced by a peer)") {
		t.Fatalf("with the checks:\n%s", log)
	}
	bug, err := BugNamed("registration-check-skipped")
	if err != nil {
		t.Fatal(err)
	}
	old := scriptBug
	scriptBug = bug
	defer func() { scriptBug = old }()
	log, err = RunScript(strings.NewReader(script), "late-fence")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "VIOLATION") || !strings.Contains(log, "invariant 8") || strings.Contains(log, "n3 self-fence") {
		t.Fatalf("the planted registration-check-skipped is not caught by rule 8:\n%s", log)
	}
}
