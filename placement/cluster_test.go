package placement

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// cluster is a small, exact model of the placement machines' world, used
// by the golden scripts, the property test and the benchmark: one Machine
// per node, a fake runner per node that moves one state per round, a
// network that carries reports inside each side of a partition, and a fake
// quorum that makes a side with a strict majority of the nodes quorate
// and allows a takeover only of a node whose packages are gone (crashed
// or self-fenced), as the quorum machine guarantees.
//
// Its checker is independent of the machines: it watches the runners'
// true states and every Start action, and derives what is allowed from
// the definitions and that truth alone.
type cluster struct {
	nodes []Node
	pkgs  []Package
	byPkg map[string]Package
	hs    [MaxNodes + 1]*hnode
	side  [MaxNodes + 1]int
	epoch uint64
	now   time.Duration
	incs  uint64
	ids   uint64 // intent ids
	// durable is the operator state as the quorate nodes last wrote it.
	durable *Durable
	unsafe  Unsafe

	// manual: reports are not delivered by deliverAll but queued per
	// receiver for the property test to deliver in any order.
	manual bool

	out        []line
	quiet      bool // no log (benchmarks)
	violations []string
	// steps counts the machines' Steps; slowest is the longest one.
	steps   int
	slowest time.Duration
	// starts counts Start actions; lastStart is the round of the last.
	starts, lastStart int
	round             int
}

type line struct {
	text  string
	nodes []string
}

type hnode struct {
	id    NodeID
	name  string
	inc   Incarnation
	m     *Machine
	alive bool
	// run is the runner's true state per package; queue its pending work.
	run   map[string]State
	queue []Action
	fail  map[string]string // package -> "start" | "halt": the next one fails
	// last is the latest report it published; delivered[x] the seq of x's
	// report it got last.
	last      *Report
	delivered [MaxNodes + 1]Ack
	inbox     []Report
	view      View
	// dead are the node's incarnations that died without a takeover yet,
	// each with the packages that were up (or about to start) then.
	dead []deadInc
}

type deadInc struct {
	inc Incarnation
	up  []string
}

// pendingUp: some dead incarnation of h not taken over had pkg up.
func (h *hnode) pendingUp(pkg string) bool {
	return slices.ContainsFunc(h.dead, func(d deadInc) bool { return slices.Contains(d.up, pkg) })
}

func newCluster(nodes []Node, pkgs []Package) *cluster {
	c := &cluster{nodes: nodes, pkgs: pkgs, byPkg: map[string]Package{}}
	for _, p := range pkgs {
		c.byPkg[p.Name] = p
	}
	for _, n := range nodes {
		c.hs[n.ID] = &hnode{id: n.ID, name: n.Name, run: map[string]State{}, fail: map[string]string{}}
	}
	return c
}

func (c *cluster) name(id NodeID) string {
	if h := c.hs[id]; h != nil {
		return h.name
	}
	return fmt.Sprintf("node%d", id)
}

func (c *cluster) byName(s string) (NodeID, bool) {
	for _, n := range c.nodes {
		if n.Name == s {
			return n.ID, true
		}
	}
	return 0, false
}

// boot starts node id's daemon with a new incarnation.
func (c *cluster) boot(id NodeID) error {
	h := c.hs[id]
	c.incs++
	h.inc = Incarnation(0x1000*uint64(id) + c.incs)
	var d *Durable
	if c.durable != nil {
		dd := *c.durable
		d = &dd
	}
	m, err := New(Config{Self: id, Inc: h.inc, Nodes: c.nodes, Packages: c.pkgs, Durable: d, Unsafe: c.unsafe})
	if err != nil {
		return err
	}
	h.m, h.alive = m, true
	h.run, h.queue, h.last, h.inbox = map[string]State{}, nil, nil, nil
	h.delivered = [MaxNodes + 1]Ack{}
	// The daemon's start-up stop: what the dead incarnations left on this
	// machine is gone (kill cleared the runner), physically, whatever the
	// others know of it yet; their incarnations stay dead (not taken
	// over) with nothing up.
	for i := range h.dead {
		h.dead[i].up = nil
	}
	c.stepNode(h, LeftoversStopped{})
	return nil
}

// kill: node id's daemon and everything it ran stop.
func (c *cluster) kill(id NodeID) {
	h := c.hs[id]
	if !h.alive {
		return
	}
	d := deadInc{inc: h.inc}
	for _, p := range c.pkgs {
		if h.run[p.Name].up() || slices.ContainsFunc(h.queue, func(a Action) bool { return a.Package == p.Name && a.Kind == Start }) {
			d.up = append(d.up, p.Name)
		}
	}
	h.dead = append(h.dead, d)
	h.alive, h.m, h.run, h.queue, h.inbox = false, nil, map[string]State{}, nil, nil
}

// views recomputes every live node's view from the sides.
func (c *cluster) views() {
	c.epoch++
	for _, h := range c.live() {
		var members Set
		for _, o := range c.live() {
			if c.side[o.id] == c.side[h.id] {
				members = members.Add(o.id)
			}
		}
		v := View{Members: members, Epoch: c.epoch}
		v.Quorate = 2*members.Len() > len(c.nodes)
		v.Agreed = v.Quorate
		for _, id := range members.IDs() {
			v.Inc[id] = c.hs[id].inc
		}
		h.view = v
		c.stepNode(h, ViewChanged{View: v})
	}
}

func (c *cluster) live() []*hnode {
	var out []*hnode
	for _, n := range c.nodes {
		if h := c.hs[n.ID]; h.alive {
			out = append(out, h)
		}
	}
	return out
}

// coordinator is the lowest-id member of a quorate side, as quorum's.
func (c *cluster) coordinator() *hnode {
	for _, h := range c.live() {
		if h.view.Quorate {
			return h
		}
	}
	return nil
}

// stepNode steps h's machine and performs its Ready.
func (c *cluster) stepNode(h *hnode, ev Event) {
	c.now += time.Millisecond
	t0 := time.Now()
	h.m.Step(c.now, ev)
	if d := time.Since(t0); d > c.slowest {
		c.slowest = d
	}
	c.steps++
	rd := h.m.Ready()
	h.m.Advance()
	for _, d := range rd.Decisions {
		if d.Kind == StartOrdered || d.Kind == HaltOrdered {
			continue
		}
		c.emit(h.name, d.String())
	}
	for _, a := range rd.Actions {
		c.emit(h.name, a.String())
		if a.Kind == Start {
			c.checkStart(h, a)
			c.starts++
			c.lastStart = c.round
		}
		h.queue = append(h.queue, a)
	}
	if rd.Report != nil {
		h.last = rd.Report
		if c.manual {
			for _, o := range c.live() {
				if o != h && c.side[o.id] == c.side[h.id] {
					o.inbox = append(o.inbox, *rd.Report)
				}
			}
		}
	}
	if rd.Durable != nil && h.view.Quorate {
		d := *rd.Durable
		c.durable = &d
	}
}

func (c *cluster) emit(node, text string) {
	if c.quiet && !strings.HasPrefix(text, "VIOLATION") {
		return
	}
	for i := range c.out {
		if c.out[i].text == text && !slices.Contains(c.out[i].nodes, node) {
			c.out[i].nodes = append(c.out[i].nodes, node)
			return
		}
	}
	c.out = append(c.out, line{text: text, nodes: []string{node}})
}

// flush returns the lines of the round and starts a new one.
func (c *cluster) flush() string {
	var b strings.Builder
	for _, l := range c.out {
		fmt.Fprintf(&b, "r%d %s: %s\n", c.round, strings.Join(l.nodes, ","), l.text)
	}
	c.out = nil
	return b.String()
}

// advance moves node h's runner by one state, and reports it.
func (c *cluster) advance(h *hnode) bool {
	if len(h.queue) == 0 {
		return false
	}
	a := h.queue[0]
	st := h.run[a.Package]
	var next State
	reason := ""
	switch a.Kind {
	case Start:
		switch st {
		case Halted:
			next = Starting
		case Starting:
			next = Running
			if h.fail[a.Package] == "start" {
				delete(h.fail, a.Package)
				next, reason = Failed, "start step failed"
			}
		default:
			h.queue = h.queue[1:]
			return true
		}
	case Halt:
		switch st {
		case Running, Failed, Starting:
			next = Halting
		case Halting:
			next = Halted
			if h.fail[a.Package] == "halt" {
				delete(h.fail, a.Package)
				next, reason = HaltFailed, "unmount failed"
			}
		default:
			h.queue = h.queue[1:]
			return true
		}
	}
	if next == Running || next == Halted || next == Failed || next == HaltFailed {
		h.queue = h.queue[1:]
	}
	c.setRun(h, a.Package, next, reason)
	return true
}

func (c *cluster) setRun(h *hnode, pkg string, s State, reason string) {
	h.run[pkg] = s
	c.emit(h.name, fmt.Sprintf("%s %v", pkg, s))
	c.stepNode(h, Local{Package: pkg, State: s, Reason: reason})
	c.checkOne()
}

// deliver gives o the latest report of every side-mate it has not seen.
func (c *cluster) deliver(o *hnode) bool {
	moved := false
	for _, h := range c.live() {
		if h == o || c.side[h.id] != c.side[o.id] || h.last == nil {
			continue
		}
		if a := (Ack{Node: h.id, Inc: h.last.Inc, Seq: h.last.Seq}); o.delivered[h.id] == a {
			continue
		} else {
			o.delivered[h.id] = a
		}
		c.stepNode(o, Received{Report: *h.last})
		moved = true
	}
	return moved
}

// settle runs rounds (runners advance one state, reports travel) until
// nothing changes, at most max rounds.
func (c *cluster) settle(max int) (int, string) {
	var b strings.Builder
	rounds := 0
	for rounds < max {
		c.round++
		moved := false
		for _, h := range c.live() {
			if c.advance(h) {
				moved = true
			}
		}
		for _, h := range c.live() {
			if c.deliver(h) {
				moved = true
			}
		}
		b.WriteString(c.flush())
		if !moved {
			break
		}
		rounds++
	}
	return rounds, b.String()
}

// takeover: the coordinator's quorum machine allows the takeover of every
// incarnation of node id that died (crashed, or self-fenced), as it does
// once they are fenced or past their watchdog deadline; a node that
// restarted meanwhile keeps its new incarnation.
func (c *cluster) takeover(id NodeID, r TakeoverReason) error {
	h := c.hs[id]
	if len(h.dead) == 0 {
		return fmt.Errorf("%s has no dead incarnation: the quorum machine allows a takeover only of a node that is fenced or past its watchdog deadline (crash or selffence it first)", h.name)
	}
	co := c.coordinator()
	if co == nil {
		return fmt.Errorf("no quorate node to allow the takeover")
	}
	var ts []Takeover
	for _, d := range h.dead {
		ts = append(ts, Takeover{Target: Target{Node: id, Inc: d.inc}, Reason: r})
	}
	h.dead = nil
	c.stepNode(co, TakeoversAllowed{Takeovers: ts})
	return nil
}

// intent feeds an operator intent to every live node.
func (c *cluster) intent(in Intent) {
	c.ids++
	in.ID = c.ids
	for _, h := range c.live() {
		c.stepNode(h, Commanded{Intent: in})
	}
}

// checkOne: no package is up on two live nodes, nor on a live node and a
// dead one that is not taken over.
func (c *cluster) checkOne() {
	for _, p := range c.pkgs {
		var where []string
		for _, n := range c.nodes {
			h := c.hs[n.ID]
			if h.alive && h.run[p.Name].up() {
				where = append(where, h.name)
			}
			// A node that booted again stopped whatever its dead
			// incarnations left (the daemon's start-up stop of
			// leftovers): physically, they are gone.
			if !h.alive && h.pendingUp(p.Name) {
				where = append(where, h.name+" (dead, not taken over)")
			}
		}
		if len(where) > 1 {
			c.violation(fmt.Sprintf("package %s is up on %s at once", p.Name, strings.Join(where, " and ")))
		}
	}
}

// checkStart: a Start of a on h is allowed only when h is quorate in an
// agreed view, every other node is clear of the package (halted with no
// start queued, or dead and taken over or dead with nothing of it up),
// what it needs runs where it must and what it excludes is down.
func (c *cluster) checkStart(h *hnode, a Action) {
	if !h.view.Quorate || !h.view.Agreed {
		c.violation(fmt.Sprintf("%s starts %s without quorum", h.name, a.Package))
	}
	for _, n := range c.nodes {
		o := c.hs[n.ID]
		if o == h {
			continue
		}
		if o.alive {
			busy := o.run[a.Package].up() || slices.ContainsFunc(o.queue, func(q Action) bool { return q.Package == a.Package && q.Kind == Start })
			if busy {
				what := fmt.Sprintf("has it %v", o.run[a.Package])
				if !o.run[a.Package].up() {
					what = "has a start of it queued"
				}
				c.violation(fmt.Sprintf("%s starts %s while %s %s", h.name, a.Package, o.name, what))
			}
		}
		// A node that booted again stopped what its dead incarnations
		// left and says so in its report (LeftoversStopped): that covers
		// them as a takeover would.
		if !o.alive && o.pendingUp(a.Package) {
			c.violation(fmt.Sprintf("%s starts %s while an incarnation of %s that died with it up is not taken over", h.name, a.Package, o.name))
		}
	}
	p := c.byPkg[a.Package]
	deps := slices.Clone(p.Dependencies)
	for _, q := range c.pkgs {
		for _, d := range q.Dependencies {
			if d.Cond == Excludes && d.Package == a.Package {
				deps = append(deps, Dependency{Package: q.Name, Cond: Excludes, Where: d.Where})
			}
		}
	}
	for _, d := range deps {
		if c.manual && d.Where != SameNode {
			// With reports delivered in any order, what runs on another
			// node may change after the report the start relied on: the
			// order is checked on this node's own runner only.
			continue
		}
		for _, n := range c.nodes {
			o := c.hs[n.ID]
			if !o.alive || !whereHolds(d.Where, o.id, h.id) {
				continue
			}
			if d.Cond == Excludes && o.run[d.Package].up() {
				c.violation(fmt.Sprintf("%s starts %s while %s, which it excludes, is %v on %s", h.name, a.Package, d.Package, o.run[d.Package], o.name))
			}
		}
		if d.Cond == Needs {
			ok := false
			for _, n := range c.nodes {
				o := c.hs[n.ID]
				if o.alive && whereHolds(d.Where, o.id, h.id) && o.run[d.Package] == Running {
					ok = true
				}
			}
			if !ok {
				c.violation(fmt.Sprintf("%s starts %s before %s, which it needs, runs %s", h.name, a.Package, d.Package, whereText(d.Where)))
			}
		}
	}
}

func (c *cluster) violation(s string) {
	c.violations = append(c.violations, s)
	c.emit("checker", "VIOLATION: "+s)
}
