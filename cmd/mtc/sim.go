package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/sim"
)

// SimCmd runs seeded simulations of a whole cluster, checks the safety
// invariants of membership, quorum, fencing and takeover on every step and
// the survivors' liveness in every fault window.
type SimCmd struct {
	Nodes      int    `help:"Nodes per history, 2..16; 0 draws 2..16 for each history." default:"0"`
	Seeds      int    `help:"Number of histories to run." default:"100"`
	First      int64  `help:"Seed of the first history; the others follow." default:"1"`
	Seed       *int64 `help:"Run only this seed (replays a history exactly)."`
	Timing     string `help:"Timing profile: default, aggressive, or random (drawn per history)." default:"random" enum:"default,aggressive,random"`
	V          bool   `name:"v" help:"Print every history's trace of faults and decisions."`
	Script     string `help:"Run this scenario script instead of random histories and print its decision log." type:"existingfile"`
	Kind       string `help:"Draw every fault of every history from this kind (see the summary for the kinds); empty draws any." default:""`
	NoPackages bool   `name:"no-packages" help:"Run the histories without packages: no placement machines, package runners or operator intents (the package invariants 11-14 are not checked)."`
	// PlantBug plants a defect in every simulated node or its driver, to
	// show that the checkers catch it.
	PlantBug string `name:"plant-bug" hidden:"" help:"Plant a defect (see sim.Bugs) to test the checkers." default:""`
}

// Run runs the histories and ends with "histories=K violations=V".
func (c *SimCmd) Run(out io.Writer, log *slog.Logger) error {
	if c.Script != "" {
		f, err := os.Open(c.Script)
		if err != nil {
			return err
		}
		defer f.Close()
		text, err := sim.RunScript(f, c.Script)
		if err != nil {
			return err
		}
		_, err = io.WriteString(out, text)
		return err
	}
	if c.Nodes != 0 && (c.Nodes < 2 || c.Nodes > 16) {
		return fmt.Errorf("--nodes %d: a cluster has 2 to 16 nodes (0 draws a size per history)", c.Nodes)
	}
	ho := sim.HistoryOptions{Nodes: c.Nodes, Kind: c.Kind, NoPackages: c.NoPackages}
	if c.Kind != "" && !slices.Contains(sim.FaultKinds(), c.Kind) {
		return fmt.Errorf("--kind %q: the fault kinds are %s", c.Kind, strings.Join(sim.FaultKinds(), ", "))
	}
	if c.PlantBug != "" {
		b, err := sim.BugNamed(c.PlantBug)
		if err != nil {
			return fmt.Errorf("--plant-bug: %w", err)
		}
		ho.Bug = b
	}
	switch c.Timing {
	case "default":
		ho.Timing = config.DefaultTiming()
	case "aggressive":
		ho.Timing = config.AggressiveTiming()
	}
	first, count, workers := c.First, c.Seeds, runtime.GOMAXPROCS(0)
	if c.Seed != nil {
		first, count = *c.Seed, 1
	}
	if count < 1 {
		return fmt.Errorf("--seeds %d: run at least one history", count)
	}
	if c.V {
		// Traces of concurrent histories would interleave.
		workers = 1
	}
	start := time.Now()
	histories, violations, liveness := 0, 0, 0
	var kinds sim.KindCounts
	report := func(r sim.Result) {
		histories++
		violations += len(r.Violations)
		liveness += len(r.Liveness)
		kinds.Add(r)
		if len(r.Violations) > 0 || len(r.Liveness) > 0 {
			fmt.Fprintf(out, "FAIL %s\n", r.Summary())
			for i, v := range r.Violations {
				if i == 10 {
					fmt.Fprintf(out, "  ... and %d more\n", len(r.Violations)-10)
					break
				}
				fmt.Fprintf(out, "  %v\n", v)
			}
			for i, v := range r.Liveness {
				if i == 5 {
					fmt.Fprintf(out, "  ... and %d more liveness violations\n", len(r.Liveness)-5)
					break
				}
				fmt.Fprintf(out, "  liveness: %v\n", v)
			}
			replay := r.Replay()
			if c.Kind != "" {
				replay += " --kind " + c.Kind
			}
			if c.NoPackages {
				replay += " --no-packages"
			}
			fmt.Fprintf(out, "  replay: %s\n", replay)
		}
	}
	var err error
	if c.V {
		for s := first; s < first+int64(count); s++ {
			ho.Trace = out
			var r sim.Result
			if r, err = sim.RunHistory(s, ho); err != nil {
				break
			}
			report(r)
		}
	} else {
		err = sim.RunMany(first, count, workers, ho, report)
	}
	if err != nil {
		return err
	}
	log.Info("simulation finished", "histories", histories, "violations", violations, "liveness_violations", liveness, "elapsed", time.Since(start).Round(time.Millisecond))
	fmt.Fprint(out, kinds.String())
	fmt.Fprintf(out, "histories=%d violations=%d liveness=%d\n", histories, violations, liveness)
	if violations > 0 || liveness > 0 {
		return &ExitError{Code: 1, Err: errors.New("the simulation found invariant or liveness violations; replay a failing seed with --seed S --v")}
	}
	return nil
}
