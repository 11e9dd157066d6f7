package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// realRunners opens this node's OS edges (package pkgrun) and returns a
// runner for every package this node may run.
func (d *Daemon) realRunners(pkgs []*config.Package) (map[string]PackageRunner, error) {
	var mine []*config.Package
	vgs := false
	for _, p := range pkgs {
		if slices.Contains(p.Nodes, d.self.Name) {
			mine = append(mine, p)
			vgs = vgs || len(p.Spec().VolumeGroups) > 0
		}
	}
	out := make(map[string]PackageRunner)
	if len(mine) == 0 {
		return out, nil
	}
	cfg := pkgrun.NodeConfig{Node: d.self.Name, Members: (*members)(d), Logger: d.log.With("component", "package-runner")}
	if !vgs {
		// No VG to own: do not ask lvm2 (which may not be installed).
		cfg.SystemID = d.self.Name
	}
	node, err := pkgrun.NewNode(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("package runner of node %s: %w", d.self.Name, err)
	}
	d.pkgNode = node
	for _, p := range mine {
		out[p.Name] = node.Package(p.Spec(), pkgrun.Options{Logger: d.log.With("component", "package-runner"), OnFailed: func(name string, reason error) {
			if d.pl != nil {
				d.pl.mgr.Failed(name, reason)
			}
		}})
	}
	return out, nil
}

func (d *Daemon) closePkgNode() {
	if d.pkgNode != nil {
		_ = d.pkgNode.Close()
		d.pkgNode = nil
	}
}

// packageStatus adds the package layer to a status (event loop only).
func (d *Daemon) packageStatus(s *Status) {
	p := d.pl
	s.Packages = d.packageViews(p.m.Status(), "")
	for _, id := range p.m.Durable().Drained.IDs() {
		s.Drained = append(s.Drained, d.names[id])
	}
	if p.view.Quorate {
		if ids := p.view.Members.IDs(); len(ids) > 0 {
			s.Coordinator = d.names[ids[0]]
		}
	}
	s.LastIntent = p.last
}

// planOnLoop steps a clone of the placement machine with the hypothesis
// and compares its targets with today's.
func (d *Daemon) planOnLoop(a PlanArgs) (PlanResult, error) {
	p := d.pl
	if p.m == nil {
		return PlanResult{}, notQuorate("node %s is starting", d.self.Name)
	}
	c := p.m.Clone()
	now := d.clock()
	before := c.Status()
	res := PlanResult{Node: d.self.Name}
	id := p.last + 1
	switch {
	case len(a.Fail) > 0:
		v := p.view
		var ts []quorum.Takeover
		for _, name := range a.Fail {
			n, ok := d.cl.NodeByName(name)
			if !ok {
				return res, &codedErr{code: CodeUnknownNode, err: fmt.Errorf("no node %q in cluster %s", name, d.cl.Name)}
			}
			nid := quorum.NodeID(n.ID)
			ts = append(ts, quorum.Takeover{Target: quorum.Target{Node: nid, Inc: v.Inc[nid]}, Reason: quorum.TakeoverFenced})
			v.Members &^= 1 << nid
			v.Inc[nid] = 0
		}
		v.Epoch++
		res.Case = fmt.Sprintf("if %v failed (and were fenced)", a.Fail)
		c.Step(now, placement.ViewChanged{View: v})
		c.Step(now, placement.TakeoversAllowed{Takeovers: ts})
	case a.Move != nil:
		in, err := d.parseIntent(IntentArgs{Kind: IntentMove, Package: a.Move.Package, Node: a.Move.To})
		if err != nil {
			return res, err
		}
		in.ID = id
		res.Case = fmt.Sprintf("if package %s moved to %s", a.Move.Package, a.Move.To)
		c.Step(now, placement.Commanded{Intent: in})
	case a.Drain != "":
		in, err := d.parseIntent(IntentArgs{Kind: IntentDrain, Node: a.Drain})
		if err != nil {
			return res, err
		}
		in.ID = id
		res.Case = fmt.Sprintf("if node %s were drained", a.Drain)
		c.Step(now, placement.Commanded{Intent: in})
	default:
		return res, &codedErr{code: CodeBadArgs, err: fmt.Errorf("plan: give nodes that fail, a move or a drain")}
	}
	for _, dec := range c.Ready().Decisions {
		if dec.Kind == placement.IntentRejected && dec.Intent == id {
			res.Refused = dec.Reason
		}
	}
	after := c.Status()
	for i, b := range before {
		pp := PlanPackage{Name: b.Name}
		for _, s := range b.States {
			if pp.Now == "" || s.State == placement.Running {
				pp.Now = d.names[s.Node]
			}
		}
		if i < len(after) && after[i].Target != 0 {
			pp.After = d.names[after[i].Target]
		}
		if i < len(after) {
			pp.Why = after[i].TargetWhy
		}
		switch {
		case pp.Now == "" && pp.After == "":
			pp.Change = "down"
		case pp.Now == "":
			pp.Change = "starts"
		case pp.After == "":
			pp.Change = "halts"
		case pp.Now == pp.After:
			pp.Change = "stays"
		default:
			pp.Change = "moves"
		}
		res.Packages = append(res.Packages, pp)
	}
	return res, nil
}
