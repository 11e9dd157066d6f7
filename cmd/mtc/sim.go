package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/sim"
)

// SimCmd runs seeded simulations of a whole cluster and checks the safety
// invariants of membership, quorum, fencing and takeover on every step.
type SimCmd struct {
	Nodes  int    `help:"Nodes per history, 2..16; 0 draws 2..16 for each history." default:"0"`
	Seeds  int    `help:"Number of histories to run." default:"100"`
	First  int64  `help:"Seed of the first history; the others follow." default:"1"`
	Seed   *int64 `help:"Run only this seed (replays a history exactly)."`
	Timing string `help:"Timing profile: default, aggressive, or random (drawn per history)." default:"random" enum:"default,aggressive,random"`
	V      bool   `name:"v" help:"Print every history's trace of faults and decisions."`
	Script string `help:"Run this scenario script instead of random histories and print its decision log." type:"existingfile"`
	// PlantBug disables one safety rule in every simulated node, to show
	// that the checker catches the split brain that follows.
	PlantBug string `name:"plant-bug" hidden:"" help:"Disable a safety rule (tie-break, agreement, shrink-guard) to test the checker." enum:",tie-break,agreement,shrink-guard" default:""`
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
	ho := sim.HistoryOptions{Nodes: c.Nodes}
	switch c.PlantBug {
	case "tie-break":
		ho.Unsafe.SkipTieBreak = true
	case "agreement":
		ho.Unsafe.SkipAgreement = true
	case "shrink-guard":
		ho.Unsafe.SkipShrinkGuard = true
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
	histories, violations := 0, 0
	report := func(r sim.Result) {
		histories++
		violations += len(r.Violations)
		if len(r.Violations) > 0 {
			fmt.Fprintf(out, "FAIL %s\n", r.Summary())
			for _, v := range r.Violations {
				fmt.Fprintf(out, "  %v\n", v)
			}
			replay := r.Replay()
			if c.PlantBug != "" {
				replay += " --plant-bug " + c.PlantBug
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
	log.Info("simulation finished", "histories", histories, "violations", violations, "elapsed", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "histories=%d violations=%d\n", histories, violations)
	if violations > 0 {
		return &ExitError{Code: 1, Err: errors.New("the simulation found invariant violations; replay a failing seed with --seed S --v")}
	}
	return nil
}
