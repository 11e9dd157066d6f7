package placement

import (
	"fmt"
	"testing"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// benchCluster is 300 packages on 16 nodes, settled: every package runs.
// Packages rotate over the nodes (each lists 4 of them), a third use
// min_package_node, a fifth have a priority, every tenth needs the one
// before it on the same node and every fifteenth excludes the one before
// it.
func benchCluster(b *testing.B) *cluster {
	const nn, np = 16, 300
	var nodes []Node
	for i := 1; i <= nn; i++ {
		nodes = append(nodes, Node{ID: NodeID(i), Name: fmt.Sprintf("n%02d", i)})
	}
	var pkgs []Package
	for i := 0; i < np; i++ {
		p := Package{Name: fmt.Sprintf("p%03d", i), AutoRun: true}
		for k := 0; k < 4; k++ {
			p.Nodes = append(p.Nodes, NodeID((i+k*5)%nn+1))
		}
		if i%3 == 0 {
			p.Failover = MinPackageNode
		}
		if i%5 == 0 {
			p.Priority = 1 + i%50
		}
		switch {
		case i%10 == 9:
			p.Dependencies = []Dependency{{Package: pkgs[i-1].Name, Cond: Needs, Where: SameNode}}
			p.Nodes = pkgs[i-1].Nodes
		case i%15 == 14:
			p.Dependencies = []Dependency{{Package: pkgs[i-1].Name, Cond: Excludes, Where: SameNode}}
		}
		pkgs = append(pkgs, p)
	}
	c := newCluster(nodes, pkgs)
	c.quiet = true
	for _, n := range nodes {
		if err := c.boot(n.ID); err != nil {
			b.Fatal(err)
		}
	}
	c.views()
	if n, _ := c.settle(5000); n >= 5000 {
		b.Fatal("the cluster does not settle")
	}
	c.flush()
	running := 0
	for _, h := range c.live() {
		for _, st := range h.run {
			if st == Running {
				running++
			}
		}
	}
	if running != np {
		b.Fatalf("%d of %d packages run", running, np)
	}
	if len(c.violations) > 0 {
		b.Fatal(c.violations)
	}
	c.steps, c.slowest, c.starts = 0, 0, 0
	return c
}

// BenchmarkStepSteady: one decision (a Tick) on one node of the settled
// cluster: all 300 targets recomputed, nothing to do.
func BenchmarkStepSteady(b *testing.B) {
	c := benchCluster(b)
	h := c.hs[1]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.m.Step(time.Duration(i), Tick{})
		h.m.Advance()
	}
}

// BenchmarkStepReport: one peer report received on one node of the
// settled cluster (the daemon's most frequent event).
func BenchmarkStepReport(b *testing.B) {
	c := benchCluster(b)
	h := c.hs[1]
	r := *c.hs[2].last
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Seq++
		h.m.Step(time.Duration(i), Received{Report: r})
		h.m.Advance()
	}
}

// BenchmarkNodeFailure: a node running about 19 of the 300 packages
// crashes and is fenced; the survivors place its packages, claim, wait for
// the acknowledgements and start them. Per failure it reports the rounds
// of report exchange until every package runs again (steps/failure), the
// machines' Steps and their mean compute time (with the test cluster's
// bookkeeping), the slowest single Step (GC pauses included), the packages
// started, and the round of the last start order. A round is one report
// exchange plus one runner state change; the test runner starts a node's
// packages one after the other, so rounds/failure is mostly its queue.
func BenchmarkNodeFailure(b *testing.B) {
	var steps, rounds, startRounds, starts int
	var busy, slowest time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := benchCluster(b)
		victim := NodeID(1 + i%16)
		first := c.round + 1
		b.StartTimer()
		start := time.Now()
		c.kill(victim)
		c.views()
		if err := c.takeover(victim, quorum.TakeoverFenced); err != nil {
			b.Fatal(err)
		}
		n, _ := c.settle(5000)
		busy += time.Since(start)
		b.StopTimer()
		rounds += n
		steps += c.steps
		starts += c.starts
		startRounds += c.lastStart - first + 1
		if c.slowest > slowest {
			slowest = c.slowest
		}
		running := 0
		for _, h := range c.live() {
			for _, st := range h.run {
				if st == Running {
					running++
				}
			}
		}
		if running != len(c.pkgs) {
			b.Fatalf("after the failure of n%02d %d of %d packages run", victim, running, len(c.pkgs))
		}
	}
	b.ReportMetric(float64(rounds)/float64(b.N), "rounds/failure")
	b.ReportMetric(float64(startRounds)/float64(b.N), "rounds-to-last-start")
	b.ReportMetric(float64(starts)/float64(b.N), "starts/failure")
	b.ReportMetric(float64(steps)/float64(b.N), "steps/failure")
	b.ReportMetric(float64(busy.Nanoseconds())/float64(steps), "ns/step")
	b.ReportMetric(float64(slowest.Microseconds()), "µs-slowest-step")
}

// BenchmarkStepViewChange: one node of the settled cluster sees a member
// leave and come back, alternately (about 19 packages are re-placed each
// time; none may start: the departed node is not taken over).
func BenchmarkStepViewChange(b *testing.B) {
	c := benchCluster(b)
	h := c.hs[1]
	full := h.view
	less := full
	less.Members = less.Members.Remove(16)
	less.Inc[16] = 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := full
		if i%2 == 0 {
			v = less
		}
		h.m.Step(time.Duration(i), ViewChanged{View: v})
		h.m.Advance()
	}
}
