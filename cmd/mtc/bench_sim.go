package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/sim"
)

// BenchSimCmd measures failure detection in the simulation: the decisions
// are the real quorum state machine's, the clocks, network and disk are the
// simulation's (with per-seed clock drift, network jitter and disk latency),
// so the numbers show what the algorithm and the timing profile cost, free
// of scheduling noise. `make bench` and the namespace benchmark measure the
// real daemons.
type BenchSimCmd struct {
	Out       string `help:"Markdown file whose sim section (between <!-- bench:sim --> and <!-- /bench:sim -->) is replaced; created if missing. The section is printed either way." placeholder:"FILE"`
	Histories int    `default:"200" help:"Seeded histories per cluster size and timing profile."`
	Nodes     []int  `default:"2,3,5,16" help:"Cluster sizes to measure."`
	// Placement measures the placement machines instead (section
	// sim-placement).
	Placement bool `help:"Measure placement instead: PACKAGES packages on the largest of --nodes, --histories histories per timing profile (section sim-placement)."`
	Packages  int  `default:"300" help:"Packages for --placement."`
}

// Run measures and writes the report.
func (c *BenchSimCmd) Run(out io.Writer) error {
	if c.Histories < 10 {
		return fmt.Errorf("--histories %d: at least 10 are needed for percentiles", c.Histories)
	}
	for _, n := range c.Nodes {
		if n < 2 || n > config.MaxNodes {
			return fmt.Errorf("--nodes %d: cluster sizes are 2 to %d", n, config.MaxNodes)
		}
	}
	profiles := []struct {
		name string
		t    config.Timing
	}{{"default", config.DefaultTiming()}, {"aggressive", config.AggressiveTiming()}}
	if c.Placement {
		return c.placement(out, profiles)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Failure detection in the simulation\n\n")
	sizes := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		sizes[i] = fmt.Sprint(n)
	}
	p("Reproduce: `go run ./cmd/mtc bench sim --histories %d --nodes %s --out docs/BENCHMARKS.md`. Measured %s with %s on %d CPUs.\n\n",
		c.Histories, strings.Join(sizes, ","), time.Now().UTC().Format("2006-01-02"), runtime.Version(), runtime.NumCPU())
	p("Each history forms the cluster, crashes one random node at a random moment, and times on the simulation's absolute clock how long until every survivor has dropped it from its member set (*decision*) and until every survivor holds quorum again without it. *Survivors' gap* is the longest stretch any survivor spent without quorum after the crash (0 when none lost it), with the number of histories that had one. The gap is needed: two members that part cannot both keep quorum, because each one's shrink guard must cover the lease it gave the other; `go doc ./quorum` (Transitions) proves it and bounds it by one heartbeat, the drift part of the shrink guard and a few message delays, well below SelfFenceAfter + SettleGrace, so no survivor stops a package over it and the daemon logs it as `quorum-settling` (a warning), not as a loss. In two-node clusters the survivor holds exactly half: with persistent-reservation fencing on the quorum LUN (as here) the verified fence of its peer decides the tie (the fence as arbiter, `go doc ./quorum`, Tie-break), otherwise the tie-break lock's claim, keeping its packages under the pending-tie grace (TiePending) meanwhile. Clock-rate drift (up to 4%%), network delay, disk and persistent-reservation command latency are drawn per seed.\n\n")
	p("| timing | heartbeat / failure / watchdog | nodes | histories | decision p50 | p99 | max | quorate again p50 | max | survivors' gap p50 | max | with a gap | incomplete |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pr := range profiles {
		for _, n := range c.Nodes {
			d, err := sim.MeasureDetection(pr.t, n, 1, c.Histories)
			if err != nil {
				return fmt.Errorf("%s timing, %d nodes: %w", pr.name, n, err)
			}
			r := func(v time.Duration) string { return v.Round(time.Millisecond).String() }
			// incomplete: histories that never decided, or never regained
			// quorum, within three takeover delays.
			p("| %s | %v / %v / %v | %d | %d | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n", pr.name, pr.t.HeartbeatInterval, pr.t.FailureTimeout, pr.t.WatchdogTimeout,
				n, d.Histories, r(d.Decided.P50), r(d.Decided.P99), r(d.Decided.Max), r(d.Requorate.P50), r(d.Requorate.Max), r(d.Gap.P50), r(d.Gap.Max), d.GapHistories, d.Undecided+d.NoQuorum)
		}
	}
	p("\nTwo-node clusters: crash to *takeover allowed* (quorum.TakeoverAllowed for the crashed node) on the same clock, with fencing, the fence as arbiter of the tie against the tie-break lock (the machines not told the quorum LUN has persistent reservations). The higher-id node of a split waits quorum.FenceStagger before it fences a peer still alive on the disk; a crashed peer is dead on both paths and fenced at once.\n\n")
	p("| timing | heartbeat / failure / watchdog | tie decided by | histories | takeover allowed p50 | p99 | max | on a verified fence | none |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, pr := range profiles {
		for _, arbiter := range []bool{true, false} {
			tk, err := sim.MeasureTakeover(pr.t, 2, arbiter, 1, c.Histories)
			if err != nil {
				return fmt.Errorf("%s timing, two-node takeover: %w", pr.name, err)
			}
			how := "tie-break lock"
			if arbiter {
				how = "fence (arbiter)"
			}
			r := func(v time.Duration) string { return v.Round(time.Millisecond).String() }
			p("| %s | %v / %v / %v | %s | %d | %s | %s | %s | %d | %d |\n", pr.name, pr.t.HeartbeatInterval, pr.t.FailureTimeout, pr.t.WatchdogTimeout,
				how, tk.Histories, r(tk.Allowed.P50), r(tk.Allowed.P99), r(tk.Allowed.Max), tk.Fenced, tk.Never)
		}
	}
	section := b.String()
	fmt.Fprint(out, section)
	if c.Out != "" {
		return benchdoc.ReplaceSection(c.Out, "sim", section)
	}
	return nil
}

// placement measures the placement machines of a simulated cluster
// (sim.MeasurePlacement) and writes section sim-placement.
func (c *BenchSimCmd) placement(out io.Writer, profiles []struct {
	name string
	t    config.Timing
}) error {
	if c.Packages < 1 {
		return fmt.Errorf("--packages %d: measure at least one package", c.Packages)
	}
	nodes := 0
	for _, n := range c.Nodes {
		nodes = max(nodes, n)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Placement in the simulation\n\n")
	p("Reproduce: `go run ./cmd/mtc bench sim --placement --packages %d --nodes %d --histories %d --out docs/BENCHMARKS.md`. Measured %s with %s on %d CPUs.\n\n",
		c.Packages, nodes, c.Histories, time.Now().UTC().Format("2006-01-02"), runtime.Version(), runtime.NumCPU())
	p("Every node runs the real quorum and placement machines over the simulation's network, disk and persistent-reservation target (fencing on); %d packages in the shape of placement's own benchmark (lists of four nodes, a third min_package_node, a fifth with a priority, every tenth needs the one before it on the same node, every fifteenth excludes it), each taking 500ms to start or to halt. Each history forms the cluster until every package runs, then crashes the node running the most packages at a random moment. *Step* is the wall-clock compute time of one placement Step with its Ready, on every node, over the whole history (every report received, view change, runner state and intent: the machine's cost on this CPU, not the simulation's). On the simulation's clock: *formed*, from the start of the nodes to every package running; *takeover*, from the crash to the survivors' takeover of the node (fence and quorum); *settled*, from the crash to every package running again; *moved*, the packages the crashed node ran.\n\n", c.Packages)
	p("| timing | heartbeat / failure | nodes | packages | histories | steps | step p50 | p99 | max | formed p50 | max | takeover p50 | max | settled p50 | p99 | max | moved | incomplete |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	us := func(v time.Duration) string { return fmt.Sprintf("%.0fµs", float64(v)/float64(time.Microsecond)) }
	ms := func(v time.Duration) string { return v.Round(time.Millisecond).String() }
	for _, pr := range profiles {
		r, err := sim.MeasurePlacement(pr.t, nodes, c.Packages, 1, c.Histories)
		if err != nil {
			return fmt.Errorf("%s timing: %w", pr.name, err)
		}
		p("| %s | %v / %v | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %d |\n", pr.name, pr.t.HeartbeatInterval, pr.t.FailureTimeout, nodes, c.Packages, r.Histories, r.Steps,
			us(r.Step.P50), us(r.Step.P99), us(r.Step.Max), ms(r.Formed.P50), ms(r.Formed.Max), ms(r.Takeover.P50), ms(r.Takeover.Max), ms(r.Settled.P50), ms(r.Settled.P99), ms(r.Settled.Max), r.Moved, r.Incomplete)
	}
	section := b.String()
	fmt.Fprint(out, section)
	if c.Out != "" {
		return benchdoc.ReplaceSection(c.Out, "sim-placement", section)
	}
	return nil
}
