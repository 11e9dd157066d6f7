package failbench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Col is one measure over the complete runs, in their order.
func Col[R Record](runs []R, of func(R) time.Duration) []time.Duration {
	var out []time.Duration
	for _, r := range runs {
		if r.run().Complete {
			out = append(out, of(r))
		}
	}
	return out
}

// Row is one line of a report's table: its label and the measure it shows.
type Row[R any] struct {
	Name string
	Of   func(R) time.Duration
}

// Section is the part of a failover report for one case.
type Section[R Record] struct {
	// Title names the case ("default profile, package: VIP").
	Title string
	// Timing describes its timing profile: the start of the sentence
	// that goes on with the counts of crashes and failovers.
	Timing string
	Case   Case[R]
	// Rows is the table of times from the crash, Phases that of the
	// phases between them: p50, p95 and max over the complete runs.
	Rows, Phases []Row[R]
	// StepNote, when set, is a sentence after the start plan's steps.
	StepNote string
}

// String is the section in markdown: its heading, the counts and the
// takeover reasons, the two tables, the start plan's steps (median), the
// runs that did not complete and the incidents.
func (s Section[R]) String() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	var bad []string
	reasons := map[string]int{}
	n := 0
	for i, x := range s.Case.Runs {
		r := x.run()
		if r.Err != "" {
			bad = append(bad, fmt.Sprintf("run %d (%s crashed): %s", i+1, r.From, r.Err))
		}
		if r.Complete {
			n++
			reasons[r.Reason]++
		}
	}
	p("### %s\n\n", s.Title)
	p("%s. crashes: %d, failovers measured: %d; takeover reasons:", s.Timing, len(s.Case.Runs), n)
	var rs []string
	for k, c := range reasons {
		rs = append(rs, fmt.Sprintf(" %s %d", k, c))
	}
	slices.Sort(rs)
	p("%s.\n\n", strings.Join(rs, ","))
	p("| from the crash | p50 | p95 | max |\n|---|---|---|---|\n")
	for _, row := range s.Rows {
		p("| %s | %s |\n", row.Name, Quantiles(Col(s.Case.Runs, row.Of)))
	}
	p("\n| phase | p50 | p95 | max |\n|---|---|---|---|\n")
	for _, row := range s.Phases {
		p("| %s | %s |\n", row.Name, Quantiles(Col(s.Case.Runs, row.Of)))
	}
	if len(s.Case.StepOrder) > 0 {
		p("\nThe new owner's start plan, per step (median):")
		for i, step := range s.Case.StepOrder {
			if i > 0 {
				p(";")
			}
			var col []time.Duration
			for _, x := range s.Case.Runs {
				if d, ok := x.run().Steps[step]; ok && x.run().Complete {
					col = append(col, d)
				}
			}
			p(" %s %.0f ms", step, float64(Pct(col, 0.5))/1e6)
		}
		if s.StepNote != "" {
			p(". %s", s.StepNote)
		}
		p(".\n")
	}
	if len(bad) > 0 {
		p("\nNot complete:\n\n")
		for _, x := range bad {
			p("- %s\n", x)
		}
	}
	if len(s.Case.Incidents) > 0 {
		p("\nDaemons that ended on their own during these runs (the benchmark restarted them):\n\n")
		for _, x := range s.Case.Incidents {
			p("- %s\n", x)
		}
	}
	p("\n")
	return b.String()
}
