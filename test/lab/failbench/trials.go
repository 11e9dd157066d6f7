package failbench

import (
	"fmt"
	"slices"
)

// Record is a benchmark's record of one crash: a Run, embedded, and what
// that benchmark measures besides.
type Record interface{ run() Run }

func (r Run) run() Run { return r }

// Case is what a failover benchmark measured of one case (a timing
// profile and a package): its runs in order, the order of the start
// plan's steps over them (MergeSteps), and the incidents: daemons that
// ended on their own and were restarted, and a case given up.
type Case[R Record] struct {
	Runs      []R
	StepOrder []string
	Incidents []string
}

// Trials is the loop of one case: wait for the cluster to settle, crash
// the package's node and measure the failover, restart the crashed node,
// again and again.
type Trials[N any, R Record] struct {
	// Crashes is the number of crashes; after GiveUp in a row that do
	// not complete, the case is given up.
	Crashes, GiveUp int
	// Settle waits for the cluster to settle and returns the package's
	// node and what had to be restarted meanwhile (Settle.Wait).
	Settle func() (owner N, incidents []string)
	// Crash crashes owner and measures the failover.
	Crash func(owner N) R
	// Restore restarts the node r crashed.
	Restore func(r R)
	// Done, when set, is told each run (i counts from 0) as it ends.
	Done func(i int, r R)
}

// Run runs the trials and returns the case, and whether it was given up.
func (t Trials[N, R]) Run() (c Case[R], gaveUp bool) {
	owner, inc := t.Settle()
	c.Incidents = prefixed("before the first crash: ", inc)
	incomplete := 0
	for i := 0; i < t.Crashes; i++ {
		r := t.Crash(owner)
		c.Runs = append(c.Runs, r)
		run := r.run()
		c.StepOrder = MergeSteps(c.StepOrder, run.Timeline)
		if t.Done != nil {
			t.Done(i, r)
		}
		if run.Complete {
			incomplete = 0
		} else if incomplete++; incomplete >= t.GiveUp {
			c.Incidents = append(c.Incidents, fmt.Sprintf("given up after run %d: %d failovers in a row did not complete", i+1, incomplete))
			return c, true
		}
		t.Restore(r)
		owner, inc = t.Settle()
		took := ""
		if run.Complete {
			took = ", " + run.To + " took over"
		}
		c.Incidents = append(c.Incidents, prefixed(fmt.Sprintf("after run %d (%s crashed%s): ", i+1, run.From, took), inc)...)
	}
	return c, false
}

func prefixed(p string, s []string) []string {
	var out []string
	for _, x := range s {
		out = append(out, p+x)
	}
	return out
}

// MergeSteps appends to order the step names of run it lacks: the order
// of the steps over all the runs of a case.
func MergeSteps(order []string, run Timeline) []string {
	for _, s := range run.StepOrder {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	return order
}
