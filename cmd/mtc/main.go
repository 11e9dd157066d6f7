// Command mtc is MT-Cluster's single binary: the cluster daemon, the
// operator's CLI, the quorum-disk tools and the cluster simulator.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Globals are the flags every command accepts.
type Globals struct {
	LogLevel  string `help:"Log level: debug, info, warn or error." default:"info" enum:"debug,info,warn,error"`
	LogFormat string `help:"Log format: text or json." default:"text" enum:"text,json"`
}

// CLI is the whole command tree. Each command is one struct with a Run method.
type CLI struct {
	Globals

	Bench   BenchCmd   `cmd:"" help:"Measure this machine: quorum-disk I/O latency and rates; writes a section of docs/BENCHMARKS.md."`
	Check   CheckCmd   `cmd:"" help:"Validate a cluster configuration file and print the timings derived from it."`
	Disk    DiskCmd    `cmd:"" help:"Initialise and inspect the shared quorum disk."`
	Fence   FenceCmd   `cmd:"" help:"Inspect SCSI-3 persistent reservations on shared LUNs: keys and whose, reservation, capabilities, findings."`
	Package PackageCmd `cmd:"" help:"Start, halt or show one package on this node alone, outside the cluster, to test it (as crm_resource --force-start)."`
	Sim     SimCmd     `cmd:"" help:"Run seeded simulations of a whole cluster and check the safety invariants (membership, quorum, fencing, takeover)."`
	Version VersionCmd `cmd:"" help:"Print the version of mtc."`

	Completion CompletionCmd `cmd:"" help:"Print a shell completion script: source <(mtc completion bash), or zsh."`
	Complete   CompleteCmd   `cmd:"" name:"__complete" hidden:"" help:"Completion candidates (used by the completion scripts)."`

	// The daemon, its status client and the process watchdog's supervisor.
	Daemon DaemonCmd `cmd:"" help:"Run the cluster daemon of this node."`
	Status StatusCmd `cmd:"" help:"Show the local daemon's membership, quorum state, per-peer liveness, packages and counters."`
	Events EventsCmd `cmd:"" help:"Show this node's event journal (membership, quorum, fencing, takeovers), or follow it."`

	// The package and node commands: operator intents the cluster's
	// coordinator commits (intent.go, plan.go).
	Run               RunCmd               `cmd:"" group:"Packages and nodes" help:"Start a package, where placement puts it or --on a node. Idempotent."`
	Halt              HaltCmd              `cmd:"" group:"Packages and nodes" help:"Halt a package; it stays halted (no failover) until mtc run. Idempotent."`
	Move              MoveCmd              `cmd:"" group:"Packages and nodes" help:"Move a package to another node, once: no constraint is left behind. Idempotent."`
	Enable            EnableCmd            `cmd:"" group:"Packages and nodes" help:"Turn a package's automatic switching (failover, failback) on. Idempotent."`
	Disable           DisableCmd           `cmd:"" group:"Packages and nodes" help:"Turn a package's automatic switching off: it stays where it runs and does not fail over. Idempotent."`
	Maintenance       MaintenanceCmd       `cmd:"" group:"Packages and nodes" help:"Put a package in maintenance (the cluster stops acting on it, its resources stay as they are), or take it out. Idempotent."`
	Node              NodeCmd              `cmd:"" group:"Packages and nodes" help:"Drain a node for planned downtime, or undrain it."`
	Clear             ClearCmd             `cmd:"" group:"Packages and nodes" help:"Forget a package's failure marks (on every node, or --node), so it may run there again. Idempotent."`
	Plan              PlanCmd              `cmd:"" group:"Packages and nodes" help:"What would placement do if nodes failed, a package moved or a node were drained? From the live state, without acting."`
	WatchdogSupervise WatchdogSuperviseCmd `cmd:"" name:"watchdog-supervise" hidden:"" help:"Process watchdog supervisor (started by the daemon)."`
}

// VersionCmd prints the build version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(out io.Writer) error {
	_, err := fmt.Fprintf(out, "mtc %s\n", version)
	return err
}

func newLogger(g *Globals, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(g.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if g.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// description heads `mtc --help`; it documents the exit statuses.
const description = `MT-Cluster: high-availability cluster manager for shared-storage services.

Exit status: 0 success; 1 the command failed (the error printed says why,
for mtc check an invalid configuration, for mtc sim a violated invariant);
2 the command line is wrong (unknown command or flag, missing argument).
The package and node commands (run, halt, move, enable, disable,
maintenance, node drain|undrain, clear, plan) also exit with: 4 refused,
nothing changed (unknown package or node, a package in maintenance, placement
rejects it; for plan, would reject it); 5 committed, but the goal not reached
within --wait (the cluster keeps working on it: mtc status --watch); 6 no
daemon answered, or none could reach a quorate coordinator: nothing was
committed. They are idempotent: repeating one is safe.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitRequest carries kong's request to exit (after --help) out of Parse.
type exitRequest int

// run runs mtc with args and returns its exit status.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			code = int(e)
		}
	}()
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("mtc"),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitRequest(code)) }),
		kong.BindTo(stdout, (*io.Writer)(nil)),
	)
	if err != nil {
		panic(err) // the command tree itself is malformed: a programming error
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		return usageError(stderr, err)
	}
	log := newLogger(&cli.Globals, stderr)
	ctx.Bind(log, &cli.Globals)
	if err := ctx.Run(); err != nil {
		fmt.Fprintf(stderr, "mtc: %v\n", err)
		return exitCode(err)
	}
	return exitOK
}

// usageError prints a command-line error with where to find the usage of
// the command it concerns, instead of the whole usage: the one useful
// line (often kong's "did you mean ...?") stays where the operator sees it.
func usageError(w io.Writer, err error) int {
	cmd := "mtc"
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		cmd = commandPath(pe.Context.Selected())
	}
	fmt.Fprintf(w, "mtc: %v\nRun '%s --help' for usage.\n", err, cmd)
	return exitUsage
}

// commandPath is "mtc disk dump" for the command node n (or the command an
// argument or flag node n belongs to).
func commandPath(n *kong.Node) string {
	var names []string
	for ; n != nil; n = n.Parent {
		if n.Type == kong.CommandNode {
			names = append([]string{n.Name}, names...)
		}
	}
	return strings.Join(append([]string{"mtc"}, names...), " ")
}
