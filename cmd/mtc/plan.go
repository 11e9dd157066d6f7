package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/mtcluster/mtc/daemon"
)

// PlanCmd asks what placement would do in a hypothetical case, from a
// node's live state, without acting.
type PlanCmd struct {
	Fail  []string `xor:"case" help:"What if these nodes failed (crashed, then were fenced)? Repeat or separate with commas." placeholder:"NODE" completion:"node"`
	Move  string   `xor:"case" help:"What if this package were moved (to --to)?" placeholder:"PKG" completion:"package"`
	To    string   `help:"With --move: the node it would move to." placeholder:"NODE" completion:"node"`
	Drain string   `xor:"case" help:"What if this node were drained?" placeholder:"NODE" completion:"node"`
	controlFlags
}

// planTime bounds a plan: placement's answer from the live state, no
// action to wait for.
const planTime = 15 * time.Second

// Run asks for the plan and prints it.
func (c *PlanCmd) Run(out io.Writer) error {
	var a daemon.PlanArgs
	var nodes []string
	switch {
	case len(c.Fail) == 0 && c.Move == "" && c.Drain == "":
		return &ExitError{Code: exitUsage, Err: errors.New("which case? give --fail NODE,... or --move PKG --to NODE or --drain NODE")}
	case c.Move != "" && c.To == "":
		return &ExitError{Code: exitUsage, Err: errors.New("--move PKG needs --to NODE: where would it move?")}
	case c.Move == "" && c.To != "":
		return &ExitError{Code: exitUsage, Err: errors.New("--to goes with --move PKG")}
	case c.Move != "":
		a.Move = &daemon.PlanMove{Package: c.Move, To: c.To}
		nodes = []string{c.To}
	case c.Drain != "":
		a.Drain = c.Drain
		nodes = []string{c.Drain}
	default:
		a.Fail = c.Fail
		nodes = c.Fail
	}
	what := "plan"
	cl, err := c.dial()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := cl.checkNode(n, what); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), planTime)
	defer cancel()
	var r daemon.PlanResult
	_, err = cl.call(ctx, daemon.CommandPlan, func(spent time.Duration) (any, time.Duration) { return a, planTime - callTime - spent }, &r)
	if err != nil {
		if c.JSON {
			printErrorJSON(out, err)
		}
		return callError(what, err, planTime, false)
	}
	if c.JSON {
		if err := writeJSON(out, r); err != nil {
			return err
		}
	} else {
		printPlan(out, r)
	}
	if r.Refused != "" {
		return &ExitError{Code: exitRefused, Err: fmt.Errorf("plan %s: placement would refuse it: %s", esc(r.Case), esc(r.Refused))}
	}
	return nil
}

// printPlan prints the case and a table of the packages before and after.
func printPlan(out io.Writer, r daemon.PlanResult) {
	fmt.Fprintf(out, "%s (from the live state of %s):\n", esc(r.Case), esc(r.Node))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tNOW\tAFTER\tCHANGE\tWHY")
	for _, p := range r.Packages {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", esc(p.Name), esc(orDash(p.Now)), esc(orDash(p.After)), esc(p.Change), esc(p.Why))
	}
	tw.Flush()
	if r.Refused != "" {
		fmt.Fprintf(out, "refused: %s\n", esc(r.Refused))
	}
}
