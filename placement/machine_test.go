package placement

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

var three = []Node{{1, "a"}, {2, "b"}, {3, "c"}}

func inc(id NodeID) Incarnation { return Incarnation(100 + id) }

// fixture is one machine (node 1) in a quorate view of members, with
// helpers to feed peers' reports.
type fixture struct {
	t   *testing.T
	m   *Machine
	now int
	seq [MaxNodes + 1]uint64
	rd  Ready
}

func newFixture(t *testing.T, pkgs []Package, members Set) *fixture {
	t.Helper()
	m, err := New(Config{Self: 1, Inc: inc(1), Nodes: three, Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, m: m}
	f.step(LeftoversStopped{})
	f.view(members)
	return f
}

func (f *fixture) step(ev Event) Ready {
	f.now++
	f.m.Step(time.Duration(f.now), ev)
	f.rd = f.m.Ready()
	f.m.Advance()
	return f.rd
}

func (f *fixture) view(members Set) {
	v := View{Quorate: 2*members.Len() > len(three), Members: members, Epoch: uint64(f.now + 1)}
	v.Agreed = v.Quorate
	for _, id := range members.IDs() {
		v.Inc[id] = inc(id)
	}
	f.step(ViewChanged{View: v})
}

// report feeds node id's report: the given package states, and an ack of
// node 1's latest report when ack is set.
func (f *fixture) report(id NodeID, ack bool, states ...any) Ready {
	f.seq[id]++
	r := Report{Node: id, Inc: inc(id), Seq: f.seq[id]}
	for k := 0; k+1 < len(states); k += 2 {
		r.Packages = append(r.Packages, PackageReport{Name: states[k].(string), State: states[k+1].(State)})
	}
	if ack {
		r.Acks = []Ack{{Node: 1, Inc: inc(1), Seq: f.m.seq}}
	}
	return f.step(Received{Report: r})
}

func (f *fixture) target(name string) NodeID { return f.m.pkgs[f.m.byName[name]].target }

func (f *fixture) actions() string {
	var s []string
	for _, a := range f.rd.Actions {
		s = append(s, a.Kind.String()+" "+a.Package)
	}
	return strings.Join(s, ", ")
}

func pk(name string, nodes ...NodeID) Package {
	return Package{Name: name, Nodes: nodes, AutoRun: true}
}

// TestPolicies: the target of a package, per policy and rule, from one
// node's view once every member reported.
func TestPolicies(t *testing.T) {
	minpkg := func(p Package) Package { p.Failover = MinPackageNode; return p }
	prio := func(p Package, n int) Package { p.Priority = n; return p }
	dep := func(p Package, q string, c Condition, w Where) Package {
		p.Dependencies = append(p.Dependencies, Dependency{Package: q, Cond: c, Where: w})
		return p
	}
	back := func(p Package) Package { p.Failback = FailbackAutomatic; return p }
	for _, tc := range []struct {
		name    string
		pkgs    []Package
		reports map[NodeID][]any // package, state pairs
		intents []Intent
		want    map[string]NodeID
	}{
		{name: "configured_node takes the first node of the list",
			pkgs: []Package{pk("x", 2, 1, 3)}, want: map[string]NodeID{"x": 2}},
		{name: "configured_node skips a drained node",
			pkgs: []Package{pk("x", 2, 1, 3)}, intents: []Intent{{Kind: IntentDrain, Node: 2}}, want: map[string]NodeID{"x": 1}},
		{name: "a running package stays where it runs",
			pkgs: []Package{pk("x", 1, 2, 3)}, reports: map[NodeID][]any{3: {"x", Running}}, want: map[string]NodeID{"x": 3}},
		{name: "min_package_node spreads, ties to the list order",
			pkgs: []Package{minpkg(pk("x", 2, 3, 1)), minpkg(pk("y", 2, 3, 1)), minpkg(pk("z", 3, 2, 1))},
			want: map[string]NodeID{"x": 2, "y": 3, "z": 1}},
		{name: "min_package_node counts packages running elsewhere",
			pkgs:    []Package{minpkg(pk("x", 1, 2, 3)), pk("r1", 1), pk("r2", 2)},
			reports: map[NodeID][]any{2: {"r2", Running}},
			want:    map[string]NodeID{"x": 3}},
		{name: "failback automatic returns to the first node",
			pkgs: []Package{back(pk("x", 1, 2))}, reports: map[NodeID][]any{2: {"x", Running}}, want: map[string]NodeID{"x": 1}},
		{name: "failback automatic waits while switching is disabled",
			pkgs: []Package{back(pk("x", 1, 2))}, reports: map[NodeID][]any{2: {"x", Running}},
			intents: []Intent{{Kind: IntentDisable, Package: "x"}}, want: map[string]NodeID{"x": 2}},
		{name: "failback manual stays",
			pkgs: []Package{pk("x", 1, 2)}, reports: map[NodeID][]any{2: {"x", Running}}, want: map[string]NodeID{"x": 2}},
		{name: "a higher priority displaces a lower one it excludes",
			pkgs:    []Package{dep(prio(pk("hi", 2, 1), 1), "lo", Excludes, SameNode), prio(pk("lo", 2, 3), 9)},
			reports: map[NodeID][]any{2: {"lo", Running}},
			want:    map[string]NodeID{"hi": 2, "lo": 3}},
		{name: "no priority displaces nobody",
			pkgs:    []Package{dep(pk("np", 2, 1), "lo", Excludes, SameNode), prio(pk("lo", 2, 3), 9)},
			reports: map[NodeID][]any{2: {"lo", Running}},
			want:    map[string]NodeID{"np": 1, "lo": 2}},
		{name: "needs same_node follows what it needs",
			pkgs: []Package{dep(pk("app", 1, 2, 3), "db", Needs, SameNode), pk("db", 3, 2)}, want: map[string]NodeID{"db": 3, "app": 3}},
		{name: "needs different_node avoids it",
			pkgs: []Package{dep(pk("rep", 3, 2), "db", Needs, DifferentNode), pk("db", 3, 2)}, want: map[string]NodeID{"db": 3, "rep": 2}},
		{name: "needs any_node with nothing to need places nowhere",
			pkgs: []Package{dep(pk("app", 1), "db", Needs, AnyNode), {Name: "db", Nodes: []NodeID{2}}}, want: map[string]NodeID{"db": 0, "app": 0}},
		{name: "excludes any_node: one of the two",
			pkgs: []Package{dep(pk("a", 1), "b", Excludes, AnyNode), pk("b", 2)}, want: map[string]NodeID{"a": 1, "b": 0}},
		{name: "a failure mark keeps it off that node",
			pkgs: []Package{pk("x", 2, 3)}, reports: map[NodeID][]any{2: {"x", Failed}}, want: map[string]NodeID{"x": 3}},
		{name: "halted by an operator",
			pkgs: []Package{pk("x", 2, 3)}, intents: []Intent{{Kind: IntentHalt, Package: "x"}}, want: map[string]NodeID{"x": 0}},
		{name: "auto_run off",
			pkgs: []Package{{Name: "x", Nodes: []NodeID{2}}}, want: map[string]NodeID{"x": 0}},
		{name: "run --on picks the node once",
			pkgs: []Package{{Name: "x", Nodes: []NodeID{2, 3}}}, intents: []Intent{{Kind: IntentRun, Package: "x", Node: 3}}, want: map[string]NodeID{"x": 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.pkgs, quorum.SetOf(1, 2, 3))
			for k, in := range tc.intents {
				in.ID = uint64(k + 1)
				f.step(Commanded{Intent: in})
			}
			for _, id := range []NodeID{2, 3} {
				st := tc.reports[id]
				f.report(id, false, st...)
			}
			for name, want := range tc.want {
				if got := f.target(name); got != want {
					t.Errorf("%s placed on %d (%s), want %d", name, got, f.m.pkgs[f.m.byName[name]].targetWhy, want)
				}
			}
		})
	}
}

// TestStartRule: node 1 starts a package placed on it only when it is
// quorate, every other member reports the package halted and has
// acknowledged its claim, and every departed node that may hold it is
// taken over.
func TestStartRule(t *testing.T) {
	t.Run("not while another member has it up", func(t *testing.T) {
		f := newFixture(t, []Package{pk("x", 1, 2)}, quorum.SetOf(1, 2, 3))
		f.report(2, true, "x", Halting)
		f.report(3, true)
		if f.m.pkgs[0].claimed || f.actions() != "" {
			t.Fatalf("claimed or started while node 2 reports it halting: %s", f.actions())
		}
		f.report(2, true)
		if !f.m.pkgs[0].claimed || f.rd.Report == nil || len(f.rd.Report.Packages) != 1 || f.rd.Report.Packages[0].State != Claimed {
			t.Fatalf("no claim published once node 2 reports it halted: %+v", f.rd.Report)
		}
		if f.actions() != "" {
			t.Fatalf("started before the claim was acknowledged: %s", f.actions())
		}
		f.report(2, true)
		if f.actions() != "" {
			t.Fatal("started with one acknowledgement of two")
		}
		f.report(3, true)
		if f.actions() != "start x" {
			t.Fatalf("actions %q after every member acknowledged, want start x", f.actions())
		}
	})
	t.Run("not before this node's leftovers are stopped", func(t *testing.T) {
		m, err := New(Config{Self: 1, Inc: inc(1), Nodes: three, Packages: []Package{pk("x", 1)}})
		if err != nil {
			t.Fatal(err)
		}
		f := &fixture{t: t, m: m}
		f.view(quorum.SetOf(1, 2, 3))
		f.report(2, true)
		f.report(3, true)
		if f.m.pkgs[0].claimed {
			t.Fatal("claimed before LeftoversStopped")
		}
		f.step(LeftoversStopped{})
		if !f.m.pkgs[0].claimed {
			t.Fatal("no claim after LeftoversStopped")
		}
	})
	t.Run("not without quorum", func(t *testing.T) {
		f := newFixture(t, []Package{pk("x", 1)}, quorum.SetOf(1))
		if f.m.pkgs[0].claimed || f.actions() != "" {
			t.Fatal("claimed without quorum")
		}
	})
	t.Run("a departed node must be taken over", func(t *testing.T) {
		f := newFixture(t, []Package{pk("x", 2, 1)}, quorum.SetOf(1, 2, 3))
		f.report(2, true, "x", Running)
		f.report(3, true)
		f.view(quorum.SetOf(1, 3))
		f.report(3, true)
		if f.target("x") != 1 || f.m.pkgs[0].claimed {
			t.Fatalf("target %d claimed %v before the takeover", f.target("x"), f.m.pkgs[0].claimed)
		}
		// A takeover of another incarnation does not count.
		f.step(TakeoversAllowed{Takeovers: []Takeover{{Target: quorum.Target{Node: 2, Inc: 999}, Reason: quorum.TakeoverFenced}}})
		if f.m.pkgs[0].claimed {
			t.Fatal("claimed on a takeover of another incarnation")
		}
		f.step(TakeoversAllowed{Takeovers: []Takeover{{Target: quorum.Target{Node: 2, Inc: inc(2)}, Reason: quorum.TakeoverFenced}}})
		f.report(3, true)
		if f.actions() != "start x" || len(f.rd.Actions[0].Takeovers) != 1 || f.rd.Actions[0].Takeovers[0].Node != 2 {
			t.Fatalf("after the takeover: %+v", f.rd.Actions)
		}
	})
	t.Run("a replaced incarnation must be taken over", func(t *testing.T) {
		f := newFixture(t, []Package{pk("x", 1, 2)}, quorum.SetOf(1, 2, 3))
		f.report(2, true, "x", Running)
		f.report(3, true)
		// Node 2 restarts: new incarnation, member again, reports nothing up.
		v := f.m.view
		v.Inc[2] = 555
		f.step(ViewChanged{View: v})
		f.step(Received{Report: Report{Node: 2, Inc: 555, Seq: 1, Acks: []Ack{{Node: 1, Inc: inc(1), Seq: f.m.seq}}}})
		f.step(Received{Report: Report{Node: 2, Inc: inc(2), Seq: 9}}) // late, old
		f.report(3, true)
		if f.m.pkgs[0].claimed {
			t.Fatalf("claimed while the old incarnation's report shows it running: %s", f.m.pkgs[0].waitWhy)
		}
		f.step(TakeoversAllowed{Takeovers: []Takeover{{Target: quorum.Target{Node: 2, Inc: inc(2)}, Reason: quorum.TakeoverWatchdog}}})
		if !f.m.pkgs[0].claimed {
			t.Fatalf("no claim after the old incarnation's takeover: %s", f.m.pkgs[0].waitWhy)
		}
		// Without the takeover, the new incarnation's word that it
		// stopped its predecessor's leftovers covers the old one too.
		g := newFixture(t, []Package{pk("x", 1, 2)}, quorum.SetOf(1, 2, 3))
		g.report(2, true, "x", Running)
		g.report(3, true)
		v = g.m.view
		v.Inc[2] = 555
		g.step(ViewChanged{View: v})
		g.step(Received{Report: Report{Node: 2, Inc: 555, Seq: 1}})
		g.report(3, true)
		if g.m.pkgs[0].claimed {
			t.Fatal("claimed before the new incarnation said its leftovers are stopped")
		}
		g.step(Received{Report: Report{Node: 2, Inc: 555, Seq: 2, LeftoversStopped: true}})
		if !g.m.pkgs[0].claimed {
			t.Fatalf("no claim once the new incarnation stopped its leftovers: %s", g.m.pkgs[0].waitWhy)
		}
	})
	t.Run("two claims: the earlier node of the list wins", func(t *testing.T) {
		f := newFixture(t, []Package{pk("x", 1, 2)}, quorum.SetOf(1, 2, 3))
		f.report(2, false)
		f.report(3, false)
		if !f.m.pkgs[0].claimed {
			t.Fatal("no claim")
		}
		f.report(2, true, "x", Claimed)
		f.report(3, true)
		if !f.m.pkgs[0].claimed || f.actions() != "" {
			t.Fatalf("node 1 comes first in the list: it keeps its claim and waits for node 2 to yield (%q)", f.actions())
		}
		g := newFixture(t, []Package{pk("x", 2, 1)}, quorum.SetOf(1, 2, 3))
		g.report(2, false)
		g.report(3, false)
		g.m.pkgs[0].target = 1 // node 1 believes it is the target
		g.report(2, true, "x", Claimed)
		if g.m.pkgs[0].claimed && g.actions() != "" {
			t.Fatal("node 1 started against a claim that comes first")
		}
	})
}

// TestIntents: what an intent may not do is refused with what to do.
func TestIntents(t *testing.T) {
	back := pk("fb", 1, 2)
	back.Failback = FailbackAutomatic
	f := newFixture(t, []Package{pk("x", 1, 2), back}, quorum.SetOf(1, 2, 3))
	f.report(2, false, "x", Running)
	f.report(3, false)
	for _, tc := range []struct {
		in   Intent
		want string
	}{
		{Intent{Kind: IntentMove, Package: "x", Node: 3}, "not one of the nodes of package x"},
		{Intent{Kind: IntentRun, Package: "x", Node: 1}, "package x runs on b: use `mtc move x --to a`"},
		{Intent{Kind: IntentMove, Package: "nope", Node: 1}, `no package is called "nope"`},
		{Intent{Kind: IntentMove, Package: "fb", Node: 2}, "failback_policy automatic"},
		{Intent{Kind: IntentDrain, Node: 1}, ""},
		{Intent{Kind: IntentMove, Package: "x", Node: 1}, "a is drained: run `mtc node undrain a` first"},
		{Intent{Kind: IntentMaintenanceOn, Package: "x"}, ""},
		{Intent{Kind: IntentHalt, Package: "x"}, "package x is in maintenance: run `mtc maintenance x off` first"},
	} {
		tc.in.ID = f.m.lastIntent + 1
		rd := f.step(Commanded{Intent: tc.in})
		var got string
		for _, d := range rd.Decisions {
			if d.Kind == IntentRejected {
				got = d.Reason
			}
		}
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%v %s: rejected %q, want %q", tc.in.Kind, tc.in.Package, got, tc.want)
		}
		if rd.Durable == nil || rd.Durable.LastIntent != tc.in.ID {
			t.Errorf("%v: the durable state does not record the intent", tc.in.Kind)
		}
	}
	// A repeated intent is ignored (commands are retried).
	if rd := f.step(Commanded{Intent: Intent{ID: 1, Kind: IntentHalt, Package: "fb"}}); len(rd.Decisions) != 0 {
		t.Fatalf("a repeated intent acted: %v", rd.Decisions)
	}
}

func TestValidate(t *testing.T) {
	cyc := []Package{
		{Name: "a", Nodes: []NodeID{1}, Dependencies: []Dependency{{Package: "b", Cond: Needs}}},
		{Name: "b", Nodes: []NodeID{1}, Dependencies: []Dependency{{Package: "a", Cond: Needs, Where: AnyNode}}},
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Self: 1, Inc: 1, Nodes: three, Packages: cyc}, "a -> b -> a need each other in a cycle"},
		{Config{Self: 1, Inc: 1, Nodes: three, Packages: []Package{{Name: "x", Nodes: []NodeID{4}}}}, "package x: nodes[0]: node id 4 is not a configured node"},
		{Config{Self: 1, Inc: 1, Nodes: three, Packages: []Package{{Name: "x", Nodes: []NodeID{1}}, {Name: "x", Nodes: []NodeID{1}}}}, "package x is defined twice"},
		{Config{Self: 1, Inc: 1, Nodes: three, Packages: []Package{{Name: "x", Nodes: []NodeID{1}, Dependencies: []Dependency{{Package: "y"}}}}}, `no package is called "y"`},
		{Config{Self: 1, Inc: 1, Nodes: three, Packages: []Package{{Name: "x", Nodes: []NodeID{1}, Priority: 3001}}}, "priority 3001 is outside"},
		{Config{Self: 1, Inc: 1, Nodes: three, Packages: []Package{{Name: "x", Nodes: []NodeID{1}, Failover: MinPackageNode, Failback: FailbackAutomatic}}}, "failback_policy automatic needs failover_policy configured_node"},
		{Config{Self: 5, Inc: 1, Nodes: three}, "self node id 5"},
		{Config{Self: 1, Nodes: three}, "incarnation is 0"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// TestOrder: needs first, then effective priority (inherited from what
// needs a package), then name.
func TestOrder(t *testing.T) {
	pkgs := []Package{
		{Name: "app", Priority: 1, Dependencies: []Dependency{{Package: "db", Cond: Needs}}},
		{Name: "db"},
		{Name: "aaa", Priority: 5},
		{Name: "zzz", Priority: 2},
		{Name: "none"},
	}
	order, _ := placementOrder(pkgs)
	var got []string
	for _, i := range order {
		got = append(got, pkgs[i].Name)
	}
	if strings.Join(got, " ") != "db app zzz aaa none" {
		t.Fatalf("order %v", got)
	}
}

// TestPlanOnClone: a clone answers "what if node 2 failed" through the
// same decisions, and the machine itself is untouched.
func TestPlanOnClone(t *testing.T) {
	f := newFixture(t, []Package{pk("x", 2, 1, 3), pk("y", 3, 1)}, quorum.SetOf(1, 2, 3))
	f.report(2, true, "x", Running)
	f.report(3, true, "y", Running)
	before := f.m.Status()
	c := f.m.Clone()
	v := c.view
	v.Members = v.Members.Remove(2)
	v.Inc[2] = 0
	c.Step(100, ViewChanged{View: v})
	c.Step(101, TakeoversAllowed{Takeovers: []Takeover{{Target: quorum.Target{Node: 2, Inc: inc(2)}, Reason: quorum.TakeoverFenced}}})
	plan := c.Status()
	if plan[0].Name != "x" || plan[0].Target != 1 || len(plan[0].States) != 1 || plan[0].States[0] != (NodeState{Node: 1, State: Claimed}) {
		t.Fatalf("plan for x: %+v", plan[0])
	}
	after := f.m.Status()
	if after[0].Target != 2 || len(after[0].States) != 1 || after[0].States[0].Node != 2 || before[0].Target != after[0].Target {
		t.Fatalf("the clone changed the machine: %+v", after[0])
	}
	if f.m.pkgs[0].claimed || f.m.view.Members != quorum.SetOf(1, 2, 3) {
		t.Fatal("the clone shares state with the machine")
	}
}

// A package that a package in maintenance needs on the same node,
// directly or through another, cannot be moved: its halt would wait for
// the package the cluster leaves alone, and the move would never end.
func TestMovePinnedByMaintenance(t *testing.T) {
	db := pk("db", 1, 2)
	app := pk("app", 1, 2)
	app.Dependencies = []Dependency{{Package: "db", Cond: Needs, Where: SameNode}}
	web := pk("web", 1, 2)
	web.Dependencies = []Dependency{{Package: "app", Cond: Needs, Where: SameNode}}
	f := newFixture(t, []Package{db, app, web}, quorum.SetOf(1, 2, 3))
	f.report(2, false, "db", Running, "app", Running, "web", Running)
	f.report(3, false)
	cmd := func(in Intent) string {
		in.ID = f.m.lastIntent + 1
		for _, d := range f.step(Commanded{Intent: in}).Decisions {
			if d.Kind == IntentRejected {
				return d.Reason
			}
		}
		return ""
	}
	if why := cmd(Intent{Kind: IntentMaintenanceOn, Package: "web"}); why != "" {
		t.Fatal(why)
	}
	if why := cmd(Intent{Kind: IntentMove, Package: "db", Node: 1}); !strings.Contains(why, "web, in maintenance, needs it there") {
		t.Fatalf("move of db under web in maintenance: %q", why)
	}
	if why := cmd(Intent{Kind: IntentMaintenanceOff, Package: "web"}); why != "" {
		t.Fatal(why)
	}
	if why := cmd(Intent{Kind: IntentMove, Package: "db", Node: 1}); why != "" {
		t.Fatalf("move of db once web left maintenance: %q", why)
	}
}

// A one-shot move ends on every node, also on one that never saw the
// package running at its target: the target lists the intent in its
// report's Completed, and keeps listing it after the package halted
// there again.
func TestMoveCompletedFromTheReport(t *testing.T) {
	f := newFixture(t, []Package{pk("db", 1, 2, 3)}, quorum.SetOf(1, 2, 3))
	f.report(2, false)
	f.report(3, false, "db", Running)
	f.step(Commanded{Intent: Intent{ID: 1, Kind: IntentMove, Package: "db", Node: 2}})
	if got := f.target("db"); got != 2 {
		t.Fatalf("target %v, want b (the move)", got)
	}
	// c halted it; b ran it and halted it again before node 1 heard.
	f.report(3, false)
	f.seq[2]++
	rd := f.step(Received{Report: Report{Node: 2, Inc: inc(2), Seq: f.seq[2], Completed: []uint64{1}}})
	var done bool
	for _, d := range rd.Decisions {
		done = done || d.Kind == IntentDone && d.Intent == 1 && d.Node == 2
	}
	if !done || f.m.pkgs[0].intent.Pending.ID != 0 {
		t.Fatalf("move #1 still pending after b reported it completed: %+v", rd.Decisions)
	}
	if got := f.target("db"); got != 1 {
		t.Fatalf("target %v, want a (configured_node, the first of its list)", got)
	}
	// A node cut off when the others cancelled a move ends it from
	// their reports once it hears them.
	f.step(Commanded{Intent: Intent{ID: 2, Kind: IntentMove, Package: "db", Node: 3}})
	if f.m.pkgs[0].intent.Pending.ID != 2 {
		t.Fatal("move #2 not pending")
	}
	f.seq[2]++
	f.step(Received{Report: Report{Node: 2, Inc: inc(2), Seq: f.seq[2], Completed: []uint64{1, 2}}})
	if f.m.pkgs[0].intent.Pending.ID != 0 {
		t.Fatal("move #2 still pending after b reported it ended")
	}
}

// The node where a one-shot intent completed lists it in its reports,
// ID ascending, the last MaxCompleted of them.
func TestCompletedListed(t *testing.T) {
	f := newFixture(t, []Package{pk("db", 1, 2)}, quorum.SetOf(1, 2))
	f.report(2, false)
	f.step(Commanded{Intent: Intent{ID: 7, Kind: IntentMove, Package: "db", Node: 1}})
	f.step(Local{Package: "db", State: Running})
	r := f.m.buildReport()
	if len(r.Completed) != 1 || r.Completed[0] != 7 {
		t.Fatalf("completed %v, want [7]", r.Completed)
	}
	for id := uint64(8); id < 8+MaxCompleted+3; id++ {
		f.step(Commanded{Intent: Intent{ID: id, Kind: IntentRun, Package: "db"}})
	}
	r = f.m.buildReport()
	if len(r.Completed) != MaxCompleted || r.Completed[0] != 8+3 || r.Completed[MaxCompleted-1] != 8+MaxCompleted+2 {
		t.Fatalf("completed %v, want the last %d", r.Completed, MaxCompleted)
	}
}

// A move to a node that leaves the cluster ends: the package is placed by
// its policy, and a move to a node that is not a member is refused.
func TestMoveTargetLeft(t *testing.T) {
	f := newFixture(t, []Package{pk("db", 3, 1, 2)}, quorum.SetOf(1, 2, 3))
	f.report(2, false, "db", Running)
	f.report(3, false)
	f.step(Commanded{Intent: Intent{ID: 1, Kind: IntentMove, Package: "db", Node: 3}})
	f.report(2, false) // b halted it for the move
	f.view(quorum.SetOf(1, 2))
	rd := f.report(2, false)
	if p := f.m.pkgs[0].intent.Pending; p.ID != 0 {
		t.Fatalf("move #1 to c still pending after c left: %+v", rd.Decisions)
	}
	if got := f.target("db"); got != 1 {
		t.Fatalf("target %v, want a (configured_node without c)", got)
	}
	var why string
	for _, d := range f.step(Commanded{Intent: Intent{ID: 2, Kind: IntentMove, Package: "db", Node: 3}}).Decisions {
		if d.Kind == IntentRejected {
			why = d.Reason
		}
	}
	if !strings.Contains(why, "c is not a member of the cluster") {
		t.Fatalf("move to c while c is out: %q", why)
	}
}

// A package with a pending move that waits, and that cannot stay where it
// runs (what it needs on the same node moved away), halts: staying would
// hold what it needs in place, and neither would ever move.
func TestPendingMoveDoesNotPinADependent(t *testing.T) {
	base := pk("base", 1, 2, 3)
	dep := pk("dep", 1, 2)
	dep.Dependencies = []Dependency{{Package: "base", Cond: Needs, Where: SameNode}}
	f := newFixture(t, []Package{base, dep}, quorum.SetOf(1, 2, 3))
	f.report(2, false)
	f.report(3, false)
	f.step(Local{Package: "base", State: Running})
	f.step(Local{Package: "dep", State: Running})
	if a := f.actions(); a != "" {
		t.Fatalf("actions %q before the moves", a)
	}
	// dep's move to b waits (base is not there); then base moves to c,
	// where dep cannot run.
	f.step(Commanded{Intent: Intent{ID: 1, Kind: IntentMove, Package: "dep", Node: 2}})
	rd := f.step(Commanded{Intent: Intent{ID: 2, Kind: IntentMove, Package: "base", Node: 3}})
	if !strings.Contains(f.actions(), "halt dep") {
		t.Fatalf("dep not halted for base's move (actions %q): %+v", f.actions(), rd.Decisions)
	}
}

// A package that a package in maintenance needs, on any node, stays
// where it runs though that node is drained: its halt would wait for the
// package in maintenance for as long as it stays so, and a package that
// needs it elsewhere would wait for a move that never completes.
func TestDrainKeepsWhatMaintenanceNeeds(t *testing.T) {
	for _, where := range []Where{AnyNode, SameNode} {
		db := pk("db", 2, 3)
		ops := pk("ops", 2, 3)
		ops.Dependencies = []Dependency{{Package: "db", Cond: Needs, Where: where}}
		app := pk("app", 1)
		app.Dependencies = []Dependency{{Package: "db", Cond: Needs, Where: AnyNode}}
		f := newFixture(t, []Package{db, ops, app}, quorum.SetOf(1, 2, 3))
		f.report(2, false, "db", Running, "ops", Running)
		f.report(3, false)
		cmd := func(in Intent) {
			in.ID = f.m.lastIntent + 1
			for _, d := range f.step(Commanded{Intent: in}).Decisions {
				if d.Kind == IntentRejected {
					t.Fatal(d.Reason)
				}
			}
		}
		cmd(Intent{Kind: IntentMaintenanceOn, Package: "ops"})
		cmd(Intent{Kind: IntentDrain, Node: 2})
		if got := f.target("db"); got != 2 {
			t.Fatalf("%v: db placed on %d with ops in maintenance on the drained node 2", where, got)
		}
		if why := f.m.pkgs[f.m.byName["db"]].targetWhy; !strings.Contains(why, "ops, in maintenance, needs it there") {
			t.Fatalf("%v: db's reason: %q", where, why)
		}
		started := false
		for k := 0; k < 4 && !started; k++ {
			f.report(2, true, "db", Running, "ops", Running)
			started = strings.Contains(f.actions(), "start app")
			f.report(3, true)
			started = started || strings.Contains(f.actions(), "start app")
		}
		if !started {
			t.Fatalf("%v: app, which needs db anywhere, does not start while db runs on node 2: waits: %q", where, f.m.pkgs[f.m.byName["app"]].waitWhy)
		}
		// Out of maintenance, db moves off the drained node: ops and app
		// halt first.
		cmd(Intent{Kind: IntentMaintenanceOff, Package: "ops"})
		if got := f.target("db"); got != 3 {
			t.Fatalf("%v: db placed on %d once ops left maintenance, want 3", where, got)
		}
	}
}
