package sim

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/quorum"
)

// historySeeds is how many random histories TestHistories runs (a tenth
// with -short).
const historySeeds = 2000

// TestHistories runs historySeeds seeded histories (2..16 nodes, biased
// toward small clusters, default and aggressive timing, random faults) and
// fails on any invariant violation, printing the command that replays it.
func TestHistories(t *testing.T) {
	start := time.Now()
	var bad []Result
	var sims time.Duration
	count, want := 0, historySeeds
	if testing.Short() {
		want /= 10
	}
	err := RunMany(1, want, runtime.GOMAXPROCS(0), HistoryOptions{SmallBias: true}, func(r Result) {
		count++
		sims += r.Simulated
		if len(r.Violations) > 0 {
			bad = append(bad, r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != want {
		t.Fatalf("ran %d histories, want %d", count, want)
	}
	for i, r := range bad {
		if i == 10 {
			t.Errorf("... and %d more", len(bad)-10)
			break
		}
		t.Errorf("%s: %v (replay: %s)", r.Summary(), r.Violations[0], r.Replay())
	}
	t.Logf("%d histories (%v simulated) in %v", count, sims.Round(time.Second), time.Since(start).Round(time.Millisecond))
}

// TestReplay: one seed gives one history, decision for decision.
func TestReplay(t *testing.T) {
	var a, b bytes.Buffer
	if _, err := RunHistory(42, HistoryOptions{Trace: &a}); err != nil {
		t.Fatal(err)
	}
	if _, err := RunHistory(42, HistoryOptions{Trace: &b}); err != nil {
		t.Fatal(err)
	}
	if a.Len() == 0 || a.String() != b.String() {
		t.Fatalf("two runs of seed 42 differ (or are empty: %d bytes)", a.Len())
	}
}

// TestPlantedBugs disables one safety rule at a time and asserts that the
// checker catches the resulting split brain: a checker that never fires
// proves nothing.
func TestPlantedBugs(t *testing.T) {
	for _, c := range []struct {
		name   string
		unsafe quorum.Unsafe
		script string
	}{
		{"skip tie-break", quorum.Unsafe{SkipTieBreak: true}, "nodes 2\nrun 3s\npartition 1|2\nrun 5s\n"},
		{"skip agreement", quorum.Unsafe{SkipAgreement: true}, "nodes 3\nrun 3s\noneway 1->2\nrun 5s\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The same scenario is safe with every rule in place...
			log, err := runScriptWith(c.script, quorum.Unsafe{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(log, "VIOLATION") {
				t.Fatalf("the scenario breaks an invariant even with every rule:\n%s", log)
			}
			// ...and caught without the rule.
			log, err = runScriptWith(c.script, c.unsafe)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log, "VIOLATION") || !strings.Contains(log, "invariant 1") {
				t.Fatalf("the checker missed the planted bug:\n%s", log)
			}
		})
	}
	// Random histories find each planted bug too, the shrink guard's
	// included (its window is narrow: about one history in five).
	for _, c := range []struct {
		name   string
		unsafe quorum.Unsafe
	}{
		{"tie-break", quorum.Unsafe{SkipTieBreak: true}},
		{"agreement", quorum.Unsafe{SkipAgreement: true}},
		{"shrink guard", quorum.Unsafe{SkipShrinkGuard: true}},
	} {
		const histories = 100
		found := 0
		err := RunMany(1, histories, runtime.GOMAXPROCS(0), HistoryOptions{SmallBias: true, Unsafe: c.unsafe}, func(r Result) {
			if len(r.Violations) > 0 {
				found++
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if found == 0 {
			t.Errorf("%d random histories without the %s found no violation", histories, c.name)
		}
		t.Logf("without the %s: %d of %d random histories break an invariant", c.name, found, histories)
	}
}

func runScriptWith(script string, u quorum.Unsafe) (string, error) {
	old := scriptUnsafe
	scriptUnsafe = u
	defer func() { scriptUnsafe = old }()
	return RunScript(strings.NewReader(script), "planted")
}

func TestScriptErrors(t *testing.T) {
	for _, c := range []struct{ script, want string }{
		{"run 1s\n", "t:1: \"run\" before \"nodes N\""},
		{"nodes 1\n", "t:1: sim: nodes = 1"},
		{"nodes 3\ncrash 4\n", "t:2: crash: \"4\" is not a node id"},
		{"nodes 3\nrun soon\n", "t:2: run: \"soon\" is not a duration"},
		{"nodes 3\nfly 2\n", "t:2: unknown command \"fly\""},
		{"nodes 3\npartition 1,x|3\n", "t:2: partition: \"x\" is not a node id"},
	} {
		_, err := RunScript(strings.NewReader(c.script), "t")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.script, err, c.want)
		}
	}
}

func TestWorldOptions(t *testing.T) {
	if _, err := NewWorld(Options{Nodes: 17}); err == nil {
		t.Error("17 nodes accepted")
	}
	if _, err := NewWorld(Options{Nodes: 3, Timing: config.Timing{HeartbeatInterval: time.Second}}); err == nil {
		t.Error("invalid timing accepted")
	}
}
