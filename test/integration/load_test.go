package integration

import (
	"bufio"
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

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/quorum"
)

// defaultLoadDuration is how long BenchmarkNetnsLoad keeps each profile's
// cluster under load unless MTC_LOAD_DURATION (or the profile's own
// variable) says otherwise.
const defaultLoadDuration = 10 * time.Minute

// freezeTick is the period of the quorum-disk freeze bursts. Every tick
// freezes the disk for the profile's short freeze, except every
// longFreezeEvery-th tick (the first at tick longFreezeEvery/2, so that a
// 30 s run has one), which freezes it for the long one. Both stay below the
// profile's io_timeout: a healthy cluster rides them out.
const (
	freezeTick      = 5 * time.Second
	longFreezeEvery = 6 // every 30 s
)

// reclaimWindow is how long after a reclaim helper's exit (the freeing of
// its memory) the benchmark counts the time as a reclaim stall: the disk
// latency seen on the lab machine lasted "a few seconds".
const reclaimWindow = 5 * time.Second

// probeInterval is the period of the benchmark's own 512-byte direct reads
// of the quorum disk, which measure the disk latency the daemons see.
const probeInterval = 20 * time.Millisecond

// busyLoop is the ordinary-priority CPU hog.
var busyLoop = []string{"sh", "-c", "while :; do :; done"}

// loadProfile is one row of the load benchmark: a daemon profile and the
// quorum-disk freezes that fit under its io_timeout.
type loadProfile struct {
	key                     string // as MTC_LOAD_PROFILES names it
	p                       Profile
	shortFreeze, longFreeze time.Duration
}

// loadProfiles are the profiles BenchmarkNetnsLoad knows, in report order.
func loadProfiles() []loadProfile {
	nort := defaultProfile
	nort.Name, nort.NoRealtime = "default", true
	aggNort := aggressiveProfile
	aggNort.NoRealtime = true
	return []loadProfile{
		{"default", defaultProfile, 150 * time.Millisecond, 300 * time.Millisecond},
		{"default-nort", nort, 150 * time.Millisecond, 300 * time.Millisecond},
		{"aggressive", aggressiveProfile, 50 * time.Millisecond, 75 * time.Millisecond},
		{"aggressive-nort", aggNort, 50 * time.Millisecond, 75 * time.Millisecond},
	}
}

// loadPlan is the load applied to every profile, from the environment.
type loadPlan struct {
	hogs         int     // busy loops at nice 0
	touchGiB     float64 // anonymous memory re-touched for the whole run
	ddMiBps      int     // direct-I/O dd traffic on the root disk, MiB/s written and as much read
	ddDir        string  // where the dd file lives (on the root disk)
	freeze       bool    // quorum-disk freeze bursts
	reclaimGiB   float64 // memory a reclaim helper touches before it exits
	reclaimEvery time.Duration
}

func (pl loadPlan) env() string {
	return fmt.Sprintf("MTC_LOAD_HOGS=%d MTC_LOAD_TOUCH_GIB=%g MTC_LOAD_DD_MIBPS=%d MTC_LOAD_FREEZE=%v MTC_LOAD_RECLAIM_GIB=%g MTC_LOAD_RECLAIM_EVERY=%v",
		pl.hogs, pl.touchGiB, pl.ddMiBps, pl.freeze, pl.reclaimGiB, pl.reclaimEvery)
}

// freezeStats describes the freeze bursts one run applied.
type freezeStats struct {
	count map[time.Duration]int // per nominal length
	// longest is, per nominal length, the longest time from the start of
	// `fsfreeze --freeze` to the return of `fsfreeze --unfreeze`: an upper
	// bound of the time writes hung.
	longest map[time.Duration]time.Duration
	// over counts, per nominal length, the freezes whose freeze call to
	// thaw return reached the profile's io_timeout (fsfreeze itself is
	// slow when the disk under the filesystem is busy): those are no
	// longer below io_timeout, and a failed I/O is expected.
	over map[time.Duration]int
	errs []string

	mu     sync.Mutex
	frozen []interval // from the freeze call to the thaw's return
}

// interval is a span of wall-clock time.
type interval struct{ from, to time.Time }

func (i interval) overlaps(j interval) bool { return i.from.Before(j.to) && j.from.Before(i.to) }

func overlapsAny(list []interval, i interval) bool {
	for _, j := range list {
		if j.overlaps(i) {
			return true
		}
	}
	return false
}

// duringFreeze reports whether i overlapped a freeze burst.
func (fs *freezeStats) duringFreeze(i interval) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return overlapsAny(fs.frozen, i)
}

// gap is the largest sampled value of one "time since" in the status, and
// what the span it covers overlapped.
type gap struct {
	d      time.Duration
	span   interval
	during string // "freeze", "reclaim stall", or ""
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
	case g.during != "":
		return ms(g.d) + " (over a " + g.during + ")"
	default:
		return ms(g.d) + " (no freeze or reclaim stall)"
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

// reclaimStall is one run of the reclaim helper: it allocated and touched
// its memory (from start to touched) and exited (exited), which frees it.
// Both phases make the kernel find and free pages; both count as the stall.
// touched is zero when the run ended first.
type reclaimStall struct {
	start, touched, exited time.Time
	err                    string
	// allocMax and freeMax are the largest latencies of the benchmark's
	// direct reads of the quorum disk issued from start to touched, and
	// from touched to exited + reclaimWindow.
	allocMax, freeMax time.Duration
	// sustained is the largest latency that every direct read took for
	// a whole SelfFenceAfter during the stall (see sustainedLatency).
	sustained time.Duration
}

func (s reclaimStall) window() interval { return interval{s.start, s.exited.Add(reclaimWindow)} }

func (s reclaimStall) probeMax() time.Duration { return max(s.allocMax, s.freeMax) }

// probeSample is one direct read of the quorum disk by the benchmark.
type probeSample struct {
	at  time.Time // issue
	lat time.Duration
}

type loadResult struct {
	lp     loadProfile
	plan   loadPlan
	window time.Duration
	hogCPU time.Duration // CPU time the busy loops got, all together
	// busy and steal are the fractions of all CPUs' time spent busy (by
	// anything on the machine) and stolen by the hypervisor, from
	// /proc/stat.
	busy, steal float64
	rtThreads   []int // per daemon, threads with a real-time policy
	freezes     *freezeStats
	// touchPasses counts the passes of the memory toucher over its buffer.
	touchPasses int
	touchErr    string
	// ddBytes is the dd traffic (written plus read) during the window.
	ddBytes int64
	ddErrs  []string
	// sharedDisk is set when the dd file and the quorum disk's backing
	// file are on the same device.
	sharedDisk bool
	stalls     []reclaimStall
	// probes are the benchmark's direct reads of the quorum disk;
	// probeErrs counts those that failed.
	probes    []probeSample
	probeErrs int
	samples   int // status answers, one per node per poll
	pollErrs  int
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
	// Largest values sampled every heartbeat interval, over all nodes and
	// peers.
	maxSinceHeard, maxDiskSinceChange, maxSinceWrite, maxSinceFeed gap
	writeFails, readFails                                          uint64
	cpu, supCPU                                                    []time.Duration
}

// falseDetection reports whether a decision taken while no node failed is
// a false failure detection: a membership change, a loss of quorum (or a
// pause of it while a member leaves), a peer suspected, partitioned or
// dead, or a self-fence. A quorum pause while a node joins
// (quorum-joining) is not: nobody failed and nobody was suspected.
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

// during names the load event a span of time overlapped: a reclaim stall,
// a freeze, or nothing.
func (r *loadResult) during(i interval) string {
	for _, s := range r.stalls {
		if s.window().overlaps(i) {
			return "reclaim stall"
		}
	}
	if r.freezes.duringFreeze(i) {
		return "freeze"
	}
	return ""
}

// BenchmarkNetnsLoad counts false failure detections of three daemons per
// timing profile while the machine is loaded: busy loops at nice 0 (two per
// CPU by default), a process that keeps re-touching a large anonymous
// buffer, direct-I/O dd traffic on the root disk, quorum-disk freezes below
// the profile's io_timeout, and now and then a memory-reclaim stall (a
// process touches a large buffer and exits; the kernel frees it). Nothing is
// asserted. The environment selects what runs:
//
//	MTC_LOAD_PROFILES       default,default-nort,aggressive (also aggressive-nort)
//	MTC_LOAD_DURATION       each profile's run (default 10m); per profile
//	                        MTC_LOAD_DURATION_DEFAULT, _DEFAULT_NORT, _AGGRESSIVE, ...
//	                        (MTC_LOAD_NORT_DURATION is the old name of _DEFAULT_NORT)
//	MTC_LOAD_HOGS           busy loops (default 2 per CPU; 0 none)
//	MTC_LOAD_TOUCH_GIB      memory re-touched for the whole run (default 6; 0 none)
//	MTC_LOAD_DD_MIBPS       dd traffic, MiB/s written and as much read (default 32; 0 none)
//	MTC_LOAD_DD_DIR         the dd file's directory, on the root disk (default /var/tmp)
//	MTC_LOAD_FREEZE         quorum-disk freeze bursts (default true)
//	MTC_LOAD_RECLAIM_GIB    the reclaim helper's buffer (default 8; 0 no reclaim stalls)
//	MTC_LOAD_RECLAIM_EVERY  the reclaim period (default 1m; the first after 5 s)
//	MTC_LOAD_SECTION        the BENCHMARKS.md section written (default "load",
//	                        "load-reclaim" with reclaim stalls)
//
// With MTC_BENCH_OUT=FILE it replaces the load section of that markdown
// file; `make bench-load` runs the full measurement.
func BenchmarkNetnsLoad(b *testing.B) {
	requireTools(b)
	plan := loadPlanFromEnv(b)
	runs, durs := selectedLoadProfiles(b)
	checkMemory(b, plan)
	var results []loadResult
	for range b.N {
		results = results[:0]
		for i, lp := range runs {
			results = append(results, measureLoad(b, lp, plan, durs[i]))
		}
	}
	for _, r := range results {
		b.ReportMetric(float64(r.falseDetections()), r.lp.key+"-false-detections")
	}
	body := loadReport(results, plan, runs, durs)
	fmt.Print(body)
	if out := os.Getenv("MTC_BENCH_OUT"); out != "" {
		if err := benchdoc.ReplaceSection(out, loadSection(plan), body); err != nil {
			b.Fatal(err)
		}
	}
}

// loadSection names the section of BENCHMARKS.md a run replaces: "load",
// or "load-reclaim" for a run with memory-reclaim stalls, so that the two
// runs `make bench-load` makes keep a section each (MTC_LOAD_SECTION names
// another).
func loadSection(plan loadPlan) string {
	if s := os.Getenv("MTC_LOAD_SECTION"); s != "" {
		return s
	}
	if plan.reclaimGiB > 0 {
		return "load-reclaim"
	}
	return "load"
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

func envFloat(b *testing.B, name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		b.Fatalf("%s=%q: want a number of 0 or more", name, v)
	}
	return f
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a whole number of 0 or more", name, v)
	}
	return n
}

func envBool(b *testing.B, name string, def bool) bool {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	t, err := strconv.ParseBool(v)
	if err != nil {
		b.Fatalf("%s=%q: want true or false", name, v)
	}
	return t
}

func loadPlanFromEnv(b *testing.B) loadPlan {
	pl := loadPlan{
		hogs:         envInt(b, "MTC_LOAD_HOGS", 2*runtime.NumCPU()),
		touchGiB:     envFloat(b, "MTC_LOAD_TOUCH_GIB", 6),
		ddMiBps:      envInt(b, "MTC_LOAD_DD_MIBPS", 32),
		ddDir:        os.Getenv("MTC_LOAD_DD_DIR"),
		freeze:       envBool(b, "MTC_LOAD_FREEZE", true),
		reclaimGiB:   envFloat(b, "MTC_LOAD_RECLAIM_GIB", 8),
		reclaimEvery: envDuration(b, "MTC_LOAD_RECLAIM_EVERY", time.Minute),
	}
	if pl.ddDir == "" {
		pl.ddDir = "/var/tmp"
	}
	if pl.reclaimGiB > 0 && pl.reclaimEvery < 10*time.Second {
		b.Fatalf("MTC_LOAD_RECLAIM_EVERY=%v: want at least 10s, so that one reclaim helper exits before the next starts", pl.reclaimEvery)
	}
	return pl
}

// selectedLoadProfiles returns the profiles MTC_LOAD_PROFILES names and
// each one's duration.
func selectedLoadProfiles(b *testing.B) ([]loadProfile, []time.Duration) {
	known := loadProfiles()
	keys := []string{"default", "default-nort", "aggressive"}
	if v := os.Getenv("MTC_LOAD_PROFILES"); v != "" {
		keys = strings.Split(v, ",")
	}
	dur := envDuration(b, "MTC_LOAD_DURATION", defaultLoadDuration)
	var runs []loadProfile
	var durs []time.Duration
	for _, k := range keys {
		k = strings.TrimSpace(k)
		i := slices.IndexFunc(known, func(lp loadProfile) bool { return lp.key == k })
		if i < 0 {
			var names []string
			for _, lp := range known {
				names = append(names, lp.key)
			}
			b.Fatalf("MTC_LOAD_PROFILES: unknown profile %q: want a comma-separated list of %s", k, strings.Join(names, ", "))
		}
		lp := known[i]
		for _, l := range []time.Duration{lp.shortFreeze, lp.longFreeze} {
			if l >= lp.p.Timing.IOTimeout {
				b.Fatalf("profile %s: a %v freeze is not below its io_timeout %v", lp.key, l, lp.p.Timing.IOTimeout)
			}
		}
		d := dur
		if k == "default-nort" {
			d = envDuration(b, "MTC_LOAD_NORT_DURATION", d)
		}
		d = envDuration(b, "MTC_LOAD_DURATION_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_")), d)
		if d == 0 {
			continue
		}
		runs, durs = append(runs, lp), append(durs, d)
	}
	if len(runs) == 0 {
		b.Fatal("MTC_LOAD_PROFILES and the durations select no run")
	}
	return runs, durs
}

// checkMemory refuses a plan that would leave the machine less than 2 GiB
// of available memory: the machine is shared, and the daemons lock theirs.
func checkMemory(b *testing.B, pl loadPlan) {
	avail := memAvailable()
	need := pl.touchGiB + pl.reclaimGiB + 2
	if avail > 0 && need*(1<<30) > float64(avail) {
		b.Fatalf("MTC_LOAD_TOUCH_GIB=%g and MTC_LOAD_RECLAIM_GIB=%g need %.1f GiB with a 2 GiB margin, but only %.1f GiB is available: lower them",
			pl.touchGiB, pl.reclaimGiB, need, float64(avail)/(1<<30))
	}
}

// sameDevice reports whether two paths are on the same block device, the
// second one's filesystem followed down through loop devices (the quorum
// disk's backing file lives on a loop-mounted filesystem).
func sameDevice(a, b string) bool {
	da, ok := deviceOf(a)
	if !ok {
		return false
	}
	for range 4 {
		db, ok := deviceOf(b)
		if !ok {
			return false
		}
		if da == db {
			return true
		}
		// A loop device's backing file, from sysfs.
		back, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/loop/backing_file", unix.Major(db), unix.Minor(db)))
		if err != nil {
			return false
		}
		b = strings.TrimSpace(string(back))
	}
	return false
}

func deviceOf(path string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Dev, true
}

// memAvailable returns MemAvailable from /proc/meminfo in bytes, or 0.
func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func measureLoad(b *testing.B, lp loadProfile, plan loadPlan, dur time.Duration) loadResult {
	p := lp.p
	// The memory toucher first, before the cluster starts: allocating its
	// buffer stalls disk I/O much as a reclaim does, and the run starts
	// with the buffer resident (the reclaim helpers measure allocation).
	var toucher *memHelper
	if plan.touchGiB > 0 {
		var err error
		toucher, err = startMemHelper(b, "retouch", plan.touchGiB)
		if err != nil {
			b.Fatal(err)
		}
		defer toucher.stop()
		select {
		case <-toucher.touched:
		case <-time.After(5 * time.Minute):
			b.Fatalf("the memory toucher did not touch %g GiB within 5 minutes", plan.touchGiB)
		}
	}
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

	r := loadResult{lp: lp, plan: plan, freezes: newFreezeStats(), sharedDisk: sameDevice(plan.ddDir, c.Disk.File)}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	goLoad := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}

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
	passes0 := 0
	if toucher != nil {
		passes0 = toucher.passCount()
	}
	stat0 := readCPUStat()

	hogs := startBusyLoops(b, plan.hogs)
	var probeMu sync.Mutex
	goLoad(func() {
		samples, errs := probeDisk(ctx, c.Disk.Path, c.Disk.SectorSize)
		probeMu.Lock()
		r.probes, r.probeErrs = samples, errs
		probeMu.Unlock()
	})
	if plan.freeze {
		goLoad(func() { freezeBursts(ctx, c, lp, r.freezes) })
	}
	var ddBytes int64
	var ddErrs []string
	if plan.ddMiBps > 0 {
		goLoad(func() { ddBytes, ddErrs = ddNoise(ctx, plan) })
	}
	var stalls []reclaimStall
	if plan.reclaimGiB > 0 {
		goLoad(func() { stalls = reclaimStalls(ctx, b, plan) })
	}
	start := time.Now()
	seen := make(map[string]map[decisionKey]bool)
	for _, nd := range c.Nodes {
		seen[nd.Name] = make(map[decisionKey]bool)
	}
	gone := make(map[string]bool)
	for time.Since(start) < dur {
		// One heartbeat interval: the sampled gaps are at most that much
		// below the true ones, and the polling loads the daemons little.
		next := time.Now().Add(p.Timing.HeartbeatInterval)
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
	stopLoad()
	wg.Wait()
	r.ddBytes, r.ddErrs, r.stalls = ddBytes, ddErrs, stalls
	if toucher != nil {
		r.touchPasses = toucher.passCount() - passes0
		if err := toucher.stop(); err != nil {
			r.touchErr = err.Error()
		}
	}
	var hogCPU time.Duration
	for _, h := range hogs {
		hogCPU += cpuTime(h.Process.Pid)
	}
	r.hogCPU = hogCPU
	stopBusyLoops(hogs)
	for i, pr := range procs {
		// A daemon or supervisor that exited has no CPU figure (-1).
		d, sup := cpuTime(pr.daemon)-cpu0[2*i], cpuTime(pr.sup)-cpu0[2*i+1]
		if d < 0 || c.Nodes[i].Exited() {
			d = -1
		}
		if sup < 0 || c.Nodes[i].Exited() {
			sup = -1
		}
		r.cpu, r.supCPU = append(r.cpu, d), append(r.supCPU, sup)
	}
	selfFenceAfter := p.Timing.Derive().SelfFenceAfter
	for i := range r.stalls {
		st := &r.stalls[i]
		w := st.window()
		st.sustained = sustainedLatency(r.probes, w, selfFenceAfter)
		for _, ps := range r.probes {
			switch {
			case ps.at.Before(w.from) || !ps.at.Before(w.to):
			case st.touched.IsZero() || ps.at.Before(st.touched):
				st.allocMax = max(st.allocMax, ps.lat)
			default:
				st.freeMax = max(st.freeMax, ps.lat)
			}
		}
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
			r.exited = append(r.exited, fmt.Sprintf("%s (%v)", nd.Name, nd.waitErr()))
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
		g.during = r.during(g.span)
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
	return &freezeStats{count: make(map[time.Duration]int), longest: make(map[time.Duration]time.Duration), over: make(map[time.Duration]int)}
}

// freezeBursts freezes the cluster's quorum disk once per freezeTick until
// ctx ends, and leaves it thawed.
func freezeBursts(ctx context.Context, c *Cluster, lp loadProfile, fs *freezeStats) {
	tick := time.NewTicker(freezeTick)
	defer tick.Stop()
	for k := 1; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		length := lp.shortFreeze
		if k%longFreezeEvery == longFreezeEvery/2 {
			length = lp.longFreeze
		}
		t0 := time.Now()
		if err := c.Disk.Freeze(); err != nil {
			fs.mu.Lock()
			fs.errs = append(fs.errs, err.Error())
			fs.mu.Unlock()
			continue
		}
		time.Sleep(length - time.Since(t0))
		err := c.Disk.Thaw()
		t1 := time.Now()
		fs.mu.Lock()
		if err != nil {
			fs.errs = append(fs.errs, err.Error())
		}
		fs.count[length]++
		fs.longest[length] = max(fs.longest[length], t1.Sub(t0))
		if t1.Sub(t0) >= lp.p.Timing.IOTimeout {
			fs.over[length]++
		}
		fs.frozen = append(fs.frozen, interval{t0, t1})
		fs.mu.Unlock()
	}
}

// probeDisk reads the first sector of the quorum disk with direct I/O every
// probeInterval until ctx ends, as a daemon reads a slot, and returns every
// read's latency and the number of failed reads. The reads are read-only
// and small: they add little to the load they measure.
func probeDisk(ctx context.Context, path string, sector int) ([]probeSample, int) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 1
	}
	defer unix.Close(fd)
	// An anonymous mapping is page-aligned, as O_DIRECT wants.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, 1
	}
	defer unix.Munmap(buf)
	var samples []probeSample
	errs := 0
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return samples, errs
		case <-tick.C:
		}
		t0 := time.Now()
		if _, err := unix.Pread(fd, buf[:sector], 0); err != nil {
			errs++
			continue
		}
		samples = append(samples, probeSample{t0, time.Since(t0)})
	}
}

// ddNoise writes plan.ddMiBps MiB with direct I/O into a file in plan.ddDir
// every second and reads it back the same way, until ctx ends. The file is
// rewritten in place (bounded to that size) and removed at the end. It
// returns the bytes moved and the dd errors.
func ddNoise(ctx context.Context, plan loadPlan) (int64, []string) {
	dir, err := os.MkdirTemp(plan.ddDir, "mtc-load-dd-")
	if err != nil {
		return 0, []string{err.Error()}
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "noise")
	count := strconv.Itoa(plan.ddMiBps)
	var moved int64
	var errs []string
	for {
		next := time.Now().Add(time.Second)
		for _, args := range [][]string{
			{"dd", "if=/dev/zero", "of=" + file, "bs=1M", "count=" + count, "oflag=direct", "conv=notrunc", "status=none"},
			{"dd", "if=" + file, "of=/dev/null", "bs=1M", "count=" + count, "iflag=direct", "status=none"},
		} {
			if ctx.Err() != nil {
				return moved, errs
			}
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			if out, err := cmd.CombinedOutput(); err != nil {
				if ctx.Err() == nil {
					errs = append(errs, fmt.Sprintf("%s: %v %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))))
				}
				continue
			}
			moved += int64(plan.ddMiBps) << 20
		}
		select {
		case <-ctx.Done():
			return moved, errs
		case <-time.After(time.Until(next)):
		}
	}
}

// reclaimStalls runs the reclaim helper (touch plan.reclaimGiB, exit) 5 s
// into the run and then every plan.reclaimEvery (at once when the previous
// one took longer), until ctx ends, and returns every run. At nice 0 among
// the busy loops a helper may take most of a minute to allocate 8 GiB: the
// allocation is part of the stall.
func reclaimStalls(ctx context.Context, b *testing.B, plan loadPlan) []reclaimStall {
	first := 5 * time.Second
	var stalls []reclaimStall
	wait := first
	for {
		select {
		case <-ctx.Done():
			return stalls
		case <-time.After(wait):
		}
		s := reclaimStall{start: time.Now()}
		h, err := startMemHelper(b, "once", plan.reclaimGiB)
		if err != nil {
			s.err = err.Error()
			stalls = append(stalls, s)
			return stalls
		}
		select {
		case <-h.touched:
		case <-ctx.Done():
			// Unfinished: its allocation still counts as a stall,
			// unless it had barely begun.
			_ = h.stop()
			s.exited = time.Now()
			if s.exited.Sub(s.start) < time.Second {
				return stalls
			}
			s.err = "the run ended before it had touched its memory"
			return append(stalls, s)
		}
		s.touched = time.Now()
		if err := h.wait(); err != nil {
			s.err = err.Error()
		}
		s.exited = time.Now()
		stalls = append(stalls, s)
		wait = time.Until(s.start.Add(plan.reclaimEvery))
	}
}

// memHelperEnv makes the test binary a memory helper (TestLoadMemoryHelper):
// "retouch:GIB" keeps re-touching GIB of anonymous memory, printing a line
// per pass; "once:GIB" touches it once, prints a line and exits.
const memHelperEnv = "MTC_LOAD_MEMORY_HELPER"

// memHelper is a running memory helper process.
type memHelper struct {
	cmd     *exec.Cmd
	touched chan struct{} // closed after the first pass
	done    chan error
	mu      sync.Mutex
	passes  int
	stopped bool
	err     error
}

func startMemHelper(b *testing.B, mode string, gib float64) (*memHelper, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^TestLoadMemoryHelper$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%g", memHelperEnv, mode, gib))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s memory helper: %w", mode, err)
	}
	h := &memHelper{cmd: cmd, touched: make(chan struct{}), done: make(chan error, 1)}
	b.Cleanup(func() { _ = h.stop() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "touched ") {
				h.mu.Lock()
				h.passes++
				if h.passes == 1 {
					close(h.touched)
				}
				h.mu.Unlock()
			}
		}
		h.done <- cmd.Wait()
	}()
	return h, nil
}

func (h *memHelper) passCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.passes
}

// wait waits for the helper's exit.
func (h *memHelper) wait() error {
	err := <-h.done
	h.mu.Lock()
	h.stopped, h.err = true, err
	h.mu.Unlock()
	return err
}

// stop kills the helper and waits for it; calling it again is harmless. A
// kill by stop is not an error.
func (h *memHelper) stop() error {
	h.mu.Lock()
	stopped := h.stopped
	h.mu.Unlock()
	if stopped {
		return h.err
	}
	_ = h.cmd.Process.Kill()
	err := h.wait()
	if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
		err = nil
	}
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	return err
}

// TestLoadMemoryHelper is the memory helper process of BenchmarkNetnsLoad;
// it does nothing unless MTC_LOAD_MEMORY_HELPER is set. The buffer is an
// anonymous mapping outside the Go heap, populated by the kernel in one
// call (MAP_POPULATE: no page fault per page, so even a helper that gets a
// small share of a busy CPU allocates it in seconds), then touched one byte
// per page.
func TestLoadMemoryHelper(t *testing.T) {
	v := os.Getenv(memHelperEnv)
	if v == "" {
		t.Skip("the memory helper of BenchmarkNetnsLoad: runs only as its child process")
	}
	mode, g, _ := strings.Cut(v, ":")
	gib, err := strconv.ParseFloat(g, 64)
	if err != nil || gib <= 0 || (mode != "once" && mode != "retouch") {
		t.Fatalf("%s=%q: want once:GIB or retouch:GIB", memHelperEnv, v)
	}
	size := int(gib * (1 << 30))
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		t.Fatalf("map %g GiB: %v", gib, err)
	}
	page := os.Getpagesize()
	for pass := 1; ; pass++ {
		for i := 0; i < size; i += page {
			buf[i] = byte(pass)
		}
		fmt.Printf("touched %d\n", pass)
		if mode == "once" {
			return // the exit frees the buffer
		}
	}
}

func loadReport(results []loadResult, plan loadPlan, runs []loadProfile, durs []time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if plan.reclaimGiB > 0 {
		p("## Daemon: false failure detections under load, with memory-reclaim stalls\n\n")
	} else {
		p("## Daemon: false failure detections under load\n\n")
	}
	p("Three `mtc daemon` processes per timing profile, set up as for the failure-detection section (process watchdog), with the quorum disk on a freezable loop device (direct I/O to a file on its own ext4 filesystem). Nothing fails, while the machine is loaded:\n\n")
	p("- CPU: %d busy loops (`%s` at nice 0) on %d CPUs;\n", plan.hogs, strings.Join(busyLoop[:2], " ")+" '"+busyLoop[2]+"'", numCPU())
	if plan.touchGiB > 0 {
		p("- memory: a process re-touches %g GiB of anonymous memory (one byte per page) for the whole run;\n", plan.touchGiB)
	} else {
		p("- memory: no re-touched buffer;\n")
	}
	if plan.ddMiBps > 0 {
		p("- root disk: every second `dd` writes %d MiB with `oflag=direct` into a file in %s (rewritten in place, removed afterwards) and reads it back with `iflag=direct`", plan.ddMiBps, plan.ddDir)
		if len(results) > 0 && results[0].sharedDisk {
			p(" — on this machine the quorum disk's backing file is on the same device, so this traffic queues with the quorum-disk I/O, unlike a SAN LUN")
		}
		p(";\n")
	} else {
		p("- root disk: no dd traffic;\n")
	}
	if plan.freeze {
		p("- quorum disk: writes frozen with `fsfreeze` every %v for the profile's short freeze, every %v for its long one, both below its io_timeout;\n", freezeTick, freezeTick*longFreezeEvery)
	} else {
		p("- quorum disk: no freezes;\n")
	}
	if plan.reclaimGiB > 0 {
		p("- memory-reclaim stalls: every %v (the first 5 s into the run; at once after the previous one when that took longer) a process at nice 0 allocates and touches %g GiB of anonymous memory and exits, and the kernel frees it; a stall counts from the start of that process to %v after its exit, and its largest direct read is given as allocation / exit (from the end of the touching on).\n\n", plan.reclaimEvery, plan.reclaimGiB, reclaimWindow)
	} else {
		p("- no memory-reclaim stalls.\n\n")
	}
	p("Any membership change, loss of quorum or pause of it while a member leaves (quorum-settling), peer suspected, partitioned or dead, self-fence, watchdog kill or daemon exit is a false detection; a quorum pause while a node joins (quorum-joining) is not. The status of every daemon is polled every heartbeat interval of its profile; the gaps are the largest values sampled (so at most that much below the true largest). The benchmark itself reads the quorum disk's first sector with direct I/O every %v, as a daemon reads a slot: during a reclaim stall the largest latency that every read took for a whole self-fence timeout is set against the disk latency the profile tolerates (`mtc check`: every I/O of a round at that latency, for as long as it lasts), and the largest single read against the complete stall it tolerates — beyond either a self-fence is expected. Measured %s on %s (%d CPUs, %s, Linux %s) with:\n\n",
		probeInterval, time.Now().UTC().Format("2006-01-02 15:04 MST"), host, numCPU(), cpuModel(), strings.TrimSpace(string(kernel)))
	var keys, durEnv []string
	for i, lp := range runs {
		keys = append(keys, lp.key)
		durEnv = append(durEnv, fmt.Sprintf("MTC_LOAD_DURATION_%s=%v", strings.ToUpper(strings.ReplaceAll(lp.key, "-", "_")), durs[i]))
	}
	p("    MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md MTC_LOAD_PROFILES=%s %s %s go test -run '^$' -bench NetnsLoad -benchtime 1x -timeout %s ./test/integration\n\n",
		strings.Join(keys, ","), strings.Join(durEnv, " "), plan.env(), loadTimeout(durs))
	p("| profile | daemons | timing (heartbeat / io_timeout / failure / watchdog) | disk latency tolerated (stall) | duration | CPUs busy (stolen) | busy loops got | memory re-touched | dd direct I/O | freezes (longest, freeze call to thaw return) | reclaim stalls (largest direct read during them: allocation / exit) | false detections | other decisions | status answers not all-healthy | daemon exits / watchdog kills |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		t := r.lp.p.Timing
		d := t.Derive()
		var other []string
		for _, dr := range r.decisions {
			if !falseDetection(dr.rec) {
				other = append(other, dr.node+": "+dr.rec.Text)
			}
		}
		hogShare := "-"
		if r.plan.hogs > 0 {
			hogShare = fmt.Sprintf("%.0f%% of a CPU each", 100*float64(r.hogCPU)/float64(r.window)/float64(r.plan.hogs))
		}
		p("| %s | %s | %v / %v / %v / %v | %v (%v) | %v | %.1f%% (%.1f%%) | %s | %s | %s | %s | %s | **%d** | %s | %d of %d (%d unanswered) | %d / %d |\n",
			r.lp.p.Name, modeName(r.lp.p), t.HeartbeatInterval, t.IOTimeout, t.FailureTimeout, t.WatchdogTimeout,
			d.DiskLatencyTolerance(), d.DiskStallTolerance(), r.window.Round(time.Second), 100*r.busy, 100*r.steal, hogShare,
			touchSummary(r), ddSummary(r), freezeSummary(r.freezes), stallSummary(r.stalls),
			r.falseDetections(), countOrNone(other), r.unhealthy, r.samples, r.pollErrs, len(r.exited), r.watchdog)
	}
	p("\n\"CPUs busy\" counts everything on the machine (busy loops, memory toucher, dd, daemons, the benchmark and whatever else the host runs), from /proc/stat; \"stolen\" is time the hypervisor gave to other guests. The freeze lengths are from the start of `fsfreeze --freeze` to the return of `fsfreeze --unfreeze`, an upper bound of the time writes hung.\n")
	p("\nReclaim stalls against the tolerated disk latency:\n\n")
	for _, r := range results {
		p("- %s, %s: %s\n", r.lp.p.Name, modeName(r.lp.p), stallVerdict(r))
	}
	p("\nLargest sampled gaps, disk I/O failures and CPU time over the run (CPU in percent of one CPU; the daemon's includes answering the status polls):\n\n")
	p("| profile | daemons | peer not heard (net) | samples of a peer unheard > 2 heartbeats | peer disk counter unchanged | samples of a peer's disk path not live | own slot not written | watchdog not fed | disk write / read failures | benchmark's direct reads: largest outside stalls and freezes (failed) | daemon CPU | supervisor CPU | real-time threads |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		p("| %s | %s | %v | %d | %v | %d | %v | %v | %d / %d | %s (%d) | %s | %s | %s |\n", r.lp.p.Name, modeName(r.lp.p),
			r.maxSinceHeard, r.lateHeard, r.maxDiskSinceChange, r.diskSuspect, r.maxSinceWrite, r.maxSinceFeed,
			r.writeFails, r.readFails, ms(r.quietProbeMax()), r.probeErrs, cpuPercents(r.cpu, r.window), cpuPercents(r.supCPU, r.window), ints(r.rtThreads))
	}
	for _, r := range results {
		name := r.lp.p.Name + ", " + modeName(r.lp.p)
		var fd []string
		for _, dr := range r.decisions {
			if falseDetection(dr.rec) {
				s := fmt.Sprintf("%s %s: %s", dr.rec.Time.UTC().Format("15:04:05.000"), dr.node, dr.rec.Text)
				if w := r.during(interval{dr.rec.Time.Add(-time.Millisecond), dr.rec.Time.Add(time.Millisecond)}); w != "" {
					s += " (during a " + w + ")"
				}
				fd = append(fd, s)
			}
		}
		if len(fd) > 0 {
			p("\n%s: every false detection:\n\n", name)
			for _, s := range fd {
				p("    %s\n", s)
			}
		}
		if len(r.freezes.errs) > 0 {
			p("\n%s: %d freeze or thaw errors, the first: `%s`\n", name, len(r.freezes.errs), r.freezes.errs[0])
		}
		if len(r.ddErrs) > 0 {
			p("\n%s: %d dd errors, the first: `%s`\n", name, len(r.ddErrs), r.ddErrs[0])
		}
		if r.touchErr != "" {
			p("\n%s: the memory toucher failed: `%s`\n", name, r.touchErr)
		}
		for _, s := range r.stalls {
			if s.err != "" {
				p("\n%s: the reclaim helper started at %s: `%s`\n", name, s.start.UTC().Format("15:04:05"), s.err)
			}
		}
		if len(r.exited) > 0 {
			p("\n%s: daemons that exited: %s\n", name, strings.Join(r.exited, ", "))
		}
		if len(r.notable) > 0 {
			const maxLines = 40
			p("\n%s: decisions, warnings and errors logged during the run", name)
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

// loadTimeout is a go test -timeout that fits runs of durs: each run's
// duration plus ten minutes for setting up and tearing down its cluster
// and the memory toucher.
func loadTimeout(durs []time.Duration) string {
	var total time.Duration
	for _, d := range durs {
		total += d + 10*time.Minute
	}
	return fmt.Sprintf("%dm", int(total.Minutes()))
}

// quietProbeMax is the largest latency of the benchmark's direct reads of
// the quorum disk outside reclaim stalls and freezes.
func (r loadResult) quietProbeMax() time.Duration {
	var m time.Duration
	for _, ps := range r.probes {
		if r.during(interval{ps.at, ps.at.Add(ps.lat)}) == "" {
			m = max(m, ps.lat)
		}
	}
	return m
}

// sustainedLatency is the largest L such that, for a whole span within w,
// every direct read issued took at least L: the latency the disk held for
// as long as a node's self-fence timeout, which DiskLatencyTolerance bounds.
// A single slow read does not count; DiskStallTolerance bounds that one.
func sustainedLatency(probes []probeSample, w interval, span time.Duration) time.Duration {
	var best time.Duration
	for i, a := range probes {
		if a.at.Before(w.from) || !a.at.Before(w.to) {
			continue
		}
		lo, n := a.lat, 0
		for _, b := range probes[i:] {
			if b.at.Sub(a.at) >= span {
				break
			}
			lo, n = min(lo, b.lat), n+1
		}
		// Reads are issued one after the other, so a span holds a single
		// read only when that read itself lasted about the span.
		if n >= 2 || a.lat >= span {
			best = max(best, lo)
		}
	}
	return best
}

// stallVerdict says whether a reclaim stall exceeded the profile's
// tolerated disk latency, so that a self-fence was expected, and whether
// one happened.
func stallVerdict(r loadResult) string {
	if len(r.stalls) == 0 {
		return "no reclaim stall in this run."
	}
	d := r.lp.p.Timing.Derive()
	tol, stallTol := d.DiskLatencyTolerance(), d.DiskStallTolerance()
	var worst, sustained time.Duration
	expected := 0
	for _, s := range r.stalls {
		worst, sustained = max(worst, s.probeMax()), max(sustained, s.sustained)
		if s.sustained > tol || s.probeMax() > stallTol {
			expected++
		}
	}
	inStall, outside := 0, 0
	for _, dr := range r.decisions {
		if dr.rec.Kind != quorum.SelfFence.String() {
			continue
		}
		if r.during(interval{dr.rec.Time, dr.rec.Time.Add(time.Millisecond)}) == "reclaim stall" {
			inStall++
		} else {
			outside++
		}
	}
	v := fmt.Sprintf("during the stalls the direct reads took up to %s, and at least %s each for a whole self-fence timeout (%v); the profile tolerates %s sustained and a %s stall: ",
		ms(worst), ms(sustained), d.SelfFenceAfter, ms(tol), ms(stallTol))
	if expected > 0 {
		v += fmt.Sprintf("%d of %d stalls beyond that, a self-fence expected", expected, len(r.stalls))
	} else {
		v += fmt.Sprintf("all %d stalls within it, no self-fence expected", len(r.stalls))
	}
	if quiet := r.quietProbeMax(); quiet > tol {
		v += fmt.Sprintf(" (outside stalls and freezes single reads took up to %s)", ms(quiet))
	}
	return v + fmt.Sprintf("; self-fences: %d during a stall, %d outside; watchdog kills: %d.", inStall, outside, r.watchdog)
}

func modeName(p Profile) string {
	if p.NoRealtime {
		return "--no-realtime"
	}
	return "real-time, mlockall"
}

func touchSummary(r loadResult) string {
	if r.plan.touchGiB == 0 {
		return "none"
	}
	return fmt.Sprintf("%g GiB, %d passes", r.plan.touchGiB, r.touchPasses)
}

func ddSummary(r loadResult) string {
	if r.plan.ddMiBps == 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f MiB/s (%d errors)", float64(r.ddBytes)/(1<<20)/r.window.Seconds(), len(r.ddErrs))
}

func stallSummary(stalls []reclaimStall) string {
	if len(stalls) == 0 {
		return "none"
	}
	var s []string
	for _, st := range stalls {
		switch {
		case st.touched.IsZero() && st.exited.IsZero():
			s = append(s, "failed to start")
		case st.touched.IsZero():
			s = append(s, fmt.Sprintf("%s / unfinished after %v, sustained %s", ms(st.allocMax), st.exited.Sub(st.start).Round(time.Second), ms(st.sustained)))
		default:
			s = append(s, fmt.Sprintf("%s / %s, sustained %s, touched in %v", ms(st.allocMax), ms(st.freeMax), ms(st.sustained), st.touched.Sub(st.start).Round(100*time.Millisecond)))
		}
	}
	return fmt.Sprintf("%d (%s)", len(stalls), strings.Join(s, ", "))
}

func ints(v []int) string {
	var s []string
	for _, n := range v {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, ", ")
}

func freezeSummary(fs *freezeStats) string {
	lengths := make([]time.Duration, 0, len(fs.count))
	for l := range fs.count {
		lengths = append(lengths, l)
	}
	slices.Sort(lengths)
	var s []string
	for _, l := range lengths {
		e := fmt.Sprintf("%d × %v (%s", fs.count[l], l, ms(fs.longest[l]))
		if fs.over[l] > 0 {
			e += fmt.Sprintf("; %d reached io_timeout", fs.over[l])
		}
		s = append(s, e+")")
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
		if d < 0 {
			s = append(s, "exited")
			continue
		}
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

// TestSustainedLatency checks the benchmark's own measure of sustained
// disk latency: one slow read is not sustained, a run of slow reads
// spanning the whole span is, and reads outside the window do not count.
func TestSustainedLatency(t *testing.T) {
	t0 := time.Unix(1000, 0)
	reads := func(lat ...time.Duration) []probeSample {
		var ps []probeSample
		at := t0
		for _, l := range lat {
			ps = append(ps, probeSample{at, l})
			at = at.Add(l + 20*time.Millisecond)
		}
		return ps
	}
	const msec = time.Millisecond
	all := interval{t0, t0.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		ps   []probeSample
		w    interval
		span time.Duration
		want time.Duration
	}{
		{"fast", reads(1*msec, 2*msec, 1*msec, 1*msec), all, 300 * msec, 1 * msec},
		{"one slow read among fast ones", reads(1*msec, 1*msec, 90*msec, 1*msec, 1*msec, 1*msec, 1*msec), all, 300 * msec, 1 * msec},
		{"slow for longer than the span", reads(1*msec, 80*msec, 70*msec, 90*msec, 80*msec, 1*msec), all, 300 * msec, 70 * msec},
		{"one read longer than the span", reads(1*msec, 400*msec, 1*msec), all, 300 * msec, 400 * msec},
		{"slow reads outside the window", reads(80*msec, 80*msec, 80*msec, 80*msec, 1*msec, 1*msec), interval{t0.Add(400 * msec), t0.Add(time.Hour)}, 300 * msec, 1 * msec},
	} {
		if got := sustainedLatency(tc.ps, tc.w, tc.span); got != tc.want {
			t.Errorf("%s: sustainedLatency = %v, want %v", tc.name, got, tc.want)
		}
	}
}
