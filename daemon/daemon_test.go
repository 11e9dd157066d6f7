package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/quorum/liveness"
	"github.com/mtcluster/mtc/test/testutil"
	"github.com/mtcluster/mtc/watchdog"
)

const testConfig = `
[cluster]
name = "unit"
uuid = "3d9a3c55-8f55-4a4e-a1f1-5c0b6f2f9e01"
key_file = "/etc/mtc/cluster.key"

[timing]
heartbeat_interval = "50ms"
io_timeout = "100ms"
failure_timeout = "300ms"
watchdog_timeout = "1s"

[watchdog]
mode = "none"
allow_none = true

[quorum_disk]
path = "/dev/fake-quorum"

[[network]]
name = "lan"
port = 5405
%s`

func clusterConfig(t *testing.T, n int) *config.Cluster {
	t.Helper()
	var nodes strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&nodes, "\n[[node]]\nname = \"n%d\"\nid = %d\n[node.addresses]\nlan = \"10.213.0.%d\"\n", i, i, i)
	}
	c, err := config.Parse("unit.toml", []byte(fmt.Sprintf(testConfig, nodes.String())))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testNode struct {
	d      *Daemon
	wd     *watchdog.Fake
	path   *fakedev.Path
	addr   netip.Addr
	cancel context.CancelFunc
	done   chan error
	logs   *testutil.SyncBuffer
}

type testCluster struct {
	t     *testing.T
	cl    *config.Cluster
	net   *nethb.MemNetwork
	disk  *fakedev.Disk
	nodes []*testNode
	// fenceLUNs, when set, gives each node its fenced LUNs.
	fenceLUNs func(name string) []FenceLUN
	// options, when set, adjusts each node's options before it starts.
	options func(name string, o *Options)
	// absent names nodes of the configuration that are not started.
	absent map[string]bool
	// serve: control listeners the options made, served by the next
	// node started.
	serve []net.Listener
	// starts counts the starts of each node.
	starts map[string]int
}

var testKey = bytes.Repeat([]byte{7}, 32)

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return newTestClusterWith(t, n, nil)
}

// newTestClusterWith is newTestCluster with setup run before any node
// starts.
func newTestClusterWith(t *testing.T, n int, setup func(*testCluster)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, cl: clusterConfig(t, n), net: nethb.NewMemNetwork(1), disk: fakedev.NewDisk(512, 2048)}
	if setup != nil {
		setup(tc)
	}
	// Format the shared disk through one path.
	p := tc.disk.Path("format")
	dev := diskhb.NewDevice(p, time.Second, nil)
	tm := tc.cl.Timing
	h := diskhb.Header{ClusterUUID: tc.cl.UUID, ClusterName: tc.cl.Name, Slots: 16,
		HeartbeatInterval: tm.HeartbeatInterval, IOTimeout: tm.IOTimeout, FailureTimeout: tm.FailureTimeout, WatchdogTimeout: tm.WatchdogTimeout}
	if err := diskhb.Format(context.Background(), dev, h, false); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	for _, cn := range tc.cl.Nodes {
		if tc.absent[cn.Name] {
			continue
		}
		tc.nodes = append(tc.nodes, tc.start(cn.Name))
	}
	t.Cleanup(func() {
		for _, n := range tc.nodes {
			n.stop()
		}
	})
	return tc
}

func (tc *testCluster) start(name string) *testNode { return tc.startWith(name, tc.cl) }

// startWith starts node name with its own copy of the configuration.
func (tc *testCluster) startWith(name string, cl *config.Cluster) *testNode {
	t := tc.t
	cn, _ := cl.NodeByName(name)
	// A restarted node opens the disk through a path of its own: the
	// stopped daemon closed the one before.
	if tc.starts == nil {
		tc.starts = map[string]int{}
	}
	pname := name
	if k := tc.starts[name]; k > 0 {
		pname = fmt.Sprintf("%s#%d", name, k)
	}
	tc.starts[name]++
	n := &testNode{wd: &watchdog.Fake{}, path: tc.disk.Path(pname), addr: cn.Addresses["lan"], logs: &testutil.SyncBuffer{}}
	tr, err := tc.net.Listen(netip.AddrPortFrom(n.addr, 5405))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dev := diskhb.NewDevice(n.path, tc.cl.Timing.IOTimeout, log)
	disk, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: tc.cl.UUID, MaxNodeID: len(tc.cl.Nodes)})
	if err != nil {
		t.Fatal(err)
	}
	var luns []FenceLUN
	if tc.fenceLUNs != nil {
		luns = tc.fenceLUNs(name)
	}
	opt := Options{Cluster: cl, Node: name, Log: log, Watchdog: n.wd, WatchdogMode: "fake", Key: testKey,
		Transports: map[string]nethb.Transport{"lan": tr}, Disk: disk, DiskPath: "fake", FenceLUNs: luns}
	if tc.options != nil {
		tc.options(name, &opt)
	}
	n.d, err = New(opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range tc.serve {
		go n.d.ServeControl(l)
	}
	tc.serve = nil
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done = make(chan error, 1)
	go func() { n.done <- n.d.Run(ctx) }()
	return n
}

func (n *testNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

// waitBound is how long a test waits for the cluster to reach a state: far
// above the timings used (failure_timeout 300ms), so a loaded machine does
// not fail the test. Tests assert what the nodes decide, never how fast.
const waitBound = 60 * time.Second

func (tc *testCluster) waitFor(what string, ok func() bool) {
	tc.t.Helper()
	deadline := time.Now().Add(waitBound)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range tc.nodes {
		tc.t.Logf("%s: %+v\nlog:\n%s", n.d.self.Name, n.d.Status(), tailLines(n.logs.String(), 40))
	}
	tc.t.Fatalf("not reached within %v: %s", waitBound, what)
}

func tailLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// threeQuorate waits until the first three nodes are quorate with
// {n1,n2,n3} and returns them.
func (tc *testCluster) threeQuorate() (a, b, c *testNode) {
	tc.t.Helper()
	a, b, c = tc.nodes[0], tc.nodes[1], tc.nodes[2]
	tc.waitFor("all three quorate with {n1,n2,n3}", func() bool {
		return quorateWith(a, "n1", "n2", "n3") && quorateWith(b, "n1", "n2", "n3") && quorateWith(c, "n1", "n2", "n3")
	})
	return a, b, c
}

func quorateWith(n *testNode, members ...string) bool {
	s := n.d.Status()
	return s.Quorate && !s.Stopped && slices.Equal(s.Members, members)
}

func TestThreeNodesAgreeAndDropADeadNode(t *testing.T) {
	tc := newTestCluster(t, 3)
	a, b, c := tc.threeQuorate()
	if a.wd.Feeds() == 0 {
		t.Fatal("a quorate node does not feed its watchdog")
	}
	// n3 dies: it stops sending and writing (an orderly stop here; the
	// survivors cannot tell the difference).
	c.stop()
	if !c.wd.Disarmed() {
		t.Fatal("orderly shutdown did not disarm the watchdog")
	}
	n3 := func() PeerStatus {
		for _, p := range a.d.Status().Peers {
			if p.Name == "n3" {
				return p
			}
		}
		return PeerStatus{}
	}
	// Gone from the network first (partitioned), then dead once its disk
	// slot has been still for the failure timeout too.
	tc.waitFor("n1 and n2 quorate with {n1,n2}, n3 dead", func() bool {
		return quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2") && n3().State == quorum.PeerDead.String()
	})
	// The status is the machine's judgement: dead means gone on both paths.
	if p3 := n3(); p3.Member || p3.NetAlive || p3.Disk != liveness.Dead.String() || p3.Net != liveness.Dead.String() {
		t.Fatalf("n3 as seen by n1: %+v", p3)
	}
	s := a.d.Status()
	if s.Network.Receive.Accepted["n2"] == 0 || s.Network.Send.Sent["lan"] == 0 || s.Disk.Writes == 0 || s.Disk.Reads == 0 {
		t.Fatalf("counters not moving: %+v %+v", s.Network, s.Disk)
	}
}

func TestPartitionOneAgainstTwo(t *testing.T) {
	tc := newTestCluster(t, 3)
	a, b, c := tc.threeQuorate()
	tc.net.Partition([]netip.Addr{a.addr}, []netip.Addr{b.addr, c.addr})
	tc.waitFor("n2,n3 quorate with {n2,n3} and n1 stopped", func() bool {
		return quorateWith(b, "n2", "n3") && quorateWith(c, "n2", "n3") && a.d.Status().Stopped
	})
	s := a.d.Status()
	if s.State != StateStopped || len(s.PackageStops) < 2 || s.PackageStops[0].Reason != StartupStopReason {
		t.Fatalf("n1 after losing quorum: state %s, package stops %v", s.State, s.PackageStops)
	}
	// The stop gives the machine's own reason for its self-fence.
	var fence DecisionRecord
	for _, d := range s.Decisions {
		if d.Kind == quorum.SelfFence.String() {
			fence = d
		}
	}
	if fence.Reason == "" || s.PackageStops[len(s.PackageStops)-1].Reason != fence.Reason {
		t.Fatalf("package stop reason %q, the machine's self-fence reason %q", s.PackageStops[len(s.PackageStops)-1].Reason, fence.Reason)
	}
	if fence.Time.IsZero() || fence.At == 0 {
		t.Fatalf("decision without wall-clock or monotonic time: %+v", fence)
	}
	// Every line of the daemon's own logger (the test's device logs too).
	for _, l := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(l, " node=n1") && (!strings.HasPrefix(l, "time=") || !strings.Contains(l, " mono=")) {
			t.Fatalf("log line without wall-clock or monotonic time: %s", l)
		}
	}
	feeds := a.wd.Feeds()
	time.Sleep(10 * tc.cl.Timing.HeartbeatInterval)
	if a.wd.Feeds() != feeds {
		t.Fatal("a stopped node keeps feeding its watchdog")
	}
}

func TestTwoNodeSplitTieBreak(t *testing.T) {
	tc := newTestCluster(t, 2)
	a, b := tc.nodes[0], tc.nodes[1]
	tc.waitFor("both quorate", func() bool { return quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2") })
	tc.net.Partition([]netip.Addr{a.addr}, []netip.Addr{b.addr})
	tc.waitFor("exactly one side quorate alone, the other stopped", func() bool {
		sa, sb := a.d.Status(), b.d.Status()
		return (quorateWith(a, "n1") && sb.Stopped) || (quorateWith(b, "n2") && sa.Stopped)
	})
}

func TestStatusSocket(t *testing.T) {
	tc := newTestCluster(t, 2)
	a := tc.nodes[0]
	path := filepath.Join(t.TempDir(), "unit.sock")
	l, err := ListenStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	go a.d.ServeStatus(l)
	defer l.Close()
	if _, err := ListenStatus(path); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	tc.waitFor("n1 quorate", func() bool { return quorateWith(a, "n1", "n2") })
	s, err := QueryStatus(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Node != "n1" || s.Cluster != "unit" || !s.Quorate || len(s.Peers) != 1 || s.Peers[0].Name != "n2" {
		t.Fatalf("status over the socket: %+v", s)
	}
}

func TestLazyWatchdogOpensAtFirstFeed(t *testing.T) {
	opened := 0
	fake := &watchdog.Fake{}
	wd := Lazy(func() (watchdog.Watchdog, error) { opened++; return fake, nil })
	if err := wd.Disarm(); err != nil || opened != 0 {
		t.Fatalf("Disarm before any feed: %v, opened %d", err, opened)
	}
	_ = wd.Feed()
	_ = wd.Feed()
	if opened != 1 || fake.Feeds() != 2 {
		t.Fatalf("opened %d times, %d feeds", opened, fake.Feeds())
	}
}

// A node that gains quorum but cannot arm its watchdog must not run.
func TestDaemonRefusesToRunWithoutWatchdog(t *testing.T) {
	cl := clusterConfig(t, 1)
	d := soloDisk(t, cl)
	tr, _ := nethb.NewMemNetwork(1).Listen(netip.MustParseAddrPort("10.213.0.1:5405"))
	logs := &testutil.SyncBuffer{}
	stopper := NewRecordingStopper(slog.New(slog.NewTextHandler(logs, nil)), func() time.Duration { return 0 })
	dmn, err := New(Options{Cluster: cl, Node: "n1", Log: slog.New(slog.NewTextHandler(logs, nil)), Key: testKey, Disk: d,
		Transports: map[string]nethb.Transport{"lan": tr}, Stopper: stopper,
		Watchdog: Lazy(func() (watchdog.Watchdog, error) { return nil, fmt.Errorf("open /dev/watchdog: no such device") })})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dmn.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "cannot arm the watchdog") {
			t.Fatalf("Run returned %v, want the watchdog error", err)
		}
	case <-time.After(waitBound):
		t.Fatalf("daemon kept running without a watchdog; log:\n%s", logs)
	}
	if len(stopper.Stops()) == 0 {
		t.Fatal("packages were not stopped when the daemon gave up")
	}
}

// A node whose quorum-disk path fails (EIO) or hangs cannot prove it is
// alive to the others' disk path nor write its slot: it stops, its watchdog
// is no longer fed, and its status shows the failed writes.
func TestDiskPathFailureStopsTheNode(t *testing.T) {
	for _, fault := range []string{"eio", "hang"} {
		t.Run(fault, func(t *testing.T) {
			tc := newTestCluster(t, 3)
			a, b, c := tc.threeQuorate()
			switch fault {
			case "eio":
				a.path.SetFailIO(true)
			case "hang":
				a.path.Hang()
				t.Cleanup(a.path.Release)
			}
			tc.waitFor("n1 stopped", func() bool { return a.d.Status().Stopped })
			s := a.d.Status()
			if s.Disk.WriteFailures == 0 || s.Disk.LastWriteError == "" {
				t.Fatalf("disk status after the fault: %+v", s.Disk)
			}
			// EIO is reported as such; a hung path first times out, then
			// refuses new I/O while the stuck one is in flight.
			want := []string{"disk I/O error"}
			if fault == "hang" {
				want = []string{"deadline exceeded", "disk busy"}
			}
			errs := s.Disk.LastWriteError + " / " + s.Disk.LastReadError
			if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(errs, w) }) {
				t.Fatalf("disk errors %q, want one of %q", errs, want)
			}
			feeds := a.wd.Feeds()
			time.Sleep(10 * tc.cl.Timing.HeartbeatInterval)
			if a.wd.Feeds() != feeds {
				t.Fatal("a stopped node keeps feeding its watchdog")
			}
			// The others still hear n1 on the network: they keep quorum.
			if !b.d.Status().Quorate || !c.d.Status().Quorate {
				t.Fatal("the healthy nodes lost quorum")
			}
		})
	}
}

// A node that is already self-fencing keeps its watchdog armed when it is
// shut down: peers time their takeover on its reset.
func TestShutdownWhileSelfFencingKeepsWatchdogArmed(t *testing.T) {
	tc := newTestCluster(t, 3)
	a, b, c := tc.threeQuorate()
	tc.net.Partition([]netip.Addr{a.addr}, []netip.Addr{b.addr, c.addr})
	tc.waitFor("n1 stopped", func() bool { return a.d.Status().Stopped })
	a.stop()
	if a.wd.Disarmed() {
		t.Fatal("a self-fencing node disarmed its watchdog on shutdown")
	}
	b.stop()
	if !b.wd.Disarmed() {
		t.Fatal("a healthy node did not disarm its watchdog on an orderly shutdown")
	}
}

// A node started with a different cluster file (here only key_file's path
// differs, the key itself is the same, so its packets authenticate) must
// not join: its heartbeats are dropped as another configuration generation,
// counted, and it never holds quorum.
func TestOtherConfigurationDoesNotJoin(t *testing.T) {
	tc := newTestCluster(t, 3)
	a, b := tc.nodes[0], tc.nodes[1]
	tc.waitFor("all three quorate", func() bool {
		return quorateWith(a, "n1", "n2", "n3") && quorateWith(tc.nodes[2], "n1", "n2", "n3")
	})
	tc.nodes[2].stop()
	var nodes strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&nodes, "\n[[node]]\nname = \"n%d\"\nid = %d\n[node.addresses]\nlan = \"10.213.0.%d\"\n", i, i, i)
	}
	text := strings.Replace(fmt.Sprintf(testConfig, nodes.String()), "/etc/mtc/cluster.key", "/etc/mtc/other.key", 1)
	other, err := config.Parse("other.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if other.Generation() == tc.cl.Generation() {
		t.Fatal("a changed key_file left the generation unchanged")
	}
	tc.disk.Path("n3").Reopen() // the stopped daemon closed its path
	c := tc.startWith("n3", other)
	tc.nodes[2] = c
	tc.waitFor("n1 and n2 count n3's heartbeats as another configuration", func() bool {
		st := a.d.Status().Network.Receive.Dropped["n3"]
		return st["config-mismatch"] > 3 && quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2")
	})
	if s := c.d.Status(); s.Quorate {
		t.Fatalf("the node with another configuration holds quorum: %+v", s)
	}
	// Its slot, of another generation, counts as unknown on n1's disk path
	// and is counted and shown, as the network path does.
	tc.waitFor("n1 shows n3's slot of another generation", func() bool {
		s := a.d.Status()
		for _, p := range s.Peers {
			if p.Name == "n3" {
				return p.OtherGeneration != "" && p.Disk != liveness.Live.String() && s.Disk.OtherGeneration > 0
			}
		}
		return false
	})
	if !strings.Contains(a.logs.String(), "install the same cluster file on every node") {
		t.Fatalf("n1's log does not say what to do:\n%s", tailLines(a.logs.String(), 20))
	}
}

// A second daemon started with a node id that a running daemon uses (a
// copied configuration) refuses to join before it writes anything, and
// says which node id collides.
func TestSameNodeIDRefused(t *testing.T) {
	tc := newTestCluster(t, 2)
	a, b := tc.nodes[0], tc.nodes[1]
	tc.waitFor("both quorate", func() bool { return quorateWith(a, "n1", "n2") && quorateWith(b, "n1", "n2") })
	p := tc.disk.Path("n2-copy")
	_, writesBefore := p.Ops()
	log := &testutil.SyncBuffer{}
	dev := diskhb.NewDevice(p, tc.cl.Timing.IOTimeout, nil)
	disk, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: tc.cl.UUID, MaxNodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := nethb.NewMemNetwork(1).Listen(netip.MustParseAddrPort("10.213.0.2:5405"))
	if err != nil {
		t.Fatal(err)
	}
	wd := &watchdog.Fake{}
	d, err := New(Options{Cluster: tc.cl, Node: "n2", Log: slog.New(slog.NewTextHandler(log, nil)), Watchdog: wd, Key: testKey,
		Transports: map[string]nethb.Transport{"lan": tr}, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background())
	if !errors.Is(err, diskhb.ErrNodeIDInUse) || !strings.Contains(err.Error(), "node id 2") {
		t.Fatalf("second daemon with node id 2: %v", err)
	}
	if _, writes := p.Ops(); writes != writesBefore || wd.Feeds() != 0 {
		t.Fatalf("the refused daemon wrote %d sectors and fed its watchdog %d times", writes-writesBefore, wd.Feeds())
	}
	if !quorateWith(a, "n1", "n2") || b.d.Status().Disk.Conflicts != 0 {
		t.Fatal("the running cluster was disturbed by the refused newcomer")
	}
}

// A running node that finds another writer over its own slot treats it
// as a conflict: logged at error level, counted and shown, and its own
// writes no longer count, so it self-fences rather than share the slot.
func TestForeignWriterOverOwnSlot(t *testing.T) {
	tc := newTestCluster(t, 3)
	a := tc.nodes[0]
	tc.waitFor("all three quorate", func() bool { return quorateWith(a, "n1", "n2", "n3") })
	dev := diskhb.NewDevice(tc.disk.Path("impostor"), time.Second, nil)
	disk, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: tc.cl.UUID, MaxNodeID: 3})
	if err != nil {
		t.Fatal(err)
	}
	imp := diskhb.NewRounds(disk, diskhb.RoundsConfig{NodeID: 1, NodeName: "n1", Incarnation: 0xbadbad, Generation: tc.cl.Generation()})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		hb := quorum.Heartbeat{From: 1, Inc: 0xbadbad}
		for {
			hb.Seq++
			imp.Do(context.Background(), quorum.DiskRequest{Kind: quorum.DiskWriteSlot, Heartbeat: hb})
			select {
			case <-stop:
				return
			case <-time.After(tc.cl.Timing.HeartbeatInterval / 3):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	tc.waitFor("n1 sees the conflict and stops", func() bool {
		s := a.d.Status()
		return s.Disk.Conflicts > 0 && s.Disk.OwnSlotProblem != "" && s.Stopped
	})
	s := a.d.Status()
	if !strings.Contains(s.Disk.OwnSlotProblem, "node id 1") || s.Disk.WriteFailures == 0 {
		t.Fatalf("disk status: %+v", s.Disk)
	}
	if !strings.Contains(a.logs.String(), "level=ERROR msg=\"quorum disk: CONFLICT") {
		t.Fatalf("the conflict is not logged at error level:\n%s", tailLines(a.logs.String(), 30))
	}
}

// shiftClock is a monotonic clock that a test can move forward at once,
// as a frozen and resumed process sees it.
type shiftClock struct {
	start time.Time
	mu    sync.Mutex
	shift time.Duration
}

func (c *shiftClock) now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.start) + c.shift
}

func (c *shiftClock) jump(d time.Duration) {
	c.mu.Lock()
	c.shift += d
	c.mu.Unlock()
}

// A node frozen longer than every timeout must not answer the status
// requests queued meanwhile with its old state: the answer is judged at
// the moment it is given.
func TestStatusTrueAfterFreeze(t *testing.T) {
	cl := clusterConfig(t, 2)
	disk := fakedev.NewDisk(512, 2048)
	dev := diskhb.NewDevice(disk.Path("format"), time.Second, nil)
	tm := cl.Timing
	h := diskhb.Header{ClusterUUID: cl.UUID, ClusterName: cl.Name, Slots: 16,
		HeartbeatInterval: tm.HeartbeatInterval, IOTimeout: tm.IOTimeout, FailureTimeout: tm.FailureTimeout, WatchdogTimeout: tm.WatchdogTimeout}
	if err := diskhb.Format(context.Background(), dev, h, false); err != nil {
		t.Fatal(err)
	}
	network := nethb.NewMemNetwork(1)
	clocks := []*shiftClock{{start: time.Now()}, {start: time.Now()}}
	var ds []*Daemon
	var logs []*testutil.SyncBuffer
	for i, name := range []string{"n1", "n2"} {
		cn, _ := cl.NodeByName(name)
		tr, err := network.Listen(netip.AddrPortFrom(cn.Addresses["lan"], 5405))
		if err != nil {
			t.Fatal(err)
		}
		dk, err := diskhb.Open(context.Background(), diskhb.NewDevice(disk.Path(name), tm.IOTimeout, nil), diskhb.Expect{ClusterUUID: cl.UUID, MaxNodeID: 2})
		if err != nil {
			t.Fatal(err)
		}
		lb := &testutil.SyncBuffer{}
		d, err := New(Options{Cluster: cl, Node: name, Log: slog.New(slog.NewTextHandler(lb, nil)), Watchdog: &watchdog.Fake{}, Key: testKey,
			Transports: map[string]nethb.Transport{"lan": tr}, Disk: dk, Clock: clocks[i].now})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		ds, logs = append(ds, d), append(logs, lb)
	}
	deadline := time.Now().Add(waitBound)
	for !(ds[0].Status().Quorate && ds[1].Status().Quorate) {
		if time.Now().After(deadline) {
			t.Fatalf("not quorate: %+v\n%s", ds[0].Status(), logs[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// n1's clock jumps past every timeout before its loop runs again.
	clocks[0].jump(10 * tm.FailureTimeout)
	s := ds[0].Status()
	if s.Quorate || s.State == StateQuorate {
		t.Fatalf("a status given after a freeze longer than every timeout says quorate: %+v", s)
	}
}

// gatedStopper confirms the packages stopped only when the test says so.
type gatedStopper struct {
	mu    sync.Mutex
	calls []string
	gate  chan error
}

// StopAll holds every request on the gate but the first, the start-up
// stop of an earlier incarnation's leftovers, which finds nothing running.
func (g *gatedStopper) StopAll(reason string) <-chan error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, reason)
	if len(g.calls) == 1 {
		done := make(chan error, 1)
		done <- nil
		return done
	}
	return g.gate
}

// An orderly shutdown disarms the watchdog only once every package is
// confirmed stopped, and keeps feeding it meanwhile; a stop that fails
// leaves it armed.
func TestWatchdogDisarmedOnlyAfterPackagesStopped(t *testing.T) {
	for _, stopErr := range []error{nil, errors.New("package db: stop script failed")} {
		cl := clusterConfig(t, 1)
		dk := soloDisk(t, cl)
		tm := cl.Timing
		tr, _ := nethb.NewMemNetwork(1).Listen(netip.MustParseAddrPort("10.213.0.1:5405"))
		wd := &watchdog.Fake{}
		st := &gatedStopper{gate: make(chan error, 1)}
		logs := &testutil.SyncBuffer{}
		d, err := New(Options{Cluster: cl, Node: "n1", Log: slog.New(slog.NewTextHandler(logs, nil)), Watchdog: wd, Key: testKey,
			Transports: map[string]nethb.Transport{"lan": tr}, Disk: dk, Stopper: st})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		deadline := time.Now().Add(waitBound)
		for !d.Status().Quorate {
			if time.Now().After(deadline) {
				t.Fatalf("not quorate:\n%s", logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		for {
			st.mu.Lock()
			n := len(st.calls)
			st.mu.Unlock()
			if n > 1 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		feeds := wd.Feeds()
		time.Sleep(5 * tm.HeartbeatInterval)
		if wd.Disarmed() {
			t.Fatal("the watchdog was disarmed before the packages were confirmed stopped")
		}
		if wd.Feeds() == feeds {
			t.Fatal("the watchdog is not fed while the packages stop")
		}
		st.gate <- stopErr
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if wd.Disarmed() != (stopErr == nil) {
			t.Fatalf("stop result %v: watchdog disarmed %v", stopErr, wd.Disarmed())
		}
	}
}

// Nothing an earlier incarnation left running may outlive this one's
// registration for fencing or its first watchdog feed: until the start-up
// stop is confirmed the node does not register, write its slot, join or
// feed the watchdog.
func TestWatchdogWaitsForLeftoversToStop(t *testing.T) {
	cl := clusterConfig(t, 1)
	dk := soloDisk(t, cl)
	tm := cl.Timing
	tr, _ := nethb.NewMemNetwork(1).Listen(netip.MustParseAddrPort("10.213.0.1:5405"))
	wd := &watchdog.Fake{}
	gate := make(chan error, 1)
	st := &heldStopper{gate: gate}
	logs := &testutil.SyncBuffer{}
	d, err := New(Options{Cluster: cl, Node: "n1", Log: slog.New(slog.NewTextHandler(logs, nil)), Watchdog: wd, Key: testKey,
		Transports: map[string]nethb.Transport{"lan": tr}, Disk: dk, Stopper: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(logs.String(), "before registering for fencing") {
		if time.Now().After(deadline) {
			t.Fatalf("the start-up stop was not asked for:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// While the leftovers stop, the node neither registers nor joins: no
	// slot write, no quorum, no watchdog feed.
	time.Sleep(5 * tm.HeartbeatInterval)
	if s := d.Status(); s.Disk.Writes != 0 || s.Quorate || wd.Feeds() != 0 {
		t.Fatalf("while an earlier incarnation's packages were still stopping: %d slot writes, quorate %v, %d feeds", s.Disk.Writes, s.Quorate, wd.Feeds())
	}
	gate <- nil
	for !d.Status().Quorate || wd.Feeds() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not quorate and fed after the leftovers stopped:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// heldStopper holds the start-up stop on its gate and confirms the rest.
type heldStopper struct {
	mu    sync.Mutex
	calls int
	gate  chan error
}

func (h *heldStopper) StopAll(string) <-chan error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls == 1 {
		return h.gate
	}
	done := make(chan error, 1)
	done <- nil
	return done
}

// However many sources the network layer counts drops for, the status
// answer holds a bounded number, and the rest summed.
func TestStatusBoundsDropTable(t *testing.T) {
	st := nethb.Stats{Dropped: map[string]map[string]uint64{}}
	var total uint64
	for i := range 100000 {
		st.Dropped[fmt.Sprintf("10.0.%d.%d", i/256, i%256)] = map[string]uint64{"bad-mac": uint64(1 + i%3)}
		total += uint64(1 + i%3)
	}
	b := boundStats(st)
	if len(b.Dropped) > maxDropSources {
		t.Fatalf("%d sources in the status", len(b.Dropped))
	}
	var got uint64
	for _, r := range b.Dropped {
		got += r["bad-mac"]
	}
	if got != total || b.Dropped[otherSources]["bad-mac"] == 0 {
		t.Fatalf("drops %d in the bounded table, %d counted", got, total)
	}
}

// A user who may not open the status socket is told to run as root, not
// asked whether the daemon is running.
func TestStatusPermissionDenied(t *testing.T) {
	err := dialError("/run/mtc/unit.sock", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)})
	if !strings.Contains(err.Error(), "permission denied: run as root") || strings.Contains(err.Error(), "is the daemon running") {
		t.Fatalf("EACCES: %v", err)
	}
	err = dialError("/run/mtc/unit.sock", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)})
	if !strings.Contains(err.Error(), "is the daemon running") {
		t.Fatalf("ENOENT: %v", err)
	}
}

// soloDisk is a formatted in-memory quorum disk for a one-node cluster cl,
// opened as node 1 sees it.
func soloDisk(t *testing.T, cl *config.Cluster) *diskhb.Disk {
	t.Helper()
	dev := diskhb.NewDevice(fakedev.NewDisk(512, 2048).Path("n1"), time.Second, nil)
	tm := cl.Timing
	h := diskhb.Header{ClusterUUID: cl.UUID, ClusterName: cl.Name, Slots: 16,
		HeartbeatInterval: tm.HeartbeatInterval, IOTimeout: tm.IOTimeout, FailureTimeout: tm.FailureTimeout, WatchdogTimeout: tm.WatchdogTimeout}
	if err := diskhb.Format(context.Background(), dev, h, false); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: cl.UUID, MaxNodeID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Open arms a lazy watchdog before the first feed (the daemon opens it
// before its event loop, so a slow open never stalls the loop); the
// feeds then only feed.
func TestLazyWatchdogOpenBeforeFeed(t *testing.T) {
	opened := 0
	fake := &watchdog.Fake{}
	wd := Lazy(func() (watchdog.Watchdog, error) { opened++; return fake, nil })
	o, ok := wd.(watchdogOpener)
	if !ok {
		t.Fatal("Lazy has no Open")
	}
	if err := o.Open(); err != nil || opened != 1 || fake.Feeds() != 0 {
		t.Fatalf("Open: %v, opened %d, %d feeds", err, opened, fake.Feeds())
	}
	_ = wd.Feed()
	_ = o.Open()
	if opened != 1 || fake.Feeds() != 1 {
		t.Fatalf("opened %d times, %d feeds", opened, fake.Feeds())
	}
}
