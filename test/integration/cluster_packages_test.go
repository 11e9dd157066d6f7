package integration

// Root tests of the cluster running a real package. Three daemons, each in
// its own network namespace, run package "web": an address (the VIP) on
// the heartbeat bridge's subnet, an ext4 filesystem on one loop device
// that every node can mount, and a TCP service (this test binary) that
// answers every connection with the name of its node and appends a line
// per connection to a file on that filesystem.
//
// Shared storage. All namespaces share one kernel, so "shared storage" is
// one loop device. Each daemon runs under `ip netns exec`, which gives it
// a mount namespace of its own (a slave of the test's): the package's
// mount is seen by that daemon and its services only, and it ends when the
// last process of that mount namespace exits.
//
// What the checks rest on. An observer namespace on the bridge connects to
// the VIP every probeEvery and records which node answered; a sampler
// reads, every sampleEvery, the kernel's state of every node namespace:
// whether the VIP is on one of its interfaces (netlink) and whether any
// process of the namespace sees the filesystem mounted (/proc/PID/
// mountinfo). The tests assert on those observations, derived from the
// package's definition and the commands given, not on what the daemons
// claim; the daemons' status is only used to wait and to log. Downtimes
// are logged, never asserted.
//
// A crashed server (crashServer) is simulated as the machine's reset
// would leave it: its link goes down, its daemon is killed by SIGKILL,
// every process left in its namespace is killed (the package's services,
// which run in sessions of their own and which the process watchdog,
// killing the daemon's process group only, would leave running; and the
// watchdog supervisor), which ends its mount namespace and so its mount,
// and the VIP is removed from its interface. In the host there is no SCSI
// persistent reservation to fence it, so the survivors wait for its
// watchdog deadline before they take its packages over.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/daemon"
)

// The web package's address (10.213.0.webVIPHost) and port, the
// observer's host number on the heartbeat bridge (node addresses are
// 10.213.0.ID), how often it probes the VIP, how long a probe waits for
// the answer, how many probes may be in flight, and how often the sampler
// reads the namespaces.
const (
	webVIPHost  = 100
	webPort     = 7000
	observerNum = 200
	probeEvery  = 15 * time.Millisecond
	probeWait   = 150 * time.Millisecond
	probers     = 16
	sampleEvery = 25 * time.Millisecond
)

// The test binary is also the web package's service: with MTC_CLTEST_SERVE
// set it listens there, answers every connection with the name of the node
// it runs on (n<ID>, from its heartbeat address) on a line, then the
// incarnation and epoch of the start that runs it (MTC_INCARNATION,
// MTC_EPOCH, from the daemon) on a second line, and appends "<node>
// <client> <incarnation> <epoch>" to MTC_CLTEST_DATA, synced before it
// answers. While the file
// MTC_CLTEST_FAIL/<node> exists it exits at once with status 3 (at start,
// or within 20 ms while it runs): a service that keeps failing on that
// node only. MTC_CLTEST_TAG only marks its processes for the test's
// cleanup.
func init() {
	addr := os.Getenv("MTC_CLTEST_SERVE")
	if addr == "" {
		return
	}
	os.Exit(serveWeb(addr, os.Getenv("MTC_CLTEST_DATA"), os.Getenv("MTC_CLTEST_FAIL")))
}

func serveWeb(addr, dataPath, failDir string) int {
	name, err := webNodeName()
	if err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		return 2
	}
	failFile := filepath.Join(failDir, name)
	failing := func() bool {
		_, err := os.Stat(failFile)
		return err == nil
	}
	if failing() {
		fmt.Fprintln(os.Stderr, "web: failing on purpose:", failFile, "exists")
		return 3
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "web: listen:", err)
		return 2
	}
	data, err := os.OpenFile(dataPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "web: data file:", err)
		return 2
	}
	go func() {
		for range time.Tick(20 * time.Millisecond) {
			if failing() {
				fmt.Fprintln(os.Stderr, "web: failing on purpose:", failFile, "exists")
				os.Exit(3)
			}
		}
	}()
	start := os.Getenv("MTC_INCARNATION") + " " + os.Getenv("MTC_EPOCH")
	fmt.Println("web: node", name, "serving on", addr, "for the start", start)
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "web: accept:", err)
			return 1
		}
		fmt.Fprintf(data, "%s %s %s\n", name, c.RemoteAddr(), start)
		if err := data.Sync(); err != nil {
			fmt.Fprintln(os.Stderr, "web: sync:", err)
			return 1
		}
		fmt.Fprintf(c, "%s\n%s\n", name, start)
		c.Close()
	}
}

// webNodeName is n<ID> of the heartbeat address 10.213.0.ID this process's
// namespace holds (the VIP and the observer's numbers are above the IDs).
func webNodeName() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || !p.Addr().Is4() {
			continue
		}
		b := p.Addr().As4()
		if fmt.Sprintf(subnetFmt, 0, b[3]) == p.Addr().String() && b[3] > 0 && b[3] < webVIPHost {
			return fmt.Sprintf("n%d", b[3]), nil
		}
	}
	return "", fmt.Errorf("no heartbeat address among %v", addrs)
}

// webCluster is a three-node cluster running package web, with its
// observer and sampler.
type webCluster struct {
	*Cluster
	t       *testing.T
	obs     string // the observer's namespace
	vip     netip.Prefix
	mnt     string // the filesystem's mount point
	dev     string // its loop device
	failDir string
	tag     string // MTC_CLTEST_TAG in the services' environment
	watch   *watcher
}

// webOptions change the package file.
type webOptions struct {
	// Restarts is the service's restart limit.
	Restarts int
	// Nets is the number of heartbeat networks (0: one); the package's
	// address is on the first.
	Nets int
	// Cluster are more options of the cluster (WithFreezableDisk, ...).
	Cluster []ClusterOption
	// Fsck is the filesystem's fsck policy ("": the default).
	Fsck string
	// NoWait returns without waiting until every node holds quorum.
	NoWait bool
}

// newWebCluster starts a three-node cluster with package web on the
// aggressive profile (the shortest watchdog deadline, which a host
// failover waits for), the observer and the sampler, and waits until
// every node holds quorum.
func newWebCluster(t *testing.T, o webOptions) *webCluster {
	t.Helper()
	requireTools(t)
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed: install e2fsprogs to run this test")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := &webCluster{t: t, vip: netip.MustParsePrefix(fmt.Sprintf(subnetFmt+"/%d", 0, webVIPHost, prefixLen)), tag: newUUID()}
	// Cleanups run last in, first out: these run after the cluster's own
	// (the daemons stopped, the namespaces deleted).
	w.dev = newTestLoop(t)
	run(t, "mkfs.ext4", "-q", w.dev)
	w.mnt = filepath.Join(t.TempDir(), "web")
	w.failDir = filepath.Join(t.TempDir(), "fail")
	for _, d := range []string{w.mnt, w.failDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { w.killLeftovers() })

	pkg := fmt.Sprintf(`name = "web"
description = "integration test web service"
nodes = ["n1", "n2", "n3"]
failover_policy = "configured_node"

[[ip]]
address = %q
interface = "eth0"

[[filesystem]]
device = %q
mount_point = %q
type = "ext4"
options = "noatime"
unmount_timeout = "5s"
%s

[[service]]
name = "http"
command = [%q, "-test.run=^$"]
environment = { MTC_CLTEST_SERVE = %q, MTC_CLTEST_DATA = %q, MTC_CLTEST_FAIL = %q, MTC_CLTEST_TAG = %q }
restarts = %d
restart_delay = "100ms"
max_restart_delay = "200ms"
halt_timeout = "2s"
`, w.vip.String(), w.dev, w.mnt, fsckLine(o.Fsck), self, net.JoinHostPort(w.vip.Addr().String(), strconv.Itoa(webPort)),
		filepath.Join(w.mnt, "served.log"), w.failDir, w.tag, o.Restarts)
	w.Cluster = NewClusterNets(t, 3, max(1, o.Nets), aggressiveProfile, append(slices.Clone(o.Cluster), WithPackages(map[string]string{"web.toml": pkg}))...)
	w.obs = w.AddHost(0, observerNum)
	w.watch = w.startWatcher()
	t.Cleanup(w.watch.stop)
	if !o.NoWait {
		w.WaitAllQuorate(w.Nodes...)
	}
	return w
}

func fsckLine(policy string) string {
	if policy == "" {
		return ""
	}
	return fmt.Sprintf("fsck = %q", policy)
}

// newTestLoop is a 32 MiB loop device for the package's filesystem. It is
// detached in t.Cleanup once no mount of it is left in any namespace.
func newTestLoop(t *testing.T) string {
	img := filepath.Join(t.TempDir(), "web.img")
	run(t, "truncate", "-s", "32M", img)
	dev := run(t, "losetup", "--find", "--show", img)
	t.Cleanup(func() {
		// A mount namespace's mounts go when its last process has
		// exited; the kernel may take a moment more to release the
		// device (an exclusive open succeeds once it has).
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL, 0); err == nil {
				unix.Close(fd)
				break
			}
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// killLeftovers kills every process whose environment carries this test's
// tag (a service a failed test left behind) and waits until none is left
// alive (zombies have released their namespaces).
func (w *webCluster) killLeftovers() {
	marker := []byte("MTC_CLTEST_TAG=" + w.tag + "\x00")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left := 0
		for _, pid := range procPIDs() {
			env, err := os.ReadFile("/proc/" + pid + "/environ")
			if err != nil || !strings.Contains(string(env), string(marker)) || zombie(pid) {
				continue
			}
			left++
			if n, err := strconv.Atoi(pid); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
		if left == 0 {
			return
		}
	}
	w.t.Errorf("processes of the web service survive SIGKILL")
}

func procPIDs() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if n := e.Name(); n[0] >= '0' && n[0] <= '9' {
			out = append(out, n)
		}
	}
	return out
}

func zombie(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// webView is package web in nd's status.
func webView(s daemon.Status) (daemon.PackageView, bool) {
	for _, p := range s.Packages {
		if p.Name == "web" {
			return p, true
		}
	}
	return daemon.PackageView{}, false
}

// runsOn reports whether nd's own status says web runs on nd and the
// observer's latest answer came from nd.
func (w *webCluster) runsOn(nd *Node) bool {
	return statusRunsOn(nd) && w.watch.lastAnswer() == nd.Name
}

// statusRunsOn reports whether nd's own status says web runs on nd.
func statusRunsOn(nd *Node) bool {
	s, err := nd.Status()
	if err != nil {
		return false
	}
	v, ok := webView(s)
	return ok && v.Owner == nd.Name && v.State == "running"
}

// waitRunsOn waits until web runs on nd, by its status and the observer.
func (w *webCluster) waitRunsOn(nd *Node) {
	w.t.Helper()
	w.WaitFor("web runs on "+nd.Name+" and answers the observer", func() bool { return w.runsOn(nd) })
}

// waitStarted waits until web runs on some node and returns it.
func (w *webCluster) waitStarted() *Node {
	w.t.Helper()
	var owner *Node
	w.WaitFor("web runs somewhere and answers the observer", func() bool {
		for _, nd := range w.Nodes {
			if !nd.Exited() && w.runsOn(nd) {
				owner = nd
				return true
			}
		}
		return false
	})
	return owner
}

// nextAfter is the node configured_node places web on when owner cannot
// run it: the first other node of its list (n1, n2, n3), excluding skip.
func (w *webCluster) nextAfter(skip ...*Node) *Node {
	for _, nd := range w.Nodes {
		if !slices.Contains(skip, nd) {
			return nd
		}
	}
	w.t.Fatal("no node left")
	return nil
}

// opResult is the outcome of an operator command.
type opResult struct {
	Exit   int
	Intent daemon.IntentResult
	Out    string
}

// mtc runs an operator command from the observer's namespace (an admin
// host on the heartbeat network), asking node via, with --json.
func (w *webCluster) mtc(via string, args ...string) opResult {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitBound)
	defer cancel()
	argv := append([]string{"netns", "exec", w.obs, binary(w.t)}, args...)
	argv = append(argv, "--config", w.cfgPath, "--via", via, "--json")
	cmd := exec.CommandContext(ctx, "ip", argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	r := opResult{Out: strings.TrimSpace(string(out) + "\n" + stderr.String())}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
	case err != nil:
		w.t.Fatalf("mtc %v: %v", args, err)
	}
	_ = json.Unmarshal(out, &r.Intent)
	w.t.Logf("mtc %s (via %s): exit %d, outcome %q in %v (intent %d, coordinator %s) %s",
		strings.Join(args, " "), via, r.Exit, r.Intent.Outcome, r.Intent.Took.Round(time.Millisecond), r.Intent.ID, r.Intent.Coordinator, r.Intent.Reason)
	return r
}

// mustDone runs an operator command that must succeed with outcome done
// (or, for a command without a goal, committed with --wait 0).
func (w *webCluster) mustDone(via string, args ...string) daemon.IntentResult {
	w.t.Helper()
	r := w.mtc(via, args...)
	if r.Exit != 0 || (r.Intent.Outcome != daemon.OutcomeDone && r.Intent.Outcome != daemon.OutcomeCommitted) {
		w.t.Fatalf("mtc %v: exit %d, outcome %q, want exit 0 and done:\n%s", args, r.Exit, r.Intent.Outcome, r.Out)
	}
	return r.Intent
}

// crashServer simulates the sudden death of nd's server (see the file
// comment): link down, daemon killed, every process of its namespace
// killed, the VIP gone. It returns when nothing of it runs.
func (w *webCluster) crashServer(nd *Node) {
	t := w.t
	t.Helper()
	run(t, "ip", "-n", nd.NS, "link", "set", "eth0", "down")
	nd.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pids := strings.Fields(run(t, "ip", "netns", "pids", nd.NS))
		alive := 0
		for _, p := range pids {
			if zombie(p) {
				continue
			}
			alive++
			if n, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
		if alive == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of %s's namespace survive SIGKILL", pids, nd.Name)
		}
	}
	// What the reset clears: the address the package had added.
	_ = exec.Command("ip", "-n", nd.NS, "addr", "del", w.vip.String(), "dev", "eth0").Run()
	t.Logf("%s crashed: link down, daemon and every process of its namespace killed, VIP removed", nd.Name)
}

// servedLog reads the data file through the mount namespace of nd's
// daemon (which has the filesystem mounted while web runs there).
func (w *webCluster) servedLog(nd *Node) string {
	w.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", nd.PID(), filepath.Join(w.mnt, "served.log")))
	if err != nil {
		w.t.Fatalf("the data file through %s's mount namespace: %v", nd.Name, err)
	}
	return string(b)
}

// finish stops the observer and sampler and checks what they saw: the
// nodes that answered, in order, are owners; no sample shows the VIP or the
// mount on two nodes; the data file on the filesystem, read on the last
// owner, holds a line for every answer. It logs the downtimes.
func (w *webCluster) finish(owners ...*Node) []switchover {
	w.t.Helper()
	last := owners[len(owners)-1]
	// Let the observer see the last owner a little longer.
	time.Sleep(20 * probeEvery)
	probes, samples, err := w.watch.stopAndGet()
	if err != nil {
		w.t.Errorf("the sampler: %v", err)
	}
	want := names(owners...)
	if err := checkAnswers(probes, want); err != nil {
		w.t.Error(err)
	}
	if err := checkExclusive(samples); err != nil {
		w.t.Error(err)
	}
	if err := checkHolders(samples, want); err != nil {
		w.t.Error(err)
	}
	if err := checkServedLog(w.servedLog(last), probes, want); err != nil {
		w.t.Error(err)
	}
	sw := switchovers(probes)
	var took []time.Duration
	for _, p := range probes {
		if p.Node != "" {
			took = append(took, p.Took)
		}
	}
	slices.Sort(took)
	if len(took) > 0 {
		w.t.Logf("observer: %d probes, %d answered in %v (median) to %v (max); sampler: %d samples of %d nodes",
			len(probes), len(took), took[len(took)/2].Round(10*time.Microsecond), took[len(took)-1].Round(10*time.Microsecond), len(samples), len(w.Nodes))
	}
	for _, s := range sw {
		w.t.Logf("downtime %s -> %s: %v (last answer of %s at %v, first of %s at %v; %d probes unanswered between)",
			s.From, s.To, s.Downtime(), s.From, s.Last.Round(time.Millisecond), s.To, s.First.Round(time.Millisecond), s.Failed)
	}
	return sw
}

// logFailover logs the failover timeline of web in nd's status.
func logFailover(t *testing.T, nd *Node) {
	s, err := nd.Status()
	if err != nil {
		t.Errorf("status of %s: %v", nd.Name, err)
		return
	}
	v, _ := webView(s)
	if f := v.Failover; f != nil {
		t.Logf("failover timeline on %s: %s -> %s, lost at %s; taken over (%s) +%v, claimed +%v, start ordered +%v, running +%v",
			nd.Name, f.From, f.To, f.Lost.Format(time.StampMilli), f.Reason, f.TakenOver.Round(time.Millisecond), f.Claimed.Round(time.Millisecond),
			f.Started.Round(time.Millisecond), f.Running.Round(time.Millisecond))
	} else {
		t.Logf("%s's status has no failover timeline for web", nd.Name)
	}
	if v.LastStart != nil {
		for _, st := range v.LastStart.Steps {
			t.Logf("  start step on %s: %-50s %s %v", nd.Name, st.Name, st.Outcome, st.Duration())
		}
	}
}

// ---- Observations and their checks (pure) ----

// probe is one connection attempt of the observer to the VIP: At since
// the observer started; Node the answer ("" when none).
type probe struct {
	At   time.Duration
	Node string
	Err  string
	Took time.Duration
}

// sample is the kernel's state of every node namespace at one moment:
// the nodes holding the VIP, and those where the filesystem is mounted.
type sample struct {
	At      time.Duration
	VIP     []string
	Mounted []string
}

// switchover is a change of the answering node: Last is the last answer
// of From, First the first of To, Failed the probes between.
type switchover struct {
	From, To    string
	Last, First time.Duration
	Failed      int
}

// Downtime is the time between the last answer of the old node and the
// first of the new one.
func (s switchover) Downtime() time.Duration { return s.First - s.Last }

// checkAnswers checks that the nodes that answered, with repeats
// collapsed, are want in order: once another node has answered, the one
// before never answers again.
func checkAnswers(ps []probe, want []string) error {
	var seq []string
	var at []time.Duration
	for _, p := range ps {
		if p.Node == "" {
			continue
		}
		if len(seq) == 0 || seq[len(seq)-1] != p.Node {
			seq = append(seq, p.Node)
			at = append(at, p.At)
		}
	}
	if !slices.Equal(seq, want) {
		var b strings.Builder
		for i := range seq {
			fmt.Fprintf(&b, " %s@%v", seq[i], at[i].Round(time.Millisecond))
		}
		return fmt.Errorf("the observer got answers from%s; want answers from %v in that order, each only until the next took over", b.String(), want)
	}
	return nil
}

// checkExclusive checks that no sample shows the VIP, or the filesystem
// mounted, on two nodes at once.
func checkExclusive(ss []sample) error {
	var errs []error
	for _, s := range ss {
		if len(s.VIP) > 1 {
			errs = append(errs, fmt.Errorf("at %v the VIP is on %v at once", s.At.Round(time.Millisecond), s.VIP))
		}
		if len(s.Mounted) > 1 {
			errs = append(errs, fmt.Errorf("at %v the filesystem is mounted on %v at once", s.At.Round(time.Millisecond), s.Mounted))
		}
		if len(errs) >= 5 {
			break
		}
	}
	return errors.Join(errs...)
}

// checkHolders checks that the nodes the samples show holding the VIP,
// and those showing the filesystem mounted, with repeats and empty samples
// collapsed, are want in order: the sampler saw every owner, and only
// them.
func checkHolders(ss []sample, want []string) error {
	var vip, mnt []string
	add := func(seq []string, nodes []string) []string {
		if len(nodes) == 1 && (len(seq) == 0 || seq[len(seq)-1] != nodes[0]) {
			seq = append(seq, nodes[0])
		}
		return seq
	}
	for _, s := range ss {
		vip, mnt = add(vip, s.VIP), add(mnt, s.Mounted)
	}
	var errs []error
	if !slices.Equal(vip, want) {
		errs = append(errs, fmt.Errorf("the sampler saw the VIP on %v in that order, want %v", vip, want))
	}
	if !slices.Equal(mnt, want) {
		errs = append(errs, fmt.Errorf("the sampler saw the filesystem mounted on %v in that order, want %v", mnt, want))
	}
	return errors.Join(errs...)
}

// checkServedLog checks the data file against the answers: a service
// syncs its line before it answers, so the file holds, for every node, at
// least as many lines as answers came from it, and its lines' nodes, with
// repeats collapsed, are want in order (the later owners appended to what
// the earlier ones wrote).
func checkServedLog(log string, ps []probe, want []string) error {
	lines := map[string]int{}
	var seq []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		node, _, _ := strings.Cut(sc.Text(), " ")
		lines[node]++
		if len(seq) == 0 || seq[len(seq)-1] != node {
			seq = append(seq, node)
		}
	}
	answers := map[string]int{}
	for _, p := range ps {
		if p.Node != "" {
			answers[p.Node]++
		}
	}
	var errs []error
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for n := range answers {
			if !yield(n) {
				return
			}
		}
	}) {
		if lines[n] < answers[n] {
			errs = append(errs, fmt.Errorf("the data file holds %d lines of %s, but %s answered %d times: acknowledged writes were lost", lines[n], n, n, answers[n]))
		}
	}
	if !slices.Equal(seq, want) {
		errs = append(errs, fmt.Errorf("the data file's lines come from %v in that order, want %v", seq, want))
	}
	return errors.Join(errs...)
}

// switchovers are the changes of the answering node.
func switchovers(ps []probe) []switchover {
	var out []switchover
	var last *probe
	failed := 0
	for i := range ps {
		p := &ps[i]
		if p.Node == "" {
			failed++
			continue
		}
		if last != nil && last.Node != p.Node {
			out = append(out, switchover{From: last.Node, To: p.Node, Last: last.At, First: p.At, Failed: failed})
		}
		last, failed = p, 0
	}
	return out
}

// ---- The observer and the sampler ----

type watcher struct {
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu      sync.Mutex
	probes  []probe
	samples []sample
	errs    []error
}

func (w *webCluster) startWatcher() *watcher {
	wt := &watcher{start: time.Now(), done: make(chan struct{})}
	addr := net.JoinHostPort(w.vip.Addr().String(), strconv.Itoa(webPort))
	// The observer: a ticker hands a probe every probeEvery to one of
	// probers, goroutines locked to threads in the observer's namespace
	// and never unlocked (each thread ends with its goroutine), so that a
	// probe waiting for its timeout does not delay the next one. A tick
	// that finds every prober busy is skipped.
	obsNS, err := netns.GetFromPath("/run/netns/" + w.obs)
	if err != nil {
		w.t.Fatal(err)
	}
	defer obsNS.Close()
	ticks := make(chan time.Duration)
	ready := make(chan error, probers)
	for range probers {
		wt.wg.Add(1)
		go func() {
			defer wt.wg.Done()
			runtime.LockOSThread()
			if err := netns.Set(obsNS); err != nil {
				ready <- err
				return
			}
			ready <- nil
			for {
				var at time.Duration
				select {
				case <-wt.done:
					return
				case at = <-ticks:
				}
				node, err := askVIP(addr)
				p := probe{At: at, Node: node, Took: time.Since(wt.start) - at}
				if err != nil {
					p.Err = err.Error()
				}
				wt.mu.Lock()
				i, _ := slices.BinarySearchFunc(wt.probes, at, func(q probe, at time.Duration) int { return int(q.At - at) })
				wt.probes = slices.Insert(wt.probes, i, p)
				wt.mu.Unlock()
			}
		}()
	}
	for range probers {
		if err := <-ready; err != nil {
			w.t.Fatal(err)
		}
	}
	wt.wg.Add(1)
	go func() {
		defer wt.wg.Done()
		tk := time.NewTicker(probeEvery)
		defer tk.Stop()
		for {
			select {
			case <-wt.done:
				return
			case <-tk.C:
			}
			select {
			case ticks <- time.Since(wt.start):
			default:
			}
		}
	}()

	// The sampler: netlink handles in every node's namespace, and the
	// mount namespaces of the processes in them.
	type nodeNS struct {
		name string
		h    *netlink.Handle
		net  string // readlink form of its network namespace
	}
	var nss []nodeNS
	for _, nd := range w.Nodes {
		ns, err := netns.GetFromPath("/run/netns/" + nd.NS)
		if err != nil {
			w.t.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			w.t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/run/netns/"+nd.NS, &st); err != nil {
			w.t.Fatal(err)
		}
		nss = append(nss, nodeNS{name: nd.Name, h: h, net: fmt.Sprintf("net:[%d]", st.Ino)})
	}
	byNet := map[string]string{}
	for _, n := range nss {
		byNet[n.net] = n.name
	}
	wt.wg.Add(1)
	go func() {
		defer wt.wg.Done()
		defer func() {
			for _, n := range nss {
				n.h.Close()
			}
		}()
		for {
			select {
			case <-wt.done:
				return
			case <-time.After(sampleEvery):
			}
			s := sample{At: time.Since(wt.start)}
			for _, n := range nss {
				addrs, err := n.h.AddrList(nil, netlink.FAMILY_V4)
				if err != nil {
					wt.fail(fmt.Errorf("addresses of %s: %w", n.name, err))
					continue
				}
				if slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(w.vip.Addr().AsSlice()) }) {
					s.VIP = append(s.VIP, n.name)
				}
			}
			s.Mounted = mountedOn(w.mnt, byNet)
			wt.mu.Lock()
			wt.samples = append(wt.samples, s)
			wt.mu.Unlock()
		}
	}()
	return wt
}

// askVIP connects to addr and returns the first line of the answer.
func askVIP(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, probeWait)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeWait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// mountedOn returns the nodes (network namespaces in byNet) where some
// process sees a mount at mnt, in name order.
func mountedOn(mnt string, byNet map[string]string) []string {
	seen := map[string]bool{} // node and mount namespace already read
	var out []string
	for _, pid := range procPIDs() {
		nl, err := os.Readlink("/proc/" + pid + "/ns/net")
		if err != nil {
			continue
		}
		node, ok := byNet[nl]
		if !ok || slices.Contains(out, node) {
			continue
		}
		ml, err := os.Readlink("/proc/" + pid + "/ns/mnt")
		if err != nil || seen[node+" "+ml] {
			continue
		}
		seen[node+" "+ml] = true
		b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[4] == mnt {
				out = append(out, node)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func (wt *watcher) fail(err error) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if len(wt.errs) < 5 {
		wt.errs = append(wt.errs, err)
	}
}

// now is the time since the watcher started (the observations' clock).
func (wt *watcher) now() time.Duration { return time.Since(wt.start) }

// lastAnswer is the node of the latest probe, "" when it got no answer.
func (wt *watcher) lastAnswer() string {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if len(wt.probes) == 0 {
		return ""
	}
	return wt.probes[len(wt.probes)-1].Node
}

// firstAnswer is the time of the first answer from node at or after from
// (-1: none yet).
func (wt *watcher) firstAnswer(node string, from time.Duration) time.Duration {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	for _, p := range wt.probes {
		if p.At >= from && p.Node == node {
			return p.At
		}
	}
	return -1
}

// snapshot copies the observations so far.
func (wt *watcher) snapshot() ([]probe, []sample) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return slices.Clone(wt.probes), slices.Clone(wt.samples)
}

func (wt *watcher) stop() {
	wt.once.Do(func() { close(wt.done) })
	wt.wg.Wait()
}

// stopAndGet stops the observer and the sampler and returns what they
// saw, and an error when the sampler could not read a namespace (its
// samples are then incomplete).
func (wt *watcher) stopAndGet() ([]probe, []sample, error) {
	wt.stop()
	p, s := wt.snapshot()
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return p, s, errors.Join(wt.errs...)
}

// quietSince checks that from `from` on the observer got no answer and no
// sample shows the VIP or the mount on any node.
func quietSince(ps []probe, ss []sample, from time.Duration) error {
	var errs []error
	for _, p := range ps {
		if p.At >= from && p.Node != "" {
			errs = append(errs, fmt.Errorf("at %v %s answered on the VIP", p.At.Round(time.Millisecond), p.Node))
			break
		}
	}
	for _, s := range ss {
		if s.At >= from && (len(s.VIP) > 0 || len(s.Mounted) > 0) {
			errs = append(errs, fmt.Errorf("at %v the VIP is on %v and the filesystem mounted on %v", s.At.Round(time.Millisecond), s.VIP, s.Mounted))
			break
		}
	}
	return errors.Join(errs...)
}

// ---- The tests ----

// TestWebObservationChecks: the checks the cluster tests rest on catch
// violations planted in made-up observations.
func TestWebObservationChecks(t *testing.T) {
	ms := time.Millisecond
	good := []probe{{10 * ms, "n1", "", 0}, {20 * ms, "n1", "", 0}, {30 * ms, "", "timeout", 0}, {90 * ms, "n2", "", 0}, {100 * ms, "n2", "", 0}}
	if err := checkAnswers(good, []string{"n1", "n2"}); err != nil {
		t.Errorf("a clean failover: %v", err)
	}
	if sw := switchovers(good); len(sw) != 1 || sw[0].Downtime() != 70*ms || sw[0].Failed != 1 {
		t.Errorf("switchovers %+v, want one of 70ms after one failed probe", sw)
	}
	flap := append(slices.Clone(good), probe{110 * ms, "n1", "", 0})
	if err := checkAnswers(flap, []string{"n1", "n2"}); err == nil {
		t.Error("the old owner answering again after the new one was not caught")
	}
	if err := checkAnswers(good[:2], []string{"n1", "n2"}); err == nil {
		t.Error("no answer from the new owner was not caught")
	}
	if err := checkExclusive([]sample{{At: ms, VIP: []string{"n1"}, Mounted: []string{"n1"}}, {At: 2 * ms}}); err != nil {
		t.Errorf("exclusive samples: %v", err)
	}
	if err := checkExclusive([]sample{{At: ms, VIP: []string{"n1", "n2"}}}); err == nil {
		t.Error("the VIP on two nodes was not caught")
	}
	if err := checkExclusive([]sample{{At: ms, Mounted: []string{"n1", "n3"}}}); err == nil {
		t.Error("the filesystem mounted on two nodes was not caught")
	}
	moved := []sample{{At: ms, VIP: []string{"n1"}, Mounted: []string{"n1"}}, {At: 2 * ms}, {At: 3 * ms, Mounted: []string{"n2"}}, {At: 4 * ms, VIP: []string{"n2"}, Mounted: []string{"n2"}}}
	if err := checkHolders(moved, []string{"n1", "n2"}); err != nil {
		t.Errorf("a clean move: %v", err)
	}
	if err := checkHolders(moved[:2], []string{"n1", "n2"}); err == nil {
		t.Error("no sample of the new owner was not caught")
	}
	if err := checkHolders(append(slices.Clone(moved), sample{At: 5 * ms, VIP: []string{"n1"}}), []string{"n1", "n2"}); err == nil {
		t.Error("the VIP back on the old owner was not caught")
	}
	log := "n1 a\nn1 b\nn1 c\nn2 d\nn2 e\n"
	if err := checkServedLog(log, good, []string{"n1", "n2"}); err != nil {
		t.Errorf("a complete data file: %v", err)
	}
	if err := checkServedLog("n1 a\nn2 d\nn2 e\n", good, []string{"n1", "n2"}); err == nil {
		t.Error("a lost acknowledged write was not caught")
	}
	if err := checkServedLog("n2 d\nn1 a\nn1 b\nn2 e\n", good, []string{"n1", "n2"}); err == nil {
		t.Error("lines out of owner order were not caught")
	}
	if err := quietSince(good, nil, 95*ms); err == nil {
		t.Error("an answer in a quiet period was not caught")
	}
	if err := quietSince(good, []sample{{At: 200 * ms, Mounted: []string{"n2"}}}, 150*ms); err == nil {
		t.Error("a mount in a quiet period was not caught")
	}
	if err := quietSince(good, []sample{{At: 200 * ms}}, 150*ms); err != nil {
		t.Errorf("a quiet period: %v", err)
	}
}

// TestClusterPackageFailoverOnCrash: the owner's server dies (kill -9 of
// its daemon, its link down, its processes and address gone as after a
// reset); web starts on the next node of its list once the watchdog
// deadline has passed, and only there.
func TestClusterPackageFailoverOnCrash(t *testing.T) {
	w := newWebCluster(t, webOptions{})
	owner := w.waitStarted()
	next := w.nextAfter(owner)
	time.Sleep(20 * probeEvery)
	crashAt := w.watch.now()
	w.crashServer(owner)
	w.waitRunsOn(next)
	s, err := next.Status()
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := peer(s, owner.Name); !ok || !p.TakenOver {
		t.Errorf("%s's status: peer %s %+v, want taken over", next.Name, owner.Name, p)
	}
	logFailover(t, next)
	sw := w.finish(owner, next)
	if len(sw) == 1 {
		t.Logf("crash at %v; first answer of %s %v after the crash", crashAt.Round(time.Millisecond), next.Name, (sw[0].First - crashAt).Round(time.Millisecond))
	}
}

// TestClusterPackageMoveUnderLoad: `mtc move web --to` another node while
// the observer connects continuously: the command ends done, exit 0, and
// web answers from the new node only.
func TestClusterPackageMoveUnderLoad(t *testing.T) {
	w := newWebCluster(t, webOptions{})
	owner := w.waitStarted()
	to := w.Nodes[len(w.Nodes)-1]
	if to == owner {
		to = w.nextAfter(owner)
	}
	// Asked through a node that is not the coordinator (the lowest id),
	// so the intent is forwarded.
	r := w.mustDone(w.Nodes[1].Name, "move", "web", "--to", to.Name)
	if r.Outcome != daemon.OutcomeDone {
		t.Fatalf("move: outcome %q (%s), want done", r.Outcome, r.Reason)
	}
	if !w.runsOn(to) {
		// The command answered done: the observer may still be a probe
		// behind, but the node must run it.
		w.waitRunsOn(to)
	}
	w.finish(owner, to)
}

// TestClusterPackageDrain: `mtc node drain` of the owner moves web off it
// and the node stays a member; `mtc node undrain` lets it run packages
// again, and web stays where it is (failback manual).
func TestClusterPackageDrain(t *testing.T) {
	w := newWebCluster(t, webOptions{})
	owner := w.waitStarted()
	next := w.nextAfter(owner)
	w.mustDone(next.Name, "node", "drain", owner.Name)
	w.waitRunsOn(next)
	all := names(w.Nodes...)
	for _, nd := range w.Nodes {
		s, err := nd.Status()
		if err != nil {
			t.Fatal(err)
		}
		if !s.Quorate || !slices.Equal(s.Members, all) || !slices.Equal(s.Drained, []string{owner.Name}) {
			t.Errorf("%s after the drain: quorate %v members %v drained %v; want quorate, members %v, drained [%s]",
				nd.Name, s.Quorate, s.Members, s.Drained, all, owner.Name)
		}
	}
	w.mustDone(next.Name, "node", "undrain", owner.Name)
	w.WaitFor("every node sees the undrain", func() bool {
		for _, nd := range w.Nodes {
			if s, err := nd.Status(); err != nil || len(s.Drained) > 0 {
				return false
			}
		}
		return true
	})
	// Some heartbeats later web still runs on next (finish checks from the
	// observations that no other node took it).
	time.Sleep(20 * aggressiveProfile.Timing.HeartbeatInterval)
	if !statusRunsOn(next) {
		t.Errorf("web no longer runs on %s after the undrain", next.Name)
	}
	w.finish(owner, next)
}

// TestClusterPackageDisabledDoesNotFailOver: with switching disabled, the
// owner's crash leaves web down once its node is taken over; `mtc enable`
// then starts it on the next node.
func TestClusterPackageDisabledDoesNotFailOver(t *testing.T) {
	w := newWebCluster(t, webOptions{})
	owner := w.waitStarted()
	next := w.nextAfter(owner)
	w.mustDone(next.Name, "disable", "web")
	w.WaitFor("every node sees web's switching disabled", func() bool {
		for _, nd := range w.Nodes {
			s, err := nd.Status()
			v, ok := webView(s)
			if err != nil || !ok || v.Switching {
				return false
			}
		}
		return true
	})
	w.crashServer(owner)
	quietFrom := w.watch.now()
	// The survivors' coordinator takes the dead node over (watchdog
	// deadline); from then on placement could start web elsewhere.
	var takenAt time.Duration
	w.WaitFor(owner.Name+" taken over by the survivors", func() bool {
		for _, nd := range w.Nodes {
			if nd == owner {
				continue
			}
			if s, err := nd.Status(); err == nil {
				if p, ok := peer(s, owner.Name); ok && p.TakenOver {
					takenAt = w.watch.now()
					return true
				}
			}
		}
		return false
	})
	// Watch a while: 20 heartbeat intervals, several report exchanges.
	time.Sleep(20 * aggressiveProfile.Timing.HeartbeatInterval)
	for _, nd := range w.Nodes {
		if nd == owner {
			continue
		}
		s, err := nd.Status()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := webView(s)
		if v.Owner != "" || v.State != "halted" {
			t.Errorf("%s's status after the takeover: web owner %q state %q target %q (%s), want halted nowhere", nd.Name, v.Owner, v.State, v.Target, v.TargetWhy)
		}
	}
	ps, ss := w.watch.snapshot()
	if err := quietSince(ps, ss, quietFrom); err != nil {
		t.Errorf("web came up although its switching is disabled: %v", err)
	}
	t.Logf("web stayed down from the crash at %v through the takeover at %v to %v", quietFrom.Round(time.Millisecond), takenAt.Round(time.Millisecond), w.watch.now().Round(time.Millisecond))
	enableAt := w.watch.now()
	w.mustDone(next.Name, "enable", "web")
	w.waitRunsOn(next)
	sw := w.finish(owner, next)
	if len(sw) == 1 {
		t.Logf("first answer of %s %v after mtc enable", next.Name, (sw[0].First - enableAt).Round(time.Millisecond))
	}
}

// TestClusterPackageFailingServiceMoves: the service exits at once on the
// owner, again at every restart: past its restart limit web fails there,
// is marked failed on that node and moves; `mtc clear` removes the mark.
func TestClusterPackageFailingServiceMoves(t *testing.T) {
	w := newWebCluster(t, webOptions{Restarts: 2})
	owner := w.waitStarted()
	next := w.nextAfter(owner)
	time.Sleep(20 * probeEvery)
	failFile := filepath.Join(w.failDir, owner.Name)
	failAt := w.watch.now()
	if err := os.WriteFile(failFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.waitRunsOn(next)
	t.Logf("the service began failing on %s at %v; web answered from %s %v later", owner.Name, failAt.Round(time.Millisecond), next.Name, (w.watch.firstAnswer(next.Name, failAt) - failAt).Round(time.Millisecond))
	for _, nd := range w.Nodes {
		s, err := nd.Status()
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := webView(s); !slices.Equal(v.Marked, []string{owner.Name}) {
			t.Errorf("%s's status: web marked failed on %v, want [%s]", nd.Name, v.Marked, owner.Name)
		}
	}
	if err := os.Remove(failFile); err != nil {
		t.Fatal(err)
	}
	w.mustDone(next.Name, "clear", "web", "--node", owner.Name)
	w.WaitFor("every node sees the mark cleared", func() bool {
		for _, nd := range w.Nodes {
			s, err := nd.Status()
			v, ok := webView(s)
			if err != nil || !ok || len(v.Marked) > 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(20 * aggressiveProfile.Timing.HeartbeatInterval)
	if !statusRunsOn(next) {
		t.Errorf("web no longer runs on %s after the clear", next.Name)
	}
	w.finish(owner, next)
}

// TestClusterPackageIntentsSurviveRestart: web halted and a node drained,
// every daemon stopped and started again on the same quorum disk: web
// stays halted and the node drained; `mtc run web` then starts it, not on
// the drained node.
func TestClusterPackageIntentsSurviveRestart(t *testing.T) {
	w := newWebCluster(t, webOptions{})
	owner := w.waitStarted()
	w.mustDone(owner.Name, "halt", "web")
	drained := w.nextAfter(owner)
	last := w.mustDone(owner.Name, "node", "drain", drained.Name)
	quietFrom := w.watch.now()
	for _, nd := range w.Nodes {
		nd.Stop()
	}
	for _, nd := range w.Nodes {
		nd.Start()
	}
	w.WaitAllQuorate(w.Nodes...)
	w.WaitFor("every restarted node has applied the intents up to the drain", func() bool {
		for _, nd := range w.Nodes {
			if s, err := nd.Status(); err != nil || s.LastIntent < last.ID {
				return false
			}
		}
		return true
	})
	time.Sleep(20 * aggressiveProfile.Timing.HeartbeatInterval)
	for _, nd := range w.Nodes {
		s, err := nd.Status()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := webView(s)
		if !v.Halted || v.Owner != "" || v.State != "halted" {
			t.Errorf("%s after the restart: web halted-by-operator %v owner %q state %q, want halted", nd.Name, v.Halted, v.Owner, v.State)
		}
		if !slices.Equal(s.Drained, []string{drained.Name}) {
			t.Errorf("%s after the restart: drained %v, want [%s]", nd.Name, s.Drained, drained.Name)
		}
	}
	ps, ss := w.watch.snapshot()
	if err := quietSince(ps, ss, quietFrom); err != nil {
		t.Errorf("web came up after the restart although halted: %v", err)
	}
	// configured_node: the first node of the list that is not drained.
	want := w.nextAfter(drained)
	w.mustDone(owner.Name, "run", "web")
	w.waitRunsOn(want)
	if owner == want {
		w.finish(owner)
	} else {
		w.finish(owner, want)
	}
}
