package guest

// Chaos in the lab: one node loses its path to the quorum LUN (its dm map
// switched to an error table) while its network is fine. The host cannot
// do this: its nodes share one loop device, so a fault of the quorum disk
// hits every node at once.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/test/lab/labkit"
)

// plObs is one sample of the path-loss trial: what a peer of the victim
// said of it, and which nodes carried the VIP.
type plObs struct {
	at       time.Time // when the sample was taken (before the query)
	observer string
	// The observer's view of the victim: membership class, network
	// liveness, fencing of its departed incarnation.
	state, net, fence string
	vipHolders        []string
}

// plCheck is the trial's safety check, from the samples alone: no peer
// may declare the victim dead (class dead, or a fence begun) while the
// victim's daemon still runs (exited is when it ended, zero if it never
// did): its network heartbeat lives until then; and the VIP may never be
// on two nodes at once. It returns the violations.
func plCheck(obs []plObs, victim string, exited time.Time) []string {
	var out []string
	for _, o := range obs {
		if o.observer == victim {
			continue
		}
		declared := o.state == "dead" || o.fence == "pending" || o.fence == "failing" || o.fence == "fenced"
		if declared && (exited.IsZero() || o.at.Before(exited)) {
			when := "it never ended"
			if !exited.IsZero() {
				when = fmt.Sprintf("it ended %v later", exited.Sub(o.at).Round(time.Millisecond))
			}
			out = append(out, fmt.Sprintf("%s declared %s dead (state %s, network %s, fence %q) at %s while its daemon still ran (%s)",
				o.observer, victim, o.state, o.net, o.fence, o.at.Format("15:04:05.000"), when))
		}
		if len(o.vipHolders) > 1 {
			out = append(out, fmt.Sprintf("the VIP on %v at once at %s", o.vipHolders, o.at.Format("15:04:05.000")))
		}
	}
	return out
}

// TestPathLossCheckerCatchesPlantedViolations: plCheck passes a clean
// history and catches each violation planted into it.
func TestPathLossCheckerCatchesPlantedViolations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exited := t0.Add(2 * time.Second)
	clean := []plObs{
		{at: t0, observer: "node1", state: "alive", net: "live", vipHolders: []string{"node2"}},
		{at: t0.Add(time.Second), observer: "node3", state: "alive", net: "live", vipHolders: []string{"node2"}},
		// The victim's own view does not count.
		{at: t0.Add(time.Second), observer: "node2", state: "dead", vipHolders: []string{"node2"}},
		{at: t0.Add(2500 * time.Millisecond), observer: "node1", state: "dead", net: "dead", fence: "fenced"},
		{at: t0.Add(3 * time.Second), observer: "node1", state: "dead", fence: "fenced", vipHolders: []string{"node1"}},
	}
	if v := plCheck(clean, "node2", exited); len(v) != 0 {
		t.Fatalf("clean history: %v", v)
	}
	for _, c := range []struct {
		name   string
		plant  plObs
		exited time.Time
		want   string
	}{
		{"dead while running", plObs{at: t0.Add(1500 * time.Millisecond), observer: "node3", state: "dead", net: "live"}, exited, "node3 declared node2 dead"},
		{"fence begun while running", plObs{at: t0.Add(1900 * time.Millisecond), observer: "node1", state: "partitioned", fence: "pending"}, exited, "fence \"pending\""},
		// With the victim never ended, the clean history's own later
		// deaths count too: the history up to 1 s is taken below.
		{"dead, never ended", plObs{at: t0.Add(9 * time.Second), observer: "node1", state: "dead"}, time.Time{}, "it never ended"},
		{"VIP twice", plObs{at: t0.Add(2100 * time.Millisecond), observer: "node1", state: "dead", vipHolders: []string{"node1", "node2"}}, exited, "the VIP on [node1 node2]"},
	} {
		h := slices.Clone(clean)
		if c.exited.IsZero() {
			h = h[:3]
		}
		v := plCheck(append(h, c.plant), "node2", c.exited)
		if len(v) != 1 || !strings.Contains(v[0], c.want) {
			t.Errorf("%s: violations %q, want one with %q", c.name, v, c.want)
		}
	}
}

// TestQuorumPathLossIsNotDeath: three daemons (as in TestFailoverPR, PR
// fencing on the quorum LUN and data1, the first timing profile of
// MTC_LAB_FAILOVER_PROFILES) run a VIP package.
// One node's dm map to the quorum LUN is switched to an error table while
// its network stays up: first the owner's, then a node that runs nothing.
// The node can no longer write its slot, so it stops its packages and its
// watchdog kills it (quorum: "a node that lost its own disk writes stops
// its packages and is reset"); its peers see its slot stop changing, but
// its network heartbeat goes on, and until its daemon has ended they must
// not declare it dead or begin to fence it. Once it has ended they do,
// fence it, and the owner's package runs elsewhere. Sampled every 20 ms:
// each peer's view of the victim and which nodes carry the VIP (never two,
// checked by plCheck). Then the path is restored and the node restarted.
func TestQuorumPathLossIsNotDeath(t *testing.T) {
	labkit.Require(t)
	p := fpProfiles(t)[0]
	c := fpNewCluster(t, p, fpVariant{name: "VIP"})
	san, err := labkit.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	d := p.timing.Derive()
	owner, _ := c.waitStable()
	for _, role := range []string{"owner", "idle"} {
		victim := owner
		if role == "idle" {
			victim = c.nodes[(slices.Index(c.nodes, owner)+1)%len(c.nodes)]
		}
		t.Run(role, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			dm, err := labkit.OpenDMPath(ctx, labkit.DMName(victim.name, "quorum"), dev(t, san, victim.name, "quorum"))
			if err != nil {
				t.Fatal(err)
			}
			var obs []plObs
			sample := func() {
				at := time.Now()
				holders := c.vipHolders()
				for _, n := range c.nodes {
					if n == victim {
						continue
					}
					s, err := c.status(n)
					if err != nil {
						continue
					}
					o := plObs{at: at, observer: n.name, vipHolders: holders}
					for _, ps := range s.Peers {
						if ps.Name == victim.name {
							o.state, o.net, o.fence = ps.State, ps.Net, ps.Fence
						}
					}
					obs = append(obs, o)
				}
			}
			faulted := time.Now()
			if err := dm.Fail(ctx); err != nil {
				t.Fatal(err)
			}
			restored := false
			restore := func() {
				if !restored {
					restored = true
					if err := dm.Restore(context.Background()); err != nil {
						t.Errorf("restoring %s's quorum path: %v", victim.name, err)
					}
				}
			}
			defer restore()
			t.Logf("%s (%s): its quorum path fails with EIO from now on; its network is up", victim.name, role)
			// The victim must end (its watchdog), then its peers fence it
			// and the package runs on one node.
			bound := d.TakeoverAfter + 3*p.timing.FailureTimeout + time.Minute
			var exited time.Time
			for deadline := faulted.Add(bound); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				sample()
				if exited.IsZero() && !victim.running() {
					exited = time.Now()
					t.Logf("%s's daemon ended %v after the fault: %s", victim.name, exited.Sub(faulted).Round(time.Millisecond), c.exitReason(victim))
				}
				if !exited.IsZero() && c.fencedBy(victim, faulted) != "" && c.runningOnOne(victim) {
					break
				}
			}
			if exited.IsZero() {
				t.Errorf("%s's daemon still runs %v after it lost its quorum path: a node without its own disk writes must stop and be reset", victim.name, bound)
			}
			for _, v := range plCheck(obs, victim.name, exited) {
				t.Error(v)
			}
			fencer := c.fencedBy(victim, faulted)
			if !exited.IsZero() && fencer == "" {
				t.Errorf("no peer fenced %s after its daemon ended", victim.name)
			}
			firstDead := time.Time{}
			for _, o := range obs {
				if o.state == "dead" && firstDead.IsZero() {
					firstDead = o.at
				}
			}
			t.Logf("%d samples; %s first judged dead %v after the fault (%v after its daemon ended), fenced by %q; VIP on %v",
				len(obs), victim.name, firstDead.Sub(faulted).Round(time.Millisecond), firstDead.Sub(exited).Round(time.Millisecond), fencer, c.vipHolders())
			restore()
			_ = c.killNS(victim)
			c.start(victim)
			owner, _ = c.waitStable()
		})
	}
}

// fencedBy is the peer that holds a verified fence of victim made after
// since, or "".
func (c *fpCluster) fencedBy(victim *fpNode, since time.Time) string {
	for _, n := range c.nodes {
		if n == victim {
			continue
		}
		s, err := c.status(n)
		if err != nil {
			continue
		}
		for _, f := range s.Fencing.Fenced {
			if f.Peer == victim.name && f.Time.After(since) {
				return n.name
			}
		}
	}
	return ""
}

// runningOnOne reports whether every node but except sees the package
// running on the same one node.
func (c *fpCluster) runningOnOne(except *fpNode) bool {
	owner := ""
	for _, n := range c.nodes {
		if n == except {
			continue
		}
		s, err := c.status(n)
		if err != nil {
			return false
		}
		v, ok := fpView(s)
		if !ok || v.State != "running" || v.Owner == "" || (owner != "" && v.Owner != owner) {
			return false
		}
		owner = v.Owner
	}
	return owner != ""
}
