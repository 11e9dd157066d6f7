package integration

// The chaos suite: root trials of the three-node cluster running package
// web (cluster_packages_test.go), each a fresh cluster, one fault kind and
// a seed that fixes every random choice (target node, direction, when,
// how long). During a trial the observer probes the VIP, the sampler
// reads the kernels, and the data witness (a second client) makes writes,
// each from a local port of its own that the service records in the data
// file with its node's name; at the end the history checker
// (chaos_check_test.go) judges what was observed.
//
// A node whose watchdog killed its daemon is treated as a reset machine:
// the harness removes the VIP from its interface (process mode kills the
// processes, but leaves addresses, which a reset clears), nothing else:
// its services must have died by the watchdog, or its mount stays and the
// sampler sees it. After the fault the trial heals everything (network
// rules removed, links up, the disk thawed, dead daemons started again)
// and requires every node to be a member again and web to answer.
//
// TestNetnsChaosEveryFault (in `make test`) runs one trial of every kind;
// TestNetnsChaosBatch (`make chaos`) a seeded batch, with a summary
// written to MTC_CHAOS_OUT. A failed trial prints its seed and the command
// that replays it, the merged timeline and the daemons' logs.

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
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

	"github.com/vishvananda/netns"

	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/journal"
)

// The data witness: its host number on the bridge, how often it writes,
// how many writes may be in flight, and its first local port (one port
// per write, never reused within a trial: the witness's namespace has no
// other client).
const (
	witnessHost  = 201
	witnessEvery = 20 * time.Millisecond
	witnessers   = 12
	witnessPort0 = 20000
	witnessPortN = 65000
)

type witness struct {
	ip   string
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu     sync.Mutex
	writes []write
}

// startWitness starts the data witness in namespace ns; its times are
// since start (the observer's clock).
func (w *webCluster) startWitness(ns string, start time.Time) *witness {
	wi := &witness{ip: fmt.Sprintf(subnetFmt, 0, witnessHost), done: make(chan struct{})}
	addr := net.JoinHostPort(w.vip.Addr().String(), strconv.Itoa(webPort))
	h, err := netns.GetFromPath("/run/netns/" + ns)
	if err != nil {
		w.t.Fatal(err)
	}
	defer h.Close()
	type job struct {
		port int
		at   time.Duration
	}
	jobs := make(chan job)
	ready := make(chan error, witnessers)
	for range witnessers {
		wi.wg.Add(1)
		go func() {
			defer wi.wg.Done()
			// Locked to a thread of the witness's namespace for good (the
			// thread ends with the goroutine).
			runtime.LockOSThread()
			if err := netns.Set(h); err != nil {
				ready <- err
				return
			}
			ready <- nil
			for {
				var j job
				select {
				case <-wi.done:
					return
				case j = <-jobs:
				}
				node, tag, err := witnessWrite(wi.ip, j.port, addr)
				wr := write{Port: j.port, Sent: j.at, Acked: time.Since(start), Node: node, Start: tag}
				if err != nil {
					wr.Err = err.Error()
				}
				wi.mu.Lock()
				wi.writes = append(wi.writes, wr)
				wi.mu.Unlock()
			}
		}()
	}
	for range witnessers {
		if err := <-ready; err != nil {
			w.t.Fatal(err)
		}
	}
	wi.wg.Add(1)
	go func() {
		defer wi.wg.Done()
		tk := time.NewTicker(witnessEvery)
		defer tk.Stop()
		for port := witnessPort0; port < witnessPortN; {
			select {
			case <-wi.done:
				return
			case <-tk.C:
			}
			select {
			case jobs <- job{port, time.Since(start)}:
				port++
			default:
			}
		}
	}()
	return wi
}

// witnessWrite makes one write: a connection from ip:port to the VIP, the
// answer (the serving node's name, and the incarnation and epoch of the
// start serving it) is the acknowledgement; the service syncs its line
// "<node> <ip>:<port> <incarnation> <epoch>" to the data file before it
// answers.
func witnessWrite(ip string, port int, addr string) (node, start string, err error) {
	d := net.Dialer{Timeout: probeWait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(probeWait))
	b, err := io.ReadAll(io.LimitReader(c, 128))
	node, start, complete := strings.Cut(string(b), "\n")
	start, _, complete2 := strings.Cut(start, "\n")
	if !complete || !complete2 {
		if err == nil {
			err = errors.New("answer without its two lines")
		}
		return "", "", err
	}
	return strings.TrimSpace(node), strings.TrimSpace(start), nil
}

func (wi *witness) stop() []write {
	wi.once.Do(func() { close(wi.done) })
	wi.wg.Wait()
	wi.mu.Lock()
	defer wi.mu.Unlock()
	out := slices.Clone(wi.writes)
	slices.SortFunc(out, func(a, b write) int { return int(a.Sent - b.Sent) })
	return out
}

// ---- Trials ----

// trial is one run of a fault on a fresh cluster.
type trial struct {
	t     *testing.T
	w     *webCluster
	rng   *rand.Rand
	combo bool // part of a combination: no expectation of a single fault

	mu       sync.Mutex
	nodes    map[*Node]*nodeWatch
	deaths   []death
	notes    []note
	problems []string // what a fault expected and did not see
	failing  bool     // a service was made to fail: clear the marks at the end
	monStop  chan struct{}
	monDone  chan struct{}
	monOnce  sync.Once
}

type nodeWatch struct {
	exited     <-chan struct{}
	deliberate bool
	seen       bool
}

func (tr *trial) now() time.Duration { return tr.w.watch.now() }

func (tr *trial) notef(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := note{At: tr.now(), Text: fmt.Sprintf(format, args...)}
	tr.notes = append(tr.notes, n)
	tr.t.Logf("%v %s", n.At.Round(time.Millisecond), n.Text)
}

func (tr *trial) problemf(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.problems = append(tr.problems, fmt.Sprintf(format, args...))
}

// monitor watches every daemon: it records each death, and resets the
// machine of one its watchdog killed (removes the VIP from its
// interface: what process mode leaves and a reset clears).
func (tr *trial) startMonitor() {
	tr.nodes = map[*Node]*nodeWatch{}
	for _, nd := range tr.w.Nodes {
		tr.nodes[nd] = &nodeWatch{exited: nd.exited()}
	}
	tr.monStop, tr.monDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(tr.monDone)
		for {
			select {
			case <-tr.monStop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			tr.mu.Lock()
			for _, nd := range tr.w.Nodes {
				nw := tr.nodes[nd]
				if nw.seen {
					continue
				}
				select {
				case <-nw.exited:
				default:
					continue
				}
				nw.seen = true
				tr.deaths = append(tr.deaths, death{Node: nd.Name, At: tr.now(), Deliberate: nw.deliberate})
				if !nw.deliberate {
					_ = exec.Command("ip", "-n", nd.NS, "addr", "del", tr.w.vip.String(), "dev", "eth0").Run()
				}
			}
			tr.mu.Unlock()
		}
	}()
}

func (tr *trial) stopMonitor() {
	tr.monOnce.Do(func() { close(tr.monStop) })
	<-tr.monDone
}

// startNode starts nd's daemon again (links up first).
func (tr *trial) startNode(nd *Node) {
	for k := 0; k < tr.w.nets; k++ {
		_ = exec.Command("ip", "-n", nd.NS, "link", "set", fmt.Sprintf("eth%d", k), "up").Run()
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	nd.Start()
	tr.nodes[nd] = &nodeWatch{exited: nd.exited()}
	tr.notes = append(tr.notes, note{At: tr.now(), Text: "started " + nd.Name + "'s daemon"})
}

// deliberately marks nd's next death as the test's doing.
func (tr *trial) deliberately(nd *Node) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.nodes[nd].deliberate = true
}

func (tr *trial) exited(nd *Node) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	select {
	case <-tr.nodes[nd].exited:
		return true
	default:
		return false
	}
}

// owner is the node that answered the observer last (any live node when
// none answers now).
func (tr *trial) owner() *Node {
	if n := tr.w.watch.lastAnswer(); n != "" {
		for _, nd := range tr.w.Nodes {
			if nd.Name == n {
				return nd
			}
		}
	}
	return tr.pick(tr.w.Nodes)
}

func (tr *trial) pick(nodes []*Node) *Node { return nodes[tr.rng.Intn(len(nodes))] }

func (tr *trial) others(nd *Node) []*Node {
	var out []*Node
	for _, o := range tr.w.Nodes {
		if o != nd {
			out = append(out, o)
		}
	}
	return out
}

// target is the owner two times in three, another node otherwise.
func (tr *trial) target() *Node {
	o := tr.owner()
	if tr.rng.Intn(3) < 2 {
		return o
	}
	return tr.pick(tr.others(o))
}

// between is a random duration in [lo, hi).
func (tr *trial) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(tr.rng.Int63n(int64(hi-lo)))
}

// waitOther waits up to bound until a node other than nd answers.
func (tr *trial) waitOther(nd *Node, bound time.Duration) bool {
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(pollInterval) {
		if a := tr.w.watch.lastAnswer(); a != "" && a != nd.Name {
			return true
		}
	}
	return false
}

func (tr *trial) nft(nd *Node, rules string) {
	f := filepath.Join(tr.w.dir, fmt.Sprintf("%s-chaos-%d.nft", nd.Name, tr.rng.Int63()))
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	run(tr.t, "ip", "netns", "exec", nd.NS, "nft", "-f", f)
}

func (tr *trial) nftDelete(nd *Node, table string) {
	_ = exec.Command("ip", "netns", "exec", nd.NS, "nft", "delete", "table", "inet", table).Run()
}

// ---- Faults ----

// fault is one kind of fault. Inject chooses its target and parameters
// from the trial's seeded rand, injects it, and returns how long to keep
// it and what heals it (nil: nothing).
type fault struct {
	Name   string
	Opts   webOptions
	Inject func(tr *trial) (hold time.Duration, heal func())
	// InCombo: it can be one of a combination's faults.
	InCombo bool
}

// comboOpts is the cluster of combinations: two heartbeat networks and a
// freezable quorum disk, so that every fault can be combined.
var comboOpts = webOptions{Restarts: 1, Nets: 2, Cluster: []ClusterOption{WithFreezableDisk()}}

var faults []fault

func init() {
	faults = []fault{
		{Name: "crash", Inject: faultCrash, InCombo: true},
		{Name: "freeze", Inject: faultFreeze, InCombo: true},
		{Name: "partition", Inject: faultPartition, InCombo: true},
		{Name: "one-way", Inject: faultOneWay, InCombo: true},
		{Name: "heartbeat-net", Opts: webOptions{Nets: 2}, Inject: faultHeartbeatNet, InCombo: true},
		{Name: "quorum-disk", Opts: webOptions{Cluster: []ClusterOption{WithFreezableDisk()}}, Inject: faultQuorumDisk, InCombo: true},
		{Name: "failing-service", Opts: webOptions{Restarts: 1}, Inject: faultFailingService, InCombo: true},
		{Name: "move", Inject: faultMove, InCombo: true},
		{Name: "restart-in-failover", Inject: faultRestartInFailover, InCombo: true},
		{Name: "combination", Opts: comboOpts, Inject: faultCombination},
	}
}

func faultByName(name string) (fault, bool) {
	for _, f := range faults {
		if f.Name == name {
			return f, true
		}
	}
	return fault{}, false
}

// crash: kill -9 of the daemon with its link down, its processes and the
// VIP gone as after a reset; it starts again after the hold.
func faultCrash(tr *trial) (time.Duration, func()) {
	nd := tr.target()
	tr.notef("crash %s (link down, kill -9, reset)", nd.Name)
	tr.deliberately(nd)
	tr.w.crashServer(nd)
	return tr.between(2*time.Second, 4*time.Second), func() {
		tr.startNode(nd)
	}
}

// freezeHold is longer than every timeout of the aggressive profile: the
// failure timeout, the watchdog timeout and the survivors' takeover
// deadline (about 1.5 s after the loss).
func (tr *trial) freezeHold() time.Duration { return tr.between(3*time.Second, 5*time.Second) }

// freeze: SIGSTOP of the daemon's process group (its services, in
// sessions of their own, keep running) for longer than every timeout,
// then SIGCONT. Its watchdog must kill it, and with it its services.
func faultFreeze(tr *trial) (time.Duration, func()) {
	nd := tr.target()
	if tr.exited(nd) {
		tr.notef("freeze %s: its daemon is not running, nothing to freeze", nd.Name)
		return 0, nil
	}
	pid := nd.PID()
	tr.notef("SIGSTOP %s's daemon (process group %d)", nd.Name, pid)
	_ = syscall.Kill(-pid, syscall.SIGSTOP)
	return tr.freezeHold(), func() {
		tr.notef("SIGCONT %s's daemon", nd.Name)
		_ = syscall.Kill(-pid, syscall.SIGCONT)
		if tr.combo || tr.w.watchdogNone {
			return
		}
		// Its watchdog fired long before (the hold is past its timeout).
		for deadline := time.Now().Add(5 * time.Second); !tr.exited(nd) && time.Now().Before(deadline); time.Sleep(pollInterval) {
		}
		if !tr.exited(nd) {
			tr.problemf("%s's daemon, frozen for longer than its watchdog timeout, is still alive", nd.Name)
		} else if !nd.KilledBySIGKILL() {
			tr.problemf("%s's frozen daemon ended with %v, want SIGKILL from its watchdog", nd.Name, nd.waitErr())
		}
	}
}

// partition: every heartbeat packet in and out of the node dropped.
func faultPartition(tr *trial) (time.Duration, func()) {
	nd := tr.target()
	tr.notef("partition %s (heartbeats dropped both ways)", nd.Name)
	nd.CutNetwork()
	return tr.between(3*time.Second, 5*time.Second), func() {
		tr.notef("heal the partition of %s", nd.Name)
		for k := 0; k < tr.w.nets; k++ {
			tr.nftDelete(nd, fmt.Sprintf("mtccut%d", k))
		}
	}
}

// one-way: the node's incoming or its outgoing heartbeats dropped.
func faultOneWay(tr *trial) (time.Duration, func()) {
	nd := tr.target()
	hook, dir := "input", "incoming"
	if tr.rng.Intn(2) == 0 {
		hook, dir = "output", "outgoing"
	}
	var ports []string
	for k := 0; k < tr.w.nets; k++ {
		ports = append(ports, strconv.Itoa(hbPort+k))
	}
	tr.notef("one-way partition of %s: its %s heartbeats dropped", nd.Name, dir)
	tr.nft(nd, fmt.Sprintf("table inet mtconeway {\n\tchain c { type filter hook %s priority 0; policy accept; udp dport { %s } drop; }\n}\n", hook, strings.Join(ports, ", ")))
	return tr.between(3*time.Second, 5*time.Second), func() {
		tr.notef("heal the one-way partition of %s", nd.Name)
		tr.nftDelete(nd, "mtconeway")
	}
}

// heartbeat-net: one of the two heartbeat networks lost on one node.
func faultHeartbeatNet(tr *trial) (time.Duration, func()) {
	nd := tr.pick(tr.w.Nodes)
	k := tr.rng.Intn(tr.w.nets)
	tr.notef("heartbeat network %d lost on %s", k, nd.Name)
	nd.CutHeartbeatNetwork(k)
	return tr.between(2*time.Second, 4*time.Second), func() {
		tr.notef("heartbeat network %d back on %s", k, nd.Name)
		tr.nftDelete(nd, fmt.Sprintf("mtccut%d", k))
	}
}

// quorum-disk: every write to the quorum disk hangs (the harness's
// freezable disk freezes the one device all nodes use: the loss of the
// disk path, on every node at once).
func faultQuorumDisk(tr *trial) (time.Duration, func()) {
	if tr.w.Disk == nil {
		tr.notef("quorum disk not freezable in this cluster")
		return 0, nil
	}
	tr.notef("quorum disk frozen (every write hangs)")
	if err := tr.w.Disk.Freeze(); err != nil {
		tr.notef("freeze: %v", err)
		return 0, nil
	}
	return tr.between(500*time.Millisecond, 3*time.Second), func() {
		tr.notef("quorum disk thawed")
		if err := tr.w.Disk.Thaw(); err != nil {
			tr.notef("thaw: %v", err)
		}
	}
}

// failing-service: the service exits at every start on the owner.
func faultFailingService(tr *trial) (time.Duration, func()) {
	nd := tr.owner()
	f := filepath.Join(tr.w.failDir, nd.Name)
	tr.notef("the service fails on %s from now on", nd.Name)
	tr.mu.Lock()
	tr.failing = true
	tr.mu.Unlock()
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		tr.t.Fatal(err)
	}
	if !tr.combo && !tr.waitOther(nd, 30*time.Second) {
		tr.problemf("web did not move off %s, where its service keeps failing", nd.Name)
	}
	return tr.between(0, time.Second), func() {
		tr.notef("the service no longer fails on %s", nd.Name)
		_ = os.Remove(f)
	}
}

// move: `mtc move web --to` another node under the clients' load.
func faultMove(tr *trial) (time.Duration, func()) {
	from := tr.owner()
	to := tr.pick(tr.others(from))
	via := tr.pick(tr.w.Nodes)
	tr.notef("mtc move web --to %s (from %s, via %s)", to.Name, from.Name, via.Name)
	r := tr.w.mtc(via.Name, "move", "web", "--to", to.Name, "--wait", "30s")
	tr.notef("move ended: exit %d, outcome %q %s", r.Exit, r.Intent.Outcome, r.Intent.Reason)
	if !tr.combo && (r.Exit != 0 || r.Intent.Outcome != "done") {
		tr.problemf("mtc move web --to %s via %s: exit %d, outcome %q: %s", to.Name, via.Name, r.Exit, r.Intent.Outcome, r.Out)
	}
	return 0, nil
}

// restart-in-failover: the owner crashes; while the survivors take web
// over, one of them is restarted (an orderly stop and start).
func faultRestartInFailover(tr *trial) (time.Duration, func()) {
	nd := tr.owner()
	tr.notef("crash %s (link down, kill -9, reset)", nd.Name)
	tr.deliberately(nd)
	tr.w.crashServer(nd)
	time.Sleep(tr.between(0, 2500*time.Millisecond))
	r := tr.pick(tr.others(nd))
	if !tr.exited(r) {
		tr.notef("restart %s during the failover", r.Name)
		tr.deliberately(r)
		r.Stop()
		tr.startNode(r)
	}
	return tr.between(time.Second, 3*time.Second), func() { tr.startNode(nd) }
}

// combination: two or three faults at random times (their starts within
// 3 s), each held as it would be alone, overlapping as they fall.
func faultCombination(tr *trial) (time.Duration, func()) {
	tr.combo = true
	var pool []fault
	for _, f := range faults {
		if f.InCombo {
			pool = append(pool, f)
		}
	}
	type event struct {
		at   time.Duration
		name string
		do   func()
	}
	start := time.Now()
	var queue []event
	for range 2 + tr.rng.Intn(2) {
		f := pool[tr.rng.Intn(len(pool))]
		queue = append(queue, event{at: tr.between(0, 3*time.Second), name: f.Name})
		inject := f.Inject
		i := len(queue) - 1
		queue[i].do = func() {
			hold, heal := inject(tr)
			if heal != nil {
				queue = append(queue, event{at: time.Since(start) + hold, name: "heal", do: heal})
			}
		}
	}
	var names []string
	for _, e := range queue {
		names = append(names, fmt.Sprintf("%s@%v", e.name, e.at.Round(time.Millisecond)))
	}
	tr.notef("combination: %s", strings.Join(names, ", "))
	for len(queue) > 0 {
		slices.SortStableFunc(queue, func(a, b event) int { return int(a.at - b.at) })
		e := queue[0]
		queue = queue[1:]
		time.Sleep(time.Until(start.Add(e.at)))
		e.do()
	}
	return 0, nil
}

// heal restores everything a fault may have left: network rules removed,
// links up, the disk thawed, the failing service fixed and its marks
// cleared, dead daemons started again.
func (tr *trial) healAll() {
	for _, nd := range tr.w.Nodes {
		for k := 0; k < tr.w.nets; k++ {
			tr.nftDelete(nd, fmt.Sprintf("mtccut%d", k))
		}
		tr.nftDelete(nd, "mtconeway")
		_ = syscall.Kill(-nd.PID(), syscall.SIGCONT)
	}
	if tr.w.Disk != nil {
		_ = tr.w.Disk.Thaw()
	}
	ents, _ := os.ReadDir(tr.w.failDir)
	for _, e := range ents {
		_ = os.Remove(filepath.Join(tr.w.failDir, e.Name()))
	}
	for _, nd := range tr.w.Nodes {
		if tr.exited(nd) {
			tr.startNode(nd)
		}
	}
}

// recovered waits until every node holds quorum with all and web answers
// (its owner's status saying so), starting again every daemon that
// exits meanwhile.
func (tr *trial) recovered() bool {
	all := names(tr.w.Nodes...)
	cleared := false
	for deadline := time.Now().Add(waitBound); time.Now().Before(deadline); time.Sleep(pollInterval) {
		// A node its watchdog killed meanwhile (it lost quorum while
		// another was down) is a reset machine: it boots again.
		for _, nd := range tr.w.Nodes {
			if tr.exited(nd) {
				tr.startNode(nd)
			}
		}
		ok := true
		for _, nd := range tr.w.Nodes {
			if !nd.QuorateWith(all...) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		tr.mu.Lock()
		failing := tr.failing
		tr.mu.Unlock()
		if failing && !cleared {
			tr.w.mtc(tr.w.Nodes[0].Name, "clear", "web")
			cleared = true
		}
		a := tr.w.watch.lastAnswer()
		for _, nd := range tr.w.Nodes {
			if nd.Name == a && statusRunsOn(nd) {
				return true
			}
		}
	}
	return false
}

// trialResult is one trial's outcome for the summary.
type trialResult struct {
	Kind       string
	Seed       int64
	Passed     bool
	Violations []violation
	Problems   []string
	Downtime   time.Duration
	Took       time.Duration
}

// longOutage is an outage whose trial's timeline is logged even when it
// passes: longer than any single failover of the aggressive profile.
const longOutage = 6 * time.Second

// trialFlags change what a trial expects.
type trialFlags struct {
	// planted: the cluster is built to fail (the watchdog off): the
	// violations are returned, not reported as errors, and web need not
	// recover.
	planted bool
}

// runTrial runs one trial of fault f with seed on a fresh cluster.
func runTrial(t *testing.T, f fault, seed int64, fl trialFlags, more ...ClusterOption) (res trialResult) {
	began := time.Now()
	res = trialResult{Kind: f.Name, Seed: seed}
	t.Logf("chaos trial %s seed %d; replay: MTC_CHAOS_KINDS=%s MTC_CHAOS_SEED=%d MTC_CHAOS_TRIALS=1 go test -count=1 -run '^TestNetnsChaosBatch$' -v ./test/integration", f.Name, seed, f.Name, seed)
	opts := f.Opts
	opts.Cluster = append(slices.Clone(opts.Cluster), more...)
	opts.NoWait = true
	w := newWebCluster(t, opts)
	tr := &trial{t: t, w: w, rng: rand.New(rand.NewSource(seed))}
	tr.startMonitor()
	t.Cleanup(tr.stopMonitor)
	// A daemon may die while the cluster forms (its first quorum-disk
	// writes slow on a fresh filesystem): it starts again, as a reset
	// machine boots.
	if !tr.recovered() {
		t.Fatalf("the cluster did not form within %v: every node a member and web answering", waitBound)
	}
	tr.notef("cluster formed, web answering")
	wns := w.AddHost(0, witnessHost)
	wit := w.startWitness(wns, w.watch.start)
	defer wit.stop()
	time.Sleep(tr.between(300*time.Millisecond, 1200*time.Millisecond))
	faultAt := tr.now()
	hold, heal := f.Inject(tr)
	time.Sleep(hold)
	if heal != nil {
		heal()
	}
	tr.notef("fault over; healing everything")
	tr.healAll()
	if fl.planted {
		time.Sleep(2 * time.Second)
	} else if !tr.recovered() {
		tr.problemf("not recovered within %v after the fault healed: every node a member and web answering", waitBound)
	} else {
		tr.notef("recovered: every node a member, web answering")
	}
	time.Sleep(20 * probeEvery)
	writes := wit.stop()
	probes, samples, err := w.watch.stopAndGet()
	if err != nil {
		tr.problemf("the sampler: %v", err)
	}
	tr.stopMonitor()

	h := history{Start: w.watch.start, Probes: probes, Samples: samples, Writes: writes,
		Witness: wit.ip, Observer: fmt.Sprintf(subnetFmt, 0, observerNum), Journals: map[string][]journal.Event{},
		Deaths: tr.deaths, Notes: tr.notes}
	h.Data, err = tr.dataFile()
	if err != nil {
		tr.problemf("the data file: %v", err)
	}
	for _, nd := range w.Nodes {
		evs, _, err := journal.Read(filepath.Join(w.dir, nd.Name+".events.jsonl"))
		if err != nil {
			tr.problemf("%s's journal: %v", nd.Name, err)
		}
		h.Journals[nd.Name] = evs
	}
	res.Violations = h.check()
	res.Problems = tr.problems
	res.Downtime = longestOutage(probes, faultAt)
	res.Took = time.Since(began)
	res.Passed = len(res.Violations) == 0 && len(res.Problems) == 0
	acked := 0
	for _, wr := range writes {
		if wr.Node != "" {
			acked++
		}
	}
	t.Logf("chaos trial %s seed %d: %d probes, %d writes (%d acknowledged), %d data lines, %d violations, longest outage %v, %v",
		f.Name, seed, len(probes), len(writes), acked, len(parseDataFile(h.Data)), len(res.Violations), res.Downtime.Round(time.Millisecond), res.Took.Round(time.Second))
	for _, p := range res.Problems {
		t.Errorf("seed %d: %s", seed, p)
	}
	for _, v := range res.Violations {
		if fl.planted {
			t.Logf("found: %v", v)
		} else {
			t.Errorf("seed %d: %v", seed, v)
		}
	}
	// A long outage is logged with its timeline too, to be explained.
	if !res.Passed || fl.planted || res.Downtime > longOutage || os.Getenv("MTC_CHAOS_TIMELINE") != "" {
		t.Logf("timeline (seed %d):\n%s", seed, h.timeline())
	}
	return res
}

// dataFile reads the data file from the shared filesystem, mounted in a
// private mount namespace of its own (nothing propagates to the nodes,
// and the mount ends with it), so that it does not depend on any node's
// daemon: read-only, or, when a node has it mounted read-write (the
// kernel then refuses a read-only mount of the same filesystem), as that
// node has it.
func (tr *trial) dataFile() (string, error) {
	dir := tr.t.TempDir()
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`{ mount -o ro -t ext4 "$1" "$2" 2>/dev/null || mount -t ext4 "$1" "$2"; } && cat "$2/served.log"`, "sh", tr.w.dev, dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("reading served.log of %s: %w", tr.w.dev, err)
	}
	return string(out), nil
}

// ---- The tests ----

// TestNetnsChaosEveryFault: one trial of every fault kind.
func TestNetnsChaosEveryFault(t *testing.T) {
	requireTools(t)
	for i, f := range faults {
		t.Run(f.Name, func(t *testing.T) { runTrial(t, f, int64(1000+i), trialFlags{}) })
	}
}

// TestNetnsChaosCheckerCatchesFrozenOwner: the owner's daemon frozen with
// the watchdog switched off: the survivors take web over at the watchdog
// deadline while the frozen node's service still runs, holding the mount
// and the VIP; the checker must report the double ownership (two holders
// in the kernels or the journals, two nodes answering, or the frozen
// owner's writes acknowledged after the takeover). With the process
// watchdog the same trial passes.
func TestNetnsChaosCheckerCatchesFrozenOwner(t *testing.T) {
	requireTools(t)
	freeze, _ := faultByName("freeze")
	const seed = 7
	t.Run("watchdog-none", func(t *testing.T) {
		planted := freeze
		// Without fsck, which on this one kernel would see the frozen
		// node's mount and refuse (on a SAN it would not see it).
		planted.Opts.Fsck = "never"
		res := runTrial(t, planted, seed, trialFlags{planted: true}, WithWatchdogNone())
		// The new owner's start may stop short of a lasting overlap in the
		// kernels: its duplicate-address check refuses the VIP the frozen
		// node still holds, and it halts again within milliseconds, less
		// than the sampler's period. The frozen owner serving on after the
		// survivors took the package over is the double ownership the data
		// witness sees (fencedWrite), whatever the new owner got to.
		found := false
		for _, v := range res.Violations {
			switch v.Kind {
			case vipOverlap, mountOverlap, claimOverlap, twoAnswering, replacedWrite, fencedWrite:
				found = true
			}
		}
		if !found {
			t.Errorf("with the watchdog off the checker found no double ownership; violations: %v", res.Violations)
		}
	})
	t.Run("watchdog-process", func(t *testing.T) { runTrial(t, freeze, seed, trialFlags{}) })
}

// TestNetnsChaosBatch runs MTC_CHAOS_TRIALS trials (skipped when unset;
// MTC_CHAOS_TIMELINE=1 logs the merged timeline of passing trials too;
// none starts after MTC_CHAOS_FOR, a duration, when set),
// trial i of kind i modulo the kinds (MTC_CHAOS_KINDS, comma-separated,
// all by default) with seed MTC_CHAOS_SEED+i, and writes the summary to
// MTC_CHAOS_OUT when set.
func TestNetnsChaosBatch(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MTC_CHAOS_TRIALS"))
	if n <= 0 {
		t.Skip("MTC_CHAOS_TRIALS not set: `make chaos` runs the batch")
	}
	requireTools(t)
	base, _ := strconv.ParseInt(os.Getenv("MTC_CHAOS_SEED"), 10, 64)
	kinds := faults
	if s := os.Getenv("MTC_CHAOS_KINDS"); s != "" {
		kinds = nil
		for _, k := range strings.Split(s, ",") {
			f, ok := faultByName(k)
			if !ok {
				t.Fatalf("MTC_CHAOS_KINDS: unknown fault kind %q", k)
			}
			kinds = append(kinds, f)
		}
	}
	// MTC_CHAOS_FOR bounds the batch's time: no trial starts after it.
	var budget time.Duration
	if s := os.Getenv("MTC_CHAOS_FOR"); s != "" {
		var err error
		if budget, err = time.ParseDuration(s); err != nil {
			t.Fatalf("MTC_CHAOS_FOR: %v", err)
		}
	}
	began := time.Now()
	var results []trialResult
	for i := range n {
		if budget > 0 && time.Since(began) > budget {
			fmt.Fprintf(os.Stderr, "chaos: MTC_CHAOS_FOR=%v reached after %d of %d trials\n", budget, i, n)
			break
		}
		f, seed := kinds[i%len(kinds)], base+int64(i)
		var res trialResult
		ok := t.Run(fmt.Sprintf("%s/seed=%d", f.Name, seed), func(t *testing.T) {
			res = trialResult{Kind: f.Name, Seed: seed, Problems: []string{"the trial ended early (see its log)"}}
			res = runTrial(t, f, seed, trialFlags{})
		})
		if !ok {
			res.Passed = false
			if len(res.Violations) == 0 && len(res.Problems) == 0 {
				res.Problems = []string{"the trial ended early (see its log)"}
			}
		}
		results = append(results, res)
		fmt.Fprintf(os.Stderr, "chaos: %d/%d %s seed %d: passed=%v outage %v (%v)\n", i+1, n, f.Name, seed, res.Passed, res.Downtime.Round(time.Millisecond), res.Took.Round(time.Second))
	}
	if out := os.Getenv("MTC_CHAOS_OUT"); out != "" {
		body := chaosSummary(results, base, os.Getenv("MTC_CHAOS_KINDS"), os.Getenv("MTC_CHAOS_FOR"), time.Since(began))
		if err := benchdoc.ReplaceSectionIn(out, chaosIntro, "chaos", body); err != nil {
			t.Fatal(err)
		}
	}
}
