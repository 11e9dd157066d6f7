package placement

import (
	"fmt"
	"slices"
	"sort"
)

// evaluate takes every decision after an event: targets, one-shot intents,
// this node's halts, claims and starts, and its report.
func (m *Machine) evaluate() {
	m.place()
	done := false
	for i := range m.pkgs {
		done = m.completePending(i) || done
	}
	if done {
		m.place() // without the intent, the package is placed by its policy
	}
	if m.gate() {
		m.halts()
		m.starts()
	} else {
		for i, p := range m.pkgs {
			if p.claimed && !p.startAsked {
				m.withdraw(i, "this node is not quorate")
			}
		}
	}
	if m.reportDirty {
		m.out.Report = m.buildReport()
		m.reportDirty = false
	}
	if m.durableDirty {
		d := m.Durable()
		m.out.Durable = &d
		m.durableDirty = false
	}
}

// gate: this node may act at all. Without quorum nothing starts and
// nothing halts here: the quorum machine stops every package when quorum
// is lost for good (self-fence), and keeps them through a transition.
func (m *Machine) gate() bool {
	return m.leftovers && m.view.Quorate && m.view.Agreed && m.view.Members.Has(m.self) && m.view.Inc[m.self] == m.inc
}

func (m *Machine) wait(i int, why string) {
	p := m.pkgs[i]
	if p.waitWhy != why {
		p.waitWhy = why
		if why != "" {
			m.decide(Decision{Kind: Waiting, Package: p.def.Name, Reason: why})
		}
	}
}

// halts emits this node's halts, dependents before what they need: a
// package halts only once every package that needs it through this copy
// is reported halted.
func (m *Machine) halts() {
	for k := len(m.order) - 1; k >= 0; k-- {
		i := m.order[k]
		p := m.pkgs[i]
		if p.intent.Maintenance || p.haltAsked {
			continue
		}
		var why string
		switch {
		case p.local == Failed:
			why = "failed here: " + p.localReason
		case p.local == Running && p.target != m.self:
			if p.target == 0 {
				why = p.targetWhy
			} else {
				why = fmt.Sprintf("placed on %s: %s", m.nodeName(p.target), p.targetWhy)
			}
		default:
			continue
		}
		if w := m.dependentsUp(i); w != "" {
			m.wait(i, "halt waits: "+w)
			continue
		}
		p.haltAsked = true
		m.wait(i, "")
		m.out.Actions = append(m.out.Actions, Action{Kind: Halt, Package: p.def.Name, Reason: why})
		m.decide(Decision{Kind: HaltOrdered, Package: p.def.Name, Reason: why})
	}
}

// dependentsUp says which package that needs package i on this node is
// still up, or "".
func (m *Machine) dependentsUp(i int) string {
	for _, u := range m.pkgs[i].users {
		for n := NodeID(1); n <= MaxNodes; n++ {
			if !m.nodes.Has(n) || !whereHolds(u.where, m.self, n) {
				continue
			}
			if s := m.anyState(u.j, n); s.up() {
				return fmt.Sprintf("%s, which needs it, is %v on %s", m.pkgs[u.j].def.Name, s, m.nodeName(n))
			}
		}
	}
	return ""
}

// anyState is package i's state on node n from the latest report of any
// incarnation not yet taken over (a departed node's last word counts until
// its takeover).
func (m *Machine) anyState(i int, n NodeID) State {
	if n == m.self {
		return m.published(i)
	}
	pi := m.peers[n]
	if pi == nil {
		return Halted
	}
	for _, g := range pi.ghosts {
		if g.state[i].up() {
			return g.state[i]
		}
	}
	if !pi.have {
		return Halted
	}
	if _, ok := m.covering(n, pi.inc); ok && !m.usable(n) {
		return Halted
	}
	return pi.state[i]
}

// starts runs the start protocol for every package placed here.
func (m *Machine) starts() {
	for _, i := range m.order {
		p := m.pkgs[i]
		if p.intent.Maintenance {
			continue
		}
		if p.target != m.self || p.local != Halted {
			if p.claimed && !p.startAsked {
				m.withdraw(i, "no longer placed here: "+p.targetWhy)
			}
			continue
		}
		if p.startAsked {
			continue
		}
		m.startOne(i)
	}
}

// startOne: claim, wait for every member's acknowledgement, start.
func (m *Machine) startOne(i int) {
	p := m.pkgs[i]
	if p.claimed {
		for _, x := range m.view.Members.IDs() {
			if x == m.self || !m.usable(x) || m.peers[x].state[i] != Claimed {
				continue
			}
			if m.claimWins(i, x) {
				m.withdraw(i, fmt.Sprintf("%s claims it too and comes first", m.nodeName(x)))
				return
			}
			m.wait(i, fmt.Sprintf("%s claims it too and yields to this node", m.nodeName(x)))
			return
		}
	}
	covers, why := m.startBlocked(i)
	if why != "" {
		if p.claimed {
			m.withdraw(i, why)
		}
		m.wait(i, why)
		return
	}
	if !p.claimed {
		p.claimed, p.claimSeq, p.claimWhy = true, 0, p.targetWhy
		m.reportDirty = true
		m.wait(i, "")
		m.decide(Decision{Kind: ClaimMade, Package: p.def.Name, Reason: "every other node is clear: " + p.targetWhy})
		return
	}
	if p.claimSeq == 0 {
		return // the claim is published with the report of this step
	}
	for _, x := range m.view.Members.IDs() {
		if x == m.self || m.unsafe.SkipAcks {
			continue
		}
		a := m.peers[x].acks[m.self]
		if a.Inc != m.inc || a.Seq < p.claimSeq {
			m.wait(i, fmt.Sprintf("waiting for %s to acknowledge the claim", m.nodeName(x)))
			return
		}
	}
	p.startAsked = true
	m.wait(i, "")
	why = p.claimWhy
	if len(covers) > 0 {
		var ts []string
		for _, t := range covers {
			ts = append(ts, fmt.Sprintf("%s (%v)", m.nodeName(t.Node), t.Reason))
		}
		why += "; takes over from " + joinComma(ts)
	}
	m.out.Actions = append(m.out.Actions, Action{Kind: Start, Package: p.def.Name, Reason: why, Takeovers: covers})
	m.decide(Decision{Kind: StartOrdered, Package: p.def.Name, Reason: why})
}

// claimWins: node x's claim of package i beats this node's (the earlier
// of the package's nodes list, then the lower id).
func (m *Machine) claimWins(i int, x NodeID) bool {
	nodes := m.pkgs[i].def.Nodes
	ix, is := slices.Index(nodes, x), slices.Index(nodes, m.self)
	if ix < 0 {
		ix = len(nodes) + int(x)
	}
	if is < 0 {
		is = len(nodes) + int(m.self)
	}
	return ix < is
}

func (m *Machine) withdraw(i int, why string) {
	p := m.pkgs[i]
	p.claimed, p.claimSeq = false, 0
	m.reportDirty = true
	m.decide(Decision{Kind: ClaimWithdrawn, Package: p.def.Name, Reason: why})
}

// startBlocked says why package i may not be claimed or started here
// now, or "" with the takeovers the start relies on. The safety rule:
// every other node that may hold the package is clear of it — a member
// whose current report shows it halted, or an incarnation a takeover
// covers (fenced, or past its watchdog deadline) — and what it needs runs
// where it must, and what it excludes is down where it must be.
func (m *Machine) startBlocked(i int) ([]Takeover, string) {
	p := m.pkgs[i]
	var covers []Takeover
	for n := NodeID(1); n <= MaxNodes; n++ {
		if n == m.self || !m.nodes.Has(n) || m.unsafe.SkipClear {
			continue
		}
		pi := m.peers[n]
		for _, g := range pi.ghosts {
			if g.state[i].up() {
				return nil, fmt.Sprintf("an earlier incarnation of %s reported it %v and is not taken over yet: waiting for fencing or its watchdog deadline", m.nodeName(n), g.state[i])
			}
		}
		// An earlier incarnation that was a member may have started it,
		// and its reports may never have reached this node: it must be
		// taken over (the quorum machine does so for every incarnation it
		// drops).
		if containsNode(p.def.Nodes, n) {
			for _, inc := range pi.asMember {
				if m.view.Members.Has(n) && inc == m.view.Inc[n] || !m.view.Members.Has(n) && inc == pi.lastInc {
					continue // the current one: judged below
				}
				return nil, fmt.Sprintf("an earlier incarnation of %s is not taken over yet: waiting for fencing or its watchdog deadline", m.nodeName(n))
			}
		}
		if m.view.Members.Has(n) {
			switch {
			case !pi.have || pi.inc != m.view.Inc[n]:
				return nil, fmt.Sprintf("waiting for the first report of %s", m.nodeName(n))
			case pi.state[i] != Halted:
				return nil, fmt.Sprintf("%s reports it %v", m.nodeName(n), pi.state[i])
			}
			continue
		}
		reported := pi.have && pi.state[i].up()
		if !reported && !containsNode(p.def.Nodes, n) {
			continue
		}
		// Every incarnation of n that may hold the package must be
		// covered: the one it reported from and the one seen last.
		incs := []Incarnation{pi.lastInc}
		if pi.have && pi.inc != pi.lastInc {
			incs = append(incs, pi.inc)
		}
		for _, inc := range incs {
			t, ok := m.covering(n, inc)
			if !ok {
				if reported {
					return nil, fmt.Sprintf("%s left the cluster with it %v and is not taken over yet: waiting for fencing or its watchdog deadline", m.nodeName(n), pi.state[i])
				}
				return nil, fmt.Sprintf("%s is not a member and not taken over yet: waiting for fencing or its watchdog deadline", m.nodeName(n))
			}
			if !slices.Contains(covers, t) {
				covers = append(covers, t)
			}
		}
	}
	for _, d := range p.needs {
		q := m.pkgs[d.j]
		tq := q.target
		if tq == 0 || !whereHolds(d.where, tq, m.self) || m.stateOn(d.j, tq) != Running {
			return nil, fmt.Sprintf("waiting for %s to run %s", q.def.Name, whereText(d.where))
		}
	}
	for _, d := range p.excl {
		q := m.pkgs[d.j]
		for n := NodeID(1); n <= MaxNodes; n++ {
			if !m.nodes.Has(n) || !whereHolds(d.where, n, m.self) {
				continue
			}
			if s := m.anyState(d.j, n); s.up() {
				return nil, fmt.Sprintf("waiting for %s, which it excludes, to halt on %s (%v)", q.def.Name, m.nodeName(n), s)
			}
		}
	}
	sort.Slice(covers, func(a, b int) bool { return covers[a].Node < covers[b].Node })
	return covers, ""
}

// buildReport makes this node's report; its Seq grows by one.
func (m *Machine) buildReport() *Report {
	m.seq++
	r := &Report{Node: m.self, Inc: m.inc, Seq: m.seq, Epoch: m.view.Epoch, Members: m.view.Members, LeftoversStopped: m.leftovers}
	for i, p := range m.pkgs {
		if p.claimed && p.claimSeq == 0 {
			p.claimSeq = m.seq
		}
		if s := m.published(i); s != Halted {
			pr := PackageReport{Name: p.def.Name, State: s}
			if s == Failed || s == HaltFailed {
				pr.Reason = p.localReason
			}
			r.Packages = append(r.Packages, pr)
		}
		if m.marks[i] {
			r.Marked = append(r.Marked, p.def.Name)
		}
	}
	for id, pi := range m.peers {
		if pi != nil && pi.have {
			r.Acks = append(r.Acks, Ack{Node: NodeID(id), Inc: pi.inc, Seq: pi.seq})
		}
	}
	r.Takeovers = slices.Clone(m.own)
	r.Completed = slices.Clone(m.completed)
	return r
}

// Durable returns the operator state to persist.
func (m *Machine) Durable() Durable {
	d := Durable{Drained: m.drained, LastIntent: m.lastIntent}
	for i, p := range m.pkgs {
		d.Packages = append(d.Packages, p.intent)
		for n := NodeID(1); n <= MaxNodes; n++ {
			if m.nodes.Has(n) && m.markedOn(i, n) {
				d.Marks = append(d.Marks, Mark{Package: p.def.Name, Node: n})
			}
		}
	}
	return d
}

func joinComma(s []string) string {
	out := ""
	for k, x := range s {
		if k > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
