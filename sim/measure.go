package sim

import (
	"fmt"
	"math/rand"
	"sort"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/quorum"
)

// Detection summarises MeasureDetection: for each history, the time from
// a node's death (crash) to the moment every survivor has dropped it from
// its member set (Decided), and to the moment every survivor holds quorum
// again without it (Requorate), and the survivors' longest stretch
// without quorum after the death (Gap: the longest over every survivor,
// 0 when none lost quorum; GapHistories counts the histories with a gap).
type Detection struct {
	Histories           int
	Decided, Requorate  Percentiles
	Gap                 Percentiles
	GapHistories        int
	Timing              config.Timing
	Nodes               int
	Undecided, NoQuorum int // histories where that never happened within the bound
}

// Percentiles of a sample.
type Percentiles struct {
	P50, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return Percentiles{P50: at(0.5), P99: at(0.99), Max: d[len(d)-1]}
}

func (p Percentiles) String() string {
	return fmt.Sprintf("p50=%v p99=%v max=%v", p.P50.Round(time.Millisecond), p.P99.Round(time.Millisecond), p.Max.Round(time.Millisecond))
}

// MeasureDetection runs histories seeds first..first+count-1 of a cluster
// of nodes nodes with timing t: the cluster forms, one random node crashes
// at a random moment, and the survivors' reaction is timed on the absolute
// clock. Clock drift, network jitter and disk latency are drawn per seed.
func MeasureDetection(t config.Timing, nodes int, first int64, count int) (Detection, error) {
	res := Detection{Timing: t, Nodes: nodes}
	var decided, requorate, gaps []time.Duration
	for s := first; s < first+int64(count); s++ {
		w, err := NewWorld(Options{Nodes: nodes, Timing: t, Seed: s, Fencing: true})
		if err != nil {
			return res, err
		}
		rng := rand.New(rand.NewSource(s))
		d := w.t
		if err := formCluster(w, rng, s); err != nil {
			return res, err
		}
		victim := quorum.NodeID(1 + rng.Intn(nodes))
		died := w.now
		w.Crash(victim)
		var all quorum.Set
		for _, n := range w.nodes[1:] {
			if n.id != victim {
				all = all.Add(n.id)
			}
		}
		var tDecided, tQuorate, gap time.Duration
		var gapFrom [quorum.MaxNodes + 1]time.Duration
		for i := range gapFrom {
			gapFrom[i] = -1
		}
		end := died + 3*d.TakeoverAfter
		// Watch on after the survivors regain quorum, long enough for a
		// later loss (the dead node's leases and the guard run out).
		watch := 2*d.DeadAfter + d.EndorseGuard
		for w.now < end && (tDecided == 0 || tQuorate == 0 || w.now < died+watch) {
			w.Run(time.Millisecond)
			dec, quo := true, true
			for _, n := range w.nodes[1:] {
				if n.id == victim {
					continue
				}
				switch q := w.quorateNow(n); {
				case !q && gapFrom[n.id] < 0:
					gapFrom[n.id] = w.now
				case q && gapFrom[n.id] >= 0:
					gap = max(gap, w.now-gapFrom[n.id])
					gapFrom[n.id] = -1
				}
				if n.status.Members.Has(victim) {
					dec = false
				}
				if !w.quorateNow(n) || n.status.Members != all {
					quo = false
				}
			}
			if dec && tDecided == 0 {
				tDecided = w.now - died
			}
			if quo && tQuorate == 0 {
				tQuorate = w.now - died
			}
		}
		w.Close()
		for _, from := range gapFrom {
			if from >= 0 {
				gap = max(gap, w.now-from)
			}
		}
		gaps = append(gaps, gap)
		if gap > 0 {
			res.GapHistories++
		}
		res.Histories++
		if tDecided == 0 {
			res.Undecided++
		} else {
			decided = append(decided, tDecided)
		}
		if tQuorate == 0 {
			res.NoQuorum++
		} else {
			requorate = append(requorate, tQuorate)
		}
	}
	res.Decided, res.Requorate, res.Gap = percentiles(decided), percentiles(requorate), percentiles(gaps)
	return res, nil
}

// formCluster runs w until its cluster has formed (a node whose join
// failed on a storage fault tries again), then a random
// fraction of a heartbeat more.
func formCluster(w *World, rng *rand.Rand, seed int64) error {
	d := w.t
	w.Run(2*(d.EndorseGuard+d.Margin) + 10*d.HeartbeatInterval)
	for limit := w.now + 30*time.Second; !w.reformed(); w.Run(d.HeartbeatInterval) {
		if w.now > limit {
			return fmt.Errorf("seed %d: the cluster did not form", seed)
		}
	}
	w.Run(time.Duration(rng.Int63n(int64(d.HeartbeatInterval))))
	return nil
}

func (d Detection) String() string {
	return fmt.Sprintf("nodes=%d heartbeat=%v failure=%v histories=%d: death->decision %v; death->quorate again %v (undecided=%d, no quorum=%d); survivors' longest quorum gap %v (%d histories with a gap)",
		d.Nodes, d.Timing.HeartbeatInterval, d.Timing.FailureTimeout, d.Histories, d.Decided, d.Requorate, d.Undecided, d.NoQuorum, d.Gap, d.GapHistories)
}

// TakeoverTimes summarises MeasureTakeover: for each history, the time
// from a node's crash to the moment a survivor is allowed to take over its
// packages (quorum.TakeoverAllowed), with fencing, and the reasons given.
type TakeoverTimes struct {
	Histories int
	Allowed   Percentiles
	Fenced    int // takeovers allowed on a verified fence
	Never     int // histories with no takeover within the bound
	Arbiter   bool
	Timing    config.Timing
	Nodes     int
}

// MeasureTakeover runs histories seeds first..first+count-1 of a cluster
// of nodes nodes with timing t and persistent-reservation fencing, the
// machines told that the fence is the arbiter of a two-node tie or not
// (then the tie-break lock decides): the cluster forms, one random node
// crashes at a random moment, and the time to the first takeover allowed
// of it is taken on the absolute clock.
func MeasureTakeover(t config.Timing, nodes int, arbiter bool, first int64, count int) (TakeoverTimes, error) {
	res := TakeoverTimes{Timing: t, Nodes: nodes, Arbiter: arbiter}
	var took []time.Duration
	for s := first; s < first+int64(count); s++ {
		w, err := NewWorld(Options{Nodes: nodes, Timing: t, Seed: s, Fencing: true, NoArbiter: !arbiter})
		if err != nil {
			return res, err
		}
		rng := rand.New(rand.NewSource(s))
		d := w.t
		if err := formCluster(w, rng, s); err != nil {
			w.Close()
			return res, err
		}
		victim := quorum.NodeID(1 + rng.Intn(nodes))
		died := w.now
		var at time.Duration = -1
		var why string
		w.onDecision = func(w *World, n *simNode, dec quorum.Decision) {
			if dec.Kind == quorum.TakeoverAllowed && dec.Peer == victim && at < 0 {
				at, why = w.now-died, dec.Reason
			}
		}
		w.Crash(victim)
		for end := died + 3*d.TakeoverAfter; at < 0 && w.now < end; {
			w.Run(time.Millisecond)
		}
		w.Close()
		res.Histories++
		if at < 0 {
			res.Never++
			continue
		}
		took = append(took, at)
		if why == quorum.TakeoverFenced.String() {
			res.Fenced++
		}
	}
	res.Allowed = percentiles(took)
	return res, nil
}

func (r TakeoverTimes) String() string {
	how := "tie-break lock"
	if r.Arbiter {
		how = "fence as arbiter"
	}
	return fmt.Sprintf("nodes=%d heartbeat=%v failure=%v %s histories=%d: crash->takeover allowed %v (on a verified fence %d, none within the bound %d)",
		r.Nodes, r.Timing.HeartbeatInterval, r.Timing.FailureTimeout, how, r.Histories, r.Allowed, r.Fenced, r.Never)
}
