package integration

// Root tests of the package runner on the real kernel: each node is a
// network namespace on a bridge (in a namespace of its own) with an
// observer host beside it; the package's filesystem is ext4 on a loop
// device; its service is this test binary serving TCP on the package's
// address inside the node's namespace.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
	"github.com/mtcluster/mtc/test/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The test binary is also the package's service: with MTC_PKGTEST_SERVE
// set it serves TCP there, answering each connection with
// MTC_PKGTEST_NAME, and appends a line to MTC_PKGTEST_DATA per connection.
func init() {
	if addr := os.Getenv("MTC_PKGTEST_CHECK"); addr != "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "health check:", err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	addr := os.Getenv("MTC_PKGTEST_SERVE")
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Println("serving on", addr)
	data, err := os.OpenFile(os.Getenv("MTC_PKGTEST_DATA"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "data file:", err)
		os.Exit(2)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		fmt.Fprintln(data, "served", c.RemoteAddr())
		data.Sync()
		fmt.Fprintln(c, os.Getenv("MTC_PKGTEST_NAME"))
		c.Close()
	}
}

// segment is a bridge with hosts on it, each in its own namespace with
// eth0 and fixed addresses 10.214.0.N/24 and fd14::N/64.
type segment struct {
	t      testing.TB
	id     string
	bridge string // namespace of the bridge
	hosts  map[string]int
}

func newSegment(t testing.TB, hosts ...string) *segment {
	t.Helper()
	requireTools(t)
	s := &segment{t: t, id: newUUID()[:6], hosts: map[string]int{}}
	s.bridge = "mtcpb-" + s.id
	run(t, "ip", "netns", "add", s.bridge)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.bridge).Run() })
	run(t, "ip", "-n", s.bridge, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", s.bridge, "link", "set", "br0", "up")
	for i, h := range hosts {
		n := i + 1
		s.hosts[h] = n
		ns := s.ns(h)
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		port := fmt.Sprintf("p%d", n)
		run(t, "ip", "-n", s.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(t, "ip", "-n", s.bridge, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "address", fmt.Sprintf("02:14:00:00:00:%02x", n))
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.214.0.%d/24", n), "dev", "eth0")
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("fd14::%d/64", n), "dev", "eth0", "nodad")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	return s
}

func (s *segment) ns(host string) string { return "mtcp" + host + "-" + s.id }
func (s *segment) nsPath(host string) string {
	return "/run/netns/" + s.ns(host)
}
func (s *segment) mac(host string) string { return fmt.Sprintf("02:14:00:00:00:%02x", s.hosts[host]) }

// inNS runs f on a thread inside host's namespace (sockets created there
// stay there).
func (s *segment) inNS(host string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromPath(s.nsPath(host))
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer netns.Set(orig)
	return f()
}

// ask connects from host to addr and returns the first line it answers.
func (s *segment) ask(host, addr string) (string, error) {
	var c net.Conn
	err := s.inNS(host, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// neighbour returns the MAC host's neighbour table holds for ip.
func (s *segment) neighbour(host string, ip netip.Addr) string {
	ns, err := netns.GetFromPath(s.nsPath(host))
	if err != nil {
		s.t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		s.t.Fatal(err)
	}
	defer h.Close()
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns_, err := h.NeighList(0, fam)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, n := range ns_ {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && n.HardwareAddr != nil {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

// node is the runner of one host.
type node struct {
	name string
	os   *netres.Linux // for the test's own queries
	net  *netres.Manager
	pkg  *pkgrun.Package
}

func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// linuxProcs is the process supervisor edge, made once (it makes the test
// process a child subreaper).
var linuxProcs = sync.OnceValues(service.NewLinux)

func (s *segment) node(host string, spec pkgrun.Spec) *node {
	t := s.t
	t.Helper()
	o, err := netres.NewLinux(s.nsPath(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	log := testLogger(t).With("node", host)
	n, err := pkgrun.NewNode(context.Background(), pkgrun.NodeConfig{Node: host, NetNS: s.nsPath(host), SystemID: host, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	// Every service runs in the node's namespace.
	for i := range spec.Services {
		if spec.Services[i].Agent == nil {
			spec.Services[i].Argv = append([]string{"ip", "netns", "exec", s.ns(host)}, spec.Services[i].Argv...)
			if h := spec.Services[i].Health; h != nil {
				spec.Services[i].Health = append([]string{"ip", "netns", "exec", s.ns(host)}, h...)
			}
		}
	}
	return &node{name: host, os: o, net: n.Net, pkg: n.Package(spec, pkgrun.Options{Logger: log})}
}

// ext4 makes an ext4 filesystem on a new loop device and a mount point.
func ext4(t testing.TB) fsres.Filesystem {
	t.Helper()
	dev := testutil.NewLoopDevice(t, 512, 32<<20)
	run(t, "mkfs.ext4", "-q", dev.Path)
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("umount", mp).Run() })
	return fsres.Filesystem{Device: dev.Path, MountPoint: mp, Type: "ext4", Options: "noatime", UnmountTimeout: 4 * time.Second, KillHolders: true}
}

func vipSpec(t testing.TB, vip string, fs fsres.Filesystem, name string) pkgrun.Spec {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix(vip)
	return pkgrun.Spec{
		Name:        "web",
		Filesystems: []fsres.Filesystem{fs},
		Addresses:   []netres.Address{{Prefix: p, Interface: "eth0"}},
		Routes:      []netres.Route{{Dst: netip.MustParsePrefix("192.168.214.0/24"), Gateway: netip.MustParseAddr("10.214.0.9"), Metric: 50}},
		Services: []service.Spec{{
			Name: "tcp",
			Argv: []string{self, "-test.run=^$"},
			Env: []string{
				"MTC_PKGTEST_SERVE=" + net.JoinHostPort(p.Addr().String(), "7000"),
				"MTC_PKGTEST_NAME=" + name,
				"MTC_PKGTEST_DATA=" + filepath.Join(fs.MountPoint, "served.log"),
			},
			// The health check is the same binary, connecting.
			HealthEnv:      []string{"MTC_PKGTEST_CHECK=" + net.JoinHostPort(p.Addr().String(), "7000")},
			Health:         []string{self, "-test.run=^$"},
			HealthInterval: time.Second,
			HaltTimeout:    2 * time.Second,
		}},
		RunTimeout:  20 * time.Second,
		HaltTimeout: 20 * time.Second,
	}
}

func (nd *node) routes(t *testing.T) string {
	rs, err := nd.os.Routes(netres.MainTable)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return strings.Join(out, "; ")
}

func hasAddr(t *testing.T, nd *node, p string) bool {
	ok, err := nd.net.HasAddress(netres.Address{Prefix: netip.MustParsePrefix(p), Interface: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestPackageMovesBetweenNodes starts a package (VIP, route, ext4, TCP
// service) on one node, halts it, starts it on a second, and checks that
// an observer's ARP cache follows the address to the new node's MAC from
// the gratuitous ARP alone.
func TestPackageMovesBetweenNodes(t *testing.T) {
	seg := newSegment(t, "alpha", "beta", "obs")
	fs := ext4(t)
	const vip = "10.214.0.100/24"
	alpha := seg.node("alpha", vipSpec(t, vip, fs, "alpha"))
	beta := seg.node("beta", vipSpec(t, vip, fs, "beta"))
	ctx := context.Background()

	if err := alpha.pkg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range alpha.pkg.LastStart().Steps {
		t.Logf("alpha start: %-60s %s %v", s.Name, s.Outcome, s.Duration())
	}
	if got, err := seg.ask("obs", "10.214.0.100:7000"); err != nil || got != "alpha" {
		t.Fatalf("observer asked the VIP: %q, %v; want alpha", got, err)
	}
	if !strings.Contains(alpha.routes(t), "192.168.214.0/24 via 10.214.0.9 dev eth0 metric 50") {
		t.Errorf("alpha's routes: %s", alpha.routes(t))
	}
	vipAddr := netip.MustParsePrefix(vip).Addr()
	if got := seg.neighbour("obs", vipAddr); got != seg.mac("alpha") {
		t.Fatalf("observer's neighbour entry for the VIP: %q, want alpha's %s", got, seg.mac("alpha"))
	}

	if err := alpha.pkg.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	if hasAddr(t, alpha, vip) {
		t.Error("the VIP is still on alpha after the halt")
	}
	if strings.Contains(alpha.routes(t), "192.168.214.0/24") {
		t.Errorf("the route is still on alpha: %s", alpha.routes(t))
	}
	if _, mounted, _ := (fsres.Linux{}).MountedAt(fs.MountPoint); mounted {
		t.Error("the filesystem is still mounted after the halt")
	}

	if err := beta.pkg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The announcements ran before Start returned: the observer's cache
	// must already point at beta, before it sends anything itself.
	if got := seg.neighbour("obs", vipAddr); got != seg.mac("beta") {
		t.Errorf("observer's neighbour entry for the VIP after the move: %q, want beta's %s", got, seg.mac("beta"))
	}
	if got, err := seg.ask("obs", "10.214.0.100:7000"); err != nil || got != "beta" {
		t.Fatalf("observer asked the VIP after the move: %q, %v; want beta", got, err)
	}
	if err := beta.pkg.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range beta.pkg.LastHalt().Steps {
		t.Logf("beta halt: %-60s %s %v", s.Name, s.Outcome, s.Duration())
	}
	// Both nodes wrote through the same filesystem.
	run(t, "mount", fs.Device, fs.MountPoint)
	data, err := os.ReadFile(filepath.Join(fs.MountPoint, "served.log"))
	run(t, "umount", fs.MountPoint)
	// (The health checks' connections come from the nodes themselves.)
	if err != nil || strings.Count(string(data), "served 10.214.0.3:") != 2 {
		t.Errorf("served.log: %q, %v; want two connections from the observer", data, err)
	}
}

// TestAddressInUseRefused: the observer holds the address; the start is
// refused naming the observer's MAC, and the address is not added.
func TestAddressInUseRefused(t *testing.T) {
	seg := newSegment(t, "alpha", "obs")
	run(t, "ip", "-n", seg.ns("obs"), "addr", "add", "10.214.0.101/24", "dev", "eth0")
	spec := pkgrun.Spec{Name: "conflict", Addresses: []netres.Address{{Prefix: netip.MustParsePrefix("10.214.0.101/24"), Interface: "eth0"}}}
	alpha := seg.node("alpha", spec)
	err := alpha.pkg.Start(context.Background(), nil)
	var ce *netres.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("start: %v, want a conflict", err)
	}
	if ce.HardwareAddr.String() != seg.mac("obs") {
		t.Errorf("conflict names %s, want the observer's %s", ce.HardwareAddr, seg.mac("obs"))
	}
	if hasAddr(t, alpha, "10.214.0.101/24") {
		t.Error("the conflicting address was added")
	}
	if st, _ := alpha.pkg.State(); st != pkgrun.Halted {
		t.Errorf("state %s, want halted", st)
	}
}

// TestIPv6DAD: an IPv6 address is usable (not tentative) when the start
// returns, the observer's neighbour entry follows it to a second node by
// the unsolicited advertisements, and an address another host holds fails
// DAD and is removed.
func TestIPv6DAD(t *testing.T) {
	seg := newSegment(t, "alpha", "beta", "obs")
	const vip = "fd14::100/64"
	spec := pkgrun.Spec{Name: "v6", Addresses: []netres.Address{{Prefix: netip.MustParsePrefix(vip), Subnet: netip.MustParsePrefix("fd14::/64")}}}
	alpha, beta := seg.node("alpha", spec), seg.node("beta", spec)
	ctx := context.Background()
	if err := alpha.pkg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	as, err := alpha.os.Addrs("eth0")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range as {
		if a.Prefix.String() == vip {
			found = true
			if a.Tentative || a.DADFailed {
				t.Errorf("%s after start: tentative %v dadfailed %v", vip, a.Tentative, a.DADFailed)
			}
		}
	}
	if !found {
		t.Fatalf("%s not on alpha after the start", vip)
	}
	// The observer learns alpha's MAC by sending to the address.
	vipAddr := netip.MustParsePrefix(vip).Addr()
	err = seg.inNS("obs", func() error {
		c, err := net.Dial("udp", "[fd14::100]:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); seg.neighbour("obs", vipAddr) == "" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := seg.neighbour("obs", vipAddr); got != seg.mac("alpha") {
		t.Fatalf("observer's entry: %q, want alpha's %s", got, seg.mac("alpha"))
	}
	if err := alpha.pkg.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	if err := beta.pkg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := seg.neighbour("obs", vipAddr); got != seg.mac("beta") {
		t.Errorf("observer's entry after the move: %q, want beta's %s", got, seg.mac("beta"))
	}
	if err := beta.pkg.Halt(ctx); err != nil {
		t.Fatal(err)
	}

	// The observer holds fd14::101: DAD fails on alpha.
	run(t, "ip", "-n", seg.ns("obs"), "addr", "add", "fd14::101/64", "dev", "eth0", "nodad")
	cspec := pkgrun.Spec{Name: "v6c", Addresses: []netres.Address{{Prefix: netip.MustParsePrefix("fd14::101/64"), Interface: "eth0"}}}
	c := seg.node("alpha", cspec)
	err = c.pkg.Start(ctx, nil)
	var ce *netres.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("start of a duplicate IPv6 address: %v, want a conflict", err)
	}
	if hasAddr(t, c, "fd14::101/64") {
		t.Error("the duplicate address was left on alpha")
	}
}

// TestBusyUnmount: processes holding the filesystem (an open file, a
// working directory, one that ignores SIGTERM) are found through /proc and
// killed, and the halt completes.
func TestBusyUnmount(t *testing.T) {
	testutil.RequireRoot(t, "mounts a loop device")
	fs := ext4(t)
	procs, err := linuxProcs()
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	pkg := pkgrun.New(pkgrun.Spec{Name: "busy", Filesystems: []fsres.Filesystem{fs}, HaltTimeout: 10 * time.Second},
		pkgrun.Edges{Filesystems: fsres.NewManager(fsres.Linux{}, log), Scripts: func(ctx context.Context, sc service.Script) error {
			return service.RunScript(ctx, procs, log, sc)
		}}, pkgrun.Options{Logger: log})
	ctx := context.Background()
	if err := pkg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fs.MountPoint, "f"), []byte("x\n"), 0o644)
	holders := []*exec.Cmd{
		exec.Command("tail", "-f", filepath.Join(fs.MountPoint, "f")),
		exec.Command("sleep", "600"),
		exec.Command("sh", "-c", "trap '' TERM; sleep 600"),
	}
	holders[1].Dir = fs.MountPoint
	holders[2].Dir = fs.MountPoint
	for _, h := range holders {
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		defer h.Process.Kill()
	}
	waited := make(chan error, len(holders))
	for _, h := range holders {
		go func() { waited <- h.Wait() }()
	}
	// A started process opens its file a moment later (tail -f): wait
	// for every holder to show.
	var hs []fsres.Holder
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hs, err = fsres.Linux{}.Holders(fs.MountPoint)
		if (err == nil && len(hs) >= len(holders)) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(hs) < len(holders) {
		t.Fatalf("holders found: %v, %v; want at least %d", hs, err, len(holders))
	}
	if err := pkg.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	for range holders {
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			t.Fatal("a holder survived the halt")
		}
	}
	if _, mounted, _ := (fsres.Linux{}).MountedAt(fs.MountPoint); mounted {
		t.Error("still mounted")
	}
}

// TestOCFDummy drives Debian's ocf:heartbeat:Dummy through start,
// monitor and stop.
func TestOCFDummy(t *testing.T) {
	testutil.RequireRoot(t, "runs resource agents as root")
	agent, err := service.ParseAgent("ocf:heartbeat:Dummy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(agent.Path()); err != nil {
		if testutil.InCI() {
			t.Fatalf("%s: %v (CI=true): install resource-agents", agent.Path(), err)
		}
		t.Skipf("%s: %v: install Debian's resource-agents package to run this test", agent.Path(), err)
	}
	state := filepath.Join(t.TempDir(), "dummy.state")
	agent.Params = map[string]string{"state": state}
	agent.StartTimeout, agent.StopTimeout, agent.MonitorTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	procs, err := linuxProcs()
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	ctx := context.Background()
	monitor := func() int {
		code, err := agent.Action(ctx, procs, service.Cmd{Log: log}, "dummy-test", "monitor")
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := monitor(); code != service.OCFNotRunning {
		t.Fatalf("monitor before start: %s, want OCF_NOT_RUNNING", service.OCFCodeName(code))
	}
	sup := service.NewSupervisor(procs, "ocf", log)
	failed := make(chan error, 1)
	sup.OnFailed = func(_ string, err error) { failed <- err }
	spec := service.Spec{Name: "dummy", Agent: &agent, HealthInterval: 100 * time.Millisecond, Restarts: 1, RestartDelay: 10 * time.Millisecond}
	if err := sup.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("Dummy's state file after start: %v", err)
	}
	if code := monitor(); code != service.OCFSuccess {
		t.Errorf("monitor after start: %s", service.OCFCodeName(code))
	}
	// Remove the state behind the agent's back: the supervisor's monitor
	// sees OCF_NOT_RUNNING and restarts it.
	os.Remove(state)
	deadline := time.Now().Add(10 * time.Second)
	for sup.Status("dummy").Restarts == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := sup.Status("dummy"); st.Restarts != 1 || !strings.Contains(st.LastFailure, "OCF_NOT_RUNNING") {
		t.Errorf("after the state file vanished: %+v, want one restart after OCF_NOT_RUNNING", st)
	}
	for sup.Status("dummy").State != service.Running && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := sup.Stop(ctx, "dummy"); err != nil {
		t.Fatal(err)
	}
	if code := monitor(); code != service.OCFNotRunning {
		t.Errorf("monitor after stop: %s, want OCF_NOT_RUNNING", service.OCFCodeName(code))
	}
	select {
	case err := <-failed:
		t.Errorf("service reported failed: %v", err)
	default:
	}
}

// TestLinkWatcher reports a lost link on a watched interface.
func TestLinkWatcher(t *testing.T) {
	seg := newSegment(t, "alpha")
	o, err := netres.NewLinux(seg.nsPath("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, err := o.WatchLinks(ctx, []string{"eth0"})
	if err != nil {
		t.Fatal(err)
	}
	next := func() netres.LinkEvent {
		select {
		case ev := <-evs:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no link event")
		}
		return netres.LinkEvent{}
	}
	if ev := next(); !ev.Up {
		t.Fatalf("first event %s, want eth0 up", ev)
	}
	// Cutting the bridge side takes the carrier away.
	run(t, "ip", "-n", seg.bridge, "link", "set", "p1", "down")
	if ev := next(); ev.Up || ev.Interface != "eth0" {
		t.Fatalf("event %s, want eth0 down", ev)
	}
	run(t, "ip", "-n", seg.bridge, "link", "set", "p1", "up")
	if ev := next(); !ev.Up {
		t.Fatalf("event %s, want eth0 up again", ev)
	}
}

// TestNetresKernelTransitions applies addresses and routes (another table,
// a metric, IPv6) to a real namespace, each twice, and reads them back
// through the same netlink handle.
func TestNetresKernelTransitions(t *testing.T) {
	seg := newSegment(t, "alpha")
	o, err := netres.NewLinux(seg.nsPath("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	m := netres.NewManager(o, netres.Config{Announce: netres.AnnounceConfig{Count: 1}})
	ctx := context.Background()
	v4 := netres.Address{Prefix: netip.MustParsePrefix("10.214.0.77/24"), Interface: "eth0"}
	routes := []netres.Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.214.0.254"), Table: 100, Metric: 7},
		{Dst: netip.MustParsePrefix("172.16.0.0/12"), Interface: "eth0", Metric: 30},
		{Dst: netip.MustParsePrefix("fd99::/64"), Gateway: netip.MustParseAddr("fd14::fe"), Table: 100, Metric: 9},
	}
	list := func() string {
		var out []string
		for _, table := range []int{netres.MainTable, 100} {
			rs, err := o.Routes(table)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				for _, want := range routes {
					if r.Dst == want.Dst {
						out = append(out, r.String())
					}
				}
			}
		}
		return strings.Join(out, "\n")
	}
	for i := 0; i < 2; i++ {
		if err := m.AddAddress(ctx, v4); err != nil {
			t.Fatalf("AddAddress #%d: %v", i+1, err)
		}
		for _, r := range routes {
			if err := m.AddRoute(ctx, r); err != nil {
				t.Fatalf("AddRoute %s #%d: %v", r, i+1, err)
			}
		}
	}
	want := "172.16.0.0/12 dev eth0 metric 30\n0.0.0.0/0 via 10.214.0.254 dev eth0 table 100 metric 7\nfd99::/64 via fd14::fe dev eth0 table 100 metric 9"
	if got := list(); got != want {
		t.Errorf("routes:\n%s\nwant\n%s", got, want)
	}
	for i := 0; i < 2; i++ {
		for _, r := range routes {
			if err := m.RemoveRoute(ctx, r); err != nil {
				t.Fatalf("RemoveRoute %s #%d: %v", r, i+1, err)
			}
		}
		if err := m.RemoveAddress(ctx, v4); err != nil {
			t.Fatalf("RemoveAddress #%d: %v", i+1, err)
		}
	}
	if got := list(); got != "" {
		t.Errorf("routes left:\n%s", got)
	}
	if hasAddr(t, &node{net: m}, "10.214.0.77/24") {
		t.Error("address left")
	}
}

// TestFsckPolicyOnRealExt4: a filesystem marked with errors is repaired
// by the start's fsck and mounted; one that fsck -p cannot repair (its root
// inode cleared) is refused, and nothing is mounted.
func TestFsckPolicyOnRealExt4(t *testing.T) {
	testutil.RequireRoot(t, "makes and mounts ext4 on loop devices")
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("needs debugfs (e2fsprogs)")
	}
	ctx := context.Background()
	m := fsres.NewManager(fsres.Linux{}, testLogger(t))

	fs := ext4(t)
	run(t, "debugfs", "-w", "-R", "ssv state 2", fs.Device) // "not clean with errors"
	if err := m.Mount(ctx, fs); err != nil {
		t.Fatalf("mount of a repairable filesystem: %v", err)
	}
	if err := m.Unmount(ctx, fs); err != nil {
		t.Fatal(err)
	}

	bad := ext4(t)
	run(t, "debugfs", "-w", "-R", "clri <2>", bad.Device)
	// Marked as having errors, as the kernel does when it meets one, so
	// that fsck -p checks it rather than trusting the clean flag.
	run(t, "debugfs", "-w", "-R", "ssv state 2", bad.Device)
	err := m.Mount(ctx, bad)
	if !errors.Is(err, fsres.ErrFsck) {
		t.Fatalf("mount of a filesystem without a root inode: %v, want ErrFsck", err)
	}
	if _, mounted, _ := (fsres.Linux{}).MountedAt(bad.MountPoint); mounted {
		t.Error("mounted anyway")
	}
	// With fsck = never no check runs: the kernel's mount is what fails.
	bad.Fsck = fsres.FsckNever
	if err := m.Mount(ctx, bad); err == nil || errors.Is(err, fsres.ErrFsck) {
		t.Errorf("mount with fsck = never: %v, want the kernel's refusal", err)
	}
	m.Unmount(ctx, bad)
}

// TestSimultaneousProbes: of two hosts probing for the same free address
// at the same time, at most one goes ahead (RFC 5227 section 2.1.1: a probe
// from another host for the address is a conflict); the one that sees the
// other's probe names its MAC.
func TestSimultaneousProbes(t *testing.T) {
	seg := newSegment(t, "alpha", "beta")
	ip := netip.MustParseAddr("10.214.0.150")
	cfg := netres.ProbeConfig{Count: 4, Interval: 50 * time.Millisecond, Wait: 100 * time.Millisecond}
	type result struct {
		host string
		err  error
	}
	results := make(chan result, 2)
	for _, h := range []string{"alpha", "beta"} {
		o, err := netres.NewLinux(seg.nsPath(h))
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		l, err := o.Link("eth0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { results <- result{h, o.ProbeARP(context.Background(), l, ip, cfg)} }()
	}
	other := map[string]string{"alpha": "beta", "beta": "alpha"}
	conflicts := 0
	for range 2 {
		r := <-results
		if r.err == nil {
			continue
		}
		var ce *netres.ConflictError
		if !errors.As(r.err, &ce) {
			t.Fatalf("%s: %v", r.host, r.err)
		}
		conflicts++
		if ce.HardwareAddr.String() != seg.mac(other[r.host]) {
			t.Errorf("%s's conflict names %s, want %s's %s", r.host, ce.HardwareAddr, other[r.host], seg.mac(other[r.host]))
		}
	}
	if conflicts == 0 {
		t.Error("both probers would take the address")
	}
}
