package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb/fakedev"
	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
)

// fakeSAN is a PR target with the quorum LUN and one data LUN; node n
// reaches each through one nexus named n.
type fakeSAN struct {
	t     *prfake.Target
	mu    sync.Mutex
	ports map[[2]string]*prfake.Port
}

var fakeLUNs = []string{"quorum", "data"}

func newFakeSAN() *fakeSAN {
	return &fakeSAN{t: prfake.New(fakeLUNs...), ports: make(map[[2]string]*prfake.Port)}
}

// port is node's port to lun, one per pair (faults are injected per port).
func (s *fakeSAN) port(lun, node string) *prfake.Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{lun, node}
	if s.ports[k] == nil {
		s.ports[k] = s.t.Port(lun, node)
	}
	return s.ports[k]
}

func (s *fakeSAN) lun(lun, node string) *fence.LUN {
	return &fence.LUN{Name: lun, Paths: []fence.Path{fence.NewSCSIPath(node+":"+lun, fence.BackendFake, s.port(lun, node), nil)}}
}

func (s *fakeSAN) luns(node string) []FenceLUN {
	var out []FenceLUN
	for _, l := range fakeLUNs {
		out = append(out, FenceLUN{Name: l, LUN: s.lun(l, node)})
	}
	return out
}

// registered reports whether node's nexus is registered on lun.
func (s *fakeSAN) registered(lun, node string) bool {
	_, ok := s.t.State(lun).Nexus[node]
	return ok
}

// guardDisk makes node's quorum-disk writes obey the quorum LUN's
// reservation, as a real LUN does: once a reservation is held, a nexus
// without a registration gets EBADE.
func (s *fakeSAN) guardDisk(p *fakedev.Path, node string) {
	p.SetHook(func(op fakedev.Op) fakedev.Fault {
		st := s.t.State("quorum")
		_, reg := st.Nexus[node]
		return fakedev.Fault{Fenced: op.Kind == fakedev.Write && st.Held && !reg}
	})
}

func newFencedCluster(t *testing.T, n int, san *fakeSAN) *testCluster {
	t.Helper()
	return newTestClusterWith(t, n, func(tc *testCluster) {
		tc.fenceLUNs = san.luns
		for _, cn := range tc.cl.Nodes {
			san.guardDisk(tc.disk.Path(cn.Name), cn.Name)
		}
	})
}

// isPreemptAndAbort matches a PERSISTENT RESERVE OUT (PREEMPT AND ABORT)
// CDB, for prfake.Fault.Match.
func isPreemptAndAbort(cdb []byte) bool {
	return cdb[0] == scsi.OpPersistentReserveOut && scsi.OutAction(cdb[1]&0x1f) == scsi.PreemptAndAbort
}

func peerOf(n *testNode, name string) PeerStatus {
	for _, p := range n.d.Status().Peers {
		if p.Name == name {
			return p
		}
	}
	return PeerStatus{}
}

func takeoverOf(n *testNode, name string) (EventRecord, bool) {
	for _, r := range n.d.Status().Takeovers {
		if r.Peer == name {
			return r, true
		}
	}
	return EventRecord{}, false
}

// Every node registers on every LUN before it joins; a dead peer is fenced
// by the lowest-id survivor, its key verified gone from every LUN, and its
// takeover is allowed because it was fenced, not at its watchdog deadline.
// Its writes are refused by the storage from then on.
func TestFenceDeadPeerThenTakeover(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	a, b, c := tc.threeQuorate()
	for _, lun := range fakeLUNs {
		for _, n := range []string{"n1", "n2", "n3"} {
			if !san.registered(lun, n) {
				t.Fatalf("%s not registered on %s after joining: %+v", n, lun, san.t.State(lun))
			}
		}
		if st := san.t.State(lun); !st.Held || st.Type != fence.DefaultType {
			t.Fatalf("%s: no type-5 reservation after the nodes joined: %+v", lun, st)
		}
	}
	if fs := a.d.Status().Fencing; len(fs.LUNs) != 2 || fs.LUNs[0].Backend != string(fence.BackendFake) {
		t.Fatalf("fencing status: %+v", fs)
	}
	c.stop()
	stopped := time.Now()
	tc.waitFor("n1 allowed n3's takeover", func() bool { _, ok := takeoverOf(a, "n3"); return ok })
	r, _ := takeoverOf(a, "n3")
	t.Logf("n3 stopped to takeover allowed: %v (TakeoverAfter %v)", time.Since(stopped).Round(time.Millisecond), tc.cl.Derived().TakeoverAfter)
	if r.Reason != quorum.TakeoverFenced.String() {
		t.Fatalf("takeover reason %q, want %q", r.Reason, quorum.TakeoverFenced)
	}
	for _, lun := range fakeLUNs {
		if san.registered(lun, "n3") {
			t.Fatalf("n3 still registered on %s after the takeover: %+v", lun, san.t.State(lun))
		}
		if !san.registered(lun, "n1") || !san.registered(lun, "n2") {
			t.Fatalf("a survivor lost its registration on %s: %+v", lun, san.t.State(lun))
		}
	}
	if err := san.t.Port("data", "n3").Write(context.Background(), 0); !errors.Is(err, prfake.ErrConflict) {
		t.Fatalf("fenced n3's write: %v, want a reservation conflict", err)
	}
	if ok := san.t.Port("data", "n2").Write(context.Background(), 0); ok != nil {
		t.Fatalf("survivor n2's write: %v", ok)
	}
	fs := a.d.Status().Fencing
	if len(fs.Fenced) != 1 || fs.Fenced[0].Peer != "n3" {
		t.Fatalf("verified fences: %+v", fs.Fenced)
	}
	// n2 is not the lowest-id survivor: it fenced nothing.
	if f := b.d.Status().Fencing.Fenced; len(f) != 0 {
		t.Fatalf("n2 fenced too: %+v", f)
	}
}

// Fencing that fails fails closed: no takeover, the peer shown as "fence
// pending" with the error, retried until it succeeds.
func TestFenceFailureFailsClosedAndRetries(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	a, _, c := tc.threeQuorate()
	const failures = 3
	for range failures {
		san.port("data", "n1").Inject(prfake.Fault{Match: isPreemptAndAbort, PathFail: true})
	}
	c.stop()
	var pending PeerStatus
	tc.waitFor("n3's fence pending with an error on n1", func() bool {
		pending = peerOf(a, "n3")
		_, took := takeoverOf(a, "n3")
		if took {
			t.Fatalf("takeover allowed while the fence failed: %+v\n%s", a.d.Status().Takeovers, a.logs.String())
		}
		return pending.Fence == quorum.FenceFailing.String() && pending.FencePending != ""
	})
	if !strings.Contains(pending.FencePending, "data") || pending.FencePending != pending.FenceError {
		t.Fatalf("fence pending %q (error %q): want the failed step's error naming the LUN", pending.FencePending, pending.FenceError)
	}
	tc.waitFor("n1 allowed n3's takeover", func() bool { _, ok := takeoverOf(a, "n3"); return ok })
	r, _ := takeoverOf(a, "n3")
	if r.Reason != quorum.TakeoverFenced.String() || san.registered("data", "n3") || san.registered("quorum", "n3") {
		t.Fatalf("takeover %+v; data %+v", r, san.t.State("data"))
	}
	if !strings.Contains(a.logs.String(), "level=ERROR msg=\"fencing failed") {
		t.Fatal("a failed fence was not logged at error level")
	}
}

// A node whose quorum-disk write is refused with EBADE (its key was
// preempted) stops at once with the reason "fenced by a peer".
func TestFencedByPeerStopsAtOnce(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	_, _, c := tc.threeQuorate()
	// n1's nexus preempts n3 behind the daemons' backs.
	f := &fence.Fencer{Cluster: tc.cl.UUID, Self: 1}
	if _, err := f.Fence(context.Background(), 3, 0, []*fence.LUN{san.lun("quorum", "n1")}); err != nil {
		t.Fatal(err)
	}
	tc.waitFor("n3 stopped", func() bool { return c.d.Status().Stopped })
	var why string
	for _, d := range c.d.Status().Decisions {
		if d.Kind == quorum.SelfFence.String() {
			why = d.Reason
		}
	}
	if why != "fenced by a peer" {
		t.Fatalf("n3 self-fenced with reason %q, want \"fenced by a peer\"", why)
	}
	if !strings.Contains(c.d.Status().Disk.LastWriteError, "fenced") {
		t.Fatalf("n3's last write error: %q", c.d.Status().Disk.LastWriteError)
	}
}

// A survivor whose fence finds its own key preempted lost the race: its
// daemon stops at once, leaving the watchdog armed.
func TestFenceFindingOwnKeyGoneStops(t *testing.T) {
	san := newFakeSAN()
	tc := newTestClusterWith(t, 3, func(tc *testCluster) { tc.fenceLUNs = san.luns })
	a, _, c := tc.threeQuorate()
	// n2 preempts n1 on the data LUN (the quorum disk's writes are not
	// guarded here, so n1 learns it when it fences, or at its next
	// registration check: the preempt follows a check at once, so that
	// the fence, due DeadAfter after n3 stops, comes well before the next
	// check, a period later).
	waitForCheck(tc, a, time.Now())
	f := &fence.Fencer{Cluster: tc.cl.UUID, Self: 2}
	if _, err := f.Fence(context.Background(), 1, 0, []*fence.LUN{san.lun("data", "n2")}); err != nil {
		t.Fatal(err)
	}
	c.stop()
	var err error
	select {
	case err = <-a.done:
		a.cancel = nil
	case <-time.After(waitBound):
		t.Fatalf("n1 still runs after fencing with its own key gone:\n%s", tailLines(a.logs.String(), 30))
	}
	if !errors.Is(err, fence.ErrSelfFenced) {
		t.Fatalf("n1 stopped with %v, want ErrSelfFenced", err)
	}
	if a.wd.Disarmed() {
		t.Fatal("n1 disarmed its watchdog after losing the fence race")
	}
	if san.registered("data", "n1") {
		t.Fatalf("n1 registered itself again on data: %+v", san.t.State("data"))
	}
}

// A preempt that meets RESERVATION CONFLICT because a peer preempted the
// same victim a moment before, when the read that would tell whose key is
// gone fails, is a failed attempt, not a lost race: the daemon keeps
// running and retries, and the retry finds the victim gone and its own key
// registered, a proof. (A node whose own key was preempted learns it
// there, ErrSelfFenced, or at its next write.)
func TestFenceConflictWithUnreadOutcomeRetries(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	a, _, c := tc.threeQuorate()
	prIn := func(cdb []byte) bool { return cdb[0] == scsi.OpPersistentReserveIn }
	raced := make(chan error, 1)
	san.port("data", "n1").Inject(prfake.Fault{Match: isPreemptAndAbort, Before: func() {
		f := &fence.Fencer{Cluster: tc.cl.UUID, Self: 2}
		_, err := f.Fence(context.Background(), 3, 0, []*fence.LUN{san.lun("data", "n2")})
		raced <- err
		san.port("data", "n1").Inject(prfake.Fault{Match: prIn, PathFail: true})
	}})
	c.stop()
	tc.waitFor("n1 allowed n3's takeover", func() bool { _, ok := takeoverOf(a, "n3"); return ok })
	if err := <-raced; err != nil {
		t.Fatalf("the racing fence by n2's nexus: %v", err)
	}
	if r, _ := takeoverOf(a, "n3"); r.Reason != quorum.TakeoverFenced.String() {
		t.Fatalf("takeover %+v, want after a verified fence", r)
	}
	if a.d.Status().Stopped || !strings.Contains(a.logs.String(), "read keys after the conflict") {
		t.Fatalf("n1 stopped %v; want it running after a failed attempt that logged the unread conflict:\n%s", a.d.Status().Stopped, tailLines(a.logs.String(), 30))
	}
}

// A node that cannot register on a LUN supporting PR refuses to join; one
// whose LUNs have no PR at all runs, and a dead peer's takeover waits for
// the watchdog deadline.
func TestUnfenceFailureRefusesToStart(t *testing.T) {
	san := newFakeSAN()
	for range 20 {
		san.port("data", "n1").Inject(prfake.Fault{PathFail: true})
	}
	tc := newTestClusterWith(t, 1, func(tc *testCluster) { tc.fenceLUNs = san.luns })
	a := tc.nodes[0]
	var err error
	select {
	case err = <-a.done:
		a.cancel = nil
	case <-time.After(waitBound):
		t.Fatal("n1 started although it could not register on data")
	}
	if err == nil || !strings.Contains(err.Error(), "refuses to join") || !strings.Contains(err.Error(), "data") || !errors.Is(err, fence.ErrPath) {
		t.Fatalf("start with an unregistrable LUN: %v", err)
	}
	if a.d.Status().Disk.Writes != 0 {
		t.Fatal("n1 wrote its slot before it was registered")
	}
}

// A path failure at start-up registration that passes is tried again in
// the process: the node registers and joins without exiting.
func TestUnfenceRetriesAPassingPathFailure(t *testing.T) {
	san := newFakeSAN()
	port := san.port("data", "n1")
	port.Inject(prfake.Fault{PathFail: true})
	port.Inject(prfake.Fault{PathFail: true})
	tc := newTestClusterWith(t, 1, func(tc *testCluster) { tc.fenceLUNs = san.luns })
	a := tc.nodes[0]
	tc.waitFor("n1 registered on data and wrote its slot", func() bool {
		select {
		case err := <-a.done:
			a.cancel = nil
			t.Fatalf("n1 exited: %v", err)
		default:
		}
		return strings.Contains(a.logs.String(), "registered on the LUN for fencing") && a.d.Status().Disk.Writes > 0
	})
	if n := strings.Count(a.logs.String(), "registration for fencing failed; trying again"); n != 2 {
		t.Fatalf("%d retries logged, want 2:\n%s", n, tailLines(a.logs.String(), 30))
	}
}

func TestNoPRFallsBackToWatchdogDeadline(t *testing.T) {
	none := func(string) []FenceLUN {
		return []FenceLUN{{Name: "/dev/fake-quorum", NoPR: "a test LUN without persistent reservations"}}
	}
	tc := newTestClusterWith(t, 3, func(tc *testCluster) { tc.fenceLUNs = none })
	a, _, c := tc.threeQuorate()
	c.stop()
	var pending string
	tc.waitFor("n1 allowed n3's takeover", func() bool {
		if p := peerOf(a, "n3"); p.FencePending != "" {
			pending = p.FencePending
		}
		_, ok := takeoverOf(a, "n3")
		return ok
	})
	r, _ := takeoverOf(a, "n3")
	if r.Reason != quorum.TakeoverWatchdog.String() {
		t.Fatalf("takeover reason %q, want %q", r.Reason, quorum.TakeoverWatchdog)
	}
	if !strings.Contains(pending, "watchdog deadline") {
		t.Fatalf("fence pending said %q", pending)
	}
	if n := strings.Count(a.logs.String(), "no LUN supports persistent reservations: the peer's packages wait"); n != 1 {
		t.Fatalf("watchdog fallback logged %d times, want once", n)
	}
	if fs := a.d.Status().Fencing; len(fs.LUNs) != 1 || fs.LUNs[0].Backend != "none" || !slices.ContainsFunc(fs.LUNs, func(l FenceLUNStatus) bool { return l.NoPR != "" }) {
		t.Fatalf("fencing status: %+v", fs)
	}
}

// Only the higher-id node of a two-node cluster waits before its first
// fence of a peer, one PR command deadline, so the two survivors of a
// split never preempt on a LUN at the same instant (the machine waits, by
// quorum.FenceStagger, with the daemon's deadlines).
func TestFenceStaggerTwoNodes(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		self  string
		delay bool
	}{{2, "n1", false}, {2, "n2", true}, {3, "n1", false}, {3, "n3", false}} {
		cl := clusterConfig(t, tc.nodes)
		self, _ := cl.NodeByName(tc.self)
		d := &Daemon{cl: cl, self: self, timing: cl.Timing.Derive()}
		cmd, attempt := d.fenceTimeouts()
		if cmd < 2*cl.Timing.IOTimeout || cmd < cl.Timing.FailureTimeout || attempt < d.timing.TakeoverAfter {
			t.Fatalf("timeouts: command %v, attempt %v", cmd, attempt)
		}
		var members []quorum.Member
		for _, n := range cl.Nodes {
			members = append(members, quorum.Member{ID: quorum.NodeID(n.ID), Votes: n.Votes})
		}
		got := quorum.FenceStagger(members, quorum.NodeID(self.ID), d.timing)
		if want := map[bool]time.Duration{true: cmd, false: 0}[tc.delay]; got != want {
			t.Errorf("%d nodes, %s: stagger %v, want %v", tc.nodes, tc.self, got, want)
		}
	}
}

func hasDecision(n *testNode, kind quorum.DecisionKind) int {
	c := 0
	for _, d := range n.d.Status().Decisions {
		if d.Kind == kind.String() {
			c++
		}
	}
	return c
}

// A node whose key a peer's fence removes before it ever held quorum (here
// a fence behind the daemons' backs while it hears nobody, so it cannot
// join) registers again instead of stopping: its write refused with EBADE
// leads to a re-registration on every LUN, it keeps running with its
// watchdog fed, and it joins once it hears its peers. Each time the key
// is removed again it registers again, up to quorum.MaxRejoins times; the
// next fence stops it as today, "fenced by a peer".
func TestFencedBeforeQuorumRegistersAgain(t *testing.T) {
	san := newFakeSAN()
	tc := newTestClusterWith(t, 3, func(tc *testCluster) {
		tc.absent = map[string]bool{"n3": true}
		tc.fenceLUNs = san.luns
		for _, cn := range tc.cl.Nodes {
			san.guardDisk(tc.disk.Path(cn.Name), cn.Name)
		}
	})
	a, b := tc.nodes[0], tc.nodes[1]
	tc.waitFor("n1 and n2 quorate", func() bool { return quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2") })
	cn, _ := tc.cl.NodeByName("n3")
	addr3 := cn.Addresses["lan"]
	tc.net.Partition([]netip.Addr{addr3}, []netip.Addr{a.addr, b.addr})
	c := tc.start("n3")
	tc.nodes = append(tc.nodes, c)
	tc.waitFor("n3 registered and its leftovers stopped", func() bool {
		return san.registered("quorum", "n3") && san.registered("data", "n3") && hasDecision(c, quorum.LeftoversStoppedKind) > 0
	})
	f := &fence.Fencer{Cluster: tc.cl.UUID, Self: 1}
	for i := 1; i <= quorum.MaxRejoins; i++ {
		writes := c.d.Status().Disk.Writes
		if _, err := f.Fence(context.Background(), 3, 0, []*fence.LUN{san.lun("quorum", "n1"), san.lun("data", "n1")}); err != nil {
			t.Fatal(err)
		}
		// Each fence after a slot write succeeded again: the write
		// deadline (SelfFenceAfter since the last successful write) is
		// the other bound of the re-registrations.
		tc.waitFor(fmt.Sprintf("n3 registered again (%d) and writing its slot", i), func() bool {
			return hasDecision(c, quorum.RejoinDone) == i && san.registered("quorum", "n3") && san.registered("data", "n3") &&
				c.d.Status().Disk.Writes > writes
		})
		if s := c.d.Status(); s.Stopped || s.Armed {
			t.Fatalf("n3 after re-registration %d: stopped=%v armed=%v", i, s.Stopped, s.Armed)
		}
	}
	if !strings.Contains(c.logs.String(), "registered for fencing again") {
		t.Fatalf("the re-registration was not logged:\n%s", tailLines(c.logs.String(), 30))
	}
	// Past MaxRejoins the next fence stops it, as for any fenced node.
	if _, err := f.Fence(context.Background(), 3, 0, []*fence.LUN{san.lun("quorum", "n1"), san.lun("data", "n1")}); err != nil {
		t.Fatal(err)
	}
	tc.waitFor("n3 stopped after its last re-registration", func() bool { return c.d.Status().Stopped })
	if got := hasDecision(c, quorum.RejoinRequested); got != quorum.MaxRejoins {
		t.Fatalf("n3 asked to re-register %d times, want %d", got, quorum.MaxRejoins)
	}
	if san.registered("quorum", "n3") || san.registered("data", "n3") {
		t.Fatalf("n3 registered itself once more: %+v", san.t.State("quorum"))
	}
	if c.wd.Disarmed() {
		t.Fatal("n3 disarmed its watchdog after it stopped as fenced")
	}
}

// The same fence without the partition lets n3 join first: once it has
// held quorum, a removed key stops it at once (TestFencedByPeerStopsAtOnce);
// here the contrast after a re-registration: n3 registers again while it
// cannot join, then joins, and a fence after that stops it.
func TestRejoinedNodeJoinsThenAFenceStopsIt(t *testing.T) {
	san := newFakeSAN()
	tc := newTestClusterWith(t, 3, func(tc *testCluster) {
		tc.absent = map[string]bool{"n3": true}
		tc.fenceLUNs = san.luns
		for _, cn := range tc.cl.Nodes {
			san.guardDisk(tc.disk.Path(cn.Name), cn.Name)
		}
	})
	a, b := tc.nodes[0], tc.nodes[1]
	tc.waitFor("n1 and n2 quorate", func() bool { return quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2") })
	cn, _ := tc.cl.NodeByName("n3")
	tc.net.Partition([]netip.Addr{cn.Addresses["lan"]}, []netip.Addr{a.addr, b.addr})
	c := tc.start("n3")
	tc.nodes = append(tc.nodes, c)
	tc.waitFor("n3 registered and its leftovers stopped", func() bool {
		return san.registered("quorum", "n3") && san.registered("data", "n3") && hasDecision(c, quorum.LeftoversStoppedKind) > 0
	})
	f := &fence.Fencer{Cluster: tc.cl.UUID, Self: 1}
	fenceN3 := func() {
		if _, err := f.Fence(context.Background(), 3, 0, []*fence.LUN{san.lun("quorum", "n1"), san.lun("data", "n1")}); err != nil {
			t.Fatal(err)
		}
	}
	fenceN3()
	tc.waitFor("n3 registered again", func() bool { return hasDecision(c, quorum.RejoinDone) == 1 && san.registered("data", "n3") })
	tc.net.Heal()
	tc.threeQuorate()
	fenceN3()
	tc.waitFor("n3 stopped", func() bool { return c.d.Status().Stopped })
	if got := hasDecision(c, quorum.RejoinRequested); got != 1 {
		t.Fatalf("n3 asked to re-register %d times after holding quorum, want only the first", got)
	}
	if san.registered("data", "n3") {
		t.Fatal("n3 registered again after it had held quorum")
	}
}
