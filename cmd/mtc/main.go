// Command mtc is MT-Cluster's single binary: the cluster daemon, the
// operator's CLI, the quorum-disk tools and the cluster simulator.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

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
	Sim     SimCmd     `cmd:"" help:"Run seeded simulations of a whole cluster and check the safety invariants (membership, quorum, fencing, takeover)."`
	Version VersionCmd `cmd:"" help:"Print the version of mtc."`

	// The daemon, its status client and the process watchdog's supervisor.
	Daemon            DaemonCmd            `cmd:"" help:"Run the cluster daemon of this node."`
	Status            StatusCmd            `cmd:"" help:"Show the local daemon's membership, quorum state, per-peer liveness and counters."`
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

func main() {
	var cli CLI
	ctx := kong.Parse(&cli,
		kong.Name("mtc"),
		kong.Description("MT-Cluster: high-availability cluster manager for shared-storage services."),
		kong.UsageOnError(),
		kong.BindTo(io.Writer(os.Stdout), (*io.Writer)(nil)),
	)
	log := newLogger(&cli.Globals, os.Stderr)
	ctx.Bind(log, &cli.Globals)
	if err := ctx.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "mtc: %v\n", err)
		os.Exit(exitCode(err))
	}
}
