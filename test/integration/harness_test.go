// Package integration runs real mtc daemons against the real kernel: one
// network namespace per node joined by veth pairs to a bridge in a
// namespace of the test's own, a loop device as the shared quorum disk,
// nftables rules to cut the network, and the process watchdog to kill the
// losing side. Every test needs root and cleans up its namespaces and loop
// devices even when it fails.
package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/test/lab/failbench"
	"github.com/mtcluster/mtc/test/testutil"
)

// quorumDiskSize is the size of every test cluster's quorum disk.
const quorumDiskSize = 8 << 20

// Addresses and port used inside the namespaces the tests create.
// Heartbeat network k uses bridge brK, interface ethK in each node's
// namespace, addresses 10.213.K.0/24 and UDP port 5405+K.
const (
	subnetFmt = "10.213.%d.%d"
	hbPort    = 5405
	prefixLen = 24
)

// netName is the configured name of heartbeat network k.
func netName(k int) string { return fmt.Sprintf("hb%d", k) }

var (
	buildOnce sync.Once
	mtcBinary string
	buildErr  error
	buildDir  string
)

// binary builds cmd/mtc once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mtc-integration-bin-")
		if buildErr != nil {
			return
		}
		mtcBinary = filepath.Join(buildDir, "mtc")
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", mtcBinary, "./cmd/mtc")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mtc: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mtcBinary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// requireTools checks the root privilege and the commands the tests drive.
func requireTools(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t, "network namespaces, veth pairs, nftables and loop devices")
	for _, tool := range []string{"ip", "nft", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testutil.InCI() {
				t.Fatalf("%s not installed (CI=true): install iproute2, nftables and util-linux", tool)
			}
			t.Skipf("%s not installed: install iproute2, nftables and util-linux to run this test", tool)
		}
	}
}

// run runs an argument vector (never a shell string) and fails the test
// with its output on error.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Profile is a timing profile for a test cluster.
type Profile struct {
	Name   string
	Timing config.Timing
	// NoRealtime runs the daemons with --no-realtime (no mlockall, no
	// real-time threads).
	NoRealtime bool
}

var (
	defaultProfile    = Profile{Name: "default", Timing: config.DefaultTiming()}
	aggressiveProfile = Profile{Name: "aggressive", Timing: config.AggressiveTiming()}
)

// Cluster is a set of daemons in their own namespaces.
type Cluster struct {
	t        testing.TB
	id       string // short random suffix for names
	dir      string
	cfgPath  string
	loop     string
	bridgeNS string
	profile  Profile
	nets     int
	// watchdogNone writes [watchdog] mode = "none" (allow_none) instead
	// of "process": a node that must stop is never killed.
	watchdogNone bool
	Nodes        []*Node
	// Disk is the quorum disk when the cluster was made WithFreezableDisk
	// (its writes can be frozen); nil otherwise.
	Disk *testutil.FreezableLoopDevice
}

// ClusterOption changes how NewCluster builds a cluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	freezableDisk bool
	watchdogNone  bool
	packages      map[string]string
}

// WithWatchdogNone configures [watchdog] mode = "none" (with allow_none)
// instead of "process": a daemon that hangs or must stop is never killed.
// Only for tests that show what the watchdog prevents.
func WithWatchdogNone() ClusterOption {
	return func(o *clusterOptions) { o.watchdogNone = true }
}

// WithFreezableDisk puts the quorum disk on a freezable loop device (512-byte
// sectors, direct I/O to a file on its own ext4 filesystem) instead of a
// plain one: Cluster.Disk.Freeze makes every write to it hang in the kernel
// until Thaw, as on a hung LUN.
func WithFreezableDisk() ClusterOption {
	return func(o *clusterOptions) { o.freezableDisk = true }
}

// WithPackages writes package files (file name to contents) into the
// packages directory beside the cluster file before the daemons start, so
// that every daemon loads and runs them.
func WithPackages(files map[string]string) ClusterOption {
	return func(o *clusterOptions) { o.packages = files }
}

// Node is one daemon in its namespace.
type Node struct {
	c       *Cluster
	Name    string
	ID      int
	NS      string
	Addr    string
	Socket  string
	LogPath string
	// proc is the daemon's process, nil before its first start.
	proc *failbench.Proc
}

// NewCluster creates the namespaces, the bridge, the quorum disk, the key
// and the configuration for n nodes, formats the disk and starts every
// daemon. Everything is removed in t.Cleanup.
func NewCluster(t testing.TB, n int, p Profile, opts ...ClusterOption) *Cluster {
	t.Helper()
	return NewClusterNets(t, n, 1, p, opts...)
}

// NewClusterNets is NewCluster with nets heartbeat networks.
func NewClusterNets(t testing.TB, n, nets int, p Profile, opts ...ClusterOption) *Cluster {
	t.Helper()
	requireTools(t)
	var o clusterOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := binary(t)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	c := &Cluster{t: t, id: hex.EncodeToString(rnd[:]), dir: t.TempDir(), profile: p, nets: nets, watchdogNone: o.watchdogNone}
	c.bridgeNS = "mtc-" + c.id + "-br"
	run(t, "ip", "netns", "add", c.bridgeNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", c.bridgeNS).Run() })
	run(t, "ip", "-n", c.bridgeNS, "link", "set", "lo", "up")
	for k := 0; k < nets; k++ {
		br := fmt.Sprintf("br%d", k)
		run(t, "ip", "-n", c.bridgeNS, "link", "add", br, "type", "bridge")
		run(t, "ip", "-n", c.bridgeNS, "link", "set", br, "up")
	}

	// The quorum disk: a loop device over a sparse file, or a freezable one.
	if o.freezableDisk {
		c.Disk = testutil.NewFreezableLoopDevice(t, 512, quorumDiskSize)
		c.loop = c.Disk.Path
	} else {
		img := filepath.Join(c.dir, "quorum.img")
		run(t, "truncate", "-s", fmt.Sprint(quorumDiskSize), img)
		c.loop = run(t, "losetup", "--find", "--show", img)
		t.Cleanup(func() { _ = exec.Command("losetup", "-d", c.loop).Run() })
	}

	key := filepath.Join(c.dir, "cluster.key")
	kb := make([]byte, 32)
	_, _ = rand.Read(kb)
	if err := os.WriteFile(key, kb, 0o600); err != nil {
		t.Fatal(err)
	}

	for i := 1; i <= n; i++ {
		nd := &Node{c: c, Name: fmt.Sprintf("n%d", i), ID: i, NS: fmt.Sprintf("mtc-%s-n%d", c.id, i),
			Addr: fmt.Sprintf(subnetFmt, 0, i)}
		nd.Socket = filepath.Join(c.dir, nd.Name+".sock")
		nd.LogPath = filepath.Join(c.dir, nd.Name+".log")
		c.Nodes = append(c.Nodes, nd)
		run(t, "ip", "netns", "add", nd.NS)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nd.NS).Run() })
		run(t, "ip", "-n", nd.NS, "link", "set", "lo", "up")
		for k := 0; k < nets; k++ {
			// veth pair: ethK in the node's namespace, v<id><k><i> on brK.
			dev, host := fmt.Sprintf("eth%d", k), fmt.Sprintf("v%s%d%d", c.id, k, i)
			run(t, "ip", "-n", nd.NS, "link", "add", dev, "type", "veth", "peer", "name", host, "netns", c.bridgeNS)
			run(t, "ip", "-n", c.bridgeNS, "link", "set", host, "master", fmt.Sprintf("br%d", k), "up")
			run(t, "ip", "-n", nd.NS, "addr", "add", fmt.Sprintf(subnetFmt+"/%d", k, i, prefixLen), "dev", dev)
			run(t, "ip", "-n", nd.NS, "link", "set", dev, "up")
		}
	}
	c.writeConfig(key)
	if len(o.packages) > 0 {
		dir := filepath.Join(c.dir, "packages")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range o.packages {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(t, bin, "disk", "init", "--config", c.cfgPath, "--device", c.loop)
	for _, nd := range c.Nodes {
		nd.Start()
	}
	t.Cleanup(c.stopAll)
	if c.Disk != nil {
		// Runs before stopAll: daemons blocked in a write to a frozen
		// disk could not exit. An error only means it was not frozen.
		t.Cleanup(func() { _ = c.Disk.Thaw() })
	}
	return c
}

func (c *Cluster) writeConfig(key string) {
	tm := c.profile.Timing
	wd := `mode = "process"`
	if c.watchdogNone {
		wd = "mode = \"none\"\nallow_none = true"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[cluster]
name = "it%s"
uuid = "%s"
key_file = %q

[timing]
heartbeat_interval = %q
io_timeout = %q
failure_timeout = %q
watchdog_timeout = %q

[watchdog]
%s

[quorum_disk]
path = %q
`, c.id, newUUID(), key, tm.HeartbeatInterval, tm.IOTimeout, tm.FailureTimeout, tm.WatchdogTimeout, wd, c.loop)
	for k := 0; k < c.nets; k++ {
		fmt.Fprintf(&b, "\n[[network]]\nname = %q\nport = %d\n", netName(k), hbPort+k)
	}
	for _, nd := range c.Nodes {
		fmt.Fprintf(&b, "\n[[node]]\nname = %q\nid = %d\n[node.addresses]\n", nd.Name, nd.ID)
		for k := 0; k < c.nets; k++ {
			fmt.Fprintf(&b, "%s = %q\n", netName(k), fmt.Sprintf(subnetFmt, k, nd.ID))
		}
	}
	c.cfgPath = filepath.Join(c.dir, "cluster.toml")
	if err := os.WriteFile(c.cfgPath, []byte(b.String()), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Start starts the node's daemon in its namespace, in its own process
// group (the process watchdog kills that group).
func (nd *Node) Start() {
	t := nd.c.t
	args := []string{"netns", "exec", nd.NS, binary(t), "--log-level", "debug", "daemon",
		"--config", nd.c.cfgPath, "--node", nd.Name, "--socket", nd.Socket,
		"--journal", filepath.Join(nd.c.dir, nd.Name+".events.jsonl")}
	if nd.c.profile.NoRealtime {
		args = append(args, "--no-realtime")
	}
	p, err := failbench.StartProc(exec.Command("ip", args...), nd.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	nd.proc = p
}

// Exited reports whether the daemon process has ended.
func (nd *Node) Exited() bool { return nd.proc != nil && !nd.proc.Running() }

// exited is closed when the daemon started last has ended.
func (nd *Node) exited() <-chan struct{} { return nd.proc.Done() }

// waitErr is how the daemon started last ended (nil while it runs).
func (nd *Node) waitErr() error { return nd.proc.Err() }

// KilledBySIGKILL reports whether the daemon ended by SIGKILL.
func (nd *Node) KilledBySIGKILL() bool {
	if !nd.Exited() {
		return false
	}
	var ee *exec.ExitError
	if !errors.As(nd.waitErr(), &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Kill sends SIGKILL to the daemon's process group: a crash. Its watchdog
// supervisor, in a group of its own, finds the group gone when it fires.
func (nd *Node) Kill() { nd.proc.Kill() }

// PID is the daemon's process id.
func (nd *Node) PID() int { return nd.proc.PID() }

// Status runs `mtc status --json` on the node's socket.
func (nd *Node) Status() (daemon.Status, error) {
	var s daemon.Status
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(nd.c.t), "status", "--socket", nd.Socket, "--json").Output()
	if err != nil {
		return s, fmt.Errorf("mtc status %s: %w", nd.Name, err)
	}
	return s, json.Unmarshal(out, &s)
}

// CutNetwork drops every heartbeat packet in and out of the node's
// namespace with nftables, on every heartbeat network.
func (nd *Node) CutNetwork() {
	for k := 0; k < nd.c.nets; k++ {
		nd.CutHeartbeatNetwork(k)
	}
}

// CutHeartbeatNetwork drops heartbeat network k's packets (its UDP port)
// in and out of the node's namespace.
func (nd *Node) CutHeartbeatNetwork(k int) {
	t := nd.c.t
	rules := fmt.Sprintf(`table inet mtccut%[2]d {
	chain in { type filter hook input priority 0; policy accept; udp dport %[1]d drop; }
	chain out { type filter hook output priority 0; policy accept; udp dport %[1]d drop; }
}
`, hbPort+k, k)
	f := filepath.Join(nd.c.dir, fmt.Sprintf("%s-cut%d.nft", nd.Name, k))
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", nd.NS, "nft", "-f", f)
}

// Log is the daemon's log so far.
func (nd *Node) Log() string {
	b, _ := os.ReadFile(nd.LogPath)
	return string(b)
}

// stopGrace is how long a stopped daemon may take before it is killed.
const stopGrace = 10 * time.Second

func (c *Cluster) stopAll() {
	var ps []*failbench.Proc
	for _, nd := range c.Nodes {
		ps = append(ps, nd.proc)
	}
	failbench.StopAll(stopGrace, ps...)
	if c.t.Failed() {
		for _, nd := range c.Nodes {
			c.t.Logf("---- log of %s (%s) ----\n%s", nd.Name, nd.LogPath, tail(nd.Log(), 60))
		}
	}
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// waitBound bounds how long a test waits for the cluster to reach a state:
// far above every timeout involved, so a loaded machine does not fail the
// test. Tests assert what the daemons decide, never how fast.
const waitBound = 90 * time.Second

// pollInterval is how often the tests ask the daemons for their status.
const pollInterval = 50 * time.Millisecond

// WaitFor polls until ok returns true, failing the test after waitBound.
func (c *Cluster) WaitFor(what string, ok func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitBound)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(pollInterval)
	}
	for _, nd := range c.Nodes {
		s, err := nd.Status()
		c.t.Logf("%s: exited=%v status=%+v err=%v", nd.Name, nd.Exited(), s, err)
	}
	c.t.Fatalf("not reached within %v: %s", waitBound, what)
}

// QuorateWith reports whether the node answers that it holds quorum with
// exactly these members.
func (nd *Node) QuorateWith(members ...string) bool {
	s, err := nd.Status()
	return err == nil && s.Quorate && !s.Stopped && slices.Equal(s.Members, members)
}

func names(nodes ...*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

// WaitAllQuorate waits until every running node holds quorum with all of
// the given nodes.
func (c *Cluster) WaitAllQuorate(nodes ...*Node) {
	c.t.Helper()
	want := names(nodes...)
	c.WaitFor(fmt.Sprintf("%v quorate with %v", want, want), func() bool {
		for _, nd := range nodes {
			if !nd.QuorateWith(want...) {
				return false
			}
		}
		return true
	})
}

// peer returns the named peer's entry in s.
func peer(s daemon.Status, name string) (daemon.PeerStatus, bool) {
	for _, p := range s.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return daemon.PeerStatus{}, false
}

// waitStoppedThenKilled watches a node expected to lose: its status must
// say it stopped its packages, and then its process watchdog must kill it.
func (c *Cluster) waitStoppedThenKilled(nd *Node) {
	c.t.Helper()
	sawStopped := false
	c.WaitFor(nd.Name+" reports stopped and is then killed by its watchdog", func() bool {
		if s, err := nd.Status(); err == nil {
			if s.Stopped && s.State == daemon.StateStopped && !s.Quorate && slices.ContainsFunc(s.PackageStops, func(r daemon.StopRecord) bool { return r.Reason != daemon.StartupStopReason }) {
				sawStopped = true
			}
		}
		return sawStopped && nd.Exited()
	})
	if !nd.KilledBySIGKILL() {
		c.t.Fatalf("%s exited with %v, want killed by SIGKILL from the process watchdog", nd.Name, nd.waitErr())
	}
	if !strings.Contains(nd.Log(), "watchdog fired") {
		c.t.Fatalf("%s's log does not show the watchdog firing:\n%s", nd.Name, tail(nd.Log(), 30))
	}
}

// AddHost adds a namespace that is not a cluster node to heartbeat network
// k: interface ethK with address 10.213.K.host/24 on bridge brK. Tests use
// it to send traffic of their own (floods, replays) onto the heartbeat
// network. It is removed in t.Cleanup; the name is returned.
func (c *Cluster) AddHost(k, host int) string {
	t := c.t
	ns := fmt.Sprintf("mtc-%s-h%d", c.id, host)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	dev, hostEnd := fmt.Sprintf("eth%d", k), fmt.Sprintf("h%s%d%d", c.id, k, host)
	run(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", hostEnd, "netns", c.bridgeNS)
	run(t, "ip", "-n", c.bridgeNS, "link", "set", hostEnd, "master", fmt.Sprintf("br%d", k), "up")
	run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf(subnetFmt+"/%d", k, host, prefixLen), "dev", dev)
	run(t, "ip", "-n", ns, "link", "set", dev, "up")
	return ns
}

// Stop stops the daemon as an operator does (SIGTERM to its process
// group) and waits for it to exit.
func (nd *Node) Stop() { nd.proc.Stop(stopGrace) }

// fbTimingLine is a host report case's timing sentence: the bases and the
// TakeoverAfter they derive, which every host takeover waits for.
func fbTimingLine(t config.Timing) string {
	return fmt.Sprintf("heartbeat_interval %v, failure_timeout %v, watchdog_timeout %v: derived **TakeoverAfter %v**", t.HeartbeatInterval, t.FailureTimeout, t.WatchdogTimeout, t.Derive().TakeoverAfter)
}
