// Command labctl is the lab guest's operator tool: it builds each node's
// device-mapper path to the quorum LUN at boot, lists the SAN's paths, and
// injects faults into one node's path by hand (shell mode, see
// test/lab/README.md). The lab tests use package labkit directly. On the
// host, run.sh uses it to copy the benchmark sections the guest wrote into
// docs/BENCHMARKS.md (copy-bench).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

const usage = `usage: labctl COMMAND
  setup               create NODE-quorum dm paths (/dev/mapper/nodeN-quorum) for every node
  paths               list every node's path to every LUN
  fail NODE           switch NODE's quorum path to an error table (I/O fails with EIO)
  hang NODE           suspend NODE's quorum path (I/O blocks until resume)
  delay NODE MS       add MS milliseconds to every I/O on NODE's quorum path (dm-delay)
  resume NODE         resume a hung path
  restore NODE        put the plain linear map back (healthy path)
  copy-bench FROM TO  (host) copy every benchmark section of FROM into TO
`

func main() {
	if err := run(context.Background(), os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		_, err := io.WriteString(out, usage)
		return err
	}
	if args[0] == "copy-bench" {
		if len(args) != 3 {
			return fmt.Errorf("copy-bench needs FROM and TO\n%s", usage)
		}
		names, err := benchdoc.CopySections(args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "copied %d sections into %s: %v\n", len(names), args[2], names)
		return nil
	}
	san, err := labkit.Discover("/sys")
	if err != nil {
		return err
	}
	switch args[0] {
	case "paths":
		for _, p := range san.Paths {
			fmt.Fprintf(out, "%-6s %-7s %s\n", p.Node, p.LUN, p.Dev)
		}
		return nil
	case "setup":
		if len(san.Nodes()) == 0 {
			return fmt.Errorf("no iSCSI paths in /sys/block: is the SAN up (/lab/san.sh)?")
		}
		for _, node := range san.Nodes() {
			p, err := quorumPath(ctx, san, node)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s -> %s\n", p.Dev(), p.Under)
		}
		return nil
	}
	switch args[0] {
	case "fail", "hang", "resume", "restore", "delay":
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	if len(args) < 2 {
		return fmt.Errorf("%s needs a NODE\n%s", args[0], usage)
	}
	p, err := quorumPath(ctx, san, args[1])
	if err != nil {
		return err
	}
	switch args[0] {
	case "fail":
		return p.Fail(ctx)
	case "hang":
		return p.Hang(ctx)
	case "resume":
		return p.Resume(ctx)
	case "delay":
		if len(args) != 3 {
			return fmt.Errorf("delay needs NODE MS\n%s", usage)
		}
		ms, err := strconv.Atoi(args[2])
		if err != nil || ms < 0 {
			return fmt.Errorf("delay: %q is not a whole number of milliseconds", args[2])
		}
		return p.Delay(ctx, time.Duration(ms)*time.Millisecond)
	default: // restore, the one command left
		return p.Restore(ctx)
	}
}

func quorumPath(ctx context.Context, san *labkit.SAN, node string) (*labkit.DMPath, error) {
	under, err := san.Dev(node, "quorum")
	if err != nil {
		return nil, err
	}
	return labkit.OpenDMPath(ctx, labkit.DMName(node, "quorum"), under)
}
