package sim

import (
	"fmt"
	"io"
	"math/rand"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/quorum"
)

// HistoryOptions choose how random histories are drawn.
type HistoryOptions struct {
	// Nodes per history; 0 draws 2..16 (uniformly, or biased toward
	// small clusters with SmallBias, which makes many histories cheap).
	Nodes     int
	SmallBias bool
	// Timing; the zero value draws the default or the aggressive profile.
	Timing config.Timing
	// Bug plants a defect (checker tests only).
	Bug Bug
	// Kind, when set, draws every fault of the history from this kind.
	Kind string
	// Trace receives the history's events and decisions when set.
	Trace io.Writer
	// NoPackages runs the history without the package layer (pkg.go):
	// no placement machines, runners or operator.
	NoPackages bool
}

// Result is the outcome of one history.
type Result struct {
	Seed    int64
	Nodes   int
	Timing  config.Timing
	Fencing bool
	// Violations of the safety invariants; Liveness of the
	// survivor-liveness properties.
	Violations []Violation
	Liveness   []Violation
	// Kinds are the fault kinds the history drew (each once).
	Kinds []string
	// Windows is how many fault windows the liveness checker judged.
	Windows   int
	Bug       string
	Decisions int
	Simulated time.Duration
	// Reformed is how long after the last heal the cluster re-formed.
	Reformed time.Duration
	// Packages is how many packages the history ran (0: none); Intents
	// how many operator intents were acknowledged; ClusterRestart: the
	// whole cluster restarted at the end (rule 12 across it).
	Packages       int
	Intents        int
	ClusterRestart bool
}

// RunHistory draws one history from seed and runs it: the cluster forms,
// a few random faults start and heal, every fault heals at the end, and
// the cluster must re-form. The same seed and options replay exactly.
func RunHistory(seed int64, ho HistoryOptions) (Result, error) {
	w, r, err := runHistory(seed, ho)
	if w != nil {
		w.Close()
	}
	return r, err
}

func runHistory(seed int64, ho HistoryOptions) (*World, Result, error) {
	rng := rand.New(rand.NewSource(seed ^ 0x5eed))
	// Every draw is made whatever the options, so a history replays
	// exactly when its drawn values are then given explicitly.
	x, y := rng.Intn(quorum.MaxNodes-1), rng.Intn(quorum.MaxNodes-1)
	aggressive := rng.Intn(2) == 0
	nodes := ho.Nodes
	if nodes == 0 {
		nodes = 2 + x
		if ho.SmallBias {
			nodes = 2 + y%(x+1)
		}
	}
	timing := ho.Timing
	if timing == (config.Timing{}) {
		timing = config.DefaultTiming()
		if aggressive {
			timing = config.AggressiveTiming()
		}
	}
	opt := Options{Nodes: nodes, Timing: timing, Seed: seed, Fencing: rng.Intn(10) < 7, DrawArbiter: true, Bug: ho.Bug, Packages: !ho.NoPackages}
	if ho.Trace != nil {
		opt.Trace = ho.Trace
	}
	w, err := NewWorld(opt)
	if err != nil {
		return nil, Result{}, err
	}
	t := w.t
	res := Result{Seed: seed, Nodes: nodes, Timing: timing, Fencing: opt.Fencing, Bug: ho.Bug.Name}
	w.loss = rng.Float64() * 0.05
	w.torn = rng.Float64() * 0.01
	w.trace("history seed=%d nodes=%d timing=%+v fencing=%v loss=%.3f torn=%.3f", seed, nodes, timing, opt.Fencing, w.loss, w.torn)
	if w.st != nil {
		w.trace("storage: %v arbiter=%v", w.st, w.arbiter)
	}

	// Let the cluster form, then inject faults over a window.
	formed := 3*(t.DeadAfter+t.Margin) + 10*t.HeartbeatInterval
	window := 10 * t.FailureTimeout
	end := formed + window
	k := 1 + rng.Intn(4)
	faultsEnd := end
	seen := map[string]bool{}
	for i := 0; i < k; i++ {
		start := formed + time.Duration(rng.Int63n(int64(window)))
		dur := time.Duration(float64(t.FailureTimeout) * (0.2 + rng.Float64()*8))
		if start+dur > end {
			dur = end - start
		}
		kind := faultKinds[rng.Intn(len(faultKinds))]
		if ho.Kind != "" {
			kind = ho.Kind
		}
		if kind == "one-way-long" {
			dur = 20*time.Second + time.Duration(rng.Int63n(int64(10*time.Second)))
		}
		faultsEnd = max(faultsEnd, start+dur)
		scheduleFault(w, rng, kind, start, dur)
		if !seen[kind] {
			seen[kind] = true
			res.Kinds = append(res.Kinds, kind)
		}
	}
	end = faultsEnd
	if w.pk != nil {
		// The operator's commands race the faults; runner failures stop
		// with them.
		res.Packages = len(w.pk.defs)
		w.trace("packages: %s", w.pk)
		w.pk.operator(formed, end)
		w.at(end, func() { w.pk.failures = false })
	}
	w.RunUntil(end)
	w.HealAll()
	// Run until the cluster has re-formed and stayed so for a while (a
	// node still on its way to a reset would show within
	// SelfFenceAfter + WatchdogTimeout), or until the bound.
	deadline := end + w.reformBound()
	settle := t.SelfFenceAfter + t.WatchdogTimeout + t.Margin
	var since time.Duration = -1
	for w.now < deadline {
		w.Run(t.HeartbeatInterval)
		if !w.reformed() {
			since = -1
			continue
		}
		if since < 0 {
			since = w.now
			res.Reformed = w.now - end
		}
		if w.now-since >= settle {
			break
		}
	}
	w.checkReformed()
	w.lv.finish()
	if w.pk != nil && since >= 0 {
		res.ClusterRestart = w.pkgFinal(since)
		res.Intents = len(w.pk.chk.acks)
	}
	res.Violations = w.violations
	res.Liveness = w.liveness
	res.Windows = w.lv.Windows
	res.Decisions = w.decisions
	res.Simulated = w.now
	return w, res, nil
}

// faultKinds are the kinds of fault a history draws from (a partition
// twice as often as the others).
var faultKinds = []string{
	"partition", "partition", "one-way", "one-way-long", "loss",
	"disk-fail", "disk-hang", "disk-slow", "crash", "restart-loop",
	"pause", "vm-freeze", "slow-stop", "deaf", "mute", "flap", "babble",
}

// FaultKinds lists the fault kinds, each once.
func FaultKinds() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range faultKinds {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func scheduleFault(w *World, rng *rand.Rand, kind string, start, dur time.Duration) {
	n := len(w.nodes) - 1
	pick := func() quorum.NodeID { return quorum.NodeID(1 + rng.Intn(n)) }
	end := start + dur
	t := w.t
	switch kind {
	case "partition": // symmetric partition into two or three random sides
		groups := make([][]quorum.NodeID, 2+rng.Intn(2))
		for id := 1; id <= n; id++ {
			g := rng.Intn(len(groups))
			groups[g] = append(groups[g], quorum.NodeID(id))
		}
		w.at(start, func() { w.Partition(groups) })
		w.at(end, w.HealNetwork)
	case "one-way", "one-way-long": // one-way links, held long or not
		m := 1 + rng.Intn(3)
		for i := 0; i < m; i++ {
			a, b := pick(), pick()
			if a != b {
				w.at(start, func() { w.OneWay(a, b) })
			}
		}
		w.at(end, w.HealNetwork)
	case "loss": // heavy packet loss
		p := 0.3 + rng.Float64()*0.6
		w.at(start, func() { w.SetLoss(p) })
		w.at(end, w.HealNetwork)
	case "disk-fail": // a dead disk path
		id := pick()
		w.at(start, func() { w.DiskFail(id) })
		w.at(end, func() { w.DiskHeal(id) })
	case "disk-hang": // a hung disk path, its I/O completing late at the heal
		id := pick()
		w.at(start, func() { w.DiskHang(id) })
		w.at(end, func() { w.DiskHeal(id) })
	case "crash": // crash and restart
		id := pick()
		w.at(start, func() { w.Crash(id) })
		w.at(end, func() { w.Restart(id) })
	case "restart-loop": // a node that crashes and restarts over and over
		id := pick()
		for at := start; at < end; {
			up := at
			down := up + time.Duration(float64(t.DeadAfter)*(0.3+rng.Float64()*4))
			back := down + time.Duration(rng.Int63n(int64(rebootDelay)))
			if down >= end {
				break
			}
			w.at(down, func() { w.Crash(id) })
			w.at(back, func() { w.Restart(id) })
			at = back
		}
	case "pause": // process pause: the watchdog keeps counting
		id := pick()
		w.at(start, func() { w.Pause(id, dur) })
	case "vm-freeze": // VM freeze: the watchdog stands still, the clock jumps
		id := pick()
		w.at(start, func() { w.VMFreeze(id, dur) })
	case "disk-slow": // slow, lossy disk path and torn writes
		id := pick()
		w.at(start, func() { w.DiskSlow(id, 0.5); w.DiskFlaky(id, 0.2); w.SetTorn(0.2) })
		w.at(end, func() { w.DiskHeal(id); w.SetTorn(0) })
	case "slow-stop": // package stops slow or hung, on a node made to stop
		id := pick()
		d := time.Duration(-1)
		if rng.Intn(2) == 0 {
			d = t.HeartbeatInterval + time.Duration(rng.Int63n(int64(t.WatchdogTimeout)))
		}
		isolate := rng.Intn(2) == 0
		w.at(start, func() {
			w.SlowStop(id, d)
			if isolate {
				w.Partition([][]quorum.NodeID{{id}})
			} else {
				w.DiskFail(id)
			}
		})
		w.at(end, func() {
			w.SlowStop(id, 0)
			if isolate {
				w.HealNetwork()
			} else {
				w.DiskHeal(id)
			}
		})
	case "deaf": // a node that receives nothing, and still sends
		id := pick()
		w.at(start, func() { w.Deaf(id) })
		w.at(end, w.HealNetwork)
	case "mute": // a node that sends nothing, and still receives
		id := pick()
		w.at(start, func() { w.Mute(id) })
		w.at(end, w.HealNetwork)
	case "flap": // a link that goes down and up
		a, b := pick(), pick()
		if a == b {
			b = a%quorum.NodeID(n) + 1
		}
		period := t.HeartbeatInterval + time.Duration(rng.Int63n(int64(3*t.FailureTimeout)))
		w.at(start, func() { w.Flap(a, b, period) })
		w.at(end, w.HealNetwork)
	case "babble": // a peer whose view changes every heartbeat
		id := pick()
		w.at(start, func() { w.Babble(id) })
		w.at(end, w.HealNetwork)
	default:
		panic("sim: unknown fault kind " + kind)
	}
}

// RunMany runs the histories of seeds first..first+count-1 on workers
// goroutines and reports each result to report (called from one goroutine
// at a time, in no particular order).
func RunMany(first int64, count, workers int, ho HistoryOptions, report func(Result)) error {
	if workers < 1 {
		workers = 1
	}
	seeds := make(chan int64)
	results := make(chan Result)
	errs := make(chan error, workers)
	for i := 0; i < workers; i++ {
		go func() {
			for s := range seeds {
				r, err := RunHistory(s, ho)
				if err != nil {
					errs <- err
					return
				}
				results <- r
			}
			errs <- nil
		}()
	}
	go func() {
		for s := first; s < first+int64(count); s++ {
			seeds <- s
		}
		close(seeds)
	}()
	var firstErr error
	for done := 0; done < workers; {
		select {
		case r := <-results:
			report(r)
		case err := <-errs:
			done++
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// Summary is one line about a result.
func (r Result) Summary() string {
	return fmt.Sprintf("seed=%d nodes=%d heartbeat=%v fencing=%v faults=%s violations=%d liveness=%d", r.Seed, r.Nodes, r.Timing.HeartbeatInterval, r.Fencing, strings.Join(r.Kinds, ","), len(r.Violations), len(r.Liveness))
}

// Replay is the command that replays this history with its trace.
func (r Result) Replay() string {
	profile := "default"
	if r.Timing == config.AggressiveTiming() {
		profile = "aggressive"
	}
	s := fmt.Sprintf("mtc sim --seed %d --nodes %d --timing %s --v", r.Seed, r.Nodes, profile)
	if r.Bug != "" {
		s += " --plant-bug " + r.Bug
	}
	return s
}

// KindCounts tallies histories by fault kind: how many drew each kind and
// how many of those broke a safety invariant or a liveness property.
type KindCounts struct {
	Histories, Unsafe, Unlive map[string]int
	// Histories with packages, the operator intents they acknowledged,
	// those that ended with a whole-cluster restart, and the violations
	// by rule.
	WithPackages, Intents, Restarts int
	Rules                           map[int]int
}

// Add counts one result.
func (k *KindCounts) Add(r Result) {
	if k.Histories == nil {
		k.Histories, k.Unsafe, k.Unlive, k.Rules = map[string]int{}, map[string]int{}, map[string]int{}, map[int]int{}
	}
	if r.Packages > 0 {
		k.WithPackages++
		k.Intents += r.Intents
		if r.ClusterRestart {
			k.Restarts++
		}
	}
	for _, v := range r.Violations {
		k.Rules[v.Rule]++
	}
	for _, kind := range r.Kinds {
		k.Histories[kind]++
		if len(r.Violations) > 0 {
			k.Unsafe[kind]++
		}
		if len(r.Liveness) > 0 {
			k.Unlive[kind]++
		}
	}
}

// String is one line per fault kind.
func (k KindCounts) String() string {
	var b strings.Builder
	for _, kind := range FaultKinds() {
		fmt.Fprintf(&b, "kind %-13s histories=%-5d unsafe=%-4d liveness-failed=%d\n", kind, k.Histories[kind], k.Unsafe[kind], k.Unlive[kind])
	}
	if k.WithPackages > 0 {
		fmt.Fprintf(&b, "packages: histories=%d intents-acknowledged=%d whole-cluster-restarts=%d violations rule 11 (two live owners)=%d 12 (intent lost)=%d 13 (not running)=%d 14 (dependency order)=%d\n",
			k.WithPackages, k.Intents, k.Restarts, k.Rules[11], k.Rules[12], k.Rules[13], k.Rules[14])
	}
	return b.String()
}
