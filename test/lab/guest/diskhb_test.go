package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// labTiming is the cluster timing of the heartbeat test. iSCSI over
// loopback in a software-emulated guest answers in milliseconds to tens of
// milliseconds, with pauses when the host is busy; the defaults (400ms I/O
// timeout) would see healthy paths time out now and then. These bases keep
// the relations config.Validate checks and make a silent node dead after
// 3 s.
var labTiming = config.Timing{
	HeartbeatInterval: 250 * time.Millisecond, // four rounds per second
	IOTimeout:         time.Second,            // one quorum-disk I/O
	FailureTimeout:    3 * time.Second,        // suspect after 1.5 s, dead after 3 s
	WatchdogTimeout:   5 * time.Second,        // not used here; must be >= 4 intervals
}

// phaseTimeout bounds the wait for one expected change (a failure seen, a
// peer judged dead or live again): several DeadAfters, so only a real
// failure to detect runs into it.
const phaseTimeout = 30 * time.Second

// hbNode is one node's disk heartbeat over its own dm path to the quorum
// LUN, with a record of every round it made.
type hbNode struct {
	id   int
	name string
	path *labkit.DMPath
	dev  *diskhb.Device
	hb   *diskhb.Heartbeater
	done chan struct{}

	mu     sync.Mutex
	rounds []hbRound
}

// hbRound is what one round showed: our write's outcome and our judgement
// of each peer right after it.
type hbRound struct {
	writeErr error
	peers    map[int]diskhb.Liveness
}

func (n *hbNode) record(r diskhb.Round, peers []int) {
	rec := hbRound{writeErr: r.WriteErr, peers: make(map[int]diskhb.Liveness, len(peers))}
	for _, p := range peers {
		rec.peers[p] = n.hb.PeerState(p)
	}
	n.mu.Lock()
	n.rounds = append(n.rounds, rec)
	n.mu.Unlock()
}

// since returns a copy of the rounds from index from on, and the count.
func (n *hbNode) since(from int) []hbRound {
	n.mu.Lock()
	defer n.mu.Unlock()
	if from > len(n.rounds) {
		from = len(n.rounds)
	}
	return slices.Clone(n.rounds[from:])
}

func (n *hbNode) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.rounds)
}

// await waits until cond holds for the rounds n made since from, and
// fails t with what, n's recent rounds and its status when it does not.
func (n *hbNode) await(t *testing.T, what string, from int, cond func([]hbRound) bool) []hbRound {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), phaseTimeout)
	defer cancel()
	var rs []hbRound
	if !waitFor(ctx, func() bool { rs = n.since(from); return cond(rs) }) {
		t.Fatalf("%s: %s did not happen within %v over %d rounds; status %+v", n.name, what, phaseTimeout, len(rs), n.hb.Snapshot())
	}
	return rs
}

// lastState is peer's liveness as judged in the last of rs.
func lastState(rs []hbRound, peer int) diskhb.Liveness {
	if len(rs) == 0 {
		return diskhb.Unknown
	}
	return rs[len(rs)-1].peers[peer]
}

// suspectThenDead reports whether the judgement of peer in rs went
// through Suspect before reaching Dead, and ended Dead.
func suspectThenDead(rs []hbRound, peer int) bool {
	suspect := false
	for _, r := range rs {
		switch r.peers[peer] {
		case diskhb.Suspect:
			suspect = true
		case diskhb.Dead:
			return suspect
		}
	}
	return false
}

// TestDiskHeartbeatFaults runs the quorum-disk heartbeat of three nodes,
// each through its own dm path to the quorum LUN, and breaks node3's path:
//
//  1. error table: node3's writes fail with ErrIO; node1 and node2 see
//     node3 go suspect, then dead, and keep seeing each other live;
//  2. path restored: node3 writes again and its peers see it live;
//  3. path suspended (hung I/O): node3's write fails with ErrTimeout at its
//     deadline and its rounds go on instead of blocking; its peers see it
//     suspect, then dead;
//  4. path resumed: node3 recovers and is live again for its peers.
func TestDiskHeartbeatFaults(t *testing.T) {
	san, ctx := lab(t)
	derived := labTiming.Derive()
	if errs := labTiming.Validate(); len(errs) > 0 {
		t.Fatalf("lab timing is invalid: %v", errors.Join(errs...))
	}
	cluster := uuid.New()
	names := []string{"node1", "node2", "node3"}

	nodes := make([]*hbNode, len(names))
	for i, name := range names {
		under := dev(t, san, name, "quorum")
		p, err := labkit.OpenDMPath(ctx, labkit.DMName(name, "quorum"), under)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		bd, err := diskhb.OpenBlock(p.Dev())
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("lab_node", name)
		nodes[i] = &hbNode{id: i + 1, name: name, path: p, dev: diskhb.NewDevice(bd, labTiming.IOTimeout, log), done: make(chan struct{})}
		t.Cleanup(func() { nodes[i].dev.Close() })
	}
	// Cleanups run last-registered first: heal the paths (a hung I/O
	// returns), then stop the heartbeats, then close the devices.
	runCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(func() {
		stop()
		for _, n := range nodes {
			if n.hb != nil {
				<-n.done
			}
		}
	})
	t.Cleanup(func() {
		for _, n := range nodes {
			if err := n.path.Restore(context.Background()); err != nil {
				t.Errorf("restore %s: %v", n.path.Name, err)
			}
		}
	})

	err := diskhb.Format(ctx, nodes[0].dev, diskhb.Header{
		ClusterUUID: cluster, ClusterName: "lab", Slots: len(names),
		HeartbeatInterval: labTiming.HeartbeatInterval, IOTimeout: labTiming.IOTimeout,
		FailureTimeout: labTiming.FailureTimeout, WatchdogTimeout: labTiming.WatchdogTimeout,
		FormattedAt: time.Now(),
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		disk, err := diskhb.Open(ctx, n.dev, diskhb.Expect{
			ClusterUUID: cluster, MaxNodeID: len(names),
			HeartbeatInterval: labTiming.HeartbeatInterval, IOTimeout: labTiming.IOTimeout,
			FailureTimeout: labTiming.FailureTimeout, WatchdogTimeout: labTiming.WatchdogTimeout,
		})
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		var peers []int
		for id := 1; id <= len(names); id++ {
			if id != n.id {
				peers = append(peers, id)
			}
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("lab_node", n.name)
		n.hb = diskhb.NewHeartbeater(disk, diskhb.HeartbeatConfig{
			NodeID: n.id, NodeName: n.name, Interval: labTiming.HeartbeatInterval,
			SuspectAfter: derived.SuspectAfter, DeadAfter: derived.DeadAfter,
		}, log, nil, func(r diskhb.Round) { n.record(r, peers) })
	}
	for _, n := range nodes {
		go func() {
			defer close(n.done)
			n.hb.Run(runCtx)
		}()
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	allLive := func(self *hbNode) func([]hbRound) bool {
		return func(rs []hbRound) bool {
			for _, n := range nodes {
				if n != self && lastState(rs, n.id) != diskhb.Live {
					return false
				}
			}
			return true
		}
	}
	for _, n := range nodes {
		n.await(t, "seeing every peer live", 0, allLive(n))
	}
	t.Logf("three nodes heartbeating through %s, %s, %s", n1.path.Dev(), n2.path.Dev(), n3.path.Dev())
	healthyFrom := []int{n1.count(), n2.count()}

	// peersJudge waits until node1 and node2 both judge node3 as want,
	// having gone through Suspect first when want is Dead.
	peersJudge := func(phase string, marks []int, want diskhb.Liveness) {
		t.Helper()
		for i, n := range []*hbNode{n1, n2} {
			rs := n.await(t, fmt.Sprintf("%s: node3 judged %v", phase, want), marks[i], func(rs []hbRound) bool {
				return lastState(rs, n3.id) == want
			})
			if want == diskhb.Dead && !suspectThenDead(rs, n3.id) {
				t.Errorf("%s: %s judged node3 dead without judging it suspect first", phase, n.name)
			}
		}
	}
	marks := func() []int { return []int{n1.count(), n2.count(), n3.count()} }

	// 1. node3 loses its path: every I/O fails at once.
	m := marks()
	t0 := time.Now()
	if err := n3.path.Fail(ctx); err != nil {
		t.Fatal(err)
	}
	rs := n3.await(t, "error table: a failed write", m[2], func(rs []hbRound) bool {
		return slices.ContainsFunc(rs, func(r hbRound) bool { return r.writeErr != nil })
	})
	werr := rs[slices.IndexFunc(rs, func(r hbRound) bool { return r.writeErr != nil })].writeErr
	if !errors.Is(werr, diskhb.ErrIO) || errors.Is(werr, diskhb.ErrTimeout) {
		t.Errorf("error table: node3's write failed with %v; want ErrIO, not a timeout", werr)
	}
	t.Logf("error table: node3's write failed %v after the fault: %v", time.Since(t0), werr)
	peersJudge("error table", m, diskhb.Dead)
	t.Logf("error table: node1 and node2 judged node3 dead %v after the fault", time.Since(t0))

	// 2. Path restored.
	m = marks()
	if err := n3.path.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	n3.await(t, "restored: a successful write", m[2], func(rs []hbRound) bool {
		return slices.ContainsFunc(rs, func(r hbRound) bool { return r.writeErr == nil })
	})
	peersJudge("restored", m, diskhb.Live)

	// 3. node3's path hangs: I/O is queued in the kernel and never returns.
	m = marks()
	t0 = time.Now()
	if err := n3.path.Hang(ctx); err != nil {
		t.Fatal(err)
	}
	rs = n3.await(t, "hung path: a timed-out write and two more rounds", m[2], func(rs []hbRound) bool {
		i := slices.IndexFunc(rs, func(r hbRound) bool { return r.writeErr != nil })
		return i >= 0 && len(rs) >= i+3
	})
	first := slices.IndexFunc(rs, func(r hbRound) bool { return r.writeErr != nil })
	if werr := rs[first].writeErr; !errors.Is(werr, diskhb.ErrTimeout) {
		t.Errorf("hung path: node3's first failed write: %v; want ErrTimeout", werr)
	} else {
		t.Logf("hung path: node3's write timed out %v after the suspend: %v", time.Since(t0), werr)
	}
	for _, r := range rs[first+1:] {
		if !errors.Is(r.writeErr, diskhb.ErrTimeout) && !errors.Is(r.writeErr, diskhb.ErrBusy) {
			t.Errorf("hung path: a later round of node3 wrote with %v; want ErrBusy or ErrTimeout while the path hangs", r.writeErr)
		}
	}
	peersJudge("hung path", m, diskhb.Dead)
	t.Logf("hung path: node1 and node2 judged node3 dead %v after the suspend", time.Since(t0))

	// 4. Path resumed: the stuck I/O returns and node3 recovers.
	m = marks()
	if err := n3.path.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	n3.await(t, "resumed: a successful write", m[2], func(rs []hbRound) bool {
		return slices.ContainsFunc(rs, func(r hbRound) bool { return r.writeErr == nil })
	})
	peersJudge("resumed", m, diskhb.Live)

	// node1 and node2 kept their paths: neither ever judged the other dead.
	for i, pair := range [][2]*hbNode{{n1, n2}, {n2, n1}} {
		for _, r := range pair[0].since(healthyFrom[i]) {
			if r.peers[pair[1].id] == diskhb.Dead {
				t.Errorf("%s judged %s dead while only node3's path was broken", pair[0].name, pair[1].name)
				break
			}
		}
	}
}
