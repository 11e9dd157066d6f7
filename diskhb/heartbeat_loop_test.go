package diskhb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/quorum/liveness"
	"github.com/mtcluster/mtc/test/testutil"
)

// Three nodes heartbeat at once on one loop device, each through its own
// O_DIRECT file descriptor as separate hosts would on a LUN: every write is
// read back intact by its writer, every node sees the two others live, and
// when one stops, the others see it go dead.
func TestLoopHeartbeatThreeWriters(t *testing.T) {
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
				d := diskhb.NewDevice(bd, 2*time.Second, nil)
				t.Cleanup(func() { d.Close() })
				return d
			}
			h := header(ss)
			if err := diskhb.Format(context.Background(), open(), h, false); err != nil {
				t.Fatal(err)
			}
			const interval = 20 * time.Millisecond
			type nodeRun struct {
				hb     *diskhb.Heartbeater
				cancel context.CancelFunc
				done   chan struct{}
				mu     sync.Mutex
				fails  []error
				rounds int
			}
			var nodes []*nodeRun
			for id := 1; id <= 3; id++ {
				d, err := diskhb.Open(context.Background(), open(), expect())
				if err != nil {
					t.Fatal(err)
				}
				n := &nodeRun{done: make(chan struct{})}
				n.hb = diskhb.NewHeartbeater(d, diskhb.HeartbeatConfig{NodeID: id, Interval: interval,
					SuspectAfter: 10 * interval, DeadAfter: 20 * interval}, nil, nil, func(r diskhb.Round) {
					n.mu.Lock()
					defer n.mu.Unlock()
					n.rounds++
					if r.WriteErr != nil {
						n.fails = append(n.fails, r.WriteErr)
					}
					if r.ReadErr != nil {
						n.fails = append(n.fails, r.ReadErr)
					}
				})
				ctx, cancel := context.WithCancel(context.Background())
				n.cancel = cancel
				go func() { defer close(n.done); n.hb.Run(ctx) }()
				nodes = append(nodes, n)
			}
			defer func() {
				for _, n := range nodes {
					n.cancel()
					<-n.done
				}
			}()
			waitFor(t, 10*time.Second, "every node sees both others live", func() bool {
				for i, n := range nodes {
					for j := 1; j <= 3; j++ {
						if j != i+1 && n.hb.PeerState(j) != liveness.Live {
							return false
						}
					}
				}
				return true
			})
			// Stop node 2: the others see it suspect, then dead.
			nodes[1].cancel()
			<-nodes[1].done
			waitFor(t, 10*time.Second, "node 2 dead for nodes 1 and 3", func() bool {
				return nodes[0].hb.PeerState(2) == liveness.Dead && nodes[2].hb.PeerState(2) == liveness.Dead
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
