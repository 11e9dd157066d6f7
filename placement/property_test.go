package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mtcluster/mtc/quorum"
)

// drawFn draws an int in [lo, hi].
type drawFn func(name string, lo, hi int) int

// randomDefs draws 2..5 nodes and 1..6 packages with random lists,
// policies, priorities and dependencies (needs only towards earlier
// packages, so no cycle).
func randomDefs(draw drawFn, calm bool) ([]Node, []Package) {
	nn := draw("nodes", 2, 5)
	var nodes []Node
	for i := 1; i <= nn; i++ {
		nodes = append(nodes, Node{ID: NodeID(i), Name: fmt.Sprintf("n%d", i)})
	}
	np := draw("packages", 1, 6)
	var pkgs []Package
	for i := 0; i < np; i++ {
		p := Package{Name: fmt.Sprintf("p%d", i), AutoRun: calm || draw("autorun", 0, 3) > 0}
		perm := make([]NodeID, nn)
		for k := range perm {
			perm[k] = NodeID(k + 1)
		}
		for k := nn - 1; k > 0; k-- {
			j := draw("perm", 0, k)
			perm[k], perm[j] = perm[j], perm[k]
		}
		p.Nodes = perm[:draw("listlen", 1, nn)]
		if draw("minpkg", 0, 2) == 0 {
			p.Failover = MinPackageNode
		} else if draw("failback", 0, 2) == 0 {
			p.Failback = FailbackAutomatic
		}
		if draw("hasprio", 0, 1) == 1 {
			p.Priority = draw("prio", 1, 5)
		}
		if !calm && i > 0 && draw("hasdep", 0, 2) == 0 {
			d := Dependency{Package: fmt.Sprintf("p%d", draw("dep", 0, i-1)), Where: Where(draw("where", 0, 2))}
			if draw("excl", 0, 1) == 1 {
				d.Cond = Excludes
			}
			p.Dependencies = append(p.Dependencies, d)
		}
		pkgs = append(pkgs, p)
	}
	return nodes, pkgs
}

// history plays a random history on a cluster whose reports travel in any
// order, get lost and are sent again, and returns the checker's
// violations (and, for a calm history, whether every package runs once
// the faults heal).
func history(draw drawFn, unsafe Unsafe) (violations []string, trace string) {
	calm := draw("calm", 0, 3) == 0
	nodes, pkgs := randomDefs(draw, calm)
	c := newCluster(nodes, pkgs)
	c.manual, c.unsafe = true, unsafe
	var tr strings.Builder
	for _, n := range nodes {
		if err := c.boot(n.ID); err != nil {
			return []string{err.Error()}, ""
		}
	}
	c.views()
	ids := func() NodeID { return NodeID(draw("node", 1, len(nodes))) }
	steps := draw("steps", 20, 200)
	for s := 0; s < steps && len(c.violations) == 0; s++ {
		op := draw("op", 0, 19)
		switch {
		case op <= 7: // deliver one report from an inbox, in any order
			o := c.hs[ids()]
			if !o.alive || len(o.inbox) == 0 {
				continue
			}
			k := draw("msg", 0, len(o.inbox)-1)
			r := o.inbox[k]
			o.inbox = slices.Delete(o.inbox, k, k+1)
			if c.side[r.Node] == c.side[o.id] && c.hs[r.Node].alive {
				fmt.Fprintf(&tr, "deliver %d->%d seq %d\n", r.Node, o.id, r.Seq)
				c.stepNode(o, Received{Report: r})
			}
		case op <= 11: // a runner moves
			h := c.hs[ids()]
			if h.alive {
				fmt.Fprintf(&tr, "advance %d\n", h.id)
				c.advance(h)
			}
		case op == 12: // a node republishes its latest report (heartbeat)
			h := c.hs[ids()]
			if h.alive && h.last != nil {
				for _, o := range c.live() {
					if o != h && c.side[o.id] == c.side[h.id] {
						o.inbox = append(o.inbox, *h.last)
					}
				}
			}
		case op == 13: // lose a report
			o := c.hs[ids()]
			if o.alive && len(o.inbox) > 0 {
				o.inbox = o.inbox[1:]
			}
		case op == 14: // crash, or boot a dead node
			id := ids()
			if c.hs[id].alive {
				if calm {
					continue
				}
				fmt.Fprintf(&tr, "crash %d\n", id)
				c.kill(id)
			} else {
				fmt.Fprintf(&tr, "boot %d\n", id)
				_ = c.boot(id)
			}
			c.views()
		case op == 15: // partition in two, or heal
			if draw("heal", 0, 1) == 0 {
				clear(c.side[:])
			} else {
				for _, n := range nodes {
					c.side[n.ID] = draw("side", 0, 1)
				}
			}
			fmt.Fprintf(&tr, "sides %v\n", c.side[1:len(nodes)+1])
			c.views()
		case op == 16: // a node without quorum self-fences; takeovers
			for _, h := range c.live() {
				if !h.view.Quorate && draw("selffence", 0, 1) == 1 {
					fmt.Fprintf(&tr, "selffence %d\n", h.id)
					c.kill(h.id)
				}
			}
			c.views()
			for _, n := range nodes {
				if h := c.hs[n.ID]; len(h.dead) > 0 && draw("takeover", 0, 1) == 1 {
					if c.takeover(n.ID, quorum.TakeoverReason(draw("reason", 1, 2))) == nil {
						fmt.Fprintf(&tr, "takeover %d\n", n.ID)
					}
				}
			}
		case op == 17 && !calm: // an operator intent
			p := pkgs[draw("pkg", 0, len(pkgs)-1)].Name
			in := Intent{Kind: IntentKind(draw("intent", int(IntentRun), int(IntentClear))), Package: p, Node: ids()}
			if in.Kind == IntentRun && draw("on", 0, 1) == 0 {
				in.Node = 0
			}
			fmt.Fprintf(&tr, "intent %v %s %d\n", in.Kind, in.Package, in.Node)
			c.intent(in)
		case op == 18 && !calm: // a failure
			h := c.hs[ids()]
			p := pkgs[draw("pkg", 0, len(pkgs)-1)].Name
			if !h.alive {
				continue
			}
			switch draw("fail", 0, 2) {
			case 0:
				h.fail[p] = "start"
			case 1:
				h.fail[p] = "halt"
			default:
				if h.run[p] == Running {
					fmt.Fprintf(&tr, "service-fail %s on %d\n", p, h.id)
					c.setRun(h, p, Failed, "service failed")
				}
			}
		case op == 19: // a tick
			h := c.hs[ids()]
			if h.alive {
				c.stepNode(h, Tick{})
			}
		}
	}
	if len(c.violations) > 0 || !calm {
		return c.violations, tr.String()
	}
	// Calm history: every fault heals; every package must then run on
	// exactly one node.
	clear(c.side[:])
	c.views()
	for _, n := range nodes {
		if h := c.hs[n.ID]; !h.alive {
			_ = c.boot(n.ID)
		}
	}
	c.views()
	for _, n := range nodes {
		if len(c.hs[n.ID].dead) > 0 {
			_ = c.takeover(n.ID, quorum.TakeoverFenced)
		}
	}
	c.manual = false
	for _, h := range c.live() {
		h.inbox = nil
	}
	if n, _ := c.settle(400); n >= 400 {
		c.violations = append(c.violations, "LIVENESS: the cluster does not settle after every fault healed")
	}
	for _, p := range pkgs {
		var on []string
		for _, h := range c.live() {
			if h.run[p.Name] == Running {
				on = append(on, h.name)
			}
		}
		if len(on) != 1 {
			c.violations = append(c.violations, fmt.Sprintf("LIVENESS: after every fault healed, package %s runs on %v, want exactly one node", p.Name, on))
		}
	}
	return c.violations, tr.String()
}

// TestPropertySafety: random definitions, member sets, partitions,
// crashes, reports delivered in any order or lost, operator intents and
// failures never make two nodes run a package at once, never start a
// package on a node without quorum, never start one while another node
// has it up (unless that node is dead and taken over), and never start a
// package before what it needs on the same node runs or while what it
// excludes there is up. Calm histories (no intents, failures or
// dependencies) must end with every package running once.
func TestPropertySafety(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		draw := func(name string, lo, hi int) int { return rapid.IntRange(lo, hi).Draw(rt, name) }
		if v, tr := history(draw, Unsafe{}); len(v) > 0 {
			rt.Fatalf("%s\n--- history\n%s", strings.Join(v, "\n"), tr)
		}
	})
}

// TestPlantedBugs: the checker catches each safety rule switched off.
func TestPlantedBugs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unsafe Unsafe
	}{
		{"skip-clear", Unsafe{SkipClear: true}},
		{"skip-acks", Unsafe{SkipAcks: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const seeds = 20000
			for seed := uint64(1); seed <= seeds; seed++ {
				r := rand.New(rand.NewPCG(seed, 7))
				draw := func(_ string, lo, hi int) int { return lo + r.IntN(hi-lo+1) }
				if v, _ := history(draw, tc.unsafe); len(v) > 0 && !strings.HasPrefix(v[0], "LIVENESS") {
					t.Logf("%s: seed %d: %s", tc.name, seed, v[0])
					return
				}
			}
			t.Fatalf("the checker caught no violation with %s in %d histories", tc.name, seeds)
		})
	}
}

// TestSafeHistoriesSeeded runs the same histories as TestPlantedBugs with
// every rule on: none may violate anything.
func TestSafeHistoriesSeeded(t *testing.T) {
	for seed := uint64(1); seed <= 3000; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		draw := func(_ string, lo, hi int) int { return lo + r.IntN(hi-lo+1) }
		if v, tr := history(draw, Unsafe{}); len(v) > 0 {
			if testing.Verbose() {
				t.Logf("--- history\n%s", tr)
			}
			t.Fatalf("seed %d: %s", seed, strings.Join(v, "\n"))
		}
	}
}
