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
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/quorum/liveness"
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
// LUN — the daemon's own disk rounds, asked for by its membership machine
// with no network (diskhb.Member) — with a record of every round it made.
type hbNode struct {
	id   int
	name string
	path *labkit.DMPath
	dev  *diskhb.Device
	hb   *diskhb.Member
	done chan struct{}

	mu     sync.Mutex
	rounds []hbRound
}

// hbRound is what one round showed: our write's outcome and our judgement
// of each peer right after it.
type hbRound struct {
	writeErr, readErr, lockErr error
	peers                      map[int]liveness.Liveness
}

// firstErr is the first error of the round, in I/O order (the slot write,
// the slot-area read, then the lock read: a hang may first catch any of
// them, and the next round's write then waits for it and fails busy).
func (r hbRound) firstErr() error {
	for _, err := range []error{r.writeErr, r.readErr, r.lockErr} {
		if err != nil {
			return err
		}
	}
	return nil
}

func (n *hbNode) record(r diskhb.MemberRound, peers []int) {
	rec := hbRound{writeErr: r.Write.Err, readErr: r.Read.Err, lockErr: r.Read.LockErr, peers: make(map[int]liveness.Liveness, len(peers))}
	for _, p := range peers {
		rec.peers[p] = diskState(r.Status, p)
	}
	n.mu.Lock()
	n.rounds = append(n.rounds, rec)
	n.mu.Unlock()
}

// diskState is peer's liveness on the disk path as the machine judged it.
func diskState(st quorum.Status, peer int) liveness.Liveness {
	for _, p := range st.Peers {
		if int(p.Node) == peer {
			return p.Disk
		}
	}
	return liveness.Unknown
}

// PeerState is peer's liveness on the disk path as n's machine judges it now.
func (n *hbNode) PeerState(peer int) liveness.Liveness { return diskState(n.hb.Status(), peer) }

// snapshot is n's disk counters and machine status, for failure messages.
func (n *hbNode) snapshot() string {
	return fmt.Sprintf("disk %+v; machine %+v", n.hb.Rounds.Stats(), n.hb.Status())
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
		t.Fatalf("%s: %s did not happen within %v over %d rounds; status %s", n.name, what, phaseTimeout, len(rs), n.snapshot())
	}
	return rs
}

// lastState is peer's liveness as judged in the last of rs.
func lastState(rs []hbRound, peer int) liveness.Liveness {
	if len(rs) == 0 {
		return liveness.Unknown
	}
	return rs[len(rs)-1].peers[peer]
}

// watcher polls every observer's live judgement of every peer every 10ms
// (not only the one after each round, which a slow round could carry past
// a whole Suspect window) and keeps, per pair, the sequence of distinct
// judgements.
type watcher struct {
	nodes []*hbNode
	stop  chan struct{}
	done  chan struct{}

	mu   sync.Mutex
	hist map[[2]int][]liveness.Liveness // [observer id, peer id]
}

func startWatcher(nodes []*hbNode) *watcher {
	w := &watcher{nodes: nodes, stop: make(chan struct{}), done: make(chan struct{}), hist: make(map[[2]int][]liveness.Liveness)}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			w.poll()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *watcher) poll() {
	for _, o := range w.nodes {
		for _, p := range w.nodes {
			if o == p {
				continue
			}
			s := o.PeerState(p.id)
			k := [2]int{o.id, p.id}
			w.mu.Lock()
			if h := w.hist[k]; len(h) == 0 || h[len(h)-1] != s {
				w.hist[k] = append(h, s)
			}
			w.mu.Unlock()
		}
	}
}

func (w *watcher) close() {
	close(w.stop)
	<-w.done
}

// mark returns, per observer, the length of its history of peer.
func (w *watcher) mark(observers []*hbNode, peer *hbNode) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make([]int, len(observers))
	for i, o := range observers {
		m[i] = len(w.hist[[2]int{o.id, peer.id}])
	}
	return m
}

// since returns the judgements of peer by o from index from on.
func (w *watcher) since(o, peer *hbNode, from int) []liveness.Liveness {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hist[[2]int{o.id, peer.id}]
	if from > len(h) {
		from = len(h)
	}
	return slices.Clone(h[from:])
}

// await waits until every observer's judgement of peer, since marks, ends
// in want; when want is Dead, each must have judged peer Suspect first.
func (w *watcher) await(t *testing.T, phase string, observers []*hbNode, marks []int, peer *hbNode, want liveness.Liveness) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), phaseTimeout)
	defer cancel()
	for i, o := range observers {
		var h []liveness.Liveness
		if !waitFor(ctx, func() bool { h = w.since(o, peer, marks[i]); return len(h) > 0 && h[len(h)-1] == want }) {
			t.Fatalf("%s: %s did not judge %s %v within %v (judgements since the fault: %v); its status %+v",
				phase, o.name, peer.name, want, phaseTimeout, h, o.snapshot())
		}
		if want == liveness.Dead {
			if d := slices.Index(h, liveness.Dead); !slices.Contains(h[:d], liveness.Suspect) {
				t.Errorf("%s: %s judged %s dead without judging it suspect first (judgements: %v)", phase, o.name, peer.name, h)
			}
		}
	}
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
		all := append([]int{n.id}, peers...)
		if n.hb, err = diskhb.NewMember(disk, n.id, n.name, all, derived, log); err != nil {
			t.Fatal(err)
		}
		n.hb.OnRound = func(r diskhb.MemberRound) { n.record(r, peers) }
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
				if n != self && lastState(rs, n.id) != liveness.Live {
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

	w := startWatcher(nodes)
	t.Cleanup(w.close) // runs before the heartbeats stop
	observers := []*hbNode{n1, n2}
	healthy := []int{len(w.since(n1, n2, 0)), len(w.since(n2, n1, 0))}

	// 1. node3 loses its path: every I/O fails at once.
	m, from := w.mark(observers, n3), n3.count()
	t0 := time.Now()
	if err := n3.path.Fail(ctx); err != nil {
		t.Fatal(err)
	}
	rs := n3.await(t, "error table: a write failed with ErrIO", from, func(rs []hbRound) bool {
		return slices.ContainsFunc(rs, func(r hbRound) bool { return errors.Is(r.writeErr, diskhb.ErrIO) })
	})
	werr := rs[slices.IndexFunc(rs, func(r hbRound) bool { return errors.Is(r.writeErr, diskhb.ErrIO) })].writeErr
	t.Logf("error table: node3's write failed %v after the fault: %v", time.Since(t0), werr)
	w.await(t, "error table", observers, m, n3, liveness.Dead)
	t.Logf("error table: node1 and node2 judged node3 dead %v after the fault", time.Since(t0))

	// 2. Path restored.
	m, from = w.mark(observers, n3), n3.count()
	if err := n3.path.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	n3.await(t, "restored: a successful write", from, func(rs []hbRound) bool {
		return slices.ContainsFunc(rs, func(r hbRound) bool { return r.writeErr == nil })
	})
	w.await(t, "restored", observers, m, n3, liveness.Live)

	// 3. node3's path hangs: I/O is queued in the kernel and never returns.
	m, from = w.mark(observers, n3), n3.count()
	t0 = time.Now()
	if err := n3.path.Hang(ctx); err != nil {
		t.Fatal(err)
	}
	// The first I/O caught by the suspend, a write or a read, misses its
	// deadline; every later one waits for it until its own deadline and
	// fails (ErrBusy), or misses its own deadline, and the rounds go on.
	failed := func(r hbRound) bool { return r.firstErr() != nil }
	rs = n3.await(t, "hung path: a timed-out I/O and two more rounds", from, func(rs []hbRound) bool {
		i := slices.IndexFunc(rs, failed)
		return i >= 0 && len(rs) >= i+3
	})
	first := slices.IndexFunc(rs, failed)
	if err := rs[first].firstErr(); !errors.Is(err, diskhb.ErrTimeout) {
		t.Errorf("hung path: node3's first failed I/O: %v; want ErrTimeout", err)
	} else {
		t.Logf("hung path: node3's I/O timed out %v after the suspend: %v", time.Since(t0), err)
	}
	for _, r := range rs[first+1:] {
		if !errors.Is(r.writeErr, diskhb.ErrTimeout) && !errors.Is(r.writeErr, diskhb.ErrBusy) {
			t.Errorf("hung path: a later write of node3 ended with %v; want ErrBusy or ErrTimeout while the path hangs", r.writeErr)
		}
	}
	w.await(t, "hung path", observers, m, n3, liveness.Dead)
	t.Logf("hung path: node1 and node2 judged node3 dead %v after the suspend", time.Since(t0))

	// 4. Path resumed: the stuck I/O returns and node3 recovers.
	m, from = w.mark(observers, n3), n3.count()
	if err := n3.path.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	n3.await(t, "resumed: a successful write", from, func(rs []hbRound) bool {
		return slices.ContainsFunc(rs, func(r hbRound) bool { return r.writeErr == nil })
	})
	w.await(t, "resumed", observers, m, n3, liveness.Live)

	// node1 and node2 kept their paths: neither ever judged the other dead.
	for i, pair := range [][2]*hbNode{{n1, n2}, {n2, n1}} {
		if h := w.since(pair[0], pair[1], healthy[i]); slices.Contains(h, liveness.Dead) {
			t.Errorf("%s judged %s dead while only node3's path was broken (judgements: %v)", pair[0].name, pair[1].name, h)
		}
	}
}
