package failbench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// testRun is a benchmark's record of a crash, as the benchmarks embed Run.
type testRun struct {
	Run
	fenced time.Duration
}

func TestTrialsIncidentsAndGivingUp(t *testing.T) {
	// Crash n1 (n2 takes over, n3 had to be restarted meanwhile), then n2
	// twice without a failover: given up after the third run.
	owners := []string{"n1", "n2", "n2"}
	settles, restored, done := 0, []string{}, 0
	tr := Trials[string, testRun]{Crashes: 5, GiveUp: 2,
		Settle: func() (string, []string) {
			settles++
			switch settles {
			case 1:
				return "n1", []string{"n3 ended (x) and was restarted"}
			case 2:
				return "n2", []string{"n1 ended (y) and was restarted"}
			}
			return "n2", nil
		},
		Crash: func(owner string) testRun {
			if owner != owners[done] {
				t.Fatalf("run %d crashed %s, want %s", done+1, owner, owners[done])
			}
			if owner == "n1" {
				return testRun{Run: Run{From: owner, Complete: true, Timeline: Timeline{To: "n2", StepOrder: []string{"address"}}}}
			}
			return testRun{Run: Run{From: owner, Err: "no complete failover", Timeline: Timeline{StepOrder: []string{"mount", "address"}}}}
		},
		Restore: func(r testRun) { restored = append(restored, r.From) },
		Done:    func(i int, r testRun) { done++ },
	}
	c, gaveUp := tr.Run()
	if !gaveUp || len(c.Runs) != 3 || done != 3 || settles != 3 || !slices.Equal(restored, []string{"n1", "n2"}) {
		t.Fatalf("gave up %v after %d runs, %d done, %d settles, restored %v", gaveUp, len(c.Runs), done, settles, restored)
	}
	want := []string{
		"before the first crash: n3 ended (x) and was restarted",
		"after run 1 (n1 crashed, n2 took over): n1 ended (y) and was restarted",
		"given up after run 3: 2 failovers in a row did not complete",
	}
	if !slices.Equal(c.Incidents, want) {
		t.Errorf("incidents:\n%q\nwant\n%q", c.Incidents, want)
	}
	if !slices.Equal(c.StepOrder, []string{"address", "mount"}) {
		t.Errorf("step order %q", c.StepOrder)
	}
}

func TestSectionText(t *testing.T) {
	s := time.Second
	runs := []testRun{
		{Run: Run{From: "n1", VIP: 3 * s, Complete: true, Timeline: Timeline{To: "n2", Reason: "fenced", Left: 1 * s, Running: 4 * s,
			Steps: map[string]time.Duration{"address": 200 * time.Millisecond}}}, fenced: 2 * s},
		{Run: Run{From: "n2", Err: "no complete failover within 1m0s"}},
		{Run: Run{From: "n2", VIP: 5 * s, Complete: true, Err: "the VIP is on [n1 n3]", Timeline: Timeline{To: "n3", Reason: "watchdog", Left: 2 * s, Running: 6 * s,
			Steps: map[string]time.Duration{"address": 400 * time.Millisecond, "mount": 50 * time.Millisecond}}}},
	}
	sec := Section[testRun]{Title: "lab profile, package: VIP", Timing: "heartbeat_interval 1s",
		Case: Case[testRun]{Runs: runs, StepOrder: []string{"address", "mount"}, Incidents: []string{"before the first crash: n3 ended"}},
		Rows: []Row[testRun]{{Name: "crash → fenced", Of: func(r testRun) time.Duration { return r.fenced }},
			{Name: "crash → VIP", Of: func(r testRun) time.Duration { return r.VIP }}},
		Phases:   []Row[testRun]{{Name: "start", Of: func(r testRun) time.Duration { return r.Running - r.Left }}},
		StepNote: "The address step includes its probe"}
	want := `### lab profile, package: VIP

heartbeat_interval 1s. crashes: 3, failovers measured: 2; takeover reasons: fenced 1, watchdog 1.

| from the crash | p50 | p95 | max |
|---|---|---|---|
| crash → fenced | 0.00 s | 2.00 s | 2.00 s |
| crash → VIP | 3.00 s | 5.00 s | 5.00 s |

| phase | p50 | p95 | max |
|---|---|---|---|
| start | 3.00 s | 4.00 s | 4.00 s |

The new owner's start plan, per step (median): address 200 ms; mount 50 ms. The address step includes its probe.

Not complete:

- run 2 (n2 crashed): no complete failover within 1m0s
- run 3 (n2 crashed): the VIP is on [n1 n3]

Daemons that ended on their own during these runs (the benchmark restarted them):

- before the first crash: n3 ended

`
	if got := sec.String(); got != want {
		t.Errorf("section:\n%s\nwant:\n%s", got, want)
	}
	// Without a note, failures or incidents, those parts are left out.
	sec.StepNote, sec.Case.StepOrder, sec.Case.Incidents = "", []string{"address"}, nil
	sec.Case.Runs = runs[:1]
	got := sec.String()
	if !strings.HasSuffix(got, "\n| start | 3.00 s | 3.00 s | 3.00 s |\n\nThe new owner's start plan, per step (median): address 200 ms.\n\n") ||
		!strings.Contains(got, "crashes: 1, failovers measured: 1; takeover reasons: fenced 1.\n") {
		t.Errorf("section of one complete run:\n%s", got)
	}
	if got := Col(runs, func(r testRun) time.Duration { return r.VIP }); !slices.Equal(got, []time.Duration{3 * s, 5 * s}) {
		t.Errorf("Col = %v, want the complete runs' VIP times", got)
	}
}
