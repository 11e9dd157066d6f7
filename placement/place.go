package placement

import (
	"fmt"
	"strings"
)

// published is this node's state of package i as it reports it.
func (m *Machine) published(i int) State {
	p := m.pkgs[i]
	if p.local == Halted && (p.claimed || p.startAsked) {
		return Claimed
	}
	return p.local
}

// usable: node n is a member in the view and, for a peer, its latest
// accepted report is of the incarnation the view holds.
func (m *Machine) usable(n NodeID) bool {
	if !m.view.Members.Has(n) {
		return false
	}
	if n == m.self {
		return true
	}
	pi := m.peers[n]
	return pi != nil && pi.have && pi.inc == m.view.Inc[n]
}

// stateOn is package i's state on usable node n (Halted otherwise).
func (m *Machine) stateOn(i int, n NodeID) State {
	if n == m.self {
		return m.published(i)
	}
	if !m.usable(n) {
		return Halted
	}
	return m.peers[n].state[i]
}

// runningOn is the usable node where package i is claimed, starting or
// running (the earliest of its list, then the lowest id, should reports
// briefly show two), or 0.
func (m *Machine) runningOn(i int) NodeID {
	var best NodeID
	for _, n := range m.pkgs[i].def.Nodes {
		if s := m.stateOn(i, n); s == Claimed || s == Starting || s == Running {
			return n
		}
	}
	for n := NodeID(1); n <= MaxNodes; n++ {
		if s := m.stateOn(i, n); s == Claimed || s == Starting || s == Running {
			return n
		}
	}
	return best
}

// upSomewhere: package i is up on a usable node.
func (m *Machine) upSomewhere(i int) bool {
	for n := NodeID(1); n <= MaxNodes; n++ {
		if m.nodes.Has(n) && m.stateOn(i, n).up() {
			return true
		}
	}
	return false
}

// place computes every package's target node, in placement order. Every
// node computes the same targets from the same definitions, operator
// state, view and reports; ties are broken by the order of the package's
// nodes list, then node id.
func (m *Machine) place() {
	clear(m.pending[:])
	clear(m.load[:])
	for i := range m.pkgs {
		m.cur[i] = m.runningOn(i)
		m.placed[i] = false
		if m.cur[i] != 0 {
			m.pending[m.cur[i]]++
		}
	}
	// Without quorum this node acts on nothing, and until every member
	// has reported, targets would depend on who reported first: keep the
	// last ones.
	if !m.gate() {
		return
	}
	for _, x := range m.view.Members.IDs() {
		if !m.usable(x) {
			return
		}
	}
	m.targetLeft()
	for _, i := range m.order {
		p := m.pkgs[i]
		if c := m.cur[i]; c != 0 {
			m.pending[c]--
		}
		t, why := m.choose(i)
		m.placed[i] = true
		if t != 0 {
			m.load[t]++
		}
		if t != p.target || why != p.targetWhy {
			if t != p.target {
				m.decide(Decision{Kind: Placed, Package: p.def.Name, Node: t, Reason: why})
			}
			p.target, p.targetWhy = t, why
		}
	}
}

// choose decides package i's target.
func (m *Machine) choose(i int) (NodeID, string) {
	p := m.pkgs[i]
	name := p.def.Name
	cur := m.cur[i]
	if p.intent.Maintenance {
		if cur == 0 {
			for n := NodeID(1); n <= MaxNodes; n++ {
				if m.nodes.Has(n) && m.stateOn(i, n).up() {
					cur = n
					break
				}
			}
		}
		return cur, "in maintenance: the cluster does not act on it"
	}
	if p.intent.Down {
		if p.def.AutoRun || p.intent.Pending.ID != 0 {
			return 0, "halted by an operator"
		}
		return 0, fmt.Sprintf("auto_run is off: start it with `mtc run %s`", name)
	}
	if u, ok := m.pinnedBy(i); ok {
		// Its halt would wait for u for as long as u is in maintenance:
		// placing it elsewhere would only hold what needs it waiting for
		// a move that cannot complete.
		return cur, fmt.Sprintf("stays on %s: %s, in maintenance, needs it there", m.nodeName(cur), m.pkgs[u].def.Name)
	}
	if in := p.intent.Pending; in.ID != 0 && in.Node != 0 && in.Node != cur {
		if why := m.ineligible(i, in.Node); why == "" {
			return in.Node, fmt.Sprintf("%v by an operator (intent #%d)", in.Kind, in.ID)
		} else if cur != 0 {
			// While the move waits the package stays where it runs, if it
			// can: one that cannot stay there (what it needs moved away)
			// is placed as if no move were pending, or it would hold
			// what it needs in place and neither would ever move.
			if m.ineligible(i, cur) == "" {
				return cur, fmt.Sprintf("stays on %s: %v to %s waits: %s", m.nodeName(cur), in.Kind, m.nodeName(in.Node), why)
			}
		} else {
			return 0, fmt.Sprintf("%v to %s waits: %s", in.Kind, m.nodeName(in.Node), why)
		}
	}
	if cur != 0 {
		why := m.ineligible(i, cur)
		if why == "" {
			first := p.def.Nodes[0]
			if p.def.Failback == FailbackAutomatic && p.intent.Switching && cur != first && m.ineligible(i, first) == "" {
				return first, fmt.Sprintf("fails back from %s to its first node", m.nodeName(cur))
			}
			return cur, "runs there"
		}
		if !p.intent.Switching {
			return 0, fmt.Sprintf("cannot stay on %s (%s) and automatic switching is disabled", m.nodeName(cur), why)
		}
		n, none := m.byPolicy(i)
		if n == 0 {
			return 0, fmt.Sprintf("cannot stay on %s (%s), and %s", m.nodeName(cur), why, none)
		}
		return n, fmt.Sprintf("moves off %s (%s), %v", m.nodeName(cur), why, p.def.Failover)
	}
	if !p.intent.Switching && p.intent.Pending.ID == 0 {
		if m.upSomewhere(i) {
			return 0, "automatic switching is disabled"
		}
		return 0, fmt.Sprintf("automatic switching is disabled: run `mtc run %s` or `mtc enable %s`", name, name)
	}
	n, none := m.byPolicy(i)
	if n == 0 {
		return 0, none
	}
	return n, p.def.Failover.String()
}

// byPolicy picks the node for package i by its failover policy, or
// returns 0 and why no node can run it.
func (m *Machine) byPolicy(i int) (NodeID, string) {
	p := m.pkgs[i]
	var best NodeID
	bestLoad := 0
	var why []string
	for _, n := range p.def.Nodes {
		if w := m.ineligible(i, n); w != "" {
			why = append(why, m.nodeName(n)+": "+w)
			continue
		}
		if p.def.Failover == ConfiguredNode {
			return n, ""
		}
		if l := m.load[n] + m.pending[n]; best == 0 || l < bestLoad {
			best, bestLoad = n, l
		}
	}
	if best != 0 {
		return best, ""
	}
	return 0, "no node can run it: " + strings.Join(why, "; ")
}

// ineligible says why package i cannot be placed on node n now, or "".
// Packages earlier in placement order have their targets; for later ones
// their current location counts.
func (m *Machine) ineligible(i int, n NodeID) string {
	p := m.pkgs[i]
	switch {
	case !containsNode(p.def.Nodes, n):
		return "not one of its nodes"
	case !m.view.Members.Has(n):
		return "not a member"
	case !m.usable(n):
		return "has not reported yet"
	case m.drained.Has(n):
		return "drained"
	case m.markedOn(i, n):
		return fmt.Sprintf("failed there: clear with `mtc clear %s --node %s`", p.def.Name, m.nodeName(n))
	}
	up := m.cur[i] != 0
	for _, d := range p.needs {
		q := m.pkgs[d.j]
		tq := m.pkgs[d.j].target // placed earlier (needs order)
		ok := tq != 0 && whereHolds(d.where, tq, n)
		// A package that runs stays placed only while what it needs runs
		// at its own target: when that moves, this one halts first.
		if ok && up && m.cur[d.j] != tq {
			ok = false
		}
		if !ok {
			return fmt.Sprintf("needs %s %s", q.def.Name, whereText(d.where))
		}
	}
	for _, d := range p.excl {
		q := m.pkgs[d.j]
		var loc NodeID
		switch {
		case m.placed[d.j]:
			loc = q.target
		case p.eff < q.eff:
			continue // higher priority: q is placed after and yields
		default:
			loc = m.cur[d.j]
		}
		if loc != 0 && whereHolds(d.where, loc, n) {
			return fmt.Sprintf("excludes %s, placed on %s", q.def.Name, m.nodeName(loc))
		}
	}
	return ""
}

// whereHolds: a package on other satisfies where for a package on n.
func whereHolds(w Where, other, n NodeID) bool {
	switch w {
	case SameNode:
		return other == n
	case DifferentNode:
		return other != n
	}
	return true
}

func whereText(w Where) string {
	switch w {
	case SameNode:
		return "on the same node"
	case DifferentNode:
		return "on another node"
	}
	return "somewhere"
}
