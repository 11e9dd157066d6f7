package diskhb_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/quorum/liveness"
	"github.com/mtcluster/mtc/test/testutil"
)

// loopTiming is the timing of the loop-device tests: the aggressive
// profile's heartbeat, with room for a busy host.
var loopTiming = config.Timing{HeartbeatInterval: 50 * time.Millisecond, IOTimeout: 200 * time.Millisecond,
	FailureTimeout: 600 * time.Millisecond, WatchdogTimeout: time.Second}

// Three nodes run the daemon's disk rounds at once on one loop device
// (their membership machines driven by diskhb.Member), each through its
// own O_DIRECT descriptor as separate hosts would on a LUN: no write
// fails, none is found overwritten, every machine sees the two others
// live on the disk, and when one stops, the others see it go dead. A
// fourth daemon started with node 2's id meanwhile refuses to join.
func TestLoopRoundsThreeWriters(t *testing.T) {
	testutil.RequireRoot(t, "creates loop devices")
	for _, ss := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[ss], func(t *testing.T) {
			loop := testutil.NewLoopDevice(t, ss, 4<<20)
			open := func() *diskhb.Device {
				bd, err := diskhb.OpenBlock(loop.Path)
				if err != nil {
					t.Fatal(err)
				}
				if bd.SectorSize() != ss {
					t.Fatalf("BLKSSZGET says %d, loop device made with %d", bd.SectorSize(), ss)
				}
				d := diskhb.NewDevice(bd, loopTiming.IOTimeout, nil)
				t.Cleanup(func() { d.Close() })
				return d
			}
			h := header(ss)
			h.HeartbeatInterval, h.IOTimeout, h.FailureTimeout, h.WatchdogTimeout = loopTiming.HeartbeatInterval, loopTiming.IOTimeout, loopTiming.FailureTimeout, loopTiming.WatchdogTimeout
			if err := diskhb.Format(context.Background(), open(), h, false); err != nil {
				t.Fatal(err)
			}
			want := diskhb.Expect{ClusterUUID: cluster, MaxNodeID: 3}
			type nodeRun struct {
				m      *diskhb.Member
				cancel context.CancelFunc
				done   chan struct{}
				mu     sync.Mutex
				fails  []error
				rounds int
			}
			var nodes []*nodeRun
			for id := 1; id <= 3; id++ {
				d, err := diskhb.Open(context.Background(), open(), want)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.WatchSlot(context.Background(), id, d.DefaultSlotWatch()); err != nil {
					t.Fatalf("node %d: %v", id, err)
				}
				m, err := diskhb.NewMember(d, id, "", []int{1, 2, 3}, loopTiming.Derive(), nil)
				if err != nil {
					t.Fatal(err)
				}
				n := &nodeRun{m: m, done: make(chan struct{})}
				m.OnRound = func(r diskhb.MemberRound) {
					n.mu.Lock()
					defer n.mu.Unlock()
					n.rounds++
					for _, err := range []error{r.Write.Err, r.Read.Err, r.Read.LockErr, r.Read.OwnSlot, r.Write.OwnSlot} {
						// An I/O cut short by the test's own stop of the
						// node is not a failure of the disk path.
						if err != nil && !errors.Is(err, context.Canceled) {
							n.fails = append(n.fails, err)
						}
					}
				}
				ctx, cancel := context.WithCancel(context.Background())
				n.cancel = cancel
				go func() { defer close(n.done); m.Run(ctx) }()
				nodes = append(nodes, n)
			}
			defer func() {
				for _, n := range nodes {
					n.cancel()
					<-n.done
				}
			}()
			disk := func(n *nodeRun, peer int) liveness.Liveness {
				for _, p := range n.m.Status().Peers {
					if p.Node == quorum.NodeID(peer) {
						return p.Disk
					}
				}
				return liveness.Unknown
			}
			waitFor(t, 10*time.Second, "every node sees both others live", func() bool {
				for i, n := range nodes {
					for j := 1; j <= 3; j++ {
						if j != i+1 && disk(n, j) != liveness.Live {
							return false
						}
					}
				}
				return true
			})
			// A copy of node 2 refuses to join while node 2 runs.
			d, err := diskhb.Open(context.Background(), open(), want)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.WatchSlot(context.Background(), 2, d.DefaultSlotWatch()); !errors.Is(err, diskhb.ErrNodeIDInUse) {
				t.Fatalf("a second daemon with node id 2 was not refused: %v", err)
			} else {
				t.Logf("refused: %v", err)
			}
			// Stop node 2: the others see it dead.
			nodes[1].cancel()
			<-nodes[1].done
			waitFor(t, 10*time.Second, "node 2 dead for nodes 1 and 3", func() bool {
				return disk(nodes[0], 2) == liveness.Dead && disk(nodes[2], 2) == liveness.Dead
			})
			for i, n := range nodes {
				n.mu.Lock()
				if len(n.fails) > 0 || n.rounds == 0 {
					t.Errorf("node %d: %d rounds, failures %v", i+1, n.rounds, n.fails)
				}
				n.mu.Unlock()
			}
		})
	}
}

// waitFor polls cond; the bound only keeps a broken build from hanging,
// it is not a timing assertion.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
