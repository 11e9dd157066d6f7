package placement

import (
	"slices"
	"sort"
	"time"
)

// dep is a resolved dependency: the other package's index.
type dep struct {
	j     int
	cond  Condition
	where Where
}

// pkg is one package's definition and state on this node.
type pkg struct {
	def    Package
	needs  []dep // what it needs
	users  []dep // who needs it (j is the user)
	excl   []dep // exclusions, both directions
	eff    int   // effective priority, lower is higher
	intent PackageIntent

	local       State // this node's runner
	localReason string
	claimed     bool
	claimSeq    uint64 // the report seq that first carried the claim
	claimWhy    string // the placement reason when claimed
	startAsked  bool   // Start emitted, the runner has not moved yet
	haltAsked   bool   // Halt emitted, the runner has not moved yet

	target    NodeID
	targetWhy string
	waitWhy   string
}

// ghost is what an incarnation replaced by a newer one reported last:
// its packages stay up until a takeover covers it.
type ghost struct {
	inc   Incarnation
	state []State
}

// peerInfo is what this node knows of one other node.
type peerInfo struct {
	have   bool // a report was accepted
	inc    Incarnation
	seq    uint64
	epoch  uint64
	state  []State // by package index
	marked []bool
	acks   [MaxNodes + 1]Ack
	// claims: the last report held a claim this node had not acked.
	ghosts  []ghost
	retired []Incarnation
	// lastInc is the incarnation seen last (member in the view, or
	// reporting); 0 while unknown.
	lastInc Incarnation
	seen    []Incarnation
	// asMember are the incarnations seen as members in the view and not
	// yet covered by a takeover (the current one included): any of them
	// may have started packages.
	asMember       []Incarnation
	covered        map[Incarnation]Takeover
	coveredUnknown bool
	// leftoversOf is the incarnation whose report said LeftoversStopped
	// (0: none): applied once the view holds it as a member, also when
	// the report came first.
	leftoversOf Incarnation
	// completed is the latest report's Completed.
	completed []uint64
}

// Machine is one node's placement state machine. It is not safe for
// concurrent use; the driver serialises Step, Ready and Advance.
type Machine struct {
	self   NodeID
	unsafe Unsafe
	inc    Incarnation
	names  [MaxNodes + 1]string
	nodes  Set
	pkgs   []*pkg
	byName map[string]int
	order  []int

	view    View
	peers   [MaxNodes + 1]*peerInfo
	marks   []bool // this node's own failure marks
	drained Set

	lastIntent uint64
	completed  []uint64   // the one-shot intents completed here (Report.Completed)
	leftovers  bool       // LeftoversStopped received
	own        []Takeover // takeovers this node's quorum machine allowed

	seq          uint64
	reportDirty  bool
	durableDirty bool
	now          time.Duration
	out          Ready
	// scratch for place
	cur     []NodeID
	placed  []bool
	pending [MaxNodes + 1]int
	load    [MaxNodes + 1]int
}

// New returns the machine for cfg, or the configuration's errors.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{self: cfg.Self, unsafe: cfg.Unsafe, inc: cfg.Inc, byName: map[string]int{}}
	for _, n := range cfg.Nodes {
		m.names[n.ID] = n.Name
		m.nodes = m.nodes.Add(n.ID)
		if n.ID != cfg.Self {
			m.peers[n.ID] = &peerInfo{covered: map[Incarnation]Takeover{}}
		}
	}
	pkgs := slices.Clone(cfg.Packages)
	sort.Slice(pkgs, func(a, b int) bool { return pkgs[a].Name < pkgs[b].Name })
	for i, p := range pkgs {
		m.byName[p.Name] = i
		m.pkgs = append(m.pkgs, &pkg{def: p, intent: PackageIntent{Name: p.Name, Down: !p.AutoRun, Switching: p.AutoRun}})
	}
	var eff []int
	m.order, eff = placementOrder(pkgs)
	for i, p := range m.pkgs {
		p.eff = eff[i]
		for _, d := range p.def.Dependencies {
			j := m.byName[d.Package]
			switch d.Cond {
			case Needs:
				p.needs = append(p.needs, dep{j, Needs, d.Where})
				m.pkgs[j].users = append(m.pkgs[j].users, dep{i, Needs, d.Where})
			case Excludes:
				p.excl = append(p.excl, dep{j, Excludes, d.Where})
				m.pkgs[j].excl = append(m.pkgs[j].excl, dep{i, Excludes, d.Where})
			}
		}
	}
	m.marks = make([]bool, len(pkgs))
	for _, pi := range m.peers {
		if pi != nil {
			pi.state = make([]State, len(pkgs))
			pi.marked = make([]bool, len(pkgs))
		}
	}
	m.cur = make([]NodeID, len(pkgs))
	m.placed = make([]bool, len(pkgs))
	if d := cfg.Durable; d != nil {
		m.restore(d)
	}
	m.reportDirty = true
	return m, nil
}

// restore applies operator state read back from the quorum disk.
func (m *Machine) restore(d *Durable) {
	for _, pi := range d.Packages {
		if i, ok := m.byName[pi.Name]; ok {
			m.pkgs[i].intent = pi
		}
	}
	m.drained = d.Drained & m.nodes
	m.lastIntent = d.LastIntent
	for _, mk := range d.Marks {
		i, ok := m.byName[mk.Package]
		switch {
		case !ok:
		case mk.Node == m.self:
			m.marks[i] = true
		case m.peers[mk.Node] != nil:
			m.peers[mk.Node].marked[i] = true
		}
	}
}

// Self is this node's id.
func (m *Machine) Self() NodeID { return m.self }

// Ready returns what the driver must do, collected since the last Advance.
func (m *Machine) Ready() Ready { return m.out }

// Advance acknowledges the last Ready.
func (m *Machine) Advance() { m.out = Ready{} }

func (m *Machine) decide(d Decision) {
	d.At = m.now
	if d.Node != 0 {
		d.NodeName = m.names[d.Node]
	}
	m.out.Decisions = append(m.out.Decisions, d)
}

// Step feeds one event at local monotonic time now and decides.
func (m *Machine) Step(now time.Duration, ev Event) {
	if now > m.now {
		m.now = now
	}
	switch e := ev.(type) {
	case ViewChanged:
		m.onView(e.View)
	case Local:
		m.onLocal(e)
	case Received:
		m.onReport(e.Report)
	case TakeoversAllowed:
		for _, t := range e.Takeovers {
			if m.peers[t.Node] == nil {
				continue
			}
			m.own = append(m.own, t)
			if len(m.own) > 2*MaxNodes {
				m.own = m.own[len(m.own)-2*MaxNodes:]
			}
			m.learnTakeover(t)
			m.reportDirty = true
		}
	case Commanded:
		m.onIntent(e.Intent)
	case LeftoversStopped:
		if !m.leftovers {
			m.leftovers = true
			m.reportDirty = true
		}
	case Tick:
	}
	m.evaluate()
}

// leftoversCleared: the reporter's current incarnation, a member, said
// that its earlier incarnations left nothing running (LeftoversStopped),
// in a report that reached this node before or after the view held it.
func (m *Machine) leftoversCleared(pi *peerInfo) {
	if pi.leftoversOf == 0 || pi.inc != pi.leftoversOf {
		return
	}
	pi.ghosts = pi.ghosts[:0]
	pi.asMember = slices.DeleteFunc(pi.asMember, func(inc Incarnation) bool { return inc != pi.leftoversOf })
}

func (m *Machine) onView(v View) {
	m.view = v
	for id, pi := range m.peers {
		if pi == nil || !v.Members.Has(NodeID(id)) || v.Inc[id] == 0 {
			continue
		}
		if pi.have && pi.inc == v.Inc[id] {
			m.leftoversCleared(pi)
		}
		pi.noteInc(v.Inc[id])
		if inc := v.Inc[id]; !slices.Contains(pi.asMember, inc) {
			if _, covered := pi.covered[inc]; !covered {
				pi.asMember = append(pi.asMember, inc)
			}
		}
	}
}

func (pi *peerInfo) noteInc(inc Incarnation) {
	pi.lastInc = inc
	if !slices.Contains(pi.seen, inc) {
		pi.seen = append(pi.seen, inc)
		if len(pi.seen) > 8 {
			pi.seen = pi.seen[1:]
		}
	}
}

func (m *Machine) onLocal(e Local) {
	i, ok := m.byName[e.Package]
	if !ok {
		return
	}
	p := m.pkgs[i]
	if p.local == e.State && p.localReason == e.Reason {
		return
	}
	p.local, p.localReason = e.State, e.Reason
	p.startAsked, p.haltAsked = false, false
	if e.State != Halted {
		p.claimed, p.claimSeq = false, 0
	}
	if (e.State == Failed || e.State == HaltFailed) && !m.marks[i] {
		m.marks[i] = true
		m.durableDirty = true
		m.decide(Decision{Kind: MarkedFailed, Package: p.def.Name, Node: m.self, Reason: e.Reason})
	}
	m.reportDirty = true
}

func (m *Machine) onReport(r Report) {
	if r.Node == m.self || int(r.Node) >= len(m.peers) || m.peers[r.Node] == nil {
		return
	}
	pi := m.peers[r.Node]
	// Incarnations are random, not ordered: which one is current is the
	// view's word. A member's report counts only from the incarnation the
	// view holds; a non-member's from any incarnation not replaced
	// before. A replaced incarnation's last report stays as a ghost until
	// a takeover covers it, so following the wrong one first costs a wait
	// for the takeover, never safety.
	current := m.view.Members.Has(r.Node) && m.view.Inc[r.Node] == r.Inc
	switch {
	case m.view.Members.Has(r.Node) && !current:
		return
	case pi.have && r.Inc == pi.inc && r.Seq <= pi.seq:
		return // stale or repeated
	case pi.have && r.Inc != pi.inc:
		if !current && slices.Contains(pi.retired, r.Inc) {
			return // a late report of an incarnation already replaced
		}
		if !current && pi.inc == m.view.Inc[r.Node] {
			return
		}
		pi.retired = slices.DeleteFunc(pi.retired, func(i Incarnation) bool { return i == r.Inc })
		if _, covered := pi.covered[pi.inc]; !covered && slices.ContainsFunc(pi.state, State.up) {
			pi.ghosts = append(pi.ghosts, ghost{inc: pi.inc, state: slices.Clone(pi.state)})
		}
		pi.retired = append(pi.retired, pi.inc)
		if len(pi.retired) > 8 {
			pi.retired = pi.retired[1:]
		}
	}
	hadClaimUnacked := false
	pi.have, pi.inc, pi.seq, pi.epoch = true, r.Inc, r.Seq, r.Epoch
	clear(pi.state)
	for _, pr := range r.Packages {
		if i, ok := m.byName[pr.Name]; ok {
			pi.state[i] = pr.State
			if pr.State == Claimed {
				hadClaimUnacked = true
			}
			if (pr.State == Failed || pr.State == HaltFailed) && !pi.marked[i] {
				pi.marked[i] = true
				m.durableDirty = true
				m.decide(Decision{Kind: MarkedFailed, Package: pr.Name, Node: r.Node, Reason: pr.Reason})
			}
		}
	}
	newMarks := make([]bool, len(m.pkgs))
	for i, st := range pi.state {
		newMarks[i] = st == Failed || st == HaltFailed
	}
	for _, name := range r.Marked {
		if i, ok := m.byName[name]; ok {
			newMarks[i] = true
		}
	}
	for i := range newMarks {
		if pi.marked[i] != newMarks[i] {
			m.durableDirty = true
		}
	}
	pi.marked = newMarks
	pi.acks = [MaxNodes + 1]Ack{}
	for _, a := range r.Acks {
		if a.Node >= 1 && a.Node <= MaxNodes {
			pi.acks[a.Node] = a
		}
	}
	pi.noteInc(r.Inc)
	for _, t := range r.Takeovers {
		if t.Node != m.self && m.peers[t.Node] != nil {
			m.learnTakeover(t)
		}
	}
	pi.completed = append(pi.completed[:0], r.Completed...)
	if r.LeftoversStopped {
		pi.leftoversOf = r.Inc
	} else if pi.leftoversOf == r.Inc {
		pi.leftoversOf = 0
	}
	if current {
		m.leftoversCleared(pi)
	}
	if hadClaimUnacked {
		// The claimant waits for this node's acknowledgement.
		m.reportDirty = true
	}
}

// learnTakeover records that t's incarnation (with Inc 0: every
// incarnation of the node seen so far, and whatever ran there before this
// node heard of it) has stopped running packages or been fenced.
func (m *Machine) learnTakeover(t Takeover) {
	pi := m.peers[t.Node]
	if t.Inc != 0 {
		pi.covered[t.Inc] = t
	} else {
		pi.coveredUnknown = true
		for _, inc := range pi.seen {
			if m.view.Members.Has(t.Node) && m.view.Inc[t.Node] == inc {
				continue
			}
			pi.covered[inc] = t
		}
	}
	pi.ghosts = slices.DeleteFunc(pi.ghosts, func(g ghost) bool {
		_, ok := pi.covered[g.inc]
		return ok
	})
	pi.asMember = slices.DeleteFunc(pi.asMember, func(inc Incarnation) bool {
		_, ok := pi.covered[inc]
		return ok
	})
}

// covering returns the takeover covering node x's incarnation inc (0:
// unknown).
func (m *Machine) covering(x NodeID, inc Incarnation) (Takeover, bool) {
	pi := m.peers[x]
	if inc == 0 {
		return Takeover{Target: Target{Node: x}}, pi.coveredUnknown
	}
	t, ok := pi.covered[inc]
	return t, ok
}
