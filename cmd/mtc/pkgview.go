package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/pkgrun"
)

// printPackageViews prints one line per package (name, state, owner, since,
// target when it differs, operator flags, what it waits for), then a line
// for each failure and failover that needs telling. ref is the time the
// view was taken at, by the clock of the node that took it (the zero
// time: now).
func printPackageViews(out io.Writer, pkgs []daemon.PackageView, ref time.Time, paint painter) {
	if ref.IsZero() {
		ref = time.Now()
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PACKAGE\t%s\tOWNER\tSINCE\tTARGET\tFLAGS\tWAITING\n", paint.state("STATE"))
	for _, p := range pkgs {
		target := "-"
		if p.Target != p.Owner {
			target = orDash(p.Target)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", esc(p.Name), paint.state(p.State), orDash(p.Owner), since(p.Since, ref),
			esc(target), esc(orDash(strings.Join(operatorFlags(p), ", "))), esc(p.Waiting))
	}
	tw.Flush()
	for _, p := range pkgs {
		// Where else it is not halted: the old owner of a move halting,
		// a node where it failed.
		for _, n := range p.Nodes {
			if n.Node == p.Owner && !isFailed(n.State) {
				continue
			}
			line := fmt.Sprintf("%s %s on %s", esc(p.Name), n.State, esc(n.Node))
			if n.Reason != "" {
				line += ": " + esc(n.Reason)
			}
			if isFailed(n.State) {
				line = paint.alert(line)
			}
			fmt.Fprintln(out, line)
		}
		if len(p.Marked) > 0 {
			fmt.Fprintf(out, "%s is marked failed on %s: once the cause is fixed, `mtc clear %s` lets it run there again\n",
				esc(p.Name), esc(strings.Join(p.Marked, ", ")), esc(p.Name))
		}
		for _, tl := range []*pkgrun.Timeline{p.LastStart, p.LastHalt} {
			if tl != nil && tl.Outcome != "" && tl.Outcome != pkgrun.OK {
				fmt.Fprintf(out, "%s: last %s here at %s %s: %s\n", esc(p.Name), tl.Kind, wall(tl.Start), tl.Outcome, esc(failedStep(tl)))
			}
		}
		if f := p.Failover; f != nil {
			fmt.Fprintf(out, "%s: %s\n", esc(p.Name), failoverLine(f))
		}
	}
}

// operatorFlags are the operator's settings of a package that change what
// the cluster does with it.
func operatorFlags(p daemon.PackageView) []string {
	var fl []string
	if p.Maintenance {
		fl = append(fl, "maintenance")
	}
	if p.Halted {
		fl = append(fl, "halted")
	}
	if !p.Switching {
		fl = append(fl, "switching off")
	}
	if p.Pending != "" {
		fl = append(fl, "pending "+p.Pending)
	}
	if len(p.Marked) > 0 {
		fl = append(fl, "failed on "+strings.Join(p.Marked, ","))
	}
	return fl
}

func isFailed(state string) bool {
	return state == pkgrun.Failed.String() || state == pkgrun.HaltFailed.String() || state == "halt-failed"
}

// failedStep says which step of a timeline failed, and how.
func failedStep(tl *pkgrun.Timeline) string {
	for _, s := range tl.Steps {
		if s.Outcome != pkgrun.OK {
			msg := s.Phase + " step " + s.Name + " " + string(s.Outcome)
			if s.Err != "" {
				msg += ": " + s.Err
			}
			return msg
		}
	}
	return orDash(tl.Err)
}

// failoverLine is a failover's timeline: each phase since the old owner
// was lost, on the clock of the node that took the package over.
func failoverLine(f *daemon.FailoverView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "failover %s -> %s, lost at %s", esc(f.From), esc(f.To), wall(f.Lost))
	phase := func(name string, d time.Duration) bool {
		if d <= 0 {
			fmt.Fprintf(&b, ", %s: not yet", name)
			return false
		}
		fmt.Fprintf(&b, ", %s +%v", name, d.Round(time.Millisecond))
		return true
	}
	if !phase("taken over", f.TakenOver) {
		return b.String()
	}
	if f.Reason != "" {
		fmt.Fprintf(&b, " (%s)", esc(f.Reason))
	}
	_ = phase("claimed", f.Claimed) && phase("started", f.Started) && phase("running", f.Running)
	return b.String()
}

// since renders when a state began: the time of day when it began within
// a day of ref, else the date too.
func since(t, ref time.Time) string {
	switch {
	case t.IsZero():
		return "-"
	case ref.Sub(t) < 24*time.Hour && ref.Sub(t) > -time.Hour:
		return t.Local().Format("15:04:05")
	}
	return t.Local().Format("2006-01-02 15:04")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printSteps prints each package's last start and halt on the node, step
// by step.
func printSteps(out io.Writer, pkgs []daemon.PackageView) {
	for _, p := range pkgs {
		if p.LastStart == nil && p.LastHalt == nil {
			continue
		}
		fmt.Fprintf(out, "\npackage %s:\n", esc(p.Name))
		for _, tl := range []*pkgrun.Timeline{p.LastStart, p.LastHalt} {
			printTimeline(out, false, tl)
		}
	}
}
