package integration

import (
	"context"
	"fmt"
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

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/quorum"
)

// defaultLoadDuration is how long BenchmarkNetnsLoad keeps the cluster under
// load unless MTC_LOAD_DURATION says otherwise.
const defaultLoadDuration = 10 * time.Minute

// loadPollInterval is how often the load benchmark asks every daemon for its
// status: one default heartbeat interval, so the sampled gaps are at most
// that much below the true ones, without the polling itself loading the
// daemons much.
const loadPollInterval = 100 * time.Millisecond

// freezeTick is the period of the quorum-disk freeze bursts. Every tick
// freezes the disk for shortFreeze, except every longFreezeEvery-th tick
// (the first at tick longFreezeEvery/2, so that a 30 s run has one),
// which freezes it for longFreeze. Both stay below the default io_timeout
// (400ms): a healthy cluster rides them out.
const (
	freezeTick      = 5 * time.Second
	shortFreeze     = 150 * time.Millisecond
	longFreeze      = 300 * time.Millisecond
	longFreezeEvery = 6 // every 30 s
)

// busyLoop is the ordinary-priority CPU hog: one per CPU.
var busyLoop = []string{"sh", "-c", "while :; do :; done"}

// freezeStats describes the freeze bursts one run applied.
type freezeStats struct {
	count map[time.Duration]int // per nominal length
	// longest is, per nominal length, the longest time from the start of
	// `fsfreeze --freeze` to the return of `fsfreeze --unfreeze`: an upper
	// bound of the time writes hung.
	longest map[time.Duration]time.Duration
	errs    []string

	mu     sync.Mutex
	frozen []interval // from the freeze call to the thaw's return
}

// interval is a span of wall-clock time.
type interval struct{ from, to time.Time }

func (i interval) overlaps(j interval) bool { return i.from.Before(j.to) && j.from.Before(i.to) }

// duringFreeze reports whether i overlapped a freeze burst.
func (fs *freezeStats) duringFreeze(i interval) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.frozen {
		if f.overlaps(i) {
			return true
		}
	}
	return false
}

// gap is the largest sampled value of one "time since" in the status, and
// whether the span it covers overlapped a freeze burst.
type gap struct {
	d      time.Duration
	span   interval
	freeze bool
}

func (g *gap) note(d time.Duration, at time.Time) {
	if d > g.d {
		g.d, g.span = d, interval{at.Add(-d), at}
	}
}

func (g gap) String() string {
	switch {
	case g.d <= 0:
		return "-"
	case g.freeze:
		return ms(g.d) + " (over a freeze)"
	default:
		return ms(g.d) + " (no freeze)"
	}
}

// decisionKey identifies a decision record in one daemon's status.
type decisionKey struct {
	at         time.Duration
	kind, text string
}

// nodeDecision is one decision a daemon recorded after the load began.
type nodeDecision struct {
	node string
	rec  daemon.DecisionRecord
}

type loadResult struct {
	p      Profile
	window time.Duration
	hogs   int
	hogCPU time.Duration // CPU time the busy loops got, all together
	// busy and steal are the fractions of all CPUs' time spent busy (by
	// anything on the machine) and stolen by the hypervisor, from
	// /proc/stat.
	busy, steal float64
	rtThreads   []int // per daemon, threads with a real-time policy
	freezes     *freezeStats
	samples     int // status answers, one per node per poll
	pollErrs    int
	// unhealthy counts status answers in which a node was not quorate
	// with all three, or saw a peer in a state other than alive.
	unhealthy int
	// diskSuspect counts status answers in which a node saw a peer's disk counter
	// in a state other than live (information: the network path keeps
	// the peer alive).
	diskSuspect int
	decisions   []nodeDecision
	exited      []string
	notable     []string // log lines: decisions, warnings, errors, watchdog
	watchdog    int      // "watchdog fired" log lines
	// lateHeard counts samples of a peer not heard for more than two
	// heartbeat intervals (at least one heartbeat late or lost).
	lateHeard int
	// Largest values sampled every loadPollInterval, over all nodes and
	// peers.
	maxSinceHeard, maxDiskSinceChange, maxSinceWrite, maxSinceFeed gap
	writeFails, readFails                                          uint64
	cpu, supCPU                                                    []time.Duration
}

// falseDetection reports whether a decision taken while no node failed is
// a false failure detection: a membership change, a loss of quorum (or a
// pause of it while a member leaves), a peer suspected, partitioned or
// dead, or a self-fence.
func falseDetection(d daemon.DecisionRecord) bool {
	switch d.Kind {
	case quorum.MembershipChanged.String(), quorum.QuorumLost.String(), quorum.QuorumSettling.String(), quorum.SelfFence.String():
		return true
	case quorum.PeerStateChanged.String():
		return !strings.HasSuffix(d.Text, " "+quorum.PeerAlive.String())
	}
	return false
}

func (r loadResult) falseDetections() int {
	n := len(r.exited) + r.watchdog
	for _, d := range r.decisions {
		if falseDetection(d.rec) {
			n++
		}
	}
	return n
}

// BenchmarkNetnsLoad counts false failure detections of three daemons (the
// default timing profile, real-time threads and mlockall as in production)
// while every CPU is kept busy by an ordinary-priority busy loop and the
// quorum disk's writes hang in bursts shorter than io_timeout, then does the
// same with --no-realtime. Nothing is asserted. MTC_LOAD_DURATION sets how
// long each run lasts (default 10m), MTC_LOAD_NORT_DURATION the
// --no-realtime run (default the same; 0 skips it). With MTC_BENCH_OUT=FILE
// it replaces the load section of that markdown file:
//
//	MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsLoad -benchtime 1x -timeout 60m ./test/integration
func BenchmarkNetnsLoad(b *testing.B) {
	requireTools(b)
	dur := envDuration(b, "MTC_LOAD_DURATION", defaultLoadDuration)
	nortDur := envDuration(b, "MTC_LOAD_NORT_DURATION", dur)
	var results []loadResult
	for range b.N {
		results = results[:0]
		results = append(results, measureLoad(b, defaultProfile, dur))
		if nortDur > 0 {
			noRT := defaultProfile
			noRT.Name, noRT.NoRealtime = "default, --no-realtime", true
			results = append(results, measureLoad(b, noRT, nortDur))
		}
	}
	for _, r := range results {
		b.ReportMetric(float64(r.falseDetections()), strings.ReplaceAll(strings.ReplaceAll(r.p.Name, ",", ""), " ", "")+"-false-detections")
	}
	body := loadReport(results, dur, nortDur)
	fmt.Print(body)
	if out := os.Getenv("MTC_BENCH_OUT"); out != "" {
		if err := benchdoc.ReplaceSection(out, "load", body); err != nil {
			b.Fatal(err)
		}
	}
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		b.Fatalf("%s=%q: want a duration such as 30s or 10m", name, v)
	}
	return d
}

func measureLoad(b *testing.B, p Profile, dur time.Duration) loadResult {
	c := NewCluster(b, 3, p, WithFreezableDisk())
	defer c.stopAll()
	all := names(c.Nodes...)
	c.WaitAllQuorate(c.Nodes...)
	// Both paths settled: every peer alive with a live disk counter.
	c.WaitFor("every peer alive on the network and the disk", func() bool {
		for _, nd := range c.Nodes {
			s, err := nd.Status()
			if err != nil {
				return false
			}
			for _, ps := range s.Peers {
				if ps.State != quorum.PeerAlive.String() || ps.Disk != "live" {
					return false
				}
			}
		}
		return true
	})

	r := loadResult{p: p, hogs: runtime.NumCPU(), freezes: newFreezeStats()}
	baseUptime := make(map[string]time.Duration)
	baseDisk := make(map[string]daemon.DiskStatus)
	logOffset := make(map[string]int)
	for _, nd := range c.Nodes {
		s, err := nd.Status()
		if err != nil {
			b.Fatal(err)
		}
		baseUptime[nd.Name], baseDisk[nd.Name] = s.Uptime, s.Disk
		logOffset[nd.Name] = len(nd.Log())
	}
	type proc struct{ daemon, sup int }
	var procs []proc
	var cpu0 []time.Duration
	for _, nd := range c.Nodes {
		pr := proc{nd.PID(), supervisorOf(nd.PID())}
		procs = append(procs, pr)
		cpu0 = append(cpu0, cpuTime(pr.daemon), cpuTime(pr.sup))
		r.rtThreads = append(r.rtThreads, rtThreads(pr.daemon))
	}
	stat0 := readCPUStat()

	hogs := startBusyLoops(b, r.hogs)
	ctx, stopFreezer := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		freezeBursts(ctx, c, r.freezes)
	}()
	start := time.Now()
	seen := make(map[string]map[decisionKey]bool)
	for _, nd := range c.Nodes {
		seen[nd.Name] = make(map[decisionKey]bool)
	}
	gone := make(map[string]bool)
	for time.Since(start) < dur {
		next := time.Now().Add(loadPollInterval)
		for _, nd := range c.Nodes {
			if nd.Exited() {
				gone[nd.Name] = true
				continue
			}
			qctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := daemon.QueryStatus(qctx, nd.Socket)
			cancel()
			if err != nil {
				r.pollErrs++
				continue
			}
			r.sample(nd.Name, s, p.Timing.HeartbeatInterval, all, baseUptime[nd.Name], seen[nd.Name])
		}
		time.Sleep(time.Until(next))
	}
	r.window = time.Since(start)
	r.busy, r.steal = readCPUStat().since(stat0)
	stopFreezer()
	wg.Wait()
	var hogCPU time.Duration
	for _, h := range hogs {
		hogCPU += cpuTime(h.Process.Pid)
	}
	r.hogCPU = hogCPU
	stopBusyLoops(hogs)
	for i, pr := range procs {
		r.cpu = append(r.cpu, cpuTime(pr.daemon)-cpu0[2*i])
		r.supCPU = append(r.supCPU, cpuTime(pr.sup)-cpu0[2*i+1])
	}

	// The final word, as the operator sees it: mtc status --json.
	for _, nd := range c.Nodes {
		if nd.Exited() {
			gone[nd.Name] = true
			continue
		}
		s, err := nd.Status()
		if err != nil {
			r.pollErrs++
			continue
		}
		r.sample(nd.Name, s, p.Timing.HeartbeatInterval, all, baseUptime[nd.Name], seen[nd.Name])
		r.writeFails += s.Disk.WriteFailures - baseDisk[nd.Name].WriteFailures
		r.readFails += s.Disk.ReadFailures - baseDisk[nd.Name].ReadFailures
	}
	for _, nd := range c.Nodes {
		if gone[nd.Name] {
			r.exited = append(r.exited, fmt.Sprintf("%s (%v)", nd.Name, nd.waitErr))
		}
		for _, l := range strings.Split(nd.Log()[logOffset[nd.Name]:], "\n") {
			switch {
			case strings.Contains(l, "watchdog fired"):
				r.watchdog++
				r.notable = append(r.notable, nd.Name+": "+l)
			case strings.Contains(l, "decision: "), strings.Contains(l, "level=WARN"), strings.Contains(l, "level=ERROR"):
				r.notable = append(r.notable, nd.Name+": "+l)
			}
		}
	}
	for _, g := range []*gap{&r.maxSinceHeard, &r.maxDiskSinceChange, &r.maxSinceWrite, &r.maxSinceFeed} {
		g.freeze = r.freezes.duringFreeze(g.span)
	}
	slices.SortStableFunc(r.decisions, func(a, b nodeDecision) int { return strings.Compare(a.node, b.node) })
	for _, l := range r.notable {
		b.Log(l)
	}
	return r
}

// sample folds one status answer into r: new decisions since the load
// began, health, and the largest gaps.
func (r *loadResult) sample(node string, s daemon.Status, hb time.Duration, all []string, base time.Duration, seen map[decisionKey]bool) {
	for _, d := range s.Decisions {
		key := decisionKey{d.At, d.Kind, d.Text}
		if d.At <= base || seen[key] {
			continue
		}
		seen[key] = true
		r.decisions = append(r.decisions, nodeDecision{node, d})
	}
	now := time.Now()
	r.samples++
	healthy := s.Quorate && !s.Stopped && slices.Equal(s.Members, all)
	for _, ps := range s.Peers {
		if ps.State != quorum.PeerAlive.String() {
			healthy = false
		}
		if ps.Disk != "live" {
			r.diskSuspect++
		}
		if ps.SinceHeard > 2*hb {
			r.lateHeard++
		}
		r.maxSinceHeard.note(ps.SinceHeard, now)
		r.maxDiskSinceChange.note(ps.DiskSinceChange, now)
	}
	if !healthy {
		r.unhealthy++
	}
	r.maxSinceWrite.note(s.Disk.SinceWrite, now)
	r.maxSinceFeed.note(s.Watchdog.SinceFeed, now)
}

// startBusyLoops starts n busy loops at nice 0 in the test's own process
// group, so that an interrupted run takes them along.
func startBusyLoops(b *testing.B, n int) []*exec.Cmd {
	b.Helper()
	var hogs []*exec.Cmd
	for range n {
		cmd := exec.Command(busyLoop[0], busyLoop[1:]...)
		if err := cmd.Start(); err != nil {
			stopBusyLoops(hogs)
			b.Fatal(err)
		}
		hogs = append(hogs, cmd)
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 0); err != nil {
			stopBusyLoops(hogs)
			b.Fatalf("nice 0 for the busy loop: %v", err)
		}
	}
	b.Cleanup(func() { stopBusyLoops(hogs) })
	return hogs
}

// stopBusyLoops kills the busy loops started by startBusyLoops; calling it
// again is harmless.
func stopBusyLoops(hogs []*exec.Cmd) {
	for _, h := range hogs {
		if h.ProcessState == nil {
			_ = h.Process.Kill()
			_ = h.Wait()
		}
	}
}

func newFreezeStats() *freezeStats {
	return &freezeStats{count: make(map[time.Duration]int), longest: make(map[time.Duration]time.Duration)}
}

// freezeBursts freezes the cluster's quorum disk once per freezeTick until
// ctx ends, and leaves it thawed.
func freezeBursts(ctx context.Context, c *Cluster, fs *freezeStats) {
	tick := time.NewTicker(freezeTick)
	defer tick.Stop()
	for k := 1; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		length := shortFreeze
		if k%longFreezeEvery == longFreezeEvery/2 {
			length = longFreeze
		}
		t0 := time.Now()
		if err := c.Disk.Freeze(); err != nil {
			fs.errs = append(fs.errs, err.Error())
			continue
		}
		time.Sleep(length - time.Since(t0))
		err := c.Disk.Thaw()
		t1 := time.Now()
		if err != nil {
			fs.errs = append(fs.errs, err.Error())
		}
		fs.mu.Lock()
		fs.count[length]++
		fs.longest[length] = max(fs.longest[length], t1.Sub(t0))
		fs.frozen = append(fs.frozen, interval{t0, t1})
		fs.mu.Unlock()
	}
}

func loadReport(results []loadResult, dur, nortDur time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	p("## Daemon: false failure detections under load\n\n")
	t := defaultProfile.Timing
	p("Three `mtc daemon` processes set up as for the failure-detection section (default timing profile: heartbeat %v, io_timeout %v, failure %v, watchdog %v; process watchdog), with the quorum disk on a freezable loop device (direct I/O to a file on its own ext4 filesystem). Nothing fails: while every CPU runs an ordinary-priority busy loop (`%s` at nice 0, one per CPU) the disk's writes are frozen with `fsfreeze` for %v every %v and %v every %v, both below io_timeout. Any membership change, loss of quorum, peer suspected, partitioned or dead, self-fence, watchdog kill or daemon exit is a false detection. The status of every daemon is polled every %v; the gaps are the largest values sampled (so at most that much below the true largest). Measured %s on %s (%d CPUs, %s, Linux %s) with:\n\n",
		t.HeartbeatInterval, t.IOTimeout, t.FailureTimeout, t.WatchdogTimeout,
		strings.Join(busyLoop[:2], " ")+" '"+busyLoop[2]+"'", shortFreeze, freezeTick, longFreeze, freezeTick*longFreezeEvery, loadPollInterval,
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, numCPU(), cpuModel(), strings.TrimSpace(string(kernel)))
	p("    MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md MTC_LOAD_DURATION=%v MTC_LOAD_NORT_DURATION=%v go test -run '^$' -bench NetnsLoad -benchtime 1x -timeout 60m ./test/integration\n\n", dur, nortDur)
	if nortDur > 0 && nortDur != dur {
		p("The `--no-realtime` run is shorter (%v) than the production-mode run (%v).\n\n", nortDur, dur)
	}
	p("| daemons | duration | CPUs busy (stolen) | busy loops got | freezes (longest, freeze call to thaw return) | false detections | other decisions | status answers not all-healthy | daemon exits / watchdog kills |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		var fd, other []string
		for _, d := range r.decisions {
			s := d.node + ": " + d.rec.Text
			if falseDetection(d.rec) {
				fd = append(fd, s)
			} else {
				other = append(other, s)
			}
		}
		p("| %s | %v | %.0f%% (%.0f%%) | %.0f%% of %d CPUs | %s | **%d**%s | %s | %d of %d (%d unanswered) | %d / %d |\n",
			rowName(r.p), r.window.Round(time.Second), 100*r.busy, 100*r.steal, 100*float64(r.hogCPU)/float64(r.window)/float64(r.hogs), r.hogs,
			freezeSummary(r.freezes), r.falseDetections(), listSuffix(fd), countOrNone(other), r.unhealthy, r.samples, r.pollErrs, len(r.exited), r.watchdog)
	}
	p("\n\"CPUs busy\" counts everything on the machine (busy loops, daemons, the benchmark and whatever else the host runs), from /proc/stat; \"stolen\" is time the hypervisor gave to other guests. The freeze lengths are from the start of `fsfreeze --freeze` to the return of `fsfreeze --unfreeze`, an upper bound of the time writes hung.\n")
	p("\nLargest sampled gaps, disk I/O failures and CPU time over the run (CPU in percent of one CPU; the daemon's includes answering the status polls):\n\n")
	p("| daemons | peer not heard (net) | samples of a peer unheard > 2 heartbeats | peer disk counter unchanged | samples of a peer's disk path not live | own slot not written | watchdog not fed | disk write / read failures | daemon CPU | supervisor CPU | real-time threads |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		p("| %s | %v | %d | %v | %d | %v | %v | %d / %d | %s | %s | %s |\n", rowName(r.p),
			r.maxSinceHeard, r.lateHeard, r.maxDiskSinceChange, r.diskSuspect, r.maxSinceWrite, r.maxSinceFeed,
			r.writeFails, r.readFails, cpuPercents(r.cpu, r.window), cpuPercents(r.supCPU, r.window), ints(r.rtThreads))
	}
	for _, r := range results {
		if len(r.freezes.errs) > 0 {
			p("\n%s: %d freeze or thaw errors, the first: `%s`\n", rowName(r.p), len(r.freezes.errs), r.freezes.errs[0])
		}
		if len(r.exited) > 0 {
			p("\n%s: daemons that exited: %s\n", rowName(r.p), strings.Join(r.exited, ", "))
		}
		if len(r.notable) > 0 {
			const maxLines = 40
			p("\n%s: decisions, warnings and errors logged during the run", rowName(r.p))
			lines := r.notable
			if len(lines) > maxLines {
				p(" (the first %d of %d)", maxLines, len(lines))
				lines = lines[:maxLines]
			}
			p(":\n\n")
			for _, l := range lines {
				p("    %s\n", l)
			}
		}
	}
	return b.String()
}

func ints(v []int) string {
	var s []string
	for _, n := range v {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ", ")
}

func rowName(p Profile) string {
	if p.NoRealtime {
		return "--no-realtime"
	}
	return "real-time, mlockall"
}

func freezeSummary(fs *freezeStats) string {
	lengths := make([]time.Duration, 0, len(fs.count))
	for l := range fs.count {
		lengths = append(lengths, l)
	}
	slices.Sort(lengths)
	var s []string
	for _, l := range lengths {
		s = append(s, fmt.Sprintf("%d × %v (%s)", fs.count[l], l, ms(fs.longest[l])))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func listSuffix(items []string) string {
	if len(items) == 0 {
		return ""
	}
	const maxItems = 6
	more := ""
	if len(items) > maxItems {
		more = fmt.Sprintf(", … %d more", len(items)-maxItems)
		items = items[:maxItems]
	}
	return " (" + strings.Join(items, "; ") + more + ")"
}

func countOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d%s", len(items), listSuffix(items))
}

func cpuPercents(v []time.Duration, window time.Duration) string {
	var s []string
	for _, d := range v {
		s = append(s, fmt.Sprintf("%.2f%%", 100*float64(d)/float64(window)))
	}
	return strings.Join(s, ", ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// cpuStat is the first line of /proc/stat: jiffies per state, all CPUs.
type cpuStat []uint64

func readCPUStat() cpuStat {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	var st cpuStat
	for _, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		st = append(st, v)
	}
	return st
}

// since returns the fractions of CPU time that were busy (neither idle nor
// iowait) and stolen between old and s. Guest time is already counted in
// user and nice.
func (s cpuStat) since(old cpuStat) (busy, steal float64) {
	if len(s) < 8 || len(old) < 8 {
		return 0, 0
	}
	var total uint64
	for i := range 8 { // user nice system idle iowait irq softirq steal
		total += s[i] - old[i]
	}
	if total == 0 {
		return 0, 0
	}
	idle := s[3] - old[3] + s[4] - old[4]
	return float64(total-idle) / float64(total), float64(s[7]-old[7]) / float64(total)
}

// rtThreads counts pid's threads scheduled with a real-time policy
// (SCHED_FIFO or SCHED_RR).
func rtThreads(pid int) int {
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// policy is field 41 of the line, the 39th after the command name.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) > 38 {
			if pol, _ := strconv.Atoi(fields[38]); pol == 1 || pol == 2 {
				n++
			}
		}
	}
	return n
}
