package guest

// Chaos in the lab: one node loses its path to the quorum LUN (its dm map
// switched to an error table) while its network is fine. The host cannot
// do this: its nodes share one loop device, so a fault of the quorum disk
// hits every node at once.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/test/lab/failbench"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// plObs is one sample of the path-loss trial: what a peer of the victim
// said of it, and which nodes carried the VIP.
type plObs struct {
	at       time.Time // when the sample was taken (before the query)
	observer string
	// The observer's view of the victim: membership class and network
	// liveness, and when it asked to fence the victim after the fault
	// (zero: not yet).
	state, net string
	fenceAsked time.Time
	vipHolders []string
}

// plCheck is the trial's safety check, from the samples and the victim's
// own record alone. gaveUp is when the victim itself gave up: its
// self-fence decision (no own slot write for failure_timeout) or the end
// of its daemon, whichever came first (zero: never). Until then its
// network heartbeat lives and its loss of one path is not death: no peer
// may judge it dead or ask to fence it. The VIP may never be on two
// nodes at once. It returns the violations.
func plCheck(obs []plObs, victim string, gaveUp time.Time) []string {
	var out []string
	before := func(t time.Time) bool { return gaveUp.IsZero() || t.Before(gaveUp) }
	when := func(t time.Time) string {
		if gaveUp.IsZero() {
			return "it never gave up"
		}
		return fmt.Sprintf("it gave up %v later", gaveUp.Sub(t).Round(time.Millisecond))
	}
	asked := map[string]bool{}
	for _, o := range obs {
		if o.observer == victim {
			continue
		}
		if o.state == "dead" && before(o.at) {
			out = append(out, fmt.Sprintf("%s judged %s dead (network %s) at %s, before %s gave up (%s)",
				o.observer, victim, o.net, o.at.Format("15:04:05.000"), victim, when(o.at)))
		}
		if !o.fenceAsked.IsZero() && before(o.fenceAsked) && !asked[o.observer] {
			asked[o.observer] = true
			out = append(out, fmt.Sprintf("%s asked to fence %s at %s, before %s gave up (%s)",
				o.observer, victim, o.fenceAsked.Format("15:04:05.000"), victim, when(o.fenceAsked)))
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
	gaveUp := t0.Add(2 * time.Second)
	clean := []plObs{
		{at: t0, observer: "node1", state: "alive", net: "live", vipHolders: []string{"node2"}},
		{at: t0.Add(time.Second), observer: "node3", state: "alive", net: "live", vipHolders: []string{"node2"}},
		// The victim's own view does not count.
		{at: t0.Add(time.Second), observer: "node2", state: "dead", vipHolders: []string{"node2"}},
		// After it gave up (self-fenced, network still live): fenced.
		{at: t0.Add(2500 * time.Millisecond), observer: "node1", state: "alive", net: "live", fenceAsked: t0.Add(2100 * time.Millisecond)},
		{at: t0.Add(3 * time.Second), observer: "node1", state: "dead", fenceAsked: t0.Add(2100 * time.Millisecond), vipHolders: []string{"node1"}},
	}
	if v := plCheck(clean, "node2", gaveUp); len(v) != 0 {
		t.Fatalf("clean history: %v", v)
	}
	for _, c := range []struct {
		name   string
		plant  plObs
		gaveUp time.Time
		want   string
	}{
		{"dead before it gave up", plObs{at: t0.Add(1500 * time.Millisecond), observer: "node3", state: "dead", net: "live"}, gaveUp, "node3 judged node2 dead"},
		{"fence asked before it gave up", plObs{at: t0.Add(2500 * time.Millisecond), observer: "node3", state: "alive", fenceAsked: t0.Add(1900 * time.Millisecond)}, gaveUp, "node3 asked to fence node2"},
		// With a victim that never gave up, the clean history's own later
		// verdicts count too: the history up to 1 s is taken below.
		{"dead, never gave up", plObs{at: t0.Add(9 * time.Second), observer: "node1", state: "dead"}, time.Time{}, "it never gave up"},
		{"VIP twice", plObs{at: t0.Add(2100 * time.Millisecond), observer: "node1", state: "dead", vipHolders: []string{"node1", "node2"}}, gaveUp, "the VIP on [node1 node2]"},
	} {
		h := slices.Clone(clean)
		if c.gaveUp.IsZero() {
			h = h[:3]
		}
		v := plCheck(append(h, c.plant), "node2", c.gaveUp)
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
// The node can no longer write its slot, so it self-fences: it stops its
// packages (quorum: "a node that lost its own disk writes stops its
// packages and is reset"; the lab cluster runs watchdog mode "none", see
// clusterFile, so nothing resets it); its peers see its slot stop changing, but
// its network heartbeat goes on, and until it gives up itself (its
// self-fence decision, from its own log, or the end of its daemon) they
// must not judge it dead or ask to fence it. Then they fence it, and the
// owner's package runs elsewhere. Sampled at most every 100 ms (each
// sample asks both peers for their status, which takes far longer in the
// emulated guest): each peer's view of the victim and which nodes carry
// the VIP (never two, checked by plCheck).
// Then the path is restored and the node restarted.
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
			var faulted time.Time
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
							o.state, o.net = ps.State, ps.Net
						}
					}
					for _, f := range s.FenceRequests {
						if f.Peer == victim.name && f.Time.After(faulted) {
							o.fenceAsked = f.Time
							break
						}
					}
					obs = append(obs, o)
				}
			}
			faulted = time.Now()
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
			for deadline := faulted.Add(bound); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				sample()
				if exited.IsZero() && !victim.running() {
					exited = time.Now()
					t.Logf("%s's daemon ended %v after the fault: %s", victim.name, exited.Sub(faulted).Round(time.Millisecond), c.exitReason(victim))
				}
				if c.fencedBy(victim, faulted) != "" && c.runningOnOne(victim) {
					break
				}
			}
			selfFenced := c.selfFencedAt(victim, faulted)
			if selfFenced.IsZero() && exited.IsZero() {
				t.Errorf("%s did not self-fence within %v of losing its quorum path: a node without its own disk writes must stop its packages", victim.name, bound)
			}

			gaveUp := exited
			if !selfFenced.IsZero() && (gaveUp.IsZero() || selfFenced.Before(gaveUp)) {
				gaveUp = selfFenced
			}
			if !selfFenced.IsZero() {
				t.Logf("%s self-fenced %v after the fault", victim.name, selfFenced.Sub(faulted).Round(time.Millisecond))
			}
			for _, v := range plCheck(obs, victim.name, gaveUp) {
				t.Error(v)
			}
			fencer := c.fencedBy(victim, faulted)
			if fencer == "" {
				t.Errorf("no peer fenced %s after it self-fenced", victim.name)
			}
			if !c.runningOnOne(victim) {
				t.Errorf("the package does not run on one node after %s self-fenced and was fenced", victim.name)
			}
			var firstDead, firstAsked time.Time
			for _, o := range obs {
				if o.state == "dead" && firstDead.IsZero() {
					firstDead = o.at
				}
				if !o.fenceAsked.IsZero() && (firstAsked.IsZero() || o.fenceAsked.Before(firstAsked)) {
					firstAsked = o.fenceAsked
				}
			}
			since := func(t time.Time) string {
				if t.IsZero() {
					return "never"
				}
				return fmt.Sprintf("%v after the fault", t.Sub(faulted).Round(time.Millisecond))
			}
			t.Logf("%d samples; %s self-fenced %s, ended %s; its peers asked to fence it %s, first judged it dead %s; fenced by %q; VIP on %v",
				len(obs), victim.name, since(selfFenced), since(exited), since(firstAsked), since(firstDead), fencer, c.vipHolders())
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
		v, ok := failbench.PackageView(s, fpPkg)
		if !ok || v.State != "running" || v.Owner == "" || (owner != "" && v.Owner != owner) {
			return false
		}
		owner = v.Owner
	}
	return owner != ""
}

// selfFencedAt is when victim's daemon decided to self-fence after since,
// from its own log (the daemon's wall clock: the guest's, as the samples'),
// or zero.
func (c *fpCluster) selfFencedAt(victim *fpNode, since time.Time) time.Time {
	b, err := os.ReadFile(victim.log)
	if err != nil {
		return time.Time{}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "kind=self-fence ") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && at.After(since) {
			return at
		}
	}
	return time.Time{}
}
