package placement

import (
	"fmt"
	"slices"
)

// onIntent applies one operator intent. Intents are applied once each, in
// ID order; a repeated or older ID is ignored (commands are retried).
// What an intent may not do is decided here from the definitions and the
// operator state alone, which every node holds alike, so every node
// accepts or rejects it the same way; whether a move can be carried out
// now (the target node reports, dependencies run) is decided at placement.
func (m *Machine) onIntent(in Intent) {
	if in.ID <= m.lastIntent {
		return
	}
	m.lastIntent = in.ID
	m.durableDirty = true
	reject := func(format string, args ...any) {
		m.decide(Decision{Kind: IntentRejected, Package: in.Package, Node: in.Node, Intent: in.ID, Reason: fmt.Sprintf(format, args...)})
	}
	applied := func(why string) {
		m.decide(Decision{Kind: IntentApplied, Package: in.Package, Node: in.Node, Intent: in.ID, Reason: in.Kind.String() + why})
	}
	switch in.Kind {
	case IntentDrain, IntentUndrain:
		if !m.nodes.Has(in.Node) {
			reject("node id %d is not a configured node", in.Node)
			return
		}
		if in.Kind == IntentDrain {
			m.drained = m.drained.Add(in.Node)
			// A one-shot run --on or move to the drained node is over:
			// every node cancels it here, in intent order, so that they
			// agree whether or not they saw it run there first.
			for _, p := range m.pkgs {
				if pd := p.intent.Pending; pd.ID != 0 && pd.Node == in.Node {
					p.intent.Pending = Intent{}
					m.decide(Decision{Kind: IntentRejected, Package: p.def.Name, Node: in.Node, Intent: pd.ID,
						Reason: fmt.Sprintf("%s cancelled: %s was drained (intent %d)", pd.Kind, m.nodeName(in.Node), in.ID)})
				}
			}
		} else {
			m.drained = m.drained.Remove(in.Node)
		}
		applied("")
		return
	}
	i, ok := m.byName[in.Package]
	if !ok {
		reject("no package is called %q", in.Package)
		return
	}
	p := m.pkgs[i]
	name := p.def.Name
	inList := func(n NodeID) bool { return n == 0 || containsNode(p.def.Nodes, n) }
	if in.Node != 0 && !inList(in.Node) {
		reject("%s is not one of the nodes of package %s (%s)", m.nodeName(in.Node), name, m.nodeNames(p.def.Nodes))
		return
	}
	if p.intent.Maintenance && in.Kind != IntentMaintenanceOff && in.Kind != IntentMaintenanceOn {
		reject("package %s is in maintenance: run `mtc maintenance %s off` first", name, name)
		return
	}
	switch in.Kind {
	case IntentRun:
		if cur := m.cur[i]; cur != 0 && in.Node != 0 && cur != in.Node {
			reject("package %s runs on %s: use `mtc move %s --to %s`", name, m.nodeName(cur), name, m.nodeName(in.Node))
			return
		}
		if in.Node != 0 && m.drained.Has(in.Node) {
			reject("%s is drained: run `mtc node undrain %s` first", m.nodeName(in.Node), m.nodeName(in.Node))
			return
		}
		if in.Node != 0 && m.markedOn(i, in.Node) {
			reject("package %s failed on %s: run `mtc clear %s --node %s` first", name, m.nodeName(in.Node), name, m.nodeName(in.Node))
			return
		}
		p.intent.Down = false
		p.intent.Pending = in
	case IntentHalt:
		p.intent.Down = true
		p.intent.Pending = Intent{}
	case IntentMove:
		switch {
		case in.Node == 0:
			reject("a move names the node to move to")
			return
		case p.intent.Down:
			reject("package %s is halted: start it there with `mtc run %s --on %s`", name, name, m.nodeName(in.Node))
			return
		case m.drained.Has(in.Node):
			reject("%s is drained: run `mtc node undrain %s` first", m.nodeName(in.Node), m.nodeName(in.Node))
			return
		case m.markedOn(i, in.Node):
			reject("package %s failed on %s: run `mtc clear %s --node %s` first", name, m.nodeName(in.Node), name, m.nodeName(in.Node))
			return
		case p.def.Failback == FailbackAutomatic && p.intent.Switching && in.Node != p.def.Nodes[0]:
			reject("package %s has failback_policy automatic and would move back to %s at once: run `mtc disable %s` first", name, m.nodeName(p.def.Nodes[0]), name)
			return
		}
		if u, ok := m.pinnedBy(i); ok {
			reject("package %s cannot leave %s: %s, in maintenance, needs it there (directly or through the packages that need it): run `mtc maintenance %s off` first", name, m.nodeName(m.cur[i]), m.pkgs[u].def.Name, m.pkgs[u].def.Name)
			return
		}
		p.intent.Pending = in
	case IntentEnable:
		p.intent.Switching = true
		// With failback automatic and switching on, a one-shot move
		// away from the first node would be undone at once (a move is
		// refused then, see IntentMove): one made while switching was
		// off ends here.
		if pd := p.intent.Pending; pd.ID != 0 && p.def.Failback == FailbackAutomatic && len(p.def.Nodes) > 0 && pd.Node != 0 && pd.Node != p.def.Nodes[0] {
			p.intent.Pending = Intent{}
			m.decide(Decision{Kind: IntentRejected, Package: name, Node: pd.Node, Intent: pd.ID,
				Reason: fmt.Sprintf("%s cancelled: switching enabled (intent %d) with failback_policy automatic brings %s back to %s", pd.Kind, in.ID, name, m.nodeName(p.def.Nodes[0]))})
		}
	case IntentDisable:
		p.intent.Switching = false
	case IntentMaintenanceOn:
		p.intent.Maintenance = true
		p.intent.Pending = Intent{}
	case IntentMaintenanceOff:
		p.intent.Maintenance = false
	case IntentClear:
		m.clearMark(i, in.Node)
	default:
		reject("unknown intent %v", in.Kind)
		return
	}
	applied("")
}

func (m *Machine) clearMark(i int, node NodeID) {
	for id := NodeID(1); id <= MaxNodes; id++ {
		if node != 0 && id != node || !m.markedOn(i, id) {
			continue
		}
		if id == m.self {
			m.marks[i] = false
			m.reportDirty = true
		} else {
			m.peers[id].marked[i] = false
		}
		m.decide(Decision{Kind: MarkCleared, Package: m.pkgs[i].def.Name, Node: id})
	}
}

// markedOn: package i is marked failed on node n.
func (m *Machine) markedOn(i int, n NodeID) bool {
	if n == m.self {
		return m.marks[i]
	}
	pi := m.peers[n]
	return pi != nil && pi.marked[i]
}

// completePending ends a one-shot intent once the package runs where it
// asked for (the package runs on this node, or a report shows it running
// there), or once a peer's report lists the intent as ended there
// (Report.Completed: it ran there, or the peer cancelled it, see
// targetLeft). A state seen in one report can be gone by the next, and a
// node cut off when the others cancelled a move cannot see why they did;
// the list outlives both, so every node that hears the others ends the
// intent and places the package by the same rules.
func (m *Machine) completePending(i int) bool {
	p := m.pkgs[i]
	in := p.intent.Pending
	if in.ID == 0 {
		return false
	}
	where := m.runningOn(i)
	why := in.Kind.String() + ": runs on " + m.nodeName(where)
	if where == 0 || in.Node != 0 && where != in.Node || m.stateOn(i, where) != Running {
		if where = m.endedBy(in); where == 0 {
			return false
		}
		why = fmt.Sprintf("%v: ended on %s (its report)", in.Kind, m.nodeName(where))
	}
	m.noteEnded(in.ID)
	p.intent.Pending = Intent{}
	m.durableDirty = true
	m.decide(Decision{Kind: IntentDone, Package: p.def.Name, Node: where, Intent: in.ID, Reason: why})
	return true
}

// noteEnded lists a one-shot intent this node ended in its reports
// (Report.Completed), the last MaxCompleted of them, ID ascending.
func (m *Machine) noteEnded(id uint64) {
	m.completed = append(m.completed, id)
	slices.Sort(m.completed) // intents may end out of ID order
	if len(m.completed) > MaxCompleted {
		m.completed = m.completed[len(m.completed)-MaxCompleted:]
	}
	m.reportDirty = true
}

// endedBy is a peer whose latest report lists intent in as ended, or 0.
func (m *Machine) endedBy(in Intent) NodeID {
	for x, pi := range m.peers {
		if pi != nil && pi.have && slices.Contains(pi.completed, in.ID) {
			return NodeID(x)
		}
	}
	return 0
}

// targetLeft ends the one-shot intents whose node is not a member of the
// view. It runs only where place computes targets (quorate, agreed, every
// member reported), so every member ends them alike; the target itself,
// cut off meanwhile, ends them from the members' reports when it is back
// (completePending).
func (m *Machine) targetLeft() {
	for _, p := range m.pkgs {
		if in := p.intent.Pending; in.ID != 0 && in.Node != 0 && !m.view.Members.Has(in.Node) {
			p.intent.Pending = Intent{}
			m.noteEnded(in.ID)
			m.durableDirty = true
			m.decide(Decision{Kind: IntentRejected, Package: p.def.Name, Node: in.Node, Intent: in.ID,
				Reason: fmt.Sprintf("%s cancelled: %s is not a member of the cluster (down, cut off or not joined yet); %s is placed by its policy", in.Kind, m.nodeName(in.Node), p.def.Name)})
		}
	}
}

func containsNode(ns []NodeID, n NodeID) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

func (m *Machine) nodeName(n NodeID) string {
	if n >= 1 && n <= MaxNodes && m.names[n] != "" {
		return m.names[n]
	}
	return fmt.Sprintf("node %d", n)
}

func (m *Machine) nodeNames(ns []NodeID) string {
	s := ""
	for k, n := range ns {
		if k > 0 {
			s += ", "
		}
		s += m.nodeName(n)
	}
	return s
}

// pinnedBy returns a package in maintenance that keeps package i where
// it runs: it is up and needs i there (on the same node, on another node,
// or anywhere), directly or through packages that are up and need each
// other so. The cluster leaves a package in maintenance alone, so i can
// never halt where it runs (a halt waits for its dependents, see
// dependentsUp) and a move of it could never complete.
func (m *Machine) pinnedBy(i int) (int, bool) {
	if m.cur[i] == 0 {
		return 0, false
	}
	seen := make([]bool, len(m.pkgs))
	queue := []int{i}
	seen[i] = true
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		for _, u := range m.pkgs[k].users {
			if u.cond != Needs || seen[u.j] {
				continue
			}
			at := m.upAt(u.j)
			if at == 0 || !whereHolds(u.where, m.cur[k], at) {
				continue
			}
			seen[u.j] = true
			if m.pkgs[u.j].intent.Maintenance {
				return u.j, true
			}
			if m.cur[u.j] != 0 {
				queue = append(queue, u.j)
			}
		}
	}
	return 0, false
}

// upAt is the node where package i runs (m.cur), or for one that is only
// halting, the first usable node that reports it up; 0 if none.
func (m *Machine) upAt(i int) NodeID {
	if m.cur[i] != 0 {
		return m.cur[i]
	}
	for n := NodeID(1); n <= MaxNodes; n++ {
		if m.nodes.Has(n) && m.stateOn(i, n).up() {
			return n
		}
	}
	return 0
}
