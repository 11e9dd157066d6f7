package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/nethb"
)

// CheckCmd validates a cluster configuration file and explains it: the
// nodes, networks, quorum arithmetic and the timeouts derived from the
// timing bases. It reads nothing but the file and the key file it names,
// so it runs on an operator's workstation as well as on a node.
//
// With --probe-disk it also measures this node's quorum disk (reads only)
// and fails when the measured latency cannot hold the timing.
type CheckCmd struct {
	Config    string        `required:"" type:"existingfile" help:"Cluster configuration file." placeholder:"FILE"`
	JSON      bool          `name:"json" help:"Print the result as JSON."`
	ProbeDisk bool          `name:"probe-disk" help:"Also measure the quorum disk's direct-I/O read latency (reads only: safe while the cluster runs) and fail when its 99th percentile is more than the timing rides out."`
	ProbeTime time.Duration `name:"probe-time" default:"5s" help:"With --probe-disk: how long to measure (at least 1s)."`
	Node      string        `help:"With --probe-disk: measure the quorum disk path configured for this node (default: the node named like this host)." placeholder:"NAME"`
	Device    string        `help:"With --probe-disk: the quorum disk device to measure instead of the configured path." placeholder:"PATH"`
	Packages  string        `help:"Directory of the package files (default: the cluster file's packages_dir, else packages/ beside it)." placeholder:"DIR"`
	// ProbeFence opens this node's fenced LUNs (PR IN commands only).
	ProbeFence bool `name:"probe-fence" help:"Also find out which fencing each LUN of this node gets (SCSI PR over SG_IO, block PR, or none: watchdog fallback); sends PR IN commands only. The node is --node, else the one named like this host."`
}

// checkDiskTooSlow is the exit status when the configuration is valid but
// --probe-disk measured a quorum disk slower than its timing rides out:
// the command failed (exitFailed), as for an invalid configuration; the
// error says which.
const checkDiskTooSlow = exitFailed

// Run checks the file. It prints a summary and any warnings, and returns
// an error listing every problem (one per line) when the file is invalid.
func (cmd *CheckCmd) Run(out io.Writer, log *slog.Logger) error {
	if cmd.ProbeDisk && cmd.ProbeTime < time.Second {
		return fmt.Errorf("--probe-time %v: must be at least 1s", cmd.ProbeTime)
	}
	if !cmd.ProbeDisk && (cmd.Device != "" || cmd.Node != "" && !cmd.ProbeFence) {
		return errors.New("--node and --device select the disk for --probe-disk: add --probe-disk")
	}
	c, err := config.Load(cmd.Config)
	pkgs, perrs, perr := cmd.loadPackages(c)
	if perr != nil {
		return perr
	}
	if err == nil && len(perrs) > 0 {
		err = &config.Errors{List: perrs}
	} else if err != nil && len(perrs) > 0 {
		var errs *config.Errors
		if errors.As(err, &errs) {
			err = &config.Errors{List: append(errs.List, perrs...)}
		}
	}
	if err != nil {
		var errs *config.Errors
		if !errors.As(err, &errs) {
			return err
		}
		log.Debug("configuration rejected", "file", cmd.Config, "problems", len(errs.List))
		if cmd.JSON {
			if jerr := writeJSON(out, checkReport{File: cmd.Config, Errors: problems(errs.List)}); jerr != nil {
				return jerr
			}
			return &ExitError{Code: exitFailed, Err: fmt.Errorf("%s: %s", cmd.Config, countProblems(len(errs.List)))}
		}
		return &ExitError{Code: exitFailed, Err: fmt.Errorf("%s: %s:\n%w", cmd.Config, countProblems(len(errs.List)), errs)}
	}
	warnings := append(c.Warnings(), keyFileWarnings(c)...)
	warnings = append(warnings, notifyWarnings(c)...)
	pw, err := placementChecks(c, pkgs)
	if err != nil {
		return &ExitError{Code: exitFailed, Err: fmt.Errorf("%s: %w", cmd.packagesDir(c), err)}
	}
	warnings = append(warnings, pw...)
	log.Debug("configuration valid", "file", cmd.Config, "cluster", c.Name, "nodes", len(c.Nodes), "warnings", len(warnings))
	var probe *diskProbe
	if cmd.ProbeDisk {
		probe, err = cmd.probe(c, log)
		if err != nil {
			return err
		}
	}
	probeNode := ""
	if cmd.ProbeFence {
		if probeNode = cmd.Node; probeNode == "" {
			probeNode, _ = os.Hostname()
		}
		if _, ok := c.NodeByName(probeNode); !ok {
			return fmt.Errorf("--probe-fence: %q is not a node of %s: pass --node NAME", probeNode, cmd.Config)
		}
	}
	fencing := fenceLUNs(c, probeNode)
	// lvm.conf is checked on the node the check runs on (--node, else
	// the host name), when it is one of the cluster's.
	lvmNode := cmd.Node
	if lvmNode == "" {
		lvmNode, _ = checkHostname()
	}
	var lvmc *lvmCheck
	if _, ok := c.NodeByName(lvmNode); ok {
		lvmc = checkLVM(context.Background(), lvmNode, pkgs)
	}
	if cmd.JSON {
		r := newCheckReport(cmd.Config, c, warnings)
		r.Probe = probe.report()
		r.Packages = packageReports(pkgs)
		r.Fencing = fencing
		r.LVM = lvmc
		if err := writeJSON(out, r); err != nil {
			return err
		}
	} else if err := printCheck(out, cmd.Config, c, warnings, probe, fencing); err != nil {
		return err
	} else if err := printPackages(out, cmd.packagesDir(c), pkgs); err != nil {
		return err
	} else if err := printLVMCheck(out, lvmc); err != nil {
		return err
	}
	if probe != nil && !probe.holds {
		return &ExitError{Code: checkDiskTooSlow, Err: errors.New(probe.verdict)}
	}
	if lvmc != nil && len(lvmc.Problems) > 0 {
		return &ExitError{Code: exitFailed, Err: fmt.Errorf("%w: %s", errLVMConfig, strings.Join(lvmc.Problems, "; "))}
	}
	return nil
}

// keyFileWarnings checks the heartbeat key file as the daemon will, but
// only warns: the file may legitimately be absent where the check runs.
func keyFileWarnings(c *config.Cluster) []*config.FieldError {
	// O_NONBLOCK: a key path that names a FIFO must not hang the check.
	if f, err := os.OpenFile(c.KeyFile, os.O_RDONLY|syscall.O_NONBLOCK, 0); errors.Is(err, fs.ErrPermission) {
		// Normal for a root-owned key when the check runs as another user.
		return []*config.FieldError{c.Annotate("cluster.key_file",
			fmt.Sprintf("%s not checked: this user cannot read it; run mtc check as root to check it", c.KeyFile), err)}
	} else if err == nil {
		fi, serr := f.Stat()
		f.Close()
		if serr == nil && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			// nethb.LoadKey refuses it too, but would block opening a FIFO.
			return []*config.FieldError{c.Annotate("cluster.key_file",
				fmt.Sprintf("cluster key file %s is not a regular file (%s); the daemon refuses to start without a usable key", c.KeyFile, fi.Mode().Type()), nil)}
		}
	}
	if _, err := nethb.LoadKey(c.KeyFile); err != nil {
		return []*config.FieldError{c.Annotate("cluster.key_file",
			err.Error()+"; the daemon refuses to start without a usable key", err)}
	}
	return nil
}

// notifyWarnings checks that the [events] notify program is there and
// executable on this machine; only a warning, as the key file: the check
// may run elsewhere than on a node.
func notifyWarnings(c *config.Cluster) []*config.FieldError {
	if len(c.Events.Notify) == 0 {
		return nil
	}
	prog := c.Events.Notify[0]
	fi, err := os.Stat(prog)
	switch {
	case err != nil:
		return []*config.FieldError{c.Annotate("events.notify",
			fmt.Sprintf("notify program %s: %v on this machine; events are journaled but not passed on", prog, err), err)}
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return []*config.FieldError{c.Annotate("events.notify",
			fmt.Sprintf("notify program %s is not an executable file (%v); events are journaled but not passed on", prog, fi.Mode()), nil)}
	}
	return nil
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// quorumText explains the quorum arithmetic of the configured votes, in
// the terms of the quorum package: a strict majority holds quorum, exactly
// half needs the quorum disk's tie-break lock.
func quorumText(total int) string {
	need := total/2 + 1
	s := fmt.Sprintf("%s; quorum is %s", plural(total, "vote"), plural(need, "vote"))
	if total%2 == 0 {
		return s + fmt.Sprintf("; an exact split (%d and %d) is decided on the quorum disk: the side holding its tie-break lock keeps quorum", total/2, total/2)
	}
	return s + "; an exact split cannot happen with an odd total"
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// timingLines explains the derived timeouts in plain words. Values are
// rounded to the millisecond for reading; --json gives them exactly.
func timingLines(d config.Derived) []string {
	r := roundMs
	return []string{
		fmt.Sprintf("every %v each node sends a heartbeat on every network, writes its quorum-disk slot, reads its peers' slots and feeds its watchdog", r(d.HeartbeatInterval)),
		fmt.Sprintf("a quorum-disk read or write that has not completed within %v has failed", r(d.IOTimeout)),
		fmt.Sprintf("a peer silent for %v is suspected (logged, nothing else)", r(d.SuspectAfter)),
		fmt.Sprintf("a peer silent for %v on both the network and the quorum disk is declared dead", r(d.DeadAfter)),
		fmt.Sprintf("a node that cannot write its quorum-disk slot or loses quorum for %v stops its packages and its watchdog resets it within %v", r(d.SelfFenceAfter), r(d.WatchdogTimeout)),
		fmt.Sprintf("takeover of a dead node's packages without fencing is allowed %v after it is declared dead (failure_timeout %v + watchdog_timeout %v + %v margin for clock drift and delays); with fencing it starts as soon as fencing succeeds", r(d.TakeoverAfter), r(d.FailureTimeout), r(d.WatchdogTimeout), r(d.Margin)),
		fmt.Sprintf("in an exact split, nodes keep their packages for up to %v while the quorum disk's tie-break lock is decided", r(d.TiePending)),
		fmt.Sprintf("the tie-break lock may be claimed once it has been unchanged for %v; a claim is read back after %v to see who won; a holder that cannot renew it for %v stops counting on it", r(d.TieClaimAfter), r(d.LockSettle), r(d.TieHold)),
		diskToleranceText(d),
	}
}

// diskToleranceText says what quorum-disk latency the timing rides out
// (config.Derived.DiskLatencyTolerance and DiskStallTolerance).
func diskToleranceText(d config.Derived) string {
	r := roundMs
	lat := d.DiskLatencyTolerance()
	return fmt.Sprintf("this timing rides out quorum-disk latency up to %v per I/O for as long as it lasts (a heartbeat round's %d I/Os then take up to %v, and the write of a node's own slot still succeeds within %v), and a complete stall of the quorum disk of up to %v; slower I/O or a longer stall makes a node self-fence (measure the disk with mtc check --probe-disk)",
		r(lat), config.DiskIOsPerRound, r(config.DiskIOsPerRound*lat), r(d.SelfFenceAfter), r(d.DiskStallTolerance()))
}

// roundMs rounds a duration to the millisecond for display, or to the
// microsecond below 10ms.
func roundMs(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

func printCheck(out io.Writer, file string, c *config.Cluster, warnings []*config.FieldError, probe *diskProbe, fencing []checkFence) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: valid\n\n", file)
	fmt.Fprintf(&b, "Cluster %s (uuid %s)\n", c.Name, c.UUID)
	fmt.Fprintf(&b, "Configuration generation %016x: every node must show the same (nodes drop heartbeats of another generation)\n", c.Generation())
	fmt.Fprintf(&b, "  heartbeat key file %s\n", c.KeyFile)
	switch c.Watchdog.Mode {
	case config.WatchdogDevice:
		fmt.Fprintf(&b, "  watchdog device %s\n", c.Watchdog.Device)
	default:
		fmt.Fprintf(&b, "  watchdog mode %s\n", c.Watchdog.Mode)
	}
	fmt.Fprintf(&b, "  control channel TCP port %d on every heartbeat address (open it between the nodes)\n", c.Control.Port)
	fmt.Fprintf(&b, "  event journal %s", c.JournalPath("<node>"))
	if len(c.Events.Notify) > 0 {
		fmt.Fprintf(&b, "; every event to %s (at most %v each)", strings.Join(c.Events.Notify, " "), c.Events.NotifyTimeout)
	}
	b.WriteString("\n")

	b.WriteString("\nHeartbeat networks\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for i, nw := range c.Networks {
		fmt.Fprintf(tw, "  %d\t%s\tUDP port %d\n", i, nw.Name, nw.Port)
	}
	tw.Flush()

	b.WriteString("\nNodes\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "  NAME\tID\tVOTES")
	for _, nw := range c.Networks {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(nw.Name))
	}
	fmt.Fprint(tw, "\tQUORUM DISK\n")
	for _, n := range c.Nodes {
		fmt.Fprintf(tw, "  %s\t%d\t%d", n.Name, n.ID, n.Votes)
		for _, nw := range c.Networks {
			fmt.Fprintf(tw, "\t%s", n.Addresses[nw.Name])
		}
		fmt.Fprintf(tw, "\t%s\n", c.QuorumDiskPath(n.Name))
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nQuorum\n  %s\n", quorumText(c.TotalVotes()))

	t := c.Timing
	fmt.Fprintf(&b, "\nTimings (heartbeat_interval %v, io_timeout %v, failure_timeout %v, watchdog_timeout %v)\n",
		t.HeartbeatInterval, t.IOTimeout, t.FailureTimeout, t.WatchdogTimeout)
	for _, l := range timingLines(c.Derived()) {
		fmt.Fprintf(&b, "  - %s\n", l)
	}

	t5 := config.DefaultReservationType
	if c.Fence.ReservationType != 0 {
		t5 = c.Fence.ReservationType
	}
	fmt.Fprintf(&b, "\nFencing (SCSI-3 persistent reservations, type %s, APTPL %v; a LUN without PR waits for the watchdog deadline)\n", t5, c.Fence.APTPL)
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "  NODE\tLUN\tFENCING\tDETAIL\n")
	for _, f := range fencing {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Node, f.LUN, f.Fencing, f.Detail)
	}
	tw.Flush()

	if probe != nil {
		fmt.Fprintf(&b, "\nQuorum disk %s (measured for %v, reads only)\n", probe.path, probe.elapsed.Round(time.Millisecond))
		for _, l := range probe.lines() {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}

	if len(warnings) > 0 {
		fmt.Fprintf(&b, "\nWarnings (%d)\n", len(warnings))
		for _, w := range warnings {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// checkReport is the --json output.
type checkReport struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Errors   []checkProblem  `json:"errors,omitempty"`
	Warnings []checkProblem  `json:"warnings,omitempty"`
	Cluster  *checkCluster   `json:"cluster,omitempty"`
	Probe    *probeReport    `json:"disk_probe,omitempty"`
	Packages []packageReport `json:"packages,omitempty"`
	LVM      *lvmCheck       `json:"lvm,omitempty"`
	Fencing  []checkFence    `json:"fencing,omitempty"`
}

type checkProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

type checkCluster struct {
	Name       string            `json:"name"`
	UUID       string            `json:"uuid"`
	Generation string            `json:"generation"`
	KeyFile    string            `json:"key_file"`
	Watchdog   checkWatchdog     `json:"watchdog"`
	Networks   []checkNetwork    `json:"networks"`
	Nodes      []checkNode       `json:"nodes"`
	TotalVotes int               `json:"total_votes"`
	Quorum     int               `json:"quorum_votes"`
	QuorumText string            `json:"quorum_text"`
	Timing     map[string]string `json:"timing"`
	Derived    map[string]string `json:"derived"`
	// DiskTolerance says in words what disk latency the timing rides out.
	DiskTolerance string `json:"disk_tolerance"`
}

type checkWatchdog struct {
	Mode      string `json:"mode"`
	Device    string `json:"device,omitempty"`
	AllowNone bool   `json:"allow_none"`
}

type checkNetwork struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

type checkNode struct {
	Name       string            `json:"name"`
	ID         int               `json:"id"`
	Votes      int               `json:"votes"`
	Addresses  map[string]string `json:"addresses"`
	QuorumDisk string            `json:"quorum_disk"`
}

func problems(list []*config.FieldError) []checkProblem {
	out := make([]checkProblem, len(list))
	for i, fe := range list {
		out[i] = checkProblem{File: fe.File, Line: fe.Line, Col: fe.Col, Field: fe.Field, Message: fe.Msg}
	}
	return out
}

func newCheckReport(file string, c *config.Cluster, warnings []*config.FieldError) checkReport {
	d := c.Derived()
	dur := func(v time.Duration) string { return v.String() }
	cc := &checkCluster{
		Name:       c.Name,
		UUID:       c.UUID.String(),
		Generation: fmt.Sprintf("%016x", c.Generation()),
		KeyFile:    c.KeyFile,
		Watchdog:   checkWatchdog{Mode: string(c.Watchdog.Mode), Device: c.Watchdog.Device, AllowNone: c.Watchdog.AllowNone},
		TotalVotes: c.TotalVotes(),
		Quorum:     c.TotalVotes()/2 + 1,
		QuorumText: quorumText(c.TotalVotes()),
		Timing: map[string]string{
			"heartbeat_interval": dur(d.HeartbeatInterval),
			"io_timeout":         dur(d.IOTimeout),
			"failure_timeout":    dur(d.FailureTimeout),
			"watchdog_timeout":   dur(d.WatchdogTimeout),
		},
		Derived: map[string]string{
			"suspect_after":          dur(d.SuspectAfter),
			"dead_after":             dur(d.DeadAfter),
			"self_fence_after":       dur(d.SelfFenceAfter),
			"watchdog_feed_interval": dur(d.WatchdogFeedInterval),
			"margin":                 dur(d.Margin),
			"takeover_after":         dur(d.TakeoverAfter),
			"tie_claim_after":        dur(d.TieClaimAfter),
			"lock_settle":            dur(d.LockSettle),
			"tie_hold":               dur(d.TieHold),
			"tie_pending":            dur(d.TiePending),
			"endorse_guard":          dur(d.EndorseGuard),
			"settle_grace":           dur(d.SettleGrace),
			"disk_latency_tolerance": dur(d.DiskLatencyTolerance()),
			"disk_stall_tolerance":   dur(d.DiskStallTolerance()),
		},
		DiskTolerance: diskToleranceText(d),
	}
	for _, nw := range c.Networks {
		cc.Networks = append(cc.Networks, checkNetwork{Name: nw.Name, Port: nw.Port})
	}
	for _, n := range c.Nodes {
		cn := checkNode{Name: n.Name, ID: n.ID, Votes: n.Votes, QuorumDisk: c.QuorumDiskPath(n.Name), Addresses: map[string]string{}}
		for net, a := range n.Addresses {
			cn.Addresses[net] = a.String()
		}
		cc.Nodes = append(cc.Nodes, cn)
	}
	return checkReport{File: file, Valid: true, Warnings: problems(warnings), Cluster: cc}
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ethernetPayload is the largest UDP datagram one Ethernet frame (MTU
// 1500) carries over IPv4 without fragments.
const ethernetPayload = 1472

// placementChecks refuses packages the cluster cannot carry (too many, or
// an operator state larger than the quorum disk's state area) and warns
// when a report of them makes heartbeats that IP must fragment.
func placementChecks(c *config.Cluster, pkgs []*config.Package) ([]*config.FieldError, error) {
	if len(pkgs) == 0 {
		return nil, nil
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	if err := daemon.CheckPackagesFit(names); err != nil {
		return nil, err
	}
	size, err := daemon.HeartbeatSize(names)
	if err != nil {
		return nil, err
	}
	if size <= ethernetPayload {
		return nil, nil
	}
	return []*config.FieldError{c.Annotate("network",
		fmt.Sprintf("a heartbeat of a node running all %d packages is %d bytes, more than one Ethernet frame carries (%d): the heartbeat networks must pass IP fragments (no firewall may drop them)", len(pkgs), size, ethernetPayload), nil)}, nil
}
