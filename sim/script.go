package sim

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// Script runs scenario commands, one at a time, on an exact (noise-free)
// cluster. The language, one command per line:
//
//	nodes N               cluster size (first command; 2..16)
//	timing default|aggressive
//	fencing on|off        the fencing component works (default on)
//	arbiter on|off        the fence decides a two-node tie (default on;
//	                      off: the tie-break lock does; before nodes)
//	run D                 let D pass (Go duration: 500ms, 2s); "tick" is an alias
//	partition 1,2|3       cut the network between the groups (both ways)
//	oneway A->B           drop every packet from A to B
//	deaf N                node N receives nothing (it still sends)
//	mute N                node N sends nothing (it still receives)
//	flap A-B P            the link A-B goes down and up every P
//	babble N              node N's view changes with every heartbeat
//	loss P%               lose P percent of packets
//	heal                  restore the network
//	heal-all              end every fault; crashed nodes restart
//	disk-fail N           node N's disk path fails every I/O
//	disk-hang N           node N's disk I/O hangs (completes at disk-heal)
//	disk-heal N           node N's disk path works again
//	slow-stop N D|hang|off  node N's package stops take D, or hang
//	crash N               node N stops at once
//	restart N             node N boots with a new incarnation
//	pause N D             node N's daemon is paused for D (the watchdog counts)
//	freeze N D            node N's whole VM is frozen for D (the watchdog too)
//	preempt N LUN         another node's late PREEMPT AND ABORT removes node
//	                      N's key from LUN quorum or data (a fence requested
//	                      earlier landing after N registered again)
//	check                 whether the cluster has re-formed, and the checkers' counts
//
// Packages (pkg.go; the runners take 500ms to start or halt a package):
//
//	package P nodes 1,2,3 [OPTION...]  define package P (before nodes), with
//	                      options manual (auto_run off), min (failover_policy
//	                      min_package_node), failback (failback_policy
//	                      automatic), priority N, needs Q (same_node),
//	                      needs-any Q, excludes Q (same_node)
//	intent KIND [P] [N]   an operator intent (run, halt, move, enable, disable,
//	                      maintenance-on, maintenance-off, drain, undrain, clear),
//	                      committed by the coordinator: intent move db 2,
//	                      intent drain 2, intent halt db
//	fail P N              package P's service on node N fails past its
//	                      restart limit
//	expect P on N|nowhere whether P runs on node N alone (or is down everywhere)
//
// Each command's output is the log it caused, with the absolute simulation
// time: each node's decisions (members, quorum gained and lost, peers dead
// or partitioned, tie-break, fencing, takeover, self-fence), resets,
// package stops and moves, and any violation of the safety invariants
// ("VIOLATION") or of the liveness properties ("LIVENESS").
type Script struct {
	name   string
	opt    Options
	w      *World
	logged int
}

// NewScript starts a scenario; name is used in error messages.
func NewScript(name string) *Script {
	return &Script{name: name, opt: Options{Seed: 1, Exact: true, Fencing: true, KeepLog: true, Timing: config.DefaultTiming(), Bug: scriptBug}}
}

// scriptBug is the defect a test plants in scripts.
var scriptBug Bug

// World is the cluster (nil before "nodes").
func (s *Script) World() *World { return s.w }

// Do runs one command (line is its text, lineNo its line for errors) and
// returns the log lines it caused.
func (s *Script) Do(line string, lineNo int) (string, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", s.name, lineNo, fmt.Sprintf(format, args...))
	}
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", nil
	}
	cmd, args := f[0], f[1:]
	w := s.w
	if w == nil && cmd != "nodes" && cmd != "timing" && cmd != "fencing" && cmd != "arbiter" && cmd != "package" {
		return "", errf("%q before \"nodes N\": the script must start with nodes (and optionally timing, fencing, arbiter, package)", cmd)
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
	pair := func(arg, sep string) (quorum.NodeID, quorum.NodeID, error) {
		ab := strings.SplitN(arg, sep, 2)
		if len(ab) != 2 {
			return 0, 0, errf("%s: %q must name two different nodes, A%sB", cmd, arg, sep)
		}
		a, err1 := strconv.Atoi(ab[0])
		b, err2 := strconv.Atoi(ab[1])
		if err1 != nil || err2 != nil || a < 1 || b < 1 || a >= len(w.nodes) || b >= len(w.nodes) || a == b {
			return 0, 0, errf("%s: %q must name two different nodes, A%sB", cmd, arg, sep)
		}
		return quorum.NodeID(a), quorum.NodeID(b), nil
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
		s.opt.Nodes = n
		if s.w, err = NewWorld(s.opt); err != nil {
			return "", errf("%v", err)
		}
		w = s.w
	case "timing":
		if w != nil || len(args) != 1 {
			return "", errf("usage: timing default|aggressive, before nodes")
		}
		switch args[0] {
		case "default":
			s.opt.Timing = config.DefaultTiming()
		case "aggressive":
			s.opt.Timing = config.AggressiveTiming()
		default:
			return "", errf("timing: %q is neither default nor aggressive", args[0])
		}
	case "fencing":
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return "", errf("usage: fencing on|off")
		}
		if w == nil {
			s.opt.Fencing = args[0] == "on"
		} else {
			w.SetFencing(args[0] == "on")
		}
	case "arbiter":
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return "", errf("usage: arbiter on|off")
		}
		if w != nil {
			return "", errf("arbiter: give it before \"nodes N\" (the machines are configured at their start)")
		}
		s.opt.NoArbiter = args[0] == "off"
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
			for _, x := range strings.Split(g, ",") {
				id, err := strconv.Atoi(x)
				if err != nil || id < 1 || id >= len(w.nodes) {
					return "", errf("partition: %q is not a node id of this cluster", x)
				}
				grp = append(grp, quorum.NodeID(id))
			}
			groups = append(groups, grp)
		}
		w.Partition(groups)
	case "oneway":
		if len(args) != 1 {
			return "", errf("usage: oneway A->B")
		}
		a, b, err := pair(args[0], "->")
		if err != nil {
			return "", err
		}
		w.OneWay(a, b)
	case "flap":
		if len(args) != 2 {
			return "", errf("usage: flap A-B PERIOD")
		}
		a, b, err := pair(args[0], "-")
		if err != nil {
			return "", err
		}
		d, err := durArg(1)
		if err != nil {
			return "", err
		}
		w.Flap(a, b, d)
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
	case "disk-fail", "disk-hang", "disk-heal", "crash", "restart", "deaf", "mute", "babble":
		id, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		map[string]func(quorum.NodeID){
			"disk-fail": w.DiskFail, "disk-hang": w.DiskHang, "disk-heal": w.DiskHeal,
			"crash": w.Crash, "restart": w.Restart, "deaf": w.Deaf, "mute": w.Mute, "babble": w.Babble,
		}[cmd](id)
	case "slow-stop":
		id, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		if len(args) != 2 {
			return "", errf("usage: slow-stop N D|hang|off")
		}
		var d time.Duration
		switch args[1] {
		case "hang":
			d = -1
		case "off":
		default:
			if d, err = durArg(1); err != nil {
				return "", err
			}
		}
		w.SlowStop(id, d)
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
	case "preempt":
		id, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		if len(args) != 2 {
			return "", errf("usage: preempt N quorum|data")
		}
		if err := w.Preempt(id, args[1]); err != nil {
			return "", errf("preempt: %v", err)
		}
	case "package":
		if w != nil {
			return "", errf("package: define packages before \"nodes N\"")
		}
		p, err := parsePackage(args)
		if err != nil {
			return "", errf("package: %v", err)
		}
		s.opt.Packages = true
		s.opt.PackageOptions.Packages = append(s.opt.PackageOptions.Packages, p)
	case "intent":
		if w.pk == nil {
			return "", errf("intent: the script defines no package")
		}
		in, err := parseIntent(args, len(w.nodes)-1)
		if err != nil {
			return "", errf("intent: %v", err)
		}
		w.pk.submit(in)
	case "fail", "expect":
		if w.pk == nil {
			return "", errf("%s: the script defines no package", cmd)
		}
		if len(args) < 2 {
			return "", errf("usage: fail P N, expect P on N|nowhere")
		}
		i, ok := w.pk.index[args[0]]
		if !ok {
			return "", errf("%s: no package %q", cmd, args[0])
		}
		if cmd == "fail" {
			id, err := nodeArg(1)
			if err != nil {
				return "", err
			}
			if r := w.nodes[id].pk.run[i]; r.state == rRunning {
				r.tok++
				r.set(rFailed)
			}
			break
		}
		var want quorum.NodeID
		switch {
		case len(args) == 2 && args[1] == "nowhere":
		case len(args) == 3 && args[1] == "on":
			id, err := nodeArg(2)
			if err != nil {
				return "", err
			}
			want = id
		default:
			return "", errf("usage: expect P on N|nowhere")
		}
		var up []string
		ok = true
		for _, n := range w.nodes[1:] {
			r := n.pk.run[i]
			if r.up() {
				up = append(up, fmt.Sprintf("n%d %v", n.id, r.state))
			}
			if n.id == want && r.state != rRunning || n.id != want && r.up() {
				ok = false
			}
		}
		if ok {
			w.trace("expect %s: ok (%s)", strings.Join(args, " "), orNone(up))
		} else {
			w.trace("EXPECT FAILED %s: %s", strings.Join(args, " "), orNone(up))
		}
	case "check":
		w.lv.flush()
		state := "re-formed"
		if !w.reformed() {
			state = "NOT re-formed: " + w.String()
		}
		w.trace("check: %s; safety violations %d, liveness violations %d", state, len(w.violations), len(w.liveness))
	default:
		return "", errf("unknown command %q", cmd)
	}
	var out strings.Builder
	if w != nil {
		for _, l := range w.log[s.logged:] {
			if keepLine(l) {
				out.WriteString(l)
				out.WriteByte('\n')
			}
		}
		s.logged = len(w.log)
	}
	return out.String(), nil
}

// RunScript runs a scenario script and returns its log, each command
// shown (">") before the lines it caused. A golden file (command, "----",
// expected output up to a blank line) runs too: its expected output is
// skipped.
func RunScript(r io.Reader, name string) (string, error) {
	s := NewScript(name)
	sc := bufio.NewScanner(r)
	var out strings.Builder
	line, skipping := 0, false
	for sc.Scan() {
		line++
		text := sc.Text()
		if skipping {
			skipping = strings.TrimSpace(text) != ""
			continue
		}
		if strings.TrimSpace(text) == "----" {
			skipping = true
			continue
		}
		cmd := strings.TrimSpace(text)
		if i := strings.IndexByte(cmd, '#'); i >= 0 {
			cmd = strings.TrimSpace(cmd[:i])
		}
		if cmd == "" {
			continue
		}
		at := time.Duration(0)
		if s.w != nil {
			at = s.w.now
		}
		got, err := s.Do(text, line)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&out, "%9s > %s\n", fmtDur(at), cmd)
		out.WriteString(got)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return out.String(), nil
}

// keepLine drops the chatter of a scenario log: peers becoming alive or
// unknown, recovered writes, restarts seen by every peer, and the faults
// themselves (the command names them).
func keepLine(l string) bool {
	if strings.Contains(l, " peer ") && (strings.HasSuffix(l, " alive") || strings.HasSuffix(l, " unknown")) {
		return false
	}
	for _, s := range []string{"disk-write-ok", "peer-restarted", "fault: ", "heal: ", "fencing on", "fencing off", "registered for fencing", " placement placed ", " placement intent "} {
		if strings.Contains(l, s) {
			return false
		}
	}
	return true
}

// parsePackage reads "P nodes 1,2,3 [OPTION...]" (see Script).
func parsePackage(args []string) (placement.Package, error) {
	if len(args) < 3 || args[1] != "nodes" {
		return placement.Package{}, fmt.Errorf("usage: package P nodes 1,2,3 [manual] [min] [failback] [priority N] [needs Q] [needs-any Q] [excludes Q]")
	}
	p := placement.Package{Name: args[0], AutoRun: true}
	for _, x := range strings.Split(args[2], ",") {
		id, err := strconv.Atoi(x)
		if err != nil || id < 1 || id > quorum.MaxNodes {
			return p, fmt.Errorf("%q is not a node id", x)
		}
		p.Nodes = append(p.Nodes, placement.NodeID(id))
	}
	for i := 3; i < len(args); i++ {
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", args[i])
			}
			i++
			return args[i], nil
		}
		switch args[i] {
		case "manual":
			p.AutoRun = false
		case "min":
			p.Failover = placement.MinPackageNode
		case "failback":
			p.Failback = placement.FailbackAutomatic
		case "priority":
			v, err := next()
			if err != nil {
				return p, err
			}
			if p.Priority, err = strconv.Atoi(v); err != nil {
				return p, fmt.Errorf("priority %q is not a number", v)
			}
		case "needs", "needs-any", "excludes":
			v, err := next()
			if err != nil {
				return p, err
			}
			d := placement.Dependency{Package: v, Cond: placement.Needs, Where: placement.SameNode}
			switch args[i-1] {
			case "needs-any":
				d.Where = placement.AnyNode
			case "excludes":
				d.Cond = placement.Excludes
			}
			p.Dependencies = append(p.Dependencies, d)
		default:
			return p, fmt.Errorf("unknown option %q (manual, min, failback, priority N, needs Q, needs-any Q, excludes Q)", args[i])
		}
	}
	return p, nil
}

// parseIntent reads "KIND [P] [N]" (see Script).
func parseIntent(args []string, nodes int) (placement.Intent, error) {
	if len(args) == 0 {
		return placement.Intent{}, fmt.Errorf("usage: intent KIND [P] [N]")
	}
	var in placement.Intent
	kinds := map[string]placement.IntentKind{
		"run": placement.IntentRun, "halt": placement.IntentHalt, "move": placement.IntentMove,
		"enable": placement.IntentEnable, "disable": placement.IntentDisable,
		"maintenance-on": placement.IntentMaintenanceOn, "maintenance-off": placement.IntentMaintenanceOff,
		"drain": placement.IntentDrain, "undrain": placement.IntentUndrain, "clear": placement.IntentClear,
	}
	k, ok := kinds[args[0]]
	if !ok {
		return in, fmt.Errorf("unknown kind %q", args[0])
	}
	in.Kind = k
	rest := args[1:]
	if k != placement.IntentDrain && k != placement.IntentUndrain {
		if len(rest) == 0 {
			return in, fmt.Errorf("%s names a package", args[0])
		}
		in.Package, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		id, err := strconv.Atoi(rest[0])
		if err != nil || id < 1 || id > nodes {
			return in, fmt.Errorf("%q is not a node id of this cluster", rest[0])
		}
		in.Node = placement.NodeID(id)
	}
	return in, nil
}
