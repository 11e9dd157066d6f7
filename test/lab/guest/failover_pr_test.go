package guest

// The failover benchmark with PR fencing: the host's BenchmarkNetnsFailover
// (test/integration) on the lab's SAN. Three real `mtc daemon` processes
// (/lab/mtc), each in its own network namespace (and, through `ip netns
// exec`, its own mount namespace and /etc/lvm), on a bridge; each node on
// its own dm map to the quorum LUN and its own iSCSI path to data1, which
// it fences. The owner of a package is crashed as the host benchmark
// crashes it, and the observer of package failbench measures crash → VIP
// answering; the phases come from the new owner's status.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/test/lab/failbench"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// EnvFailoverTrials sets the crashes per timing profile and package of
// TestFailoverPR (the guest's init passes LAB_FAILOVER_TRIALS); unset, an
// ordinary lab run makes fpDefaultTrials.
const EnvFailoverTrials = "MTC_LAB_FAILOVER_TRIALS"

// EnvFailoverProfiles lists the timing profiles of TestFailoverPR
// ("default,aggressive" when unset); the guest's init passes
// LAB_FAILOVER_PROFILES.
const EnvFailoverProfiles = "MTC_LAB_FAILOVER_PROFILES"

const (
	fpDefaultTrials = 2
	fpMTC           = "/lab/mtc"
	fpDir           = "/tmp/failover-pr"
	fpPkg           = "web"
	fpVIP           = "10.213.0.100"
	fpVIPLen        = 24
	fpPort          = 7000 // nothing listens: the VIP answers with a refusal
	fpObserver      = 200
	fpVG, fpLV      = "vgfb", "lv0"
	fpMount         = fpDir + "/mnt"
	// The observer's probe period and each probe's bound, as on the host.
	fpProbeEvery   = 10 * time.Millisecond
	fpProbeTimeout = time.Second
	// fpRunBound bounds one failover: far above every timeout involved,
	// with room for emulation.
	fpRunBound = 90 * time.Second
	// fpStableBound bounds the wait for the cluster to settle (three
	// members, the package running once) after a start or a restart.
	fpStableBound = 3 * time.Minute
	// fpStablePoll is the pause between two looks at the cluster while it
	// settles: each status costs the daemons CPU the emulated guest lacks.
	fpStablePoll = 500 * time.Millisecond
	// fpGiveUp: after this many failovers in a row that do not complete,
	// the case is given up (and the report says so).
	fpGiveUp = 3
	// fpStopGrace is how long a stopped daemon may take before it is
	// killed.
	fpStopGrace = 20 * time.Second
)

var fpLVDev = "/dev/mapper/" + fpVG + "-" + fpLV

// fpVariant is a package of the benchmark.
type fpVariant struct {
	name string
	fs   bool // an LVM VG on data1 with ext4, mounted before the VIP
}

var fpVariants = []fpVariant{{name: "VIP"}, {name: "VIP + LVM VG + ext4", fs: true}}

type fpProfile struct {
	name   string
	timing config.Timing
}

// fpRun is one crash, every time since the crash.
type fpRun struct {
	failbench.Run
	fenceAsked, fenced time.Duration // the fencer's: request, verified fence
	fencer             string
}

type fpResult struct {
	p fpProfile
	v fpVariant
	failbench.Case[fpRun]
}

// TestFailoverPR: the failover benchmark with PR fencing, in the guest.
// For each timing profile asked for and two packages (a
// VIP alone; a VIP with ext4 on an LVM VG on data1), the node running
// the package is crashed again and again: its link goes down (the crash
// instant), its filesystem stops without a log flush, every process in
// its namespace is killed with SIGKILL, its VIP leaves its interface and
// its device-mapper map of the LV goes away (what a reset leaves; all
// nodes share the guest's device-mapper). A survivor fences it (PREEMPT
// AND ABORT on the quorum LUN and data1), the new owner takes the VG over
// with the proof, mounts and adds the VIP. Each failover must be allowed
// for the reason "fenced" and served by the node the cluster says owns the
// package; the times (crash → VIP answering, and the new owner's phases)
// are logged and written to a `failover-pr` section of BENCHMARKS.md in
// the results share, never asserted. MTC_LAB_FAILOVER_TRIALS (default 2)
// crashes per case; MTC_LAB_FAILOVER_PROFILES the timing profiles (default
// tcg; see fpProfiles).
func TestFailoverPR(t *testing.T) {
	labkit.Require(t)
	if _, err := os.Stat(fpMTC); err != nil {
		t.Fatalf("%s: %v (run.sh builds ./cmd/mtc into the guest; see its warning)", fpMTC, err)
	}
	trials := fpDefaultTrials
	if v := os.Getenv(EnvFailoverTrials); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", EnvFailoverTrials, v)
		}
		trials = n
	}
	profiles := fpProfiles(t)
	began := time.Now()
	var results []fpResult
	for _, p := range profiles {
		for _, v := range fpVariants {
			name := strings.NewReplacer(" ", "", "+", "-").Replace(p.name + "-" + v.name)
			t.Run(name, func(t *testing.T) {
				results = append(results, fpMeasure(t, p, v, trials))
			})
		}
	}
	body := fpReport(results, trials, time.Since(began))
	t.Log("\n" + body)
	// Every case that ran (go test -run may select some) measured at
	// least one failover.
	measured := len(results) > 0
	for _, r := range results {
		measured = measured && len(failbench.Col(r.Runs, func(x fpRun) time.Duration { return x.VIP })) > 0
	}
	if !measured {
		t.Error("a case measured no failover: the report is not written")
		return
	}
	if _, err := os.Stat("/host/results"); err == nil {
		if err := benchdoc.ReplaceSection("/host/results/BENCHMARKS.md", fpSection(), body); err != nil {
			t.Error(err)
		}
	}
}

// fpNode is one node of the benchmark's cluster.
type fpNode struct {
	name, ns, addr string
	id             int
	quorumDev      string // its dm map to the quorum LUN
	data1          string // its own iSCSI path to data1
	socket, log    string
	h              *netlink.Handle
	proc           *failbench.Proc // its daemon, nil before the first start
}

func (n *fpNode) running() bool { return n.proc.Running() }

// fpCluster is the cluster of one case with its observer.
type fpCluster struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	cfg    string
	nodes  []*fpNode
	obsNS  string
	vip    netip.Prefix
	fs     bool
	starts int
}

func fpMeasure(t *testing.T, p fpProfile, v fpVariant, trials int) fpResult {
	res := fpResult{p: p, v: v}
	if errs := p.timing.Validate(); len(errs) > 0 {
		t.Fatalf("%s timing: %v", p.name, errors.Join(errs...))
	}
	c := fpNewCluster(t, p, v)
	var gaveUp bool
	res.Case, gaveUp = failbench.Trials[*fpNode, fpRun]{Crashes: trials, GiveUp: fpGiveUp, Settle: c.waitStable, Crash: c.crashAndMeasure,
		Restore: func(r fpRun) { c.restore(c.node(r.From)) },
		Done: func(i int, r fpRun) {
			t.Logf("%s, %s, run %d: %s -> %s: left %v, fence asked %v, fenced %v (by %s), taken over %v (%s), claimed %v, started %v, running %v; VIP %v %s",
				p.name, v.name, i+1, r.From, r.To, r.Left, r.fenceAsked, r.fenced, r.fencer, r.TakenOver, r.Reason, r.Claimed, r.Started, r.Running, r.VIP, r.Err)
			if r.Complete && r.Reason != "fenced" {
				t.Errorf("run %d: the takeover of %s was allowed for %q, want fenced: PR fencing did not work", i+1, r.From, r.Reason)
			}
		}}.Run()
	if gaveUp {
		t.Errorf("%s, %s: %d failovers in a row did not complete", p.name, v.name, fpGiveUp)
	}
	return res
}

// tcgTiming is labTiming doubled, for an emulated guest on a host too
// loaded for the default profile.
var tcgTiming = config.Timing{
	HeartbeatInterval: 500 * time.Millisecond,
	IOTimeout:         2 * time.Second,
	FailureTimeout:    6 * time.Second,
	WatchdogTimeout:   10 * time.Second,
}

// fpProfiles are the timing profiles asked for by EnvFailoverProfiles
// (default: tcg): default and aggressive (config), lab (labTiming, the
// other lab tests' timing) and tcg (tcgTiming). In the emulated guest on a
// loaded host the default profile's 400 ms io_timeout did not hold (quorum
// disk I/O missed it, nodes self-fenced and refused to join), and with the
// lab profile restarted nodes self-fenced again and again ("no successful
// own slot write for 3s") before the cluster settled.
func fpProfiles(t *testing.T) []fpProfile {
	all := []fpProfile{{"default", config.DefaultTiming()}, {"aggressive", config.AggressiveTiming()}, {"lab", labTiming}, {"tcg", tcgTiming}}
	v := os.Getenv(EnvFailoverProfiles)
	if v == "" {
		v = "tcg"
	}
	var ps []fpProfile
	for _, name := range strings.Split(v, ",") {
		i := slices.IndexFunc(all, func(p fpProfile) bool { return p.name == strings.TrimSpace(name) })
		if i < 0 {
			t.Fatalf("%s: unknown profile %q (default, aggressive, lab)", EnvFailoverProfiles, name)
		}
		ps = append(ps, all[i])
	}
	return ps
}

// fpNewCluster builds the namespaces, the per-node LVM configuration, the
// cluster and package files, formats the quorum disk with the mtc command
// and starts the three daemons. Everything is undone in t.Cleanup.
func fpNewCluster(t *testing.T, p fpProfile, v fpVariant) *fpCluster {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	san, err := labkit.Discover("/sys")
	if err != nil {
		t.Fatal(err)
	}
	c := &fpCluster{t: t, ctx: ctx, dir: fpDir, vip: netip.PrefixFrom(netip.MustParseAddr(fpVIP), fpVIPLen), fs: v.fs}
	_ = os.RemoveAll(c.dir)
	if err := os.MkdirAll(filepath.Join(c.dir, "packages"), 0o755); err != nil {
		t.Fatal(err)
	}
	cleanLUNs(t, ctx, "quorum", "data1")

	// The network: a bridge in a namespace of its own, one veth pair per
	// node and for the observer.
	run := func(argv ...string) {
		t.Helper()
		if _, err := labkit.Run(ctx, argv...); err != nil {
			t.Fatal(err)
		}
	}
	const brNS = "fp-br"
	addNS := func(ns string) {
		_, _ = labkit.Run(context.Background(), "ip", "netns", "del", ns)
		run("ip", "netns", "add", ns)
		t.Cleanup(func() { _, _ = labkit.Run(context.Background(), "ip", "netns", "del", ns) })
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	addNS(brNS)
	run("ip", "-n", brNS, "link", "add", "br0", "type", "bridge")
	run("ip", "-n", brNS, "link", "set", "br0", "up")
	attach := func(ns string, host int) {
		peer := fmt.Sprintf("v%d", host)
		run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", brNS)
		run("ip", "-n", brNS, "link", "set", peer, "master", "br0", "up")
		run("ip", "-n", ns, "addr", "add", fmt.Sprintf("10.213.0.%d/24", host), "dev", "eth0")
		run("ip", "-n", ns, "link", "set", "eth0", "up")
	}

	base, err := os.ReadFile("/etc/lvm/lvm.conf")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("node%d", i)
		n := &fpNode{name: name, id: i, ns: "fp-" + name, addr: fmt.Sprintf("10.213.0.%d", i),
			socket: filepath.Join(c.dir, name+".sock"), log: filepath.Join(c.dir, name+".log")}
		n.data1 = dev(t, san, name, "data1")
		dm, err := labkit.OpenDMPath(ctx, labkit.DMName(name, "quorum"), dev(t, san, name, "quorum"))
		if err != nil {
			t.Fatal(err)
		}
		if err := dm.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		n.quorumDev = dm.Dev()
		addNS(n.ns)
		attach(n.ns, i)
		nsh, err := netns.GetFromPath("/run/netns/" + n.ns)
		if err != nil {
			t.Fatal(err)
		}
		n.h, err = netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
		nsh.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.h.Close)
		fpLVMConf(t, n, string(base))
		c.nodes = append(c.nodes, n)
	}
	c.obsNS = "fp-observer"
	addNS(c.obsNS)
	attach(c.obsNS, fpObserver)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(c.dir, "cluster.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	c.cfg = filepath.Join(c.dir, "cluster.toml")
	if err := os.WriteFile(c.cfg, []byte(c.clusterFile(p.timing)), 0o644); err != nil {
		t.Fatal(err)
	}
	if v.fs {
		c.makeVG(t)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "packages", fpPkg+".toml"), []byte(c.packageFile()), 0o644); err != nil {
		t.Fatal(err)
	}
	// What mtc check says of this cluster, as node1 sees it (logged: the
	// daemons refuse a configuration that does not hold).
	out, err := labkit.Run(ctx, "ip", "netns", "exec", c.nodes[0].ns, fpMTC, "check", "--config", c.cfg)
	t.Logf("mtc check --config %s: %v\n%s", c.cfg, err, out)
	// How the quorum disk answers through node1's path, in this guest.
	out, err = labkit.Run(ctx, "ip", "netns", "exec", c.nodes[0].ns, fpMTC, "check", "--config", c.cfg, "--node", "node1", "--probe-disk", "--probe-time", "3s")
	t.Logf("mtc check --probe-disk (node1): %v\n%s", err, fpTail(out, 25))
	// --force: an earlier test left another cluster's header; no daemon
	// writes its slots any more.
	if out, err := labkit.Run(ctx, fpMTC, "disk", "init", "--config", c.cfg, "--device", c.nodes[0].quorumDev, "--force"); err != nil {
		t.Fatalf("mtc disk init: %v\n%s", err, out)
	}
	t.Cleanup(c.saveLogs)
	t.Cleanup(c.stopAll)
	// One at a time: three Go processes starting at once in the emulated
	// guest delay each other's first quorum-disk rounds.
	for _, n := range c.nodes {
		c.start(n)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && n.running(); time.Sleep(200 * time.Millisecond) {
			if _, err := c.status(n); err == nil {
				break
			}
		}
		if !n.running() {
			b, _ := os.ReadFile(n.log)
			t.Fatalf("%s's daemon exited while starting (%v):\n%s", n.name, n.proc.Err(), fpTail(string(b), 5))
		}
	}
	return c
}

// fpLVMConf gives node n its own /etc/lvm (bind-mounted by `ip netns exec`
// from /etc/netns/NS/lvm): the guest's lvm.conf with n's system ID from
// lvmlocal.conf and a filter that admits n's own path to data1 alone, as
// on a host of its own.
func fpLVMConf(t *testing.T, n *fpNode, base string) {
	t.Helper()
	d := filepath.Join("/etc/netns", n.ns, "lvm")
	_ = os.RemoveAll(filepath.Join("/etc/netns", n.ns))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join("/etc/netns", n.ns)) })
	conf := strings.Replace(base, `system_id_source = "none"`, `system_id_source = "lvmlocal"`, 1)
	filter := fmt.Sprintf("\tfilter = [ \"a|^%s$|\", \"r|.*|\" ]\n\tglobal_filter = [ \"a|^%s$|\", \"r|.*|\" ]\n", n.data1, n.data1)
	conf = strings.Replace(conf, "devices {\n", "devices {\n"+filter, 1)
	if !strings.Contains(conf, "lvmlocal") || !strings.Contains(conf, "global_filter") {
		t.Fatalf("the guest's /etc/lvm/lvm.conf has no system_id_source = \"none\" or devices section to change:\n%s", base)
	}
	local := fmt.Sprintf("local {\n\tsystem_id = %q\n}\n", n.name)
	for f, s := range map[string]string{"lvm.conf": conf, "lvmlocal.conf": local} {
		if err := os.WriteFile(filepath.Join(d, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// makeVG creates VG vgfb on data1 (through node1's path, no system ID:
// unowned, as a clean halt leaves it) with one LV carrying ext4, and
// removes it when the case ends.
func (c *fpCluster) makeVG(t *testing.T) {
	t.Helper()
	dev1 := c.nodes[0].data1
	lvmAs := func(args ...string) (string, error) {
		argv := append([]string{"lvm"}, args...)
		argv = append(argv, "--devices", dev1, "--config", `global/system_id_source=none local/extra_system_ids=["node1","node2","node3"]`)
		return labkit.Run(context.Background(), argv...)
	}
	remove := func() {
		_, _ = labkit.Run(context.Background(), "dmsetup", "remove", fpVG+"-"+fpLV)
		_, _ = lvmAs("vgremove", "-ff", "-y", fpVG)
		_, _ = lvmAs("pvremove", "-ff", "-y", dev1)
	}
	remove()
	for _, args := range [][]string{{"pvcreate", "-ff", "-y", dev1}, {"vgcreate", "-y", fpVG, dev1},
		{"lvcreate", "-y", "-n", fpLV, "-L", "64M", fpVG}} {
		if out, err := lvmAs(args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	// The daemons have stopped (their cleanup runs first); a fenced
	// node1 path could not write the VG's removal, so the LUN is cleaned
	// of every registration first.
	t.Cleanup(func() {
		cleanLUN(t, context.Background(), "data1")
		remove()
	})
	if out, err := labkit.Run(c.ctx, "mkfs.ext4", "-q", fpLVDev); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := lvmAs("vgchange", "-an", fpVG); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := os.MkdirAll(fpMount, 0o755); err != nil {
		t.Fatal(err)
	}
}

// clusterFile is the cluster file. Watchdog mode "none": the process
// watchdog's first feed starts its supervisor on the daemon's event loop
// and waits for it to report ready; in the emulated guest that took up to
// 6 s, during which the node wrote no slot and then self-fenced ("no
// successful own slot write"). With PR fencing no takeover here waits for
// a watchdog; the crash kills every process of the node anyway.
func (c *fpCluster) clusterFile(tm config.Timing) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[cluster]
name = "labfp"
uuid = %q
key_file = %q

[timing]
heartbeat_interval = %q
io_timeout = %q
failure_timeout = %q
watchdog_timeout = %q

[watchdog]
mode = "none"
allow_none = true

[[network]]
name = "lan"
port = 5405
`, labCluster, filepath.Join(c.dir, "cluster.key"), tm.HeartbeatInterval, tm.IOTimeout, tm.FailureTimeout, tm.WatchdogTimeout)
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\n[[node]]\nname = %q\nid = %d\nquorum_disk = %q\nfence_luns = [%q]\n[node.addresses]\nlan = %q\n",
			n.name, n.id, n.quorumDev, n.data1, n.addr)
	}
	return b.String()
}

func (c *fpCluster) packageFile() string {
	var f strings.Builder
	fmt.Fprintf(&f, "name = %q\nnodes = [\"node1\", \"node2\", \"node3\"]\n\n[[ip]]\naddress = %q\ninterface = \"eth0\"\n", fpPkg, c.vip.String())
	if c.fs {
		fmt.Fprintf(&f, "\n[[volume_group]]\nname = %q\n", fpVG)
		fmt.Fprintf(&f, "\n[[filesystem]]\ndevice = %q\nmount_point = %q\ntype = \"ext4\"\noptions = \"noatime\"\nunmount_timeout = \"4s\"\n", fpLVDev, fpMount)
	}
	return f.String()
}

func (c *fpCluster) node(name string) *fpNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// start starts n's daemon in its namespace, in its own process group.
func (c *fpCluster) start(n *fpNode) {
	t := c.t
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.starts++
	fmt.Fprintf(logf, "---- start %d ----\n", c.starts)
	logf.Close()
	// --no-realtime: the lab's SAN (the LIO target and the iSCSI
	// initiators' threads) runs in the same kernel at normal priority on
	// two emulated CPUs; real-time heartbeat threads of three daemons
	// would take their cycles first (the other lab tests' in-process
	// daemons run without them too).
	cmd := exec.Command("ip", "netns", "exec", n.ns, fpMTC, "--log-level", "debug", "daemon", "--no-realtime",
		"--config", c.cfg, "--node", n.name, "--socket", n.socket,
		"--journal", filepath.Join(c.dir, n.name+".events.jsonl"))
	p, err := failbench.StartProc(cmd, n.log)
	if err != nil {
		t.Fatal(err)
	}
	n.proc = p
}

// stopAll stops every daemon as an operator does (SIGTERM, then SIGKILL
// after 20 s) and, when the test failed, logs the end of each log.
func (c *fpCluster) stopAll() {
	var ps []*failbench.Proc
	for _, n := range c.nodes {
		ps = append(ps, n.proc)
	}
	failbench.StopAll(fpStopGrace, ps...)
	for _, n := range c.nodes {
		if n.proc != nil {
			_ = failbench.KillNetNS("/run/netns/" + n.ns)
		}
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			b, _ := os.ReadFile(n.log)
			l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			c.t.Logf("---- end of %s's log (%s) ----\n%s", n.name, n.log, strings.Join(l[max(0, len(l)-60):], "\n"))
		}
	}
}

// saveLogs copies the daemons' logs and journals into the results share
// (results/failover-pr/TEST/).
func (c *fpCluster) saveLogs() {
	if _, err := os.Stat("/host/results"); err != nil {
		return
	}
	dst := filepath.Join("/host/results/failover-pr", strings.ReplaceAll(c.t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		c.t.Log(err)
		return
	}
	for _, n := range c.nodes {
		for _, f := range []string{n.log, filepath.Join(c.dir, n.name+".events.jsonl")} {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
			}
		}
	}
}

func fpTail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

func (c *fpCluster) status(n *fpNode) (daemon.Status, error) {
	return failbench.Status(c.ctx, n.socket, 3*time.Second)
}

// waitStable waits until every node holds quorum with all three and sees
// the package running on the same one node, and returns it. A daemon that
// ended meanwhile (its watchdog killed it after a self-fence) is
// restarted, and said so in the incidents returned.
func (c *fpCluster) waitStable() (*fpNode, []string) {
	settle := failbench.Settle[*fpNode]{Nodes: c.nodes, Package: fpPkg, Status: c.status, Revive: c.revive,
		Log:   func(inc string) { c.t.Log(inc) },
		Bound: fpStableBound, Poll: fpStablePoll}
	owner, incidents, ok := settle.Wait()
	if ok {
		return c.node(owner), incidents
	}
	var states []string
	for _, n := range c.nodes {
		s, err := c.status(n)
		pv, _ := failbench.PackageView(s, fpPkg)
		states = append(states, fmt.Sprintf("%s: err %v, quorate %v, members %v, package %s on %q pending %q nodes %+v", n.name, err, s.Quorate, s.Members, pv.State, pv.Owner, pv.Pending, pv.Nodes))
	}
	c.t.Fatalf("not all three quorate with the package running on one node within %v:\n%s", fpStableBound, strings.Join(states, "\n"))
	return nil, nil
}

// revive restarts n's daemon if it ended, and resets n if it self-fenced:
// under watchdog mode "none" a node that self-fenced stays stopped, and is
// reset here as its watchdog would reset it. It says what it did ("" for
// nothing).
func (c *fpCluster) revive(n *fpNode) string {
	if n.proc != nil && !n.running() {
		inc := fmt.Sprintf("%s ended (%s) and was restarted", n.name, c.exitReason(n))
		_ = failbench.KillNetNS("/run/netns/" + n.ns)
		c.start(n)
		return inc
	}
	s, err := c.status(n)
	if err != nil || !s.Stopped {
		return ""
	}
	inc := fmt.Sprintf("%s self-fenced (%s) and was reset (killed and restarted)", n.name, s.Reason)
	_ = failbench.KillNetNS("/run/netns/" + n.ns)
	if n.running() {
		<-n.proc.Done()
	}
	c.start(n)
	return inc
}

// exitReason is why a daemon ended: the last self-fence in its log, else
// its exit status.
func (c *fpCluster) exitReason(n *fpNode) string {
	why := fmt.Sprint(n.proc.Err())
	b, _ := os.ReadFile(n.log)
	lastErr := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			lastErr = l
		}
		if _, r, ok := strings.Cut(l, `reason="`); ok && strings.Contains(l, "SELF-FENCE") {
			r, _, _ = strings.Cut(r, `"`)
			why = fmt.Sprintf("self-fenced: %s; then %v", r, n.proc.Err())
		}
	}
	if lastErr != "" {
		why += "; its last warning: " + lastErr
	}
	return why
}

// crash does to victim what a crash and a reset do, in the order of the
// host benchmark: link down first (the crash instant), the filesystem
// stopped without flushing its journal, every process in its namespace
// killed with SIGKILL (which ends its mount namespace), the VIP removed
// from its interface; then its device-mapper map of the LV removed: a
// reset host has none, and all nodes of the lab share the guest's
// device-mapper, so a survivor would otherwise find the LV active over
// the victim's (fenced) path. It returns the time just before the link
// went down and just after.
func (c *fpCluster) crash(victim *fpNode) (crashed, down time.Time) {
	crashed, down, err := failbench.Crash(victim.h, "eth0", "/run/netns/"+victim.ns, c.vip.Addr(), func() {
		if c.fs && victim.running() {
			failbench.ShutdownFS(victim.proc.PID(), fpMount)
		}
		victim.proc.Kill()
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if c.fs {
		c.removeVictimLV(victim)
	}
	return crashed, down
}

// removeVictimLV removes the LV's map if it is the victim's (a map over
// its path to data1), retrying while its mount namespace is torn down.
func (c *fpCluster) removeVictimLV(victim *fpNode) {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(fpLVDev); err != nil {
			return
		}
		if !lvOver(fpLVDev, victim.data1) {
			return
		}
		_, err := labkit.Run(context.Background(), "dmsetup", "remove", fpVG+"-"+fpLV)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the crashed %s's map of %s could not be removed: %v", victim.name, fpLVDev, err)
		}
	}
}

// lvOver reports whether the dm device lv is a map over path.
func lvOver(lv, path string) bool {
	d := lvm.SysDevices{}
	n, err := d.Number(lv)
	if err != nil {
		return false
	}
	under, err := d.Under(n)
	if err != nil {
		return false
	}
	want, err := d.Number(path)
	return err == nil && slices.Contains(under, want)
}

// restore brings the crashed node's link up and starts its daemon.
func (c *fpCluster) restore(victim *fpNode) {
	if err := failbench.LinkUp(victim.h, "eth0"); err != nil {
		c.t.Fatal(err)
	}
	c.start(victim)
}

// crashAndMeasure crashes the owner and measures the failover.
func (c *fpCluster) crashAndMeasure(owner *fpNode) fpRun {
	pr := failbench.StartProber("/run/netns/"+c.obsNS, c.vip.Addr(), fpPort, fpProbeEvery, fpProbeTimeout)
	defer pr.Stop()
	if !pr.WaitAnswer(time.Now(), 5*time.Second, false) {
		c.t.Logf("the observer got no answer from the VIP on %s before the crash (%v)", owner.name, pr.Err())
	}
	r := fpRun{Run: failbench.Run{From: owner.name}}
	crashed, down := c.crash(owner)
	var survivors []*fpNode
	for _, n := range c.nodes {
		if n != owner {
			survivors = append(survivors, n)
		}
	}
	done, gone := false, false
	for deadline := crashed.Add(fpRunBound); !done && !gone && time.Now().Before(deadline); {
		// The phases come from the daemons' own timestamps and the VIP
		// from the observer: polling less often changes no figure.
		time.Sleep(250 * time.Millisecond)
		gone = !slices.ContainsFunc(survivors, (*fpNode).running)
		for _, n := range survivors {
			s, err := c.status(n)
			if err != nil {
				continue
			}
			// The fencer: a verified fence of the victim after the crash.
			for _, f := range s.Fencing.Fenced {
				if f.Peer == owner.name && f.Time.After(crashed) && r.fenced == 0 {
					r.fenced, r.fencer = f.Time.Sub(crashed), n.name
					for _, q := range s.FenceRequests {
						if q.Peer == owner.name && q.Time.After(crashed) {
							r.fenceAsked = q.Time.Sub(crashed)
							break
						}
					}
				}
			}
			if r.Running != 0 {
				continue
			}
			pv, _ := failbench.PackageView(s, fpPkg)
			if tl, ok := failbench.ReadTimeline(pv, owner.name, n.name, crashed, fpStepName); ok {
				r.Timeline = tl
			}
		}
		vip, _, _, ok := pr.First(down, false)
		done = r.Running != 0 && ok && (r.fenced != 0 || r.Reason != "fenced")
		if done {
			r.Complete = true
			r.VIP = vip.Sub(crashed)
		}
	}
	switch {
	case gone:
		r.Err = "every survivor ended before the failover completed"
	case !done:
		r.Err = fmt.Sprintf("no complete failover within %v", fpRunBound)
	}
	if r.Complete {
		if holders := c.vipHolders(); len(holders) != 1 || holders[0] != r.To {
			r.Err = fmt.Sprintf("the VIP is on %v, the new owner is %s", holders, r.To)
			c.t.Errorf("after %s crashed: %s", owner.name, r.Err)
		}
	}
	if r.Err != "" {
		c.t.Logf("%s crashed: %s", owner.name, r.Err)
	}
	return r
}

// fpStepName is a start plan step's name in the report.
func fpStepName(s string) string { return strings.ReplaceAll(s, fpMount, "MOUNTPOINT") }

// vipHolders are the nodes whose eth0 carries the VIP.
func (c *fpCluster) vipHolders() []string {
	var out []string
	for _, n := range c.nodes {
		if failbench.HasAddr(n.h, "eth0", c.vip.Addr()) {
			out = append(out, n.name)
		}
	}
	return out
}

// fpSection names the BENCHMARKS.md section a run writes: failover-pr for
// the lab's own profile (tcg, the default of MTC_LAB_FAILOVER_PROFILES),
// failover-pr-LIST for others, so that a run of other profiles keeps the
// tcg figures.
func fpSection() string {
	v := strings.TrimSpace(os.Getenv(EnvFailoverProfiles))
	if v == "" || v == "tcg" {
		return "failover-pr"
	}
	return "failover-pr-" + strings.NewReplacer(",", "-", " ", "").Replace(v)
}

func fpReport(results []fpResult, trials int, took time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	heading := "## Failover with PR fencing: crash of the active node to the VIP answering, in the QEMU lab"
	if name := fpSection(); name != "failover-pr" {
		heading += ", profiles " + strings.TrimPrefix(name, "failover-pr-")
	}
	p("%s\n\n", heading)
	p("The failover benchmark of the section above (`failover`), on the lab's SAN instead of loop devices: three `mtc daemon` processes (`/lab/mtc`, `--no-realtime`), each in its own network namespace (and, through `ip netns exec`, its own mount namespace and its own `/etc/lvm`: system ID nodeN, a filter that admits its own path alone), on a bridge, watchdog mode \"none\" (no takeover waits for one here; see test/lab/README.md), in the lab guest (Linux %s under QEMU, %d CPUs). Each node reaches the quorum LUN through its own dm map and data1 through its own iSCSI session to the LIO target, and fences both (PREEMPT AND ABORT). One package runs on one node: a VIP alone, or a VIP with ext4 on an LVM VG on data1 (the VG taken over with the fencing proof, then the filesystem mounted, then the VIP added). Measured %s with:\n\n",
		strings.TrimSpace(string(kernel)), numCPUs(), time.Now().UTC().Format("2006-01-02"))
	prof := ""
	if v := os.Getenv(EnvFailoverProfiles); v != "" {
		prof = "LAB_FAILOVER_PROFILES=" + v + " "
	}
	p("    %sLAB_FAILOVER_TRIALS=%d make lab-bench-failover\n\n", prof, trials)
	p("(%d crashes per timing profile and package; the whole run took %s).\n\n", trials, took.Round(time.Second))
	p("**Guest figures, under emulation.** The guest runs under QEMU's software emulation (TCG, no KVM), on the guest's clock: every CPU-bound step (a process start, an lvm2 command, a mount) is several times slower than on the host, so compare the phases with the host section, not the totals. The crash is the host benchmark's (package failbench, the same observer): the owner's link goes down (the crash instant), its filesystem stops without a log flush, every process in its namespace is killed with SIGKILL, its VIP leaves its interface, and its device-mapper map of the LV is removed (the nodes share the guest's device-mapper; a reset host has none). What a real crash also does and this one does not: the victim's iSCSI initiator is the guest's kernel and stays up, so the PREEMPT AND ABORT meets a live initiator with nothing in flight (milliseconds); a crashed host with writes inside the target costs what `fence-latency` measures.\n\n")
	p("**What PR fencing buys.** On the host (section `failover`) no node can be fenced and the survivors wait for the lost node's watchdog deadline, TakeoverAfter after it left the membership. Here a survivor fences it as soon as it is declared dead, and the takeover follows the verified fence (reason `fenced`):\n\n")
	rows := []failbench.Row[fpRun]{
		{Name: "crash → old owner left the membership (detection)", Of: func(x fpRun) time.Duration { return x.Left }},
		{Name: "crash → fence verified (the fencer)", Of: func(x fpRun) time.Duration { return x.fenced }},
		{Name: "crash → takeover allowed", Of: func(x fpRun) time.Duration { return x.TakenOver }},
		{Name: "crash → package claimed", Of: func(x fpRun) time.Duration { return x.Claimed }},
		{Name: "crash → start ordered", Of: func(x fpRun) time.Duration { return x.Started }},
		{Name: "crash → running (start plan done)", Of: func(x fpRun) time.Duration { return x.Running }},
		{Name: "crash → **VIP answering** (observer)", Of: func(x fpRun) time.Duration { return x.VIP }},
	}
	phases := []failbench.Row[fpRun]{
		{Name: "detection", Of: func(x fpRun) time.Duration { return x.Left }},
		{Name: "fencing: fence requested → verified (quorum LUN and data1)", Of: func(x fpRun) time.Duration { return x.fenced - x.fenceAsked }},
		{Name: "left → takeover allowed (instead of the watchdog wait)", Of: func(x fpRun) time.Duration { return x.TakenOver - x.Left }},
		{Name: "claim (takeover → claimed)", Of: func(x fpRun) time.Duration { return x.Claimed - x.TakenOver }},
		{Name: "claimed → start ordered", Of: func(x fpRun) time.Duration { return x.Started - x.Claimed }},
		{Name: "start ordered → VIP answering (observer)", Of: func(x fpRun) time.Duration { return x.VIP - x.Started }},
		{Name: "start plan (ordered → running)", Of: func(x fpRun) time.Duration { return x.Running - x.Started }},
	}
	for _, r := range results {
		t := r.p.timing
		b.WriteString(failbench.Section[fpRun]{Title: fmt.Sprintf("%s profile, package: %s", r.p.name, r.v.name),
			Timing: fmt.Sprintf("heartbeat_interval %v, io_timeout %v, failure_timeout %v, watchdog_timeout %v: the watchdog wait this replaces would be TakeoverAfter **%v** after detection",
				t.HeartbeatInterval, t.IOTimeout, t.FailureTimeout, t.WatchdogTimeout, t.Derive().TakeoverAfter),
			Case: r.Case, Rows: rows, Phases: phases}.String())
	}
	return b.String()
}

// numCPUs is the guest's CPU count.
func numCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// killNS kills whatever still runs in n's namespace (a process
// watchdog's leftovers).
func (c *fpCluster) killNS(n *fpNode) error { return failbench.KillNetNS("/run/netns/" + n.ns) }
