package placement

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mtcluster/mtc/quorum"
)

// script runs placement scenario commands on a cluster (cluster_test.go).
// The language, one command per line:
//
//	nodes alpha beta gamma      the nodes, ids 1, 2, 3 in order (first command)
//	package NAME nodes=a,b [failover=min_package_node] [failback=automatic]
//	        [priority=N] [auto_run=false] [needs=Q@same_node,...] [excludes=Q@any_node,...]
//	start                       boot every node in one quorate cluster
//	step                        run rounds until nothing changes: runners move one
//	                            state per round, reports travel within each side
//	crash N                     node N and everything it runs stop at once
//	boot N                      node N starts again with a new incarnation
//	partition a,b | c           cut the network between the sides (a side with a
//	                            strict majority is quorate)
//	heal                        one side again
//	selffence N                 node N (without quorum) stops its packages and resets
//	takeover N fenced|watchdog  the quorum machine allows the takeover of dead N
//	run P [N]  halt P  move P N  enable P  disable P  maintenance P on|off
//	drain N  undrain N  clear P [N]      operator intents, fed to every live node
//	fail P N start|halt|service the next start or halt of P on N fails, or its
//	                            service fails now (past its restart limit)
//	state                       where each package runs and where each node places it
//
// Each command prints what it caused, round by round: "rK nodes: text",
// with the nodes that logged the same line. Runner states are "P running";
// actions "start P (why)" and "halt P (why)"; the machines' decisions as
// Decision.String; a broken invariant as "checker: VIOLATION: ...".
type script struct {
	c     *cluster
	nodes []Node
	pkgs  []Package
}

func (s *script) do(text string) (string, error) {
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = text[:i]
	}
	f := strings.Fields(text)
	if len(f) == 0 {
		return "", nil
	}
	cmd, args := f[0], f[1:]
	if s.c == nil && cmd != "nodes" && cmd != "package" && cmd != "start" {
		return "", fmt.Errorf("%q before start", cmd)
	}
	node := func(i int) (NodeID, error) {
		if i >= len(args) {
			return 0, fmt.Errorf("%s: missing node name", cmd)
		}
		for _, n := range s.nodes {
			if n.Name == args[i] {
				return n.ID, nil
			}
		}
		return 0, fmt.Errorf("%s: %q is not a node", cmd, args[i])
	}
	pkgArg := func(i int) (string, error) {
		if i >= len(args) {
			return "", fmt.Errorf("%s: missing package name", cmd)
		}
		for _, p := range s.pkgs {
			if p.Name == args[i] {
				return p.Name, nil
			}
		}
		return "", fmt.Errorf("%s: %q is not a package", cmd, args[i])
	}
	c := s.c
	switch cmd {
	case "nodes":
		for i, a := range args {
			s.nodes = append(s.nodes, Node{ID: NodeID(i + 1), Name: a})
		}
		return "", nil
	case "package":
		p, err := s.parsePackage(args)
		if err != nil {
			return "", err
		}
		s.pkgs = append(s.pkgs, p)
		return "", nil
	case "start":
		s.c = newCluster(s.nodes, s.pkgs)
		for _, n := range s.nodes {
			if err := s.c.boot(n.ID); err != nil {
				return "", err
			}
		}
		s.c.views()
		return s.c.flush(), nil
	case "step":
		n, out := c.settle(60)
		if n >= 60 {
			out += "NOT SETTLED after 60 rounds\n"
		}
		return out, nil
	case "crash", "selffence":
		id, err := node(0)
		if err != nil {
			return "", err
		}
		c.kill(id)
		c.emit(c.name(id), map[string]string{"crash": "crashed", "selffence": "self-fenced: packages stopped"}[cmd])
		c.views()
		return c.flush(), nil
	case "boot":
		id, err := node(0)
		if err != nil {
			return "", err
		}
		if c.hs[id].alive {
			return "", fmt.Errorf("boot: %s runs", args[0])
		}
		if err := c.boot(id); err != nil {
			return "", err
		}
		c.views()
		return c.flush(), nil
	case "partition":
		sides := strings.Split(strings.Join(args, " "), "|")
		for k, side := range sides {
			for _, name := range strings.Split(side, ",") {
				id, ok := c.byName(strings.TrimSpace(name))
				if !ok {
					return "", fmt.Errorf("partition: %q is not a node", name)
				}
				c.side[id] = k
			}
		}
		c.views()
		return c.flush(), nil
	case "heal":
		clear(c.side[:])
		c.views()
		return c.flush(), nil
	case "takeover":
		id, err := node(0)
		if err != nil {
			return "", err
		}
		r := quorum.TakeoverFenced
		if len(args) > 1 && args[1] == "watchdog" {
			r = quorum.TakeoverWatchdog
		}
		if err := c.takeover(id, r); err != nil {
			return "", err
		}
		return c.flush(), nil
	case "run", "halt", "enable", "disable", "maintenance", "move", "clear":
		p, err := pkgArg(0)
		if err != nil {
			return "", err
		}
		in := Intent{Package: p}
		switch cmd {
		case "run":
			in.Kind = IntentRun
		case "halt":
			in.Kind = IntentHalt
		case "enable":
			in.Kind = IntentEnable
		case "disable":
			in.Kind = IntentDisable
		case "maintenance":
			in.Kind = IntentMaintenanceOn
			if len(args) > 1 && args[1] == "off" {
				in.Kind = IntentMaintenanceOff
			}
		case "move":
			in.Kind = IntentMove
		case "clear":
			in.Kind = IntentClear
		}
		if (cmd == "run" || cmd == "move" || cmd == "clear") && len(args) > 1 {
			if in.Node, err = node(1); err != nil {
				return "", err
			}
		}
		c.intent(in)
		return c.flush(), nil
	case "drain", "undrain":
		id, err := node(0)
		if err != nil {
			return "", err
		}
		k := IntentDrain
		if cmd == "undrain" {
			k = IntentUndrain
		}
		c.intent(Intent{Kind: k, Node: id})
		return c.flush(), nil
	case "fail":
		p, err := pkgArg(0)
		if err != nil {
			return "", err
		}
		id, err := node(1)
		if err != nil {
			return "", err
		}
		if len(args) < 3 {
			return "", fmt.Errorf("fail: say start, halt or service")
		}
		h := c.hs[id]
		switch args[2] {
		case "start", "halt":
			h.fail[p] = args[2]
		case "service":
			if h.run[p] != Running {
				return "", fmt.Errorf("fail: %s does not run %s", args[1], p)
			}
			c.setRun(h, p, Failed, "service failed past its restart limit")
		default:
			return "", fmt.Errorf("fail: say start, halt or service")
		}
		return c.flush(), nil
	case "state":
		return s.state(), nil
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func (s *script) state() string {
	c := s.c
	var b strings.Builder
	names := make([]string, 0, len(s.pkgs))
	for _, p := range s.pkgs {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		var runs []string
		targets := map[string][]string{}
		var order []string
		for _, n := range s.nodes {
			h := c.hs[n.ID]
			if !h.alive {
				continue
			}
			if st := h.run[name]; st != Halted {
				runs = append(runs, fmt.Sprintf("%s %v", h.name, st))
			}
			t := h.m.pkgs[h.m.byName[name]].target
			tn := "nowhere"
			if t != 0 {
				tn = "on " + c.name(t)
			}
			if _, ok := targets[tn]; !ok {
				order = append(order, tn)
			}
			targets[tn] = append(targets[tn], h.name)
		}
		if len(runs) == 0 {
			runs = []string{"halted"}
		}
		var ts []string
		for _, tn := range order {
			ts = append(ts, fmt.Sprintf("%s (by %s)", tn, strings.Join(targets[tn], ",")))
		}
		fmt.Fprintf(&b, "%s: %s; placed %s\n", name, strings.Join(runs, ", "), strings.Join(ts, ", "))
	}
	return b.String()
}

func (s *script) parsePackage(args []string) (Package, error) {
	if len(args) == 0 {
		return Package{}, fmt.Errorf("package: missing name")
	}
	p := Package{Name: args[0], AutoRun: true}
	for _, kv := range args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, fmt.Errorf("package %s: %q is not key=value", p.Name, kv)
		}
		switch k {
		case "nodes":
			for _, name := range strings.Split(v, ",") {
				found := false
				for _, n := range s.nodes {
					if n.Name == name {
						p.Nodes = append(p.Nodes, n.ID)
						found = true
					}
				}
				if !found {
					return p, fmt.Errorf("package %s: %q is not a node", p.Name, name)
				}
			}
		case "failover":
			if v == "min_package_node" {
				p.Failover = MinPackageNode
			}
		case "failback":
			if v == "automatic" {
				p.Failback = FailbackAutomatic
			}
		case "priority":
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, fmt.Errorf("package %s: priority %q", p.Name, v)
			}
			p.Priority = n
		case "auto_run":
			p.AutoRun = v != "false"
		case "needs", "excludes":
			for _, d := range strings.Split(v, ",") {
				q, w, _ := strings.Cut(d, "@")
				dep := Dependency{Package: q, Cond: Needs}
				if k == "excludes" {
					dep.Cond = Excludes
				}
				switch w {
				case "same_node", "":
					dep.Where = SameNode
				case "different_node":
					dep.Where = DifferentNode
				case "any_node":
					dep.Where = AnyNode
				default:
					return p, fmt.Errorf("package %s: %q is not a place", p.Name, w)
				}
				p.Dependencies = append(p.Dependencies, dep)
			}
		default:
			return p, fmt.Errorf("package %s: unknown key %q", p.Name, k)
		}
	}
	return p, nil
}
