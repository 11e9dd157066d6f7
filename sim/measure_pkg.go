package sim

import (
	"fmt"
	"math/rand"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/placement"
)

// PlacementTimes summarises MeasurePlacement.
type PlacementTimes struct {
	Histories, Nodes, Packages int
	Timing                     config.Timing
	// Steps is how many placement Steps the machines took (every node's,
	// each with its Ready); Step their wall-clock compute time per Step
	// (the real machine on this CPU; the simulation's own work excluded).
	Steps int
	Step  Percentiles
	// Formed: from the start of the nodes to every package running, on
	// the simulation's clock. Takeover: from the crash of the node running
	// the most packages to the survivors' takeover of it; Settled: to
	// every package running again. Moved: packages the failed node ran
	// (mean).
	Formed, Takeover, Settled Percentiles
	Moved                     float64
	// Incomplete histories: the packages did not all run within a minute.
	Incomplete int
}

// benchPackages are n packages on nodes nodes, in the shape of
// placement's own benchmark: lists of 4 nodes rotating over the cluster,
// a third min_package_node, a fifth with a priority, every tenth needs
// the one before it on the same node (on its nodes), every fifteenth
// excludes the one before it on the same node.
func benchPackages(nodes, n int) []placement.Package {
	var pkgs []placement.Package
	step := 5 // co-prime with the cluster size, so a list has no repeats
	for nodes%step == 0 || step > nodes && nodes > 1 {
		step--
	}
	for i := 0; i < n; i++ {
		p := placement.Package{Name: fmt.Sprintf("p%03d", i), AutoRun: true}
		for k := 0; k < min(4, nodes); k++ {
			p.Nodes = append(p.Nodes, placement.NodeID((i+k*step)%nodes+1))
		}
		if i%3 == 0 {
			p.Failover = placement.MinPackageNode
		}
		if i%5 == 0 {
			p.Priority = 1 + i%50
		}
		switch {
		case i%10 == 9:
			p.Dependencies = []placement.Dependency{{Package: pkgs[i-1].Name, Cond: placement.Needs, Where: placement.SameNode}}
			p.Nodes = pkgs[i-1].Nodes
		case i%15 == 14:
			p.Dependencies = []placement.Dependency{{Package: pkgs[i-1].Name, Cond: placement.Excludes, Where: placement.SameNode}}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// MeasurePlacement runs histories seeds first..first+count-1 of nodes
// nodes running packages packages (benchPackages), with fencing and timing
// t, runners that take 500ms to start or halt a package and never fail:
// the cluster forms and places every package; the node running the most
// packages crashes at a random moment; the survivors fence it, take it
// over and start its packages. It times every placement Step (wall clock)
// and, on the simulation's clock, how long until every package runs.
func MeasurePlacement(t config.Timing, nodes, packages int, first int64, count int) (PlacementTimes, error) {
	res := PlacementTimes{Nodes: nodes, Packages: packages, Timing: t}
	var steps, formed, takeover, settled []time.Duration
	moved := 0
	defs := benchPackages(nodes, packages)
	for s := first; s < first+int64(count); s++ {
		w, err := NewWorld(Options{Nodes: nodes, Timing: t, Seed: s, Fencing: true, Packages: true, PackageOptions: PackageOptions{Packages: defs, Exact: true}})
		if err != nil {
			return res, err
		}
		rng := rand.New(rand.NewSource(s))
		w.pk.stepTimes = &steps
		res.Histories++
		running := func(skip *simNode) int {
			c := 0
			for _, n := range w.nodes[1:] {
				if n == skip {
					continue
				}
				for _, r := range n.pk.run {
					if r.state == rRunning {
						c++
					}
				}
			}
			return c
		}
		limit := w.now + time.Minute
		for running(nil) < packages && w.now < limit {
			w.Run(w.t.HeartbeatInterval / 4)
		}
		if running(nil) < packages {
			res.Incomplete++
			w.Close()
			continue
		}
		formed = append(formed, w.now)
		w.Run(time.Duration(rng.Int63n(int64(w.t.HeartbeatInterval))))
		victim := w.nodes[1]
		for _, n := range w.nodes[1:] {
			if n.upRunners() > victim.upRunners() {
				victim = n
			}
		}
		moved += victim.upRunners()
		crashed := w.now
		var took time.Duration = -1
		w.pk.onTakeover = func() {
			if took < 0 {
				took = w.now - crashed
			}
		}
		victim.crash("crash")
		for limit := w.now + time.Minute; running(victim) < packages && w.now < limit; {
			w.Run(w.t.HeartbeatInterval / 4)
		}
		if running(victim) < packages {
			res.Incomplete++
		} else {
			settled = append(settled, w.now-crashed)
			if took >= 0 {
				takeover = append(takeover, took)
			}
		}
		if len(w.violations) > 0 {
			w.Close()
			return res, fmt.Errorf("seed %d: %v", s, w.violations[0])
		}
		w.Close()
	}
	res.Steps = len(steps)
	res.Step, res.Formed, res.Takeover, res.Settled = percentiles(steps), percentiles(formed), percentiles(takeover), percentiles(settled)
	if res.Histories > res.Incomplete {
		res.Moved = float64(moved) / float64(res.Histories-res.Incomplete)
	}
	return res, nil
}

func (p PlacementTimes) String() string {
	return fmt.Sprintf("%d nodes, %d packages, %d histories: %d steps, step %v; formed %v; takeover %v; settled %v; moved %.1f; incomplete %d",
		p.Nodes, p.Packages, p.Histories, p.Steps, p.Step, p.Formed, p.Takeover, p.Settled, p.Moved, p.Incomplete)
}
