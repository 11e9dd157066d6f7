package sim

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/quorum"
)

// scriptUnsafe is the rule a test disables in scripts (planted bugs).
var scriptUnsafe quorum.Unsafe

// RunScript runs a scenario script on an exact (noise-free) cluster and
// returns its decision log. The script language, one command per line
// ('#' starts a comment):
//
//	nodes N               cluster size (first command; 2..16)
//	timing default|aggressive
//	fencing on|off        the fencing component works (default on)
//	run D                 let D pass (Go duration: 500ms, 2s); "tick" is an alias
//	partition 1,2|3       cut the network between the groups (both ways)
//	oneway A->B           drop every packet from A to B
//	loss P%               lose P percent of packets
//	heal                  restore the network
//	heal-all              end every fault; crashed nodes restart
//	disk-fail N           node N's disk path fails every I/O
//	disk-hang N           node N's disk I/O hangs (completes at disk-heal)
//	disk-heal N           node N's disk path works again
//	crash N               node N stops at once
//	restart N             node N boots with a new incarnation
//	pause N D             node N's daemon is paused for D (the watchdog counts)
//	freeze N D            node N's whole VM is frozen for D (the watchdog too)
//	check                 fail unless the cluster has re-formed
//
// The log shows, with the absolute simulation time, each command (">"),
// each node's decisions (members, quorum gained and lost, peers dead or
// partitioned, tie-break, fencing, takeover, self-fence), resets and
// package moves, and any invariant violation.
func RunScript(r io.Reader, name string) (string, error) {
	var w *World
	opt := Options{Seed: 1, Exact: true, Fencing: true, KeepLog: true, Timing: config.DefaultTiming(), Unsafe: scriptUnsafe}
	sc := bufio.NewScanner(r)
	line := 0
	logged := 0
	var out strings.Builder
	flush := func() {
		if w == nil {
			return
		}
		for _, l := range w.log[logged:] {
			if keepLine(l) {
				out.WriteString(l)
				out.WriteByte('\n')
			}
		}
		logged = len(w.log)
	}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "----" {
			break // the expected log of a golden file follows
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		cmd, args := f[0], f[1:]
		if w == nil && cmd != "nodes" && cmd != "timing" && cmd != "fencing" {
			return "", errf("%q before \"nodes N\": the script must start with nodes (and optionally timing, fencing)", cmd)
		}
		nodeArg := func(i int) (quorum.NodeID, error) {
			if i >= len(args) {
				return 0, errf("%s: missing node id", cmd)
			}
			id, err := strconv.Atoi(args[i])
			if err != nil || id < 1 || w == nil || id >= len(w.nodes) {
				return 0, errf("%s: %q is not a node id of this cluster", cmd, args[i])
			}
			return quorum.NodeID(id), nil
		}
		durArg := func(i int) (time.Duration, error) {
			if i >= len(args) {
				return 0, errf("%s: missing duration", cmd)
			}
			d, err := time.ParseDuration(args[i])
			if err != nil || d < 0 {
				return 0, errf("%s: %q is not a duration (e.g. 500ms, 2s)", cmd, args[i])
			}
			return d, nil
		}
		if w != nil && cmd != "run" && cmd != "tick" {
			w.trace("> %s", strings.Join(f, " "))
		}
		switch cmd {
		case "nodes":
			if w != nil {
				return "", errf("nodes given twice")
			}
			if len(args) != 1 {
				return "", errf("usage: nodes N")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return "", errf("nodes: %q is not a number", args[0])
			}
			opt.Nodes = n
			w, err = NewWorld(opt)
			if err != nil {
				return "", errf("%v", err)
			}
			w.trace("> %s", strings.Join(f, " "))
		case "timing":
			if w != nil || len(args) != 1 {
				return "", errf("usage: timing default|aggressive, before nodes")
			}
			switch args[0] {
			case "default":
				opt.Timing = config.DefaultTiming()
			case "aggressive":
				opt.Timing = config.AggressiveTiming()
			default:
				return "", errf("timing: %q is neither default nor aggressive", args[0])
			}
		case "fencing":
			if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
				return "", errf("usage: fencing on|off")
			}
			if w == nil {
				opt.Fencing = args[0] == "on"
			} else {
				w.SetFencing(args[0] == "on")
			}
		case "run", "tick":
			d, err := durArg(0)
			if err != nil {
				return "", err
			}
			w.Run(d)
		case "partition":
			if len(args) != 1 {
				return "", errf("usage: partition 1,2|3")
			}
			var groups [][]quorum.NodeID
			for _, g := range strings.Split(args[0], "|") {
				var grp []quorum.NodeID
				for _, s := range strings.Split(g, ",") {
					id, err := strconv.Atoi(s)
					if err != nil || id < 1 || id >= len(w.nodes) {
						return "", errf("partition: %q is not a node id of this cluster", s)
					}
					grp = append(grp, quorum.NodeID(id))
				}
				groups = append(groups, grp)
			}
			w.Partition(groups)
		case "oneway":
			if len(args) != 1 || !strings.Contains(args[0], "->") {
				return "", errf("usage: oneway A->B")
			}
			ab := strings.SplitN(args[0], "->", 2)
			a, err1 := strconv.Atoi(ab[0])
			b, err2 := strconv.Atoi(ab[1])
			if err1 != nil || err2 != nil || a < 1 || b < 1 || a >= len(w.nodes) || b >= len(w.nodes) || a == b {
				return "", errf("oneway: %q must name two different nodes, A->B", args[0])
			}
			w.OneWay(quorum.NodeID(a), quorum.NodeID(b))
		case "loss":
			if len(args) != 1 {
				return "", errf("usage: loss P%%")
			}
			p, err := strconv.ParseFloat(strings.TrimSuffix(args[0], "%"), 64)
			if err != nil || p < 0 || p > 100 {
				return "", errf("loss: %q is not a percentage 0..100", args[0])
			}
			w.SetLoss(p / 100)
		case "heal":
			w.HealNetwork()
		case "heal-all":
			w.HealAll()
		case "disk-fail", "disk-hang", "disk-heal", "crash", "restart":
			id, err := nodeArg(0)
			if err != nil {
				return "", err
			}
			map[string]func(quorum.NodeID){
				"disk-fail": w.DiskFail, "disk-hang": w.DiskHang, "disk-heal": w.DiskHeal,
				"crash": w.Crash, "restart": w.Restart,
			}[cmd](id)
		case "pause", "freeze":
			id, err := nodeArg(0)
			if err != nil {
				return "", err
			}
			d, err := durArg(1)
			if err != nil {
				return "", err
			}
			if cmd == "pause" {
				w.Pause(id, d)
			} else {
				w.VMFreeze(id, d)
			}
		case "check":
			if !w.reformed() {
				w.trace("CHECK FAILED: the cluster has not re-formed: %v", w)
			} else {
				w.trace("check: re-formed")
			}
		default:
			return "", errf("unknown command %q", cmd)
		}
		flush()
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	flush()
	return out.String(), nil
}

// keepLine drops the chatter of a golden log: peers becoming alive or
// unknown, recovered writes and restarts seen by every peer.
func keepLine(l string) bool {
	if strings.Contains(l, " peer ") && (strings.HasSuffix(l, " alive") || strings.HasSuffix(l, " unknown")) {
		return false
	}
	for _, s := range []string{"disk-write-ok", "peer-restarted", "fault: ", "heal: "} {
		if strings.Contains(l, s) {
			return false
		}
	}
	return true
}
