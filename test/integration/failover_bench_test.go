package integration

// The failover benchmark: three daemons running one package, the active
// node crashed (its link down, every process in its namespace killed, its
// filesystem shut down without a log flush, its VIP gone: what a reset
// leaves), and the time from the crash until an observer's connections to
// the VIP are answered again from another node; keepalived and Pacemaker
// (pacemaker_bench_test.go) in the same namespaces for comparison.

import (
	"context"
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
	"testing"
	"time"

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/test/lab/failbench"
	"github.com/mtcluster/mtc/test/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The failover benchmark's service is this test binary: with the first
// argument mtc-failbench-serve it serves TCP on ADDR, answering every
// connection with the heartbeat address of the node it runs on (the
// namespace's other address in the VIP's subnet), after writing a line to
// DATAFILE on the package's filesystem; with mtc-failbench-check it is the
// health check, connecting to ADDR. (The service of the cluster package
// tests, serveWeb, syncs its data file at every connection: at the
// observer's 100 connections a second that would load the disk and the
// measurement.)
func init() {
	if len(os.Args) < 3 {
		return
	}
	switch os.Args[1] {
	case "mtc-failbench-check":
		c, err := net.DialTimeout("tcp", os.Args[2], time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "health check:", err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	case "mtc-failbench-serve":
		if len(os.Args) < 4 {
			fmt.Fprintln(os.Stderr, "usage: mtc-failbench-serve ADDR DATAFILE")
			os.Exit(2)
		}
		failbenchServe(os.Args[2], os.Args[3])
	}
}

func failbenchServe(addr, dataFile string) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "address:", err)
		os.Exit(2)
	}
	self := ""
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() != ap.Addr() && p.Masked().Contains(ap.Addr()) {
			self = p.Addr().String()
		}
	}
	data, err := os.OpenFile(dataFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "data file:", err)
		os.Exit(2)
	}
	fmt.Fprintf(data, "started on %s at %s\n", self, time.Now().UTC().Format(time.RFC3339Nano))
	if err := data.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, "data file:", err)
		os.Exit(2)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		fmt.Fprintln(c, self)
		c.Close()
	}
}

const (
	fbVIP      = "10.213.0.100"
	fbVIPLen   = 24
	fbPort     = 7000
	fbObserver = 200 // the observer's host number on heartbeat network 0
	// fbProbeEvery is the observer's probe period.
	fbProbeEvery = 10 * time.Millisecond
	// fbProbeTimeout is how long one probe connection may wait for its
	// answer (the first SYN retransmission comes after 1 s).
	fbProbeTimeout = time.Second
	// fbRunBound bounds one failover: far above every timeout involved.
	fbRunBound = 60 * time.Second
	fbPkg      = "web"
	// kaRunBound bounds one keepalived failover (3 x advert_int + skew).
	kaRunBound = 20 * time.Second
	// fbGiveUp: after this many failovers in a row that do not complete,
	// the profile and package are given up (and the report says so).
	fbGiveUp = 3
)

type fbVariant struct {
	name string
	fs   bool // ext4 on a loop device and a service on it
	// pg: that service is PostgreSQL (BenchmarkNetnsPostgresFailover),
	// not this binary's TCP service.
	pg bool
}

// tcpService: the package runs this binary's TCP service, whose answers
// the observer's connections to the VIP wait for.
func (v fbVariant) tcpService() bool { return v.fs && !v.pg }

var fbVariants = []fbVariant{{name: "VIP"}, {name: "VIP + ext4 + TCP service", fs: true}}

// fbRun is one crash, every time since the crash.
type fbRun struct {
	failbench.Run
	service time.Duration // observer: first service answer
	served  string        // who answered the service probe
	// write: the PostgreSQL observer's first acknowledged INSERT, and the
	// node that stored it (wrote).
	write time.Duration
	wrote string
}

type fbResult struct {
	p Profile
	v fbVariant
	failbench.Case[fbRun]
	// rows: the PostgreSQL observer's acknowledged rows, checked after
	// the last run.
	rows pgRows
}

type kaResult struct {
	advert  time.Duration
	version int
	runs    []time.Duration // crash -> VIP answers
	failed  []string
}

type kaReport struct {
	profile  string
	nodes    []*Node
	skipped  string // why keepalived was not measured
	version  string
	accepted string // what keepalived says of a sub-second advert_int
	results  []kaResult
}

// BenchmarkNetnsFailover crashes the node running a package, again and
// again, in a cluster of three daemons in network namespaces with a
// loop-device quorum disk, for the default and the aggressive timing
// profile and two packages (a VIP alone; a VIP, ext4 on a loop device and
// a TCP service). An observer namespace opens a TCP connection to the VIP
// every 10 ms; the figures are from the crash to the first answer (a
// refusal or an accept: the VIP is up somewhere) and to the first answer
// of the service, with the new owner's failover timeline. Then, in the
// same namespaces with the daemons stopped, keepalived holds the same VIP
// and its master is crashed the same way, and then Pacemaker with an
// IPaddr2 resource. Nothing is asserted. With
// MTC_BENCH_OUT=FILE it replaces the failover section of that markdown
// file:
//
//	MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsFailover -benchtime 1x -timeout 40m ./test/integration
//
// MTC_FAILOVER_RUNS (default 20) is the number of crashes per profile and
// package and per keepalived setting and for Pacemaker;
// MTC_FAILOVER_PROFILES (default "default,aggressive") the profiles;
// MTC_FAILOVER_KEEPALIVED=0 leaves keepalived out;
// MTC_FAILOVER_PACEMAKER=0 leaves Pacemaker out, MTC_FAILOVER_PACEMAKER=only
// measures Pacemaker alone (in the namespaces of a default-profile cluster)
// and prints its part without writing MTC_BENCH_OUT.
//
// BenchmarkNetnsPostgresFailover (failover_postgres_bench_test.go) crashes
// a package running a real PostgreSQL the same way, into a section of its
// own.
func BenchmarkNetnsFailover(b *testing.B) {
	requireTools(b)
	runs := max(envInt(b, "MTC_FAILOVER_RUNS", 20), 1)
	profiles := fbProfiles(b)
	withKA := os.Getenv("MTC_FAILOVER_KEEPALIVED") != "0"
	pmMode := os.Getenv("MTC_FAILOVER_PACEMAKER")
	if pmMode != "" && pmMode != "0" && pmMode != "1" && pmMode != "only" {
		b.Fatalf("MTC_FAILOVER_PACEMAKER=%q: want 1 (the default), 0 or only", pmMode)
	}
	var results []fbResult
	var ka kaReport
	var pm pmReport
	began := time.Now()
	load := loadavg()
	for range b.N {
		results, ka, pm = results[:0], kaReport{}, pmReport{}
		if !withKA {
			ka.skipped = "left out (MTC_FAILOVER_KEEPALIVED=0)"
		}
		if pmMode == "0" {
			pm.skipped = "left out (MTC_FAILOVER_PACEMAKER=0)"
		}
		if pmMode == "only" {
			_, _, pm = measureFailovers(b, defaultProfile, fbVariants[0], 0, false, runs)
			continue
		}
		for _, p := range profiles {
			for _, v := range fbVariants {
				kaHere := withKA && !v.fs && ka.results == nil && ka.skipped == ""
				pmRuns := 0
				if !v.fs && pm.profile == "" && pm.skipped == "" {
					pmRuns = runs
				}
				r, k, m := measureFailovers(b, p, v, runs, kaHere, pmRuns)
				results = append(results, r)
				if kaHere {
					ka = k
				}
				if pmRuns > 0 {
					pm = m
				}
			}
		}
	}
	took := time.Since(began)
	if v := failbench.Pct(pmCol(pm, func(r pmRun) time.Duration { return r.vip }), 0.5); v > 0 {
		b.ReportMetric(float64(v)/1e6, "pacemaker-vip-p50-ms")
	}
	if pmMode == "only" {
		fmt.Print(pacemakerReport(pm, nil))
		b.Log("MTC_FAILOVER_PACEMAKER=only: Pacemaker's part printed above; MTC_BENCH_OUT is not written")
		return
	}
	for _, r := range results {
		name := strings.ReplaceAll(r.p.Name+"-"+r.v.name, " ", "")
		name = strings.ReplaceAll(name, "+", "-")
		b.ReportMetric(float64(failbench.Pct(fbVIPTimes(r), 0.5))/1e6, name+"-vip-p50-ms")
	}
	body := failoverReport(results, ka, pm, runs, took, load)
	fmt.Print(body)
	if out := os.Getenv("MTC_BENCH_OUT"); out != "" {
		if err := benchdoc.ReplaceSection(out, "failover", body); err != nil {
			b.Fatal(err)
		}
	}
}

// fbProfiles are the timing profiles MTC_FAILOVER_PROFILES names (default
// "default,aggressive").
func fbProfiles(b *testing.B) []Profile {
	v := os.Getenv("MTC_FAILOVER_PROFILES")
	if v == "" {
		return []Profile{defaultProfile, aggressiveProfile}
	}
	var profiles []Profile
	for _, name := range strings.Split(v, ",") {
		switch strings.TrimSpace(name) {
		case "default":
			profiles = append(profiles, defaultProfile)
		case "aggressive":
			profiles = append(profiles, aggressiveProfile)
		default:
			b.Fatalf("MTC_FAILOVER_PROFILES: unknown profile %q (default, aggressive)", name)
		}
	}
	return profiles
}

// fbCluster is a cluster under the failover benchmark with its observer.
type fbCluster struct {
	b        *testing.B
	c        *Cluster
	obsPath  string
	vip      netip.Prefix
	mnt      string
	handles  map[string]*netlink.Handle // per node namespace
	self     string
	prefixes map[string]string // node heartbeat address -> node name
	kaStarts int
	pg       *fbPostgres // the package's PostgreSQL, for a pg variant
}

// measureFailovers measures runs failovers of the package, then keepalived
// (withKA) and Pacemaker (pmRuns crashes, none for 0) in the same
// namespaces.
func measureFailovers(b *testing.B, p Profile, v fbVariant, runs int, withKA bool, pmRuns int) (fbResult, kaReport, pmReport) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	fc := &fbCluster{b: b, vip: netip.PrefixFrom(netip.MustParseAddr(fbVIP), fbVIPLen), self: self,
		handles: map[string]*netlink.Handle{}, prefixes: map[string]string{}}
	var dev string
	if v.fs {
		size := int64(32 << 20)
		if v.pg {
			size = fbPGDiskSize
		}
		dev = testutil.NewLoopDevice(b, 512, size).Path
		run(b, "mkfs.ext4", "-q", dev)
	}
	if v.pg {
		fc.pg = newFBPostgres(b, dev)
		fc.mnt = fc.pg.mnt
	}
	c := NewCluster(b, 3, p, WithPackages(map[string]string{fbPkg + ".toml": fc.packageFile(v, dev)}))
	fc.c = c
	defer c.stopAll()
	for _, nd := range c.Nodes {
		ns, err := netns.GetFromPath("/run/netns/" + nd.NS)
		if err != nil {
			b.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		fc.handles[nd.Name] = h
		fc.prefixes[nd.Addr] = nd.Name
	}
	fc.obsPath = "/run/netns/" + c.AddHost(0, fbObserver)
	c.WaitAllQuorate(c.Nodes...)
	res := fbResult{p: p, v: v}
	res.Case, _ = failbench.Trials[*Node, fbRun]{Crashes: runs, GiveUp: fbGiveUp, Settle: fc.waitStable,
		Crash: func(owner *Node) fbRun { return fc.crashAndMeasure(owner, v) },
		Restore: func(r fbRun) {
			victim := fc.node(r.From)
			fc.restore(victim, victim.Start)
		},
		Done: func(i int, r fbRun) {
			what := fmt.Sprintf("service %v", r.service)
			if v.pg {
				what = fmt.Sprintf("PostgreSQL write %v (stored by %s)", r.write, r.wrote)
			}
			fbProgress("%s, %s, run %d: %s -> %s: left %v, taken over %v (%s), claimed %v, started %v, running %v; VIP %v, %s %s",
				p.Name, v.name, i+1, r.From, r.To, r.Left, r.TakenOver, r.Reason, r.Claimed, r.Started, r.Running, r.VIP, what, r.Err)
		}}.Run()
	if v.pg {
		// The trials end settled, but for a case given up.
		res.rows = fc.pg.checkRows(fc.obsPath)
	}
	var ka kaReport
	if withKA {
		c.stopAll()
		ka = fc.keepalived(runs)
	}
	var pm pmReport
	if pmRuns > 0 {
		c.stopAll()
		pm = fc.pacemaker(pmRuns)
	}
	return res, ka, pm
}

func (fc *fbCluster) node(name string) *Node {
	for _, nd := range fc.c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	fc.b.Fatalf("no node %q", name)
	return nil
}

// packageFile is the package's file, for nodes n1, n2 and n3.
func (fc *fbCluster) packageFile(v fbVariant, dev string) string {
	var f strings.Builder
	fmt.Fprintf(&f, "name = %q\nnodes = [\"n1\", \"n2\", \"n3\"]\n\n[[ip]]\naddress = %q\ninterface = \"eth0\"\n", fbPkg, fc.vip.String())
	if v.pg {
		fmt.Fprintf(&f, "\n[[filesystem]]\ndevice = %q\nmount_point = %q\ntype = \"ext4\"\noptions = \"noatime\"\nunmount_timeout = \"4s\"\n", dev, fc.mnt)
		f.WriteString(fc.pg.serviceTOML())
		return f.String()
	}
	if v.fs {
		fc.mnt = filepath.Join(fc.b.TempDir(), "mnt")
		if err := os.Mkdir(fc.mnt, 0o755); err != nil {
			fc.b.Fatal(err)
		}
		addr := net.JoinHostPort(fbVIP, strconv.Itoa(fbPort))
		fmt.Fprintf(&f, "\n[[filesystem]]\ndevice = %q\nmount_point = %q\ntype = \"ext4\"\noptions = \"noatime\"\nunmount_timeout = \"4s\"\n", dev, fc.mnt)
		fmt.Fprintf(&f, "\n[[service]]\nname = \"tcp\"\ncommand = [%q, \"mtc-failbench-serve\", %q, %q]\nhealth_command = [%q, \"mtc-failbench-check\", %q]\nhealth_interval = \"2s\"\nhealth_timeout = \"1s\"\nhalt_timeout = \"2s\"\n",
			fc.self, addr, filepath.Join(fc.mnt, "served.log"), fc.self, addr)
	}
	return f.String()
}

func queryStatus(nd *Node) (daemon.Status, error) {
	return failbench.Status(context.Background(), nd.Socket, 2*time.Second)
}

// waitStable waits until every node holds quorum with all three and sees
// the package running on one node, and returns that node. A daemon that
// ended meanwhile (its watchdog killed it after a self-fence) is restarted,
// and said so in the incidents returned.
func (fc *fbCluster) waitStable() (*Node, []string) {
	settle := failbench.Settle[*Node]{Nodes: fc.c.Nodes, Package: fbPkg, Status: queryStatus,
		Revive: func(nd *Node) string {
			if !nd.Exited() {
				return ""
			}
			inc := fmt.Sprintf("%s ended (%s) and was restarted", nd.Name, exitReason(nd))
			nd.Start()
			return inc
		},
		Log:   func(inc string) { fbProgress("%s", inc) },
		Bound: waitBound, Poll: pollInterval}
	owner, incidents, ok := settle.Wait()
	if !ok {
		fc.c.WaitFor("all three quorate and the package running on one node", func() bool {
			owner, ok = failbench.StableOwner(fc.c.Nodes, fbPkg, queryStatus)
			return ok
		})
	}
	return fc.node(owner), incidents
}

// exitReason is why a daemon ended: the reason of the last self-fence in
// its log, else its exit status.
func exitReason(nd *Node) string {
	why := fmt.Sprint(nd.waitErr())
	for _, l := range strings.Split(nd.Log(), "\n") {
		if !strings.Contains(l, "SELF-FENCE") {
			continue
		}
		at, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
		if _, r, ok := strings.Cut(l, `reason="`); ok {
			r, _, _ = strings.Cut(r, `"`)
			why = fmt.Sprintf("self-fenced at %s: %s; then %v", at, r, nd.waitErr())
		}
	}
	return why
}

// crash does to victim what a crash and a reset do: its link goes down
// first (nothing it does afterwards reaches the others), its filesystem
// stops without flushing its journal, every process in its namespace (the
// daemon, its watchdog supervisor, the services) is killed with SIGKILL,
// which also ends its mount namespace, and the VIP leaves its interface.
// It returns the time just before the link went down and just after.
func (fc *fbCluster) crash(victim *Node, kill func()) (crashed, down time.Time) {
	crashed, down, err := failbench.Crash(fc.handles[victim.Name], "eth0", "/run/netns/"+victim.NS, fc.vip.Addr(), func() {
		if fc.mnt != "" && victim.proc.Running() {
			failbench.ShutdownFS(victim.PID(), fc.mnt)
		}
		kill()
	})
	if err != nil {
		fc.b.Fatal(err)
	}
	return crashed, down
}

// restore brings the crashed node's link up and starts its software.
func (fc *fbCluster) restore(victim *Node, start func()) {
	if err := failbench.LinkUp(fc.handles[victim.Name], "eth0"); err != nil {
		fc.b.Fatal(err)
	}
	start()
}

// crashAndMeasure crashes the owner and measures the failover.
func (fc *fbCluster) crashAndMeasure(owner *Node, v fbVariant) fbRun {
	pr := failbench.StartProber(fc.obsPath, fc.vip.Addr(), fbPort, fbProbeEvery, fbProbeTimeout)
	defer pr.Stop()
	var pq *pgProber
	if v.pg {
		pq = fc.pg.startProber(fc.obsPath)
		defer fc.pg.stopProber(pq)
	}
	if !pr.WaitAnswer(time.Now(), 5*time.Second, v.tcpService()) {
		fbProgress("the observer got no answer from the VIP on %s before the crash", owner.Name)
	}
	if pq != nil {
		if !pq.waitAck(time.Now(), 5*time.Second) {
			fbProgress("the observer's INSERTs were not acknowledged by PostgreSQL on %s before the crash", owner.Name)
		}
		time.Sleep(fbPGWriteBeforeCrash)
	}
	r := fbRun{Run: failbench.Run{From: owner.Name}}
	crashed, down := fc.crash(owner, owner.Kill)
	deadline := crashed.Add(fbRunBound)
	var survivors []*Node
	for _, nd := range fc.c.Nodes {
		if nd != owner {
			survivors = append(survivors, nd)
		}
	}
	done, gone := false, false
	for !done && !gone && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
		gone = true
		for _, nd := range survivors {
			gone = gone && nd.Exited()
		}
		if r.Running == 0 {
			for _, nd := range survivors {
				s, err := queryStatus(nd)
				if err != nil {
					continue
				}
				pv, _ := failbench.PackageView(s, fbPkg)
				if tl, ok := failbench.ReadTimeline(pv, owner.Name, nd.Name, crashed, fc.stepName); ok {
					r.Timeline = tl
				}
			}
		}
		vip, svc, who, ok := pr.First(down, v.tcpService())
		var ack pgAck
		if pq != nil {
			var acked bool
			ack, acked = pq.first(down)
			ok = ok && acked
		}
		done = r.Running != 0 && ok
		if done {
			r.Complete = true
			r.VIP, r.service = vip.Sub(crashed), 0
			if pq != nil {
				r.write, r.wrote = ack.at.Sub(crashed), ack.node
				if r.wrote != r.To {
					r.Err = fmt.Sprintf("the first write after the crash was stored by %q, the new owner is %s", r.wrote, r.To)
				}
			}
			if v.tcpService() {
				r.service, r.served = svc.Sub(crashed), fc.prefixes[who]
				if r.served != r.To {
					r.Err = fmt.Sprintf("the service answered from %q (%s), the new owner is %s", r.served, who, r.To)
				}
			}
		}
	}
	switch {
	case gone:
		r.Err = "every survivor ended (below) before the failover completed"
		fbProgress("%s: %s", owner.Name, r.Err)
	case !done:
		r.Err = fmt.Sprintf("no complete failover within %v", fbRunBound)
		fbProgress("%s: %s", owner.Name, r.Err)
	}
	return r
}

// crashVIP crashes victim, the VIP's holder, under the observer (kill
// ends the software that holds it) and returns the crash instant and the
// time from it to the observer's first answer, 0 when none came within
// bound. what names that software in the progress lines.
func (fc *fbCluster) crashVIP(what string, victim *Node, kill func(), bound time.Duration) (crashed time.Time, vip time.Duration) {
	pr := failbench.StartProber(fc.obsPath, fc.vip.Addr(), fbPort, fbProbeEvery, fbProbeTimeout)
	defer pr.Stop()
	if !pr.WaitAnswer(time.Now(), 5*time.Second, false) {
		fbProgress("%s: the observer got no answer from the VIP on %s before the crash", what, victim.Name)
	}
	crashed, down := fc.crash(victim, kill)
	for deadline := crashed.Add(bound); time.Now().Before(deadline); time.Sleep(fbProbeEvery) {
		if at, _, _, ok := pr.First(down, false); ok {
			return crashed, at.Sub(crashed)
		}
	}
	return crashed, 0
}

// stepName removes the paths of this run from a step's name.
func (fc *fbCluster) stepName(s string) string {
	if fc.mnt != "" {
		s = strings.ReplaceAll(s, fc.mnt, "MOUNTPOINT")
	}
	return strings.ReplaceAll(s, fc.self, "SERVICE")
}

// keepalived measures keepalived's failover of the same VIP in the same
// namespaces (the cluster's daemons stopped): one VRRP instance per node,
// advert_int 1 s (VRRPv2, keepalived's default version) and 0.1 s
// (VRRPv3), the master crashed as the daemons were.
func (fc *fbCluster) keepalived(runs int) kaReport {
	rep := kaReport{profile: fc.c.profile.Name, nodes: fc.c.Nodes}
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		fc.b.Log("keepalived not installed: apt-get update && apt-get install -y keepalived")
		cmd := exec.Command("sh", "-c", "apt-get update && apt-get install -y keepalived")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			rep.skipped = fmt.Sprintf("keepalived is not installed and `apt-get install -y keepalived` failed (%v: %s)", err, lastLine(string(out)))
			return rep
		}
		if bin, err = exec.LookPath("keepalived"); err != nil {
			rep.skipped = "keepalived is not installed and could not be installed: " + err.Error()
			return rep
		}
	}
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	rep.version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	// What keepalived makes of a sub-second advert_int with each version.
	n1 := fc.c.Nodes[0]
	for _, ver := range []int{2, 3} {
		conf := fc.kaConfig(n1, 100*time.Millisecond, ver)
		out, err := exec.Command("ip", "netns", "exec", n1.NS, bin, "--config-test", "-f", conf).CombinedOutput()
		verdict := "exits 0"
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			verdict = fmt.Sprintf("exits %d", ee.ExitCode())
		} else if err != nil {
			verdict = err.Error()
		}
		msg := strings.TrimSpace(string(out))
		if msg != "" {
			verdict += ", saying: " + strings.ReplaceAll(msg, "\n", " ")
		} else {
			verdict += ", saying nothing"
		}
		rep.accepted += fmt.Sprintf("- VRRPv%d, advert_int 0.1: `keepalived --config-test` %s\n", ver, verdict)
	}
	for _, s := range []struct {
		advert time.Duration
		ver    int
	}{{time.Second, 2}, {100 * time.Millisecond, 3}} {
		rep.results = append(rep.results, fc.kaRuns(bin, s.advert, s.ver, runs))
	}
	return rep
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// kaConfig writes the keepalived configuration of nd and returns its path.
// Every instance starts as BACKUP with nopreempt, so the VIP stays where
// it went after a crash (as the package does: failback manual).
func (fc *fbCluster) kaConfig(nd *Node, advert time.Duration, version int) string {
	prio := kaPriority(nd)
	conf := fmt.Sprintf(`global_defs {
	router_id %s
}
vrrp_instance VI_1 {
	state BACKUP
	nopreempt
	interface eth0
	virtual_router_id 51
	priority %d
	advert_int %s
	version %d
	virtual_ipaddress {
		%s dev eth0
	}
}
`, nd.Name, prio, strconv.FormatFloat(advert.Seconds(), 'f', -1, 64), version, fc.vip)
	path := filepath.Join(fc.c.dir, fmt.Sprintf("keepalived-%s-v%d-%v.conf", nd.Name, version, advert))
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		fc.b.Fatal(err)
	}
	return path
}

// kaPriority is nd's VRRP priority: 100, 90, 80 for n1, n2, n3.
func kaPriority(nd *Node) int { return 110 - 10*nd.ID }

// kaStopGrace is how long a stopped keepalived may take before it is
// killed.
const kaStopGrace = 5 * time.Second

// kaStart starts keepalived in nd's namespace.
func (fc *fbCluster) kaStart(bin string, nd *Node, advert time.Duration, version int) *failbench.Proc {
	conf := fc.kaConfig(nd, advert, version)
	base := filepath.Join(fc.c.dir, "keepalived-"+nd.Name)
	// Fresh pid files for every start: a killed keepalived whose
	// orphans init has not reaped yet leaves pid files naming zombies,
	// and keepalived refuses to start while they "run".
	fc.kaStarts++
	pids := fmt.Sprintf("%s-%d", base, fc.kaStarts)
	cmd := exec.Command("ip", "netns", "exec", nd.NS, bin, "--dont-fork", "--log-console", "--vrrp",
		"-f", conf, "-p", pids+".pid", "-r", pids+"-vrrp.pid")
	k, err := failbench.StartProc(cmd, base+".log")
	if err != nil {
		fc.b.Fatal(err)
	}
	return k
}

// vipHolders are the nodes whose eth0 carries the VIP.
func (fc *fbCluster) vipHolders() []*Node {
	var out []*Node
	for _, nd := range fc.c.Nodes {
		if failbench.HasAddr(fc.handles[nd.Name], "eth0", fc.vip.Addr()) {
			out = append(out, nd)
		}
	}
	return out
}

// kaWaitStable waits until exactly one node holds the VIP and has held it
// for settle, and returns it.
func (fc *fbCluster) kaWaitStable(settle time.Duration) *Node {
	var holder *Node
	var since time.Time
	fc.c.WaitFor("exactly one keepalived master holding the VIP", func() bool {
		hs := fc.vipHolders()
		if len(hs) != 1 {
			holder = nil
			return false
		}
		if hs[0] != holder {
			holder, since = hs[0], time.Now()
		}
		return time.Since(since) >= settle
	})
	return holder
}

func (fc *fbCluster) kaRuns(bin string, advert time.Duration, version, runs int) kaResult {
	res := kaResult{advert: advert, version: version}
	procs := map[string]*failbench.Proc{}
	for _, nd := range fc.c.Nodes {
		procs[nd.Name] = fc.kaStart(bin, nd, advert, version)
	}
	defer func() {
		for _, k := range procs {
			k.Stop(kaStopGrace)
		}
	}()
	// Settled: the backups have seen several adverts of the master.
	settle := 3*advert + 500*time.Millisecond
	// stable waits for one master with every keepalived running,
	// restarting (and noting) one that ended.
	stable := func() *Node {
		for {
			m := fc.kaWaitStable(settle)
			ok := true
			for _, nd := range fc.c.Nodes {
				if !procs[nd.Name].Running() {
					res.failed = append(res.failed, fmt.Sprintf("keepalived on %s ended by itself (see its log) and was restarted", nd.Name))
					procs[nd.Name] = fc.kaStart(bin, nd, advert, version)
					ok = false
				}
			}
			if ok {
				return m
			}
		}
	}
	master := stable()
	missed := 0
	for i := 0; i < runs; i++ {
		_, d := fc.crashVIP("keepalived", master, procs[master.Name].Kill, kaRunBound)
		if d == 0 {
			res.failed = append(res.failed, fmt.Sprintf("run %d: no answer within %v", i+1, kaRunBound))
		} else {
			res.runs = append(res.runs, d)
		}
		fbProgress("keepalived advert_int %v (VRRPv%d), run %d: %s crashed, VIP answering after %v", advert, version, i+1, master.Name, d)
		if d != 0 {
			missed = 0
		} else if missed++; missed >= fbGiveUp {
			res.failed = append(res.failed, fmt.Sprintf("given up after run %d: %d runs in a row without an answer", i+1, missed))
			break
		}
		victim := master
		fc.restore(victim, func() { procs[victim.Name] = fc.kaStart(bin, victim, advert, version) })
		master = stable()
	}
	return res
}

// fbNice says at what nice level the benchmark ran, if not 0.
func fbNice() string {
	// getpriority returns 20-nice for the calling process.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil || 20-prio == 0 {
		return ""
	}
	return fmt.Sprintf(", the benchmark and everything it starts at nice %d", 20-prio)
}

// fbProgress reports one run on the standard error, as it happens (go
// test -v shows it at once).
func fbProgress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().UTC().Format("15:04:05 ")+format+"\n", a...)
}

// fbVIPTimes are the times from the crash to the VIP answering of the
// complete runs.
func fbVIPTimes(r fbResult) []time.Duration {
	return failbench.Col(r.Runs, func(x fbRun) time.Duration { return x.VIP })
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func osRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	deb, _ := os.ReadFile("/etc/debian_version")
	s := "Linux " + strings.TrimSpace(string(b))
	if len(deb) > 0 {
		s += ", Debian " + strings.TrimSpace(string(deb))
	}
	return s
}

// fbRows are the rows of a failover report's table of times from the
// crash, through VIP answering.
func fbRows() []failbench.Row[fbRun] {
	return []failbench.Row[fbRun]{
		{Name: "crash → old owner left the membership (detection)", Of: func(x fbRun) time.Duration { return x.Left }},
		{Name: "crash → takeover allowed", Of: func(x fbRun) time.Duration { return x.TakenOver }},
		{Name: "crash → package claimed", Of: func(x fbRun) time.Duration { return x.Claimed }},
		{Name: "crash → start ordered", Of: func(x fbRun) time.Duration { return x.Started }},
		{Name: "crash → running (start plan done)", Of: func(x fbRun) time.Duration { return x.Running }},
		{Name: "crash → **VIP answering** (observer)", Of: func(x fbRun) time.Duration { return x.VIP }},
	}
}

// fbPhases are the rows of a failover report's table of phases.
func fbPhases() []failbench.Row[fbRun] {
	return []failbench.Row[fbRun]{
		{Name: "detection", Of: func(x fbRun) time.Duration { return x.Left }},
		{Name: "watchdog wait (left → takeover allowed)", Of: func(x fbRun) time.Duration { return x.TakenOver - x.Left }},
		{Name: "claim (takeover → claimed)", Of: func(x fbRun) time.Duration { return x.Claimed - x.TakenOver }},
		{Name: "claimed → start ordered (the other survivor acknowledges the claim)", Of: func(x fbRun) time.Duration { return x.Started - x.Claimed }},
		{Name: "start ordered → VIP answering (observer)", Of: func(x fbRun) time.Duration { return x.VIP - x.Started }},
		{Name: "start plan (ordered → running)", Of: func(x fbRun) time.Duration { return x.Running - x.Started }},
	}
}

func failoverReport(results []fbResult, ka kaReport, pm pmReport, runs int, took time.Duration, load string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	p("## Failover: crash of the active node to the VIP and the service answering\n\n")
	p("Three `mtc daemon` processes, each in its own network namespace (and, through `ip netns exec`, its own mount namespace) on one machine: %s, %d CPUs (%s), %s, %s; load average %s when the run began%s. One heartbeat network (veth pairs on a bridge), a loop-device quorum disk, process watchdog. One package runs on one node: either a VIP alone, or a VIP with ext4 on a loop device and a TCP service (this test binary, answering each connection with its node's address; its health check must pass before the start ends). The packages are placed with the defaults (`configured_node`, failback `manual`). Measured %s with `make bench-failover`, which runs:\n\n",
		host, numCPU(), cpuModel(), osRelease(), runtime.Version(), load, fbNice(), time.Now().UTC().Format("2006-01-02"))
	p("    MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsFailover -benchtime 1x -timeout 40m ./test/integration\n\n")
	p("The whole run (%d crashes per timing profile and package, per keepalived setting and for Pacemaker) took %s.\n\n", runs, took.Round(time.Second))
	p("**The crash.** The node running the package has its interface set down (the crash instant), its filesystem shut down without flushing the journal (`FS_IOC_SHUTDOWN`, as a power loss leaves it: the next mount replays the journal), every process in its namespace killed with SIGKILL (the daemon, its watchdog supervisor, the service; its mount namespace ends with them), and the VIP removed from its interface: what a reset leaves. It is restarted (link up, daemon started) once the failover is measured, and the next crash hits whichever node runs the package then.\n\n")
	p("**The observer**, a namespace on the same bridge, opens a TCP connection to the VIP (port %d) every %v, each waiting up to %v for its answer. *VIP answering* is the first answer (a refusal or an accept: some node holds the address and the observer reaches it) to a probe sent after the link went down; *service answering* is the first probe answered by the service with its line. The phases are the new owner's own failover timeline (`mtc status --json`, packages[].failover: local monotonic offsets from the moment the old owner left its membership); the crash to that moment is the wall clock of the one machine.\n\n",
		fbPort, fbProbeEvery, fbProbeTimeout)
	p("**No fencing on this host.** The loop devices cannot do SCSI persistent reservations, so no node can be fenced: the survivors wait for the lost node's watchdog deadline, TakeoverAfter (failure_timeout + watchdog_timeout + margin) after it left the membership, before they take its packages over. With PR fencing the takeover follows the fence instead: the next section (`failover-pr`) measures that in the QEMU lab.\n\n")
	rows := fbRows()
	service := failbench.Row[fbRun]{Name: "crash → **service answering** (observer)", Of: func(x fbRun) time.Duration { return x.service }}
	phases := fbPhases()
	for _, r := range results {
		sec := failbench.Section[fbRun]{Title: fmt.Sprintf("%s profile, package: %s", r.p.Name, r.v.name),
			Timing: fbTimingLine(r.p.Timing),
			Case:   r.Case, Rows: rows, Phases: phases,
			StepNote: "The address step includes its RFC 5227 probe (2 probes 50 ms apart, then 100 ms of listening)"}
		if r.v.fs {
			sec.Rows = append(slices.Clip(rows), service)
			sec.StepNote += "; the service's step ends with its first successful health check (retried every 100 ms), which is why the observer reaches the service before the start plan ends"
		}
		b.WriteString(sec.String())
	}
	p("### keepalived, side by side\n\n")
	if ka.skipped != "" {
		p("Not measured: %s.\n\n", ka.skipped)
	} else {
		var prios []string
		for _, nd := range ka.nodes {
			prios = append(prios, fmt.Sprintf("%s %d", nd.Name, kaPriority(nd)))
		}
		p("%s (Debian's package), in the namespaces of the %s-profile VIP cluster above, its daemons stopped: one keepalived per node (`--vrrp --dont-fork`), one VRRP instance with the same VIP on eth0, priorities %s, every instance `state BACKUP` with `nopreempt` (the VIP stays where it went, like the package), multicast adverts. The master is crashed exactly as the package's owner was (link down, SIGKILL of everything in its namespace, VIP removed), and the same observer measures crash → VIP answering. A backup takes over when it has heard no advert for 3 × advert_int + skew ((256 − priority) / 256 × advert_int). Sub-second adverts:\n\n", ka.version, ka.profile, strings.Join(prios, ", "))
		p("%s\n", ka.accepted)
		p("| keepalived | p50 | p95 | max | runs |\n|---|---|---|---|---|\n")
		for _, k := range ka.results {
			p("| advert_int %v (VRRPv%d) | %s | %s | %s | %d |\n", k.advert, k.version, failbench.Sec(failbench.Pct(k.runs, 0.5)), failbench.Sec(failbench.Pct(k.runs, 0.95)), failbench.Sec(failbench.Pct(k.runs, 1)), len(k.runs))
		}
		for _, k := range ka.results {
			for _, f := range k.failed {
				p("\nadvert_int %v: %s\n", k.advert, f)
			}
		}
		p("\nOur p50 (crash → VIP answering, VIP package) divided by keepalived's p50 (above 1: we are slower):\n\n| mtc profile |")
		for _, k := range ka.results {
			p(" vs advert_int %v |", k.advert)
		}
		p("\n|---|")
		for range ka.results {
			p("---|")
		}
		p("\n")
		for _, r := range results {
			if r.v.fs {
				continue
			}
			ours := failbench.Pct(fbVIPTimes(r), 0.5)
			p("| %s (TakeoverAfter %v; p50 %s) |", r.p.Name, r.p.Timing.Derive().TakeoverAfter, failbench.Sec(ours))
			for _, k := range ka.results {
				if theirs := failbench.Pct(k.runs, 0.5); theirs > 0 && ours > 0 {
					p(" %.1f× |", float64(ours)/float64(theirs))
				} else {
					p(" — |")
				}
			}
			p("\n")
		}
		p("\nkeepalived moves an address and nothing else: it does not fence the old master (no persistent reservation, no power fencing, no watchdog that guarantees the old master has stopped), it has no quorum (a partitioned master keeps the VIP while a backup takes it too: two masters), and it knows no storage (no volume group or filesystem is moved, no service is stopped before the address moves). Its speed comes from taking over as soon as adverts stop (3 × advert_int + skew); the package's failover waits until the old owner is certainly down before anything touches its data.\n\n")
	}
	b.WriteString(pacemakerReport(pm, results))
	return b.String()
}
