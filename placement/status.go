package placement

import (
	"maps"
	"slices"
)

// PackageStatus is one package as this node's machine sees it, for `mtc
// status` and `mtc plan`.
type PackageStatus struct {
	Name string
	// Target is where the package is placed (0: nowhere) and TargetWhy why.
	Target    NodeID
	TargetWhy string
	// States are the nodes reporting it not halted (this node's own
	// included), in id order.
	States []NodeState
	// Waiting says why this node, the target, does not start it yet.
	Waiting string
	Intent  PackageIntent
	// Marked are the nodes it is marked failed on.
	Marked []NodeID
}

// NodeState is a package's state on one node.
type NodeState struct {
	Node  NodeID
	State State
}

// Status reports every package, in name order. It is a query: it changes
// nothing.
func (m *Machine) Status() []PackageStatus {
	out := make([]PackageStatus, 0, len(m.pkgs))
	for i, p := range m.pkgs {
		ps := PackageStatus{Name: p.def.Name, Target: p.target, TargetWhy: p.targetWhy, Intent: p.intent}
		if p.target == m.self {
			ps.Waiting = p.waitWhy
		}
		for n := NodeID(1); n <= MaxNodes; n++ {
			if !m.nodes.Has(n) {
				continue
			}
			if s := m.anyState(i, n); s.up() {
				ps.States = append(ps.States, NodeState{Node: n, State: s})
			}
			if m.markedOn(i, n) {
				ps.Marked = append(ps.Marked, n)
			}
		}
		out = append(out, ps)
	}
	return out
}

// Clone returns an independent copy of the machine: `mtc plan` steps a
// clone with a hypothetical event (a view without a node, a move, a drain)
// and reads its Status and Ready, without acting, through the same
// decisions the cluster takes.
func (m *Machine) Clone() *Machine {
	c := *m
	c.pkgs = make([]*pkg, len(m.pkgs))
	for i, p := range m.pkgs {
		q := *p
		c.pkgs[i] = &q
	}
	for id, pi := range m.peers {
		if pi == nil {
			continue
		}
		q := *pi
		q.state = slices.Clone(pi.state)
		q.marked = slices.Clone(pi.marked)
		q.retired = slices.Clone(pi.retired)
		q.seen = slices.Clone(pi.seen)
		q.asMember = slices.Clone(pi.asMember)
		q.covered = maps.Clone(pi.covered)
		q.ghosts = make([]ghost, len(pi.ghosts))
		for k, g := range pi.ghosts {
			q.ghosts[k] = ghost{inc: g.inc, state: slices.Clone(g.state)}
		}
		c.peers[id] = &q
	}
	c.marks = slices.Clone(m.marks)
	c.own = slices.Clone(m.own)
	c.cur = slices.Clone(m.cur)
	c.placed = slices.Clone(m.placed)
	c.out = Ready{}
	return &c
}
