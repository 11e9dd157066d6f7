package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/placement"
)

// world is the truth about every fake package runner of a test cluster:
// which node has which package up, checked on every change, independently
// of what the daemons report.
type world struct {
	t       *testing.T
	mu      sync.Mutex
	up      map[string]map[string]bool // package -> node -> up
	overlap []string
	failOn  map[string]bool // "pkg@node": its start fails
	runners []*worldRunner
}

// runner returns node's runner of pkg (the last one started).
func (w *world) runner(pkg, node string) *worldRunner {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out *worldRunner
	for _, r := range w.runners {
		if r.pkg == pkg && r.node == node {
			out = r
		}
	}
	return out
}

func newWorld(t *testing.T) *world {
	return &world{t: t, up: map[string]map[string]bool{}, failOn: map[string]bool{}}
}

func (w *world) set(pkg, node string, up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.up[pkg] == nil {
		w.up[pkg] = map[string]bool{}
	}
	w.up[pkg][node] = up
	var on []string
	for n, u := range w.up[pkg] {
		if u {
			on = append(on, n)
		}
	}
	if len(on) > 1 {
		w.overlap = append(w.overlap, fmt.Sprintf("%s up on %v", pkg, on))
	}
}

// on returns the nodes the package is up on.
func (w *world) on(pkg string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for n, u := range w.up[pkg] {
		if u {
			out = append(out, n)
		}
	}
	return out
}

func (w *world) runsOnly(pkg, node string) bool {
	on := w.on(pkg)
	return len(on) == 1 && on[0] == node
}

// worldRunner is one node's runner of one package.
type worldRunner struct {
	w      *world
	pkg    string
	node   string
	mu     sync.Mutex
	state  pkgrun.State
	proofs []fence.Proof
}

func (r *worldRunner) Start(ctx context.Context, proofs []fence.Proof, _ ...string) error {
	r.mu.Lock()
	r.state, r.proofs = pkgrun.Starting, proofs
	r.mu.Unlock()
	r.w.set(r.pkg, r.node, true)
	r.w.mu.Lock()
	fail := r.w.failOn[r.pkg+"@"+r.node]
	r.w.mu.Unlock()
	if fail {
		r.w.set(r.pkg, r.node, false)
		r.mu.Lock()
		r.state = pkgrun.Failed
		r.mu.Unlock()
		return errors.New("service failed to start")
	}
	r.mu.Lock()
	r.state = pkgrun.Running
	r.mu.Unlock()
	return nil
}

func (r *worldRunner) Halt(ctx context.Context) error {
	r.mu.Lock()
	r.state = pkgrun.Halted
	r.mu.Unlock()
	r.w.set(r.pkg, r.node, false)
	return nil
}

func (r *worldRunner) State() (pkgrun.State, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, ""
}

// packageCluster starts n nodes with the given package files (name ->
// TOML), each node's runners in w.
func packageCluster(t *testing.T, n int, w *world, files map[string]string) *testCluster {
	t.Helper()
	return packageClusterWith(t, n, w, files, nil)
}

// packageClusterWith is packageCluster with setup run first (fencing).
func packageClusterWith(t *testing.T, n int, w *world, files map[string]string, setup func(*testCluster)) *testCluster {
	t.Helper()
	var pkgs []*config.Package
	for name, body := range files {
		p, err := config.ParsePackage(name+".toml", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	var mu sync.Mutex
	addrs := map[string]string{}
	return newTestClusterWith(t, n, func(tc *testCluster) {
		// setup runs last: it may wrap the options.
		defer func() {
			if setup != nil {
				setup(tc)
			}
		}()
		tc.options = func(node string, o *Options) {
			// The control channel on loopback, one listener per
			// start of the node.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			mu.Lock()
			addrs[node] = l.Addr().String()
			mu.Unlock()
			o.ControlAddrs = func(name string) []string {
				mu.Lock()
				defer mu.Unlock()
				return []string{addrs[name]}
			}
			tc.serve = append(tc.serve, l)
			o.Packages = pkgs
			o.Runners = map[string]PackageRunner{}
			for _, p := range pkgs {
				if slices.Contains(p.Nodes, node) {
					r := &worldRunner{w: w, pkg: p.Name, node: node}
					o.Runners[p.Name] = r
					w.mu.Lock()
					w.runners = append(w.runners, r)
					w.mu.Unlock()
				}
			}
		}
	})
}

func (tc *testCluster) node(name string) *testNode {
	for _, n := range tc.nodes {
		if n.d.self.Name == name {
			return n
		}
	}
	tc.t.Fatalf("no node %s", name)
	return nil
}

// command runs an intent through node's control handler, as the control
// channel would.
func command(t *testing.T, n *testNode, a IntentArgs) (IntentResult, error) {
	t.Helper()
	raw, _ := json.Marshal(a)
	ctx, cancel := context.WithTimeout(context.Background(), a.Wait+30*time.Second)
	defer cancel()
	out, err := n.d.control(ctx, control.Request{Command: CommandIntent, Args: raw})
	if err != nil {
		return IntentResult{}, err
	}
	return out.(IntentResult), nil
}

// commandOK retries a command the cluster is not ready for yet (no
// coordinator, state not read) and fails the test on any other error.
func commandOK(t *testing.T, tc *testCluster, n *testNode, a IntentArgs) IntentResult {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		r, err := command(t, n, a)
		var ce *control.CodedError
		if err != nil && errors.As(err, &ce) && ce.Code == CodeNotQuorate && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			tc.dump()
			t.Fatalf("%s %s: %v", a.Kind, a.Package, err)
		}
		return r
	}
}

func (tc *testCluster) dump() {
	for _, n := range tc.nodes {
		tc.t.Logf("%s: packages %+v\nlog:\n%s", n.d.self.Name, n.d.Status().Packages, tailLines(n.logs.String(), 30))
	}
}

func (w *world) noOverlap(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.overlap) > 0 {
		t.Fatalf("a package was up on two nodes at once: %v", w.overlap)
	}
}

const threeNodePackages = `nodes = ["n1", "n2", "n3"]
`

func TestPackagesRunFailOverMoveAndDrain(t *testing.T) {
	w := newWorld(t)
	tc := packageCluster(t, 3, w, map[string]string{
		"web": "name = \"web\"\n" + threeNodePackages,
		"api": "name = \"api\"\nnodes = [\"n3\", \"n2\"]\n",
	})
	tc.waitFor("web on n1 and api on n3", func() bool { return w.runsOnly("web", "n1") && w.runsOnly("api", "n3") })

	// A planned move, asked on a node that is not the coordinator: it is
	// forwarded, committed, and answered once web runs on n2.
	r := commandOK(t, tc, tc.node("n3"), IntentArgs{Kind: IntentMove, Package: "web", Node: "n2", Wait: waitBound})
	if r.Outcome != OutcomeDone || r.Coordinator != "n1" || r.ID == 0 {
		t.Fatalf("move: %+v", r)
	}
	if !w.runsOnly("web", "n2") {
		t.Fatalf("web after the move: on %v", w.on("web"))
	}
	// The move is one-shot: the same answer again is harmless.
	if r2 := commandOK(t, tc, tc.node("n2"), IntentArgs{Kind: IntentMove, Package: "web", Node: "n2", Wait: waitBound}); r2.Outcome != OutcomeDone {
		t.Fatalf("repeated move: %+v", r2)
	}

	// Drain n2: web leaves it (to n1, the first of its list), n2 stays a
	// member.
	if r := commandOK(t, tc, tc.node("n2"), IntentArgs{Kind: IntentDrain, Node: "n2", Wait: waitBound}); r.Outcome != OutcomeDone {
		t.Fatalf("drain: %+v", r)
	}
	tc.waitFor("web on n1 after the drain", func() bool { return w.runsOnly("web", "n1") })
	if s := tc.node("n1").d.Status(); len(s.Drained) != 1 || s.Drained[0] != "n2" || !slicesHas(s.Members, "n2") {
		t.Fatalf("after drain: drained %v members %v", s.Drained, s.Members)
	}
	commandOK(t, tc, tc.node("n1"), IntentArgs{Kind: IntentUndrain, Node: "n2"})

	// Unplanned: n1 goes away. web fails over to n2 once n1 is taken over
	// (no fencing here: after its watchdog deadline).
	tc.node("n1").stop()
	tc.waitFor("web on n2 after n1 left", func() bool { return w.runsOnly("web", "n2") })
	// The metrics say so too, and count the failover.
	_, get := scrape(t, tc.node("n2").d)
	if v, ok := get(`mtc_package_state{node="n2",package="web",state="running"}`); !ok || v != 1 {
		page, _ := scrape(t, tc.node("n2").d)
		t.Fatalf("package state metric: %v %v\n%s", v, ok, page)
	}
	if v, ok := get(`mtc_package_placed_here{package="web"}`); !ok || v != 1 {
		t.Fatalf("placed-here metric: %v %v", v, ok)
	}
	if v, ok := get(`mtc_failover_seconds_count`); !ok || v != 1 {
		t.Fatalf("failover count on n2: %v %v", v, ok)
	}
	s := tc.node("n2").d.Status()
	var web *PackageView
	for i := range s.Packages {
		if s.Packages[i].Name == "web" {
			web = &s.Packages[i]
		}
	}
	if web == nil || web.Owner != "n2" || web.State != "running" || web.Failover == nil || web.Failover.From != "n1" || web.Failover.Running == 0 {
		t.Fatalf("web in n2's status: %+v", web)
	}
	w.noOverlap(t)
}

func slicesHas(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestDisabledPackageDoesNotFailOver(t *testing.T) {
	w := newWorld(t)
	tc := packageCluster(t, 3, w, map[string]string{"web": "name = \"web\"\n" + threeNodePackages})
	tc.waitFor("web on n1", func() bool { return w.runsOnly("web", "n1") })
	commandOK(t, tc, tc.node("n2"), IntentArgs{Kind: IntentDisable, Package: "web"})
	tc.waitFor("web disabled on every node", func() bool {
		for _, n := range tc.nodes {
			s := n.d.Status()
			if len(s.Packages) != 1 || s.Packages[0].Switching {
				return false
			}
		}
		return true
	})
	tc.node("n1").stop()
	tc.waitFor("n1 taken over", func() bool {
		for _, p := range tc.node("n2").d.Status().Peers {
			if p.Name == "n1" && p.TakenOver {
				return true
			}
		}
		return false
	})
	// Let a few heartbeats pass after the takeover: nothing starts.
	time.Sleep(500 * time.Millisecond)
	if on := w.on("web"); len(on) != 0 {
		t.Fatalf("disabled web started on %v after its node left", on)
	}
	// Enabled again, it starts on a survivor.
	commandOK(t, tc, tc.node("n3"), IntentArgs{Kind: IntentEnable, Package: "web"})
	tc.waitFor("web on n2 once enabled", func() bool { return w.runsOnly("web", "n2") })
	w.noOverlap(t)
}

func TestFailingPackageMovesAndIsMarked(t *testing.T) {
	w := newWorld(t)
	w.failOn["web@n1"] = true
	tc := packageCluster(t, 3, w, map[string]string{"web": "name = \"web\"\n" + threeNodePackages})
	tc.waitFor("web on n2 after failing on n1", func() bool { return w.runsOnly("web", "n2") })
	tc.waitFor("web marked failed on n1", func() bool {
		s := tc.node("n3").d.Status()
		return len(s.Packages) == 1 && slicesHas(s.Packages[0].Marked, "n1")
	})
	// A move back is refused until the mark is cleared.
	_, err := command(t, tc.node("n1"), IntentArgs{Kind: IntentMove, Package: "web", Node: "n1", Wait: time.Second})
	var ce *control.CodedError
	if err == nil || !errors.As(err, &ce) || ce.Code != CodeRefused {
		t.Logf("move onto a marked node: %v", err)
	}
	w.mu.Lock()
	w.failOn["web@n1"] = false
	w.mu.Unlock()
	commandOK(t, tc, tc.node("n1"), IntentArgs{Kind: IntentClear, Package: "web", Node: "n1"})
	r := commandOK(t, tc, tc.node("n1"), IntentArgs{Kind: IntentMove, Package: "web", Node: "n1", Wait: waitBound})
	if r.Outcome != OutcomeDone || !w.runsOnly("web", "n1") {
		t.Fatalf("move after clear: %+v, on %v", r, w.on("web"))
	}
	w.noOverlap(t)
}

func TestIntentsSurviveAWholeClusterRestart(t *testing.T) {
	w := newWorld(t)
	files := map[string]string{"web": "name = \"web\"\n" + threeNodePackages, "api": "name = \"api\"\n" + threeNodePackages}
	tc := packageCluster(t, 3, w, files)
	tc.waitFor("web and api on n1", func() bool { return w.runsOnly("web", "n1") && w.runsOnly("api", "n1") })
	if r := commandOK(t, tc, tc.node("n2"), IntentArgs{Kind: IntentHalt, Package: "api", Wait: waitBound}); r.Outcome != OutcomeDone {
		t.Fatalf("halt: %+v", r)
	}
	commandOK(t, tc, tc.node("n2"), IntentArgs{Kind: IntentDrain, Node: "n1", Wait: waitBound})
	tc.waitFor("web off n1", func() bool { return w.runsOnly("web", "n2") })
	for _, n := range tc.nodes {
		n.stop()
	}
	if on := w.on("web"); len(on) != 0 {
		t.Fatalf("web still up after every daemon stopped: %v", on)
	}
	// Start them again on the same quorum disk.
	var nodes []*testNode
	for _, n := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, tc.start(n))
	}
	tc.nodes = nodes
	tc.waitFor("web back, not on the drained n1", func() bool { return w.runsOnly("web", "n2") })
	time.Sleep(500 * time.Millisecond)
	if on := w.on("api"); len(on) != 0 {
		t.Fatalf("api, halted by an operator, started after the restart on %v", on)
	}
	s := tc.node("n3").d.Status()
	if len(s.Drained) != 1 || s.Drained[0] != "n1" || s.LastIntent < 2 {
		t.Fatalf("after the restart: drained %v last intent %d", s.Drained, s.LastIntent)
	}
	w.noOverlap(t)
}

func TestIntentRefusals(t *testing.T) {
	w := newWorld(t)
	tc := packageCluster(t, 3, w, map[string]string{"web": "name = \"web\"\nnodes = [\"n1\", \"n2\"]\n"})
	tc.waitFor("web on n1", func() bool { return w.runsOnly("web", "n1") })
	for _, c := range []struct {
		a    IntentArgs
		code string
		msg  string
	}{
		{IntentArgs{Kind: IntentRun, Package: "nope"}, CodeUnknownPackage, "no package \"nope\""},
		{IntentArgs{Kind: IntentMove, Package: "web", Node: "n9"}, CodeUnknownNode, "no node \"n9\""},
		{IntentArgs{Kind: IntentMove, Package: "web", Node: "n3"}, CodeRefused, "may not run on node n3"},
		{IntentArgs{Kind: "reboot", Package: "web"}, CodeBadArgs, "unknown intent kind"},
	} {
		_, err := command(t, tc.node("n2"), c.a)
		var ce *control.CodedError
		if !errors.As(err, &ce) || ce.Code != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want code %s and %q", c.a, err, c.code, c.msg)
		}
	}
	commandOK(t, tc, tc.node("n2"), IntentArgs{Kind: IntentMaintenanceOn, Package: "web"})
	tc.waitFor("web in maintenance on n1", func() bool {
		s := tc.node("n1").d.Status()
		return len(s.Packages) == 1 && s.Packages[0].Maintenance
	})
	_, err := command(t, tc.node("n3"), IntentArgs{Kind: IntentMove, Package: "web", Node: "n2"})
	if err == nil || !strings.Contains(err.Error(), "run `mtc maintenance web off` first") {
		t.Fatalf("move in maintenance: %v", err)
	}
}

// The owner cut off the heartbeat network (its disk path up) is a
// minority: it self-fences and halts web, and the majority starts web once
// the cut-off node is taken over, never while it still runs it. Every
// node's envelope is in its report area on the quorum disk too.
func TestPartitionedOwnerLosesItsPackage(t *testing.T) {
	w := newWorld(t)
	tc := packageCluster(t, 3, w, map[string]string{"web": "name = \"web\"\n" + threeNodePackages})
	tc.waitFor("web on n1", func() bool { return w.runsOnly("web", "n1") })
	n1, n2, n3 := tc.node("n1"), tc.node("n2"), tc.node("n3")

	// The report area of n1 holds its envelope: web running there.
	dev := diskhb.NewDevice(tc.disk.Path("reader"), time.Second, nil)
	disk, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: tc.cl.UUID, MaxNodeID: 3})
	if err != nil {
		t.Fatal(err)
	}
	idx := n1.d.pl.idx // the names and the definitions' fingerprint
	tc.waitFor("n1's report area shows web running", func() bool {
		rec, err := disk.ReadReport(context.Background(), 1)
		if err != nil {
			return false
		}
		env, err := hbwire.DecodeEnvelope(rec.Payload, idx)
		return err == nil && len(env.Report.Packages) == 1 && env.Report.Packages[0].State == placement.Running
	})
	dev.Close()

	tc.net.Partition([]netip.Addr{n1.addr}, []netip.Addr{n2.addr, n3.addr})
	tc.waitFor("web on n2 after n1 was cut off", func() bool { return w.runsOnly("web", "n2") })
	if !n1.d.Status().Stopped {
		t.Fatalf("n1, cut off, has not self-fenced: %+v", n1.d.Status())
	}
	w.noOverlap(t)
}

func TestPlanAnswersWithoutActing(t *testing.T) {
	w := newWorld(t)
	tc := packageCluster(t, 3, w, map[string]string{
		"web": "name = \"web\"\n" + threeNodePackages,
		"api": "name = \"api\"\nnodes = [\"n3\"]\n",
	})
	tc.waitFor("web on n1, api on n3", func() bool { return w.runsOnly("web", "n1") && w.runsOnly("api", "n3") })
	plan := func(a PlanArgs) PlanResult {
		t.Helper()
		raw, _ := json.Marshal(a)
		out, err := tc.node("n2").d.control(context.Background(), control.Request{Command: CommandPlan, Args: raw})
		if err != nil {
			t.Fatal(err)
		}
		return out.(PlanResult)
	}
	change := func(r PlanResult, pkg string) PlanPackage {
		for _, p := range r.Packages {
			if p.Name == pkg {
				return p
			}
		}
		t.Fatalf("no %s in %+v", pkg, r)
		return PlanPackage{}
	}
	r := plan(PlanArgs{Fail: []string{"n1"}})
	if c := change(r, "web"); c.Now != "n1" || c.After != "n2" || c.Change != "moves" {
		t.Errorf("if n1 failed, web: %+v", c)
	}
	if c := change(r, "api"); c.Change != "stays" {
		t.Errorf("if n1 failed, api: %+v", c)
	}
	r = plan(PlanArgs{Fail: []string{"n3"}})
	if c := change(r, "api"); c.Change != "halts" || c.After != "" {
		t.Errorf("if n3 failed, api (only n3 may run it): %+v", c)
	}
	r = plan(PlanArgs{Drain: "n1"})
	if c := change(r, "web"); c.After != "n2" || c.Change != "moves" {
		t.Errorf("if n1 were drained, web: %+v", c)
	}
	r = plan(PlanArgs{Move: &PlanMove{Package: "web", To: "n3"}})
	if c := change(r, "web"); c.After != "n3" {
		t.Errorf("if web moved to n3: %+v", c)
	}
	// Nothing acted on.
	time.Sleep(200 * time.Millisecond)
	if !w.runsOnly("web", "n1") || !w.runsOnly("api", "n3") {
		t.Fatalf("a plan acted: web on %v, api on %v", w.on("web"), w.on("api"))
	}
	if s := tc.node("n1").d.Status(); len(s.Drained) != 0 || s.LastIntent != 0 {
		t.Fatalf("a plan left a trace: drained %v, last intent %d", s.Drained, s.LastIntent)
	}
}

// A package with a volume group taken over by a node that is not the
// coordinator: the coordinator fenced the departed owner, and the new
// owner verifies that fence itself, so that its runner holds a proof of
// its own for the volume group.
func TestVolumeGroupTakeoverCarriesAProofOfTheNewOwner(t *testing.T) {
	w := newWorld(t)
	san := newFakeSAN()
	tc := packageClusterWith(t, 3, w, map[string]string{
		"db": "name = \"db\"\nnodes = [\"n1\", \"n3\", \"n2\"]\n[[volume_group]]\nname = \"vgdb\"\n",
	}, func(tc *testCluster) {
		tc.fenceLUNs = san.luns
		for _, cn := range tc.cl.Nodes {
			san.guardDisk(tc.disk.Path(cn.Name), cn.Name)
		}
	})
	tc.waitFor("db on n1", func() bool { return w.runsOnly("db", "n1") })
	n1, n2, n3 := tc.node("n1"), tc.node("n2"), tc.node("n3")
	tc.net.Partition([]netip.Addr{n1.addr}, []netip.Addr{n2.addr, n3.addr})
	tc.waitFor("db on n3 after n1 was cut off and fenced", func() bool { return w.runsOnly("db", "n3") })
	if r, ok := takeoverOf(n2, "n1"); !ok || r.Reason != "fenced" {
		t.Fatalf("n2's takeover of n1: %+v %v", r, ok)
	}
	r := w.runner("db", "n3")
	r.mu.Lock()
	proofs := r.proofs
	r.mu.Unlock()
	if len(proofs) != 1 || !proofs[0].Valid() || proofs[0].Victim() != 1 {
		t.Fatalf("n3 started db with proofs %v, want its own proof of n1's fence", proofs)
	}
	if f := n3.d.Status().Fencing.Fenced; len(f) != 0 {
		t.Logf("n3's verified fences: %+v", f)
	}
	w.noOverlap(t)
}

// A node whose package files differ from the others' (here the order of
// web's nodes) has its reports refused: it starts nothing, and the
// others do not count it as having reported.
func TestDifferentPackageFilesAreRefused(t *testing.T) {
	w := newWorld(t)
	other, err := config.ParsePackage("web.toml", []byte("name = \"web\"\nnodes = [\"n3\", \"n2\", \"n1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tc := packageClusterWith(t, 3, w, map[string]string{"web": "name = \"web\"\n" + threeNodePackages}, func(tc *testCluster) {
		prev := tc.options
		tc.options = func(node string, o *Options) {
			if prev != nil {
				prev(node, o)
			}
			if node == "n3" {
				o.Packages = []*config.Package{other}
			}
		}
	})
	_ = tc
	time.Sleep(2 * time.Second)
	if on := w.on("web"); len(on) != 0 {
		t.Fatalf("web started on %v although n3's package files differ", on)
	}
	n1 := tc.node("n1")
	if !strings.Contains(n1.logs.String(), "package files differ") {
		t.Fatalf("n1 did not say that n3's package files differ:\n%s", tailLines(n1.logs.String(), 20))
	}
}
