package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// The package checker. Its expectations come from the true definitions,
// the acknowledged operator intents (interpreted here, by the rules of
// placement's package doc, never by asking a machine), the runners' true
// states, and what the simulation knows of every machine (reset, fenced at
// the target, frozen). Rules:
//
//  11. No package is active (any of its resources up: starting, running,
//     halting, failed or halt-failed) on two machines at once, unless
//     all but one of them cannot act: fenced (the target holds no data
//     LUN registration of the incarnation that started it, so its
//     writes are refused), or reset (the watchdog's reset takes every
//     runner down with it), or frozen as a whole VM (package doc).
//  12. No acknowledged intent is lost: no ID is acknowledged twice; every
//     node's driver feeds intents in ID order, each the one acknowledged
//     under its ID; once the faults have healed (and again after a
//     whole-cluster restart) every acknowledged intent is in the state
//     area and every node has been fed it or started from a Durable
//     that covers it.
//  13. Every package that can run runs on exactly one node within
//     pkgBound after the cluster re-formed (see pkgBound and
//     required).
//  14. Dependency order on one machine: a package that needs Q on the
//     same node starts only while Q runs there, and Q begins to halt
//     (or goes down) only while the package is down there, but for a
//     reset, which takes everything down at once.
type pkgChecker struct {
	pw *pkgWorld
	w  *World
	// acks are the acknowledged intents by ID; maxAck the highest ID.
	acks   map[uint64]placement.Intent
	maxAck uint64
	// model: the operator state the acknowledged intents imply, per
	// package, and the drained nodes.
	model   []pkgModel
	drained quorum.Set
	// failed: a runner of the package failed (start, service or halt)
	// somewhere in this history: failure marks follow, which only an
	// operator clears, so rule 13 does not judge the package.
	failed []bool
	// bulk: a reset or instant stop takes several runners down at once.
	bulk bool
	// reported dedups rule 11 per package.
	reported []bool
	// applied is, per incarnation, the last intent its machine was fed,
	// or that the Durable it started from covers.
	applied map[quorum.Incarnation]uint64
}

type pkgModel struct {
	down, switching, maint bool
	move                   placement.NodeID // a pending move not yet seen done
}

func (c *pkgChecker) init(pw *pkgWorld) {
	c.pw, c.w = pw, pw.w
	c.acks = map[uint64]placement.Intent{}
	c.applied = map[quorum.Incarnation]uint64{}
	for _, p := range pw.defs {
		c.model = append(c.model, pkgModel{down: !p.AutoRun, switching: p.AutoRun})
	}
	c.failed = make([]bool, len(pw.defs))
	c.reported = make([]bool, len(pw.defs))
}

// live: runner r's machine can act on the shared storage.
func (c *pkgChecker) live(r *runner) bool {
	n := r.n
	if n.vmFrozen {
		return false
	}
	return c.w.st == nil || c.w.st.registered(lunData, n.id, r.inc)
}

// changed is called on every change of a runner's true state.
func (c *pkgChecker) changed(r *runner, old runState) {
	w, pw := c.w, c.pw
	switch r.state {
	case rFailed, rHaltFailed:
		c.failed[r.p] = true
	case rRunning:
		if m := &c.model[r.p]; m.move == r.n.id {
			m.move = 0
		}
	}
	if old == rDown && r.up() {
		c.overlap(r.p)
	}
	if c.bulk {
		return
	}
	k := r.n.pk
	// Rule 14, on this machine.
	if r.state == rStarting {
		for j := range pw.defs {
			if pw.needsSame(r.p, j) && k.run[j].state != rRunning {
				w.violate(14, "n%d starts %s while %s, which it needs on the same node, is %v there", r.n.id, r.name(), pw.defs[j].Name, k.run[j].state)
			}
		}
	}
	if (r.state == rHalting || r.state == rDown) && old != rHalting {
		for j := range pw.defs {
			if pw.needsSame(j, r.p) && k.run[j].up() {
				w.violate(14, "n%d halts %s while %s, which needs it on the same node, is %v there", r.n.id, r.name(), pw.defs[j].Name, k.run[j].state)
			}
		}
	}
}

// overlap is rule 11 for package p.
func (c *pkgChecker) overlap(p int) {
	if c.reported[p] {
		return
	}
	var on []string
	for _, n := range c.w.nodes[1:] {
		r := n.pk.run[p]
		if r.up() && c.live(r) {
			on = append(on, fmt.Sprintf("n%d (%v, incarnation %x)", n.id, r.state, r.inc))
		}
	}
	if len(on) > 1 {
		c.reported[p] = true
		c.w.violate(11, "package %s is active on %s at once, none of them fenced or reset", c.pw.defs[p].Name, strings.Join(on, " and "))
	}
}

// checkAll runs rule 11 for every package (a frozen VM resumed).
func (c *pkgChecker) checkAll() {
	for p := range c.pw.defs {
		c.overlap(p)
	}
}

// acked records an acknowledged intent and applies it to the model.
func (c *pkgChecker) acked(in placement.Intent) {
	if old, ok := c.acks[in.ID]; ok {
		c.w.violate(12, "intent #%d acknowledged twice (%v %s, then %v %s): the first is lost", in.ID, old.Kind, old.Package, in.Kind, in.Package)
	}
	c.acks[in.ID] = in
	c.maxAck = max(c.maxAck, in.ID)
	switch in.Kind {
	case placement.IntentDrain:
		c.drained = c.drained.Add(in.Node)
		return
	case placement.IntentUndrain:
		c.drained = c.drained.Remove(in.Node)
		return
	}
	i, ok := c.pw.index[in.Package]
	if !ok {
		return
	}
	m, def := &c.model[i], c.pw.defs[i]
	if m.maint && in.Kind != placement.IntentMaintenanceOn && in.Kind != placement.IntentMaintenanceOff {
		return // refused: in maintenance
	}
	switch in.Kind {
	case placement.IntentRun:
		m.down = false
	case placement.IntentHalt:
		m.down, m.move = true, 0
	case placement.IntentMove:
		if m.down || c.drained.Has(in.Node) || (def.Failback == placement.FailbackAutomatic && m.switching && in.Node != def.Nodes[0]) {
			return // refused
		}
		m.move = in.Node
	case placement.IntentEnable:
		m.switching = true
	case placement.IntentDisable:
		m.switching = false
	case placement.IntentMaintenanceOn:
		m.maint, m.move = true, 0
	case placement.IntentMaintenanceOff:
		m.maint = false
	}
}

// started: node n's new incarnation starts from a Durable covering the
// intents up to from.
func (c *pkgChecker) started(n *simNode, from uint64) { c.applied[n.inc] = from }

// fed checks one intent the driver feeds to n's machine.
func (c *pkgChecker) fed(n *simNode, in placement.Intent) {
	if last := c.applied[n.inc]; in.ID != last+1 {
		c.w.violate(12, "n%d is fed intent #%d after #%d: out of ID order", n.id, in.ID, last)
	}
	c.applied[n.inc] = in.ID
	if a, ok := c.acks[in.ID]; ok && a != in {
		c.w.violate(12, "n%d is fed intent #%d %v %s, but #%d was acknowledged as %v %s", n.id, in.ID, in.Kind, in.Package, in.ID, a.Kind, a.Package)
	}
}

// intentsKept is the end of rule 12: every acknowledged intent is in the
// state area, and every running node has had it.
func (c *pkgChecker) intentsKept(when string) {
	w, pw := c.w, c.pw
	for id := uint64(1); id <= c.maxAck; id++ {
		a, ok := c.acks[id]
		if !ok {
			continue
		}
		if int(id) > len(pw.log) || pw.log[id-1] != a {
			w.violate(12, "%s: acknowledged intent #%d %v %s is not in the state area", when, id, a.Kind, a.Package)
			return
		}
	}
	for _, n := range w.nodes[1:] {
		if got := c.applied[n.inc]; n.up && n.pk.m != nil && got < c.maxAck {
			w.violate(12, "%s: n%d has had the intents up to #%d only, of %d acknowledged", when, n.id, got, c.maxAck)
		}
	}
}

// required reports whether package p can run, by the definitions, the
// intents acknowledged and what runs where: not halted by an operator
// (or auto_run off and never run), not in maintenance, switching
// enabled, no runner of it failed in this history, no exclusion either
// way, some node of its list not drained, and what it needs not halted
// and running (on a node of its list that is not drained, for
// same_node); a pending
// move waits for its node, so a package with one is judged only when
// nothing it needs can keep it from that node. why says which.
func (c *pkgChecker) required(p int) (bool, string) {
	pw, w := c.pw, c.w
	m, def := c.model[p], pw.defs[p]
	switch {
	case m.maint:
		return false, "in maintenance"
	case m.down:
		return false, "halted"
	case !m.switching:
		return false, "switching disabled"
	case c.failed[p]:
		return false, "failed in this history (marks)"
	}
	for j, o := range pw.defs {
		for _, d := range o.Dependencies {
			if d.Cond == placement.Excludes && (j == p || pw.index[d.Package] == p) {
				return false, "an exclusion"
			}
		}
	}
	var elig quorum.Set
	for _, id := range def.Nodes {
		if !c.drained.Has(id) {
			elig = elig.Add(id)
		}
	}
	if m.move != 0 && (c.drained.Has(m.move) || len(def.Dependencies) > 0) {
		return false, "a pending move that may wait"
	}
	for _, d := range def.Dependencies {
		if d.Cond != placement.Needs {
			continue
		}
		j := pw.index[d.Package]
		if c.model[j].down {
			// Placed nowhere, though it may still run (its halt
			// waits for its own dependents).
			return false, "needs a package an operator halted"
		}
		var on quorum.Set
		for _, n := range w.nodes[1:] {
			if n.pk.run[j].state == rRunning {
				on = on.Add(n.id)
			}
		}
		if d.Where == placement.SameNode {
			elig &= on
		} else if on == 0 {
			elig = 0
		}
	}
	if elig == 0 {
		return false, "no eligible node"
	}
	return true, ""
}

// runsOnce is rule 13: whether every package that can run runs on
// exactly one node; report: a violation for each that does not.
func (c *pkgChecker) runsOnce(when string, report bool) bool {
	w := c.w
	all := true
	for p, def := range c.pw.defs {
		ok, _ := c.required(p)
		if !ok {
			continue
		}
		running, up := 0, 0
		var states []string
		for _, n := range w.nodes[1:] {
			r := n.pk.run[p]
			if r.up() && c.live(r) {
				up++
				if r.state == rRunning {
					running++
				}
				states = append(states, fmt.Sprintf("n%d %v", n.id, r.state))
			}
		}
		if running != 1 || up != 1 {
			all = false
			if !report {
				return false
			}
			w.violate(13, "%s: package %s can run (nodes %v, drained %v) but is %s%s", when, def.Name, def.Nodes, c.drained, orNone(states), c.machinesSay(def.Name))
		}
	}
	return all
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "up nowhere"
	}
	return "up on " + strings.Join(s, ", ")
}

// pkgBound is how long after the cluster re-formed every package that
// can run must run: with E = 2 x HeartbeatInterval + 3ms (a report
// exchange: the next heartbeat, and one more for a heartbeat lost or
// late) and L the levels of needs (1 + the longest chain), one exchange
// for every member's report, per level a halt and an exchange (a moved
// package's dependents halt first, each level reported halted), three
// exchanges for the claim and its acknowledgements, and per level a start
// and an exchange (a dependent starts once what it needs runs). No
// takeover is left to wait for: every node is a member again, a restarted
// one having stopped its leftovers. Doubled, as a liveness bound.
func (pw *pkgWorld) pkgBound() time.Duration {
	t := pw.w.t
	e := 2*t.HeartbeatInterval + 3*time.Millisecond
	l := time.Duration(1 + pw.depth())
	return 2 * (4*e + l*(pw.haltMax+pw.startMax+2*e))
}

// depth is the longest chain of needs.
func (pw *pkgWorld) depth() int {
	memo := make([]int, len(pw.defs))
	var d func(i, guard int) int
	d = func(i, guard int) int {
		if guard > len(pw.defs) {
			return 0
		}
		if memo[i] > 0 {
			return memo[i] - 1
		}
		best := 0
		for _, dep := range pw.defs[i].Dependencies {
			if dep.Cond == placement.Needs {
				best = max(best, 1+d(pw.index[dep.Package], guard+1))
			}
		}
		memo[i] = best + 1
		return best
	}
	out := 0
	for i := range pw.defs {
		out = max(out, d(i, 0))
	}
	return out
}

// machinesSay is what the machines report of package name, for the
// message of a violation only (the checker never judges by it): the
// target of the lowest-id machine and why its target waits.
func (c *pkgChecker) machinesSay(name string) string {
	for _, n := range c.w.nodes[1:] {
		if n.pk.m == nil {
			continue
		}
		for _, st := range n.pk.m.Status() {
			if st.Name != name {
				continue
			}
			out := fmt.Sprintf("; n%d places it on n%d (%s)", n.id, st.Target, st.TargetWhy)
			if t := c.w.node(st.Target); t != nil && t.pk.m != nil {
				for _, ts := range t.pk.m.Status() {
					if ts.Name == name && ts.Waiting != "" {
						out += fmt.Sprintf(", which waits: %s", ts.Waiting)
					}
				}
			}
			return out
		}
	}
	return ""
}
