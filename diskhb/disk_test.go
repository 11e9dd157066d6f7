package diskhb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
	"github.com/mtcluster/mtc/quorum/liveness"
)

var (
	cluster = uuid.MustParse("3f1b6c7e-2a44-4d1e-9a53-0c2f6f0a9b01")
	other   = uuid.MustParse("9d2e1f00-5b6a-4c3d-8e7f-112233445566")
)

func header(ss int) diskhb.Header {
	return diskhb.Header{
		ClusterUUID: cluster, ClusterName: "payments", SectorSize: ss, Slots: 4,
		HeartbeatInterval: 200 * time.Millisecond, IOTimeout: 400 * time.Millisecond,
		FailureTimeout: time.Second, WatchdogTimeout: 3 * time.Second,
		FormattedAt: time.Now(),
	}
}

func expect() diskhb.Expect {
	return diskhb.Expect{ClusterUUID: cluster, MaxNodeID: 3, HeartbeatInterval: 200 * time.Millisecond,
		IOTimeout: 400 * time.Millisecond, FailureTimeout: time.Second, WatchdogTimeout: 3 * time.Second}
}

func newFake(t *testing.T, ss int) (*fakedev.Disk, func(name string) *diskhb.Device) {
	t.Helper()
	fd := fakedev.NewDisk(ss, 1024)
	open := func(name string) *diskhb.Device {
		d := diskhb.NewDevice(fd.Path(name), 100*time.Millisecond, nil)
		t.Cleanup(func() { d.Close() })
		return d
	}
	return fd, open
}

func ctx() context.Context { return context.Background() }

func TestFormatOpenRefuse(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		_, open := newFake(t, ss)
		dev := open("admin")
		if _, err := diskhb.Open(ctx(), dev, expect()); !errors.Is(err, diskhb.ErrNotFormatted) {
			t.Fatalf("blank disk: %v", err)
		}
		if err := diskhb.Format(ctx(), dev, header(ss), false); err != nil {
			t.Fatalf("format blank: %v", err)
		}
		d, err := diskhb.Open(ctx(), dev, expect())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if h := d.Header(); h.Slots != 4 || h.SectorSize != ss || h.ClusterName != "payments" {
			t.Fatalf("header %+v", h)
		}
		// A node writes its slot; formatting again must refuse and say
		// what it would erase.
		if err := d.WriteSlot(ctx(), diskhb.Slot{NodeID: 2, Incarnation: 5, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		other := header(ss)
		other.ClusterUUID = uuid.New()
		err = diskhb.Format(ctx(), dev, other, false)
		if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), `"payments"`) || !strings.Contains(err.Error(), "[2]") {
			t.Fatalf("reformat without force: %v", err)
		}
		if err := diskhb.Format(ctx(), dev, other, true); err != nil {
			t.Fatalf("forced: %v", err)
		}
		if _, err := diskhb.Open(ctx(), dev, expect()); !errors.Is(err, diskhb.ErrForeignCluster) {
			t.Fatalf("open after foreign format: %v", err)
		}
	}
}

func TestFormatRefusesDamagedHeader(t *testing.T) {
	fd, open := newFake(t, 512)
	dev := open("admin")
	if err := diskhb.Format(ctx(), dev, header(512), false); err != nil {
		t.Fatal(err)
	}
	fd.FlipBit(40, 3)
	if _, err := diskhb.Open(ctx(), dev, expect()); !errors.Is(err, diskhb.ErrChecksum) {
		t.Fatalf("damaged header opened: %v", err)
	}
	if err := diskhb.Format(ctx(), dev, header(512), false); !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("format over damaged header: %v", err)
	}
}

func TestOpenChecksConfiguration(t *testing.T) {
	_, open := newFake(t, 512)
	dev := open("admin")
	if err := diskhb.Format(ctx(), dev, header(512), false); err != nil {
		t.Fatal(err)
	}
	e := expect()
	e.FailureTimeout = 2 * time.Second
	_, err := diskhb.Open(ctx(), dev, e)
	if !errors.Is(err, diskhb.ErrTimingMismatch) || !strings.Contains(err.Error(), "failure_timeout is 1s on disk, 2s in the configuration") {
		t.Fatalf("timing mismatch: %v", err)
	}
	e = expect()
	e.MaxNodeID = 5
	if _, err := diskhb.Open(ctx(), dev, e); !errors.Is(err, diskhb.ErrGeometry) {
		t.Fatalf("too few slots: %v", err)
	}
	e = expect()
	e.ClusterUUID = other
	if _, err := diskhb.Open(ctx(), dev, e); !errors.Is(err, diskhb.ErrForeignCluster) {
		t.Fatalf("foreign: %v", err)
	}
}

func TestFormatDeviceTooSmall(t *testing.T) {
	fd := fakedev.NewDisk(4096, 100)
	dev := diskhb.NewDevice(fd.Path("a"), 100*time.Millisecond, nil)
	defer dev.Close()
	h := header(4096)
	h.Slots = 16
	if err := diskhb.Format(ctx(), dev, h, false); !errors.Is(err, diskhb.ErrGeometry) {
		t.Fatalf("got %v", err)
	}
}

func TestLocksAndMessages(t *testing.T) {
	fd, open := newFake(t, 4096)
	dev := open("n1")
	if err := diskhb.Format(ctx(), dev, header(4096), false); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(ctx(), dev, expect())
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.ReadLock(ctx(), diskhb.TieBreakLock)
	if err != nil || !l.Free() {
		t.Fatalf("fresh lock: %+v %v", l, err)
	}
	if err := d.WriteLock(ctx(), diskhb.Lock{Index: 0, Owner: 1, OwnerIncarnation: 7, Generation: 1}); err != nil {
		t.Fatal(err)
	}
	// A torn lock write reads as an error, not as free and not as owned.
	fd.Path("n1").TearNextWrite(64)
	if err := d.WriteLock(ctx(), diskhb.Lock{Index: 0, Owner: 2, OwnerIncarnation: 9, Generation: 2}); err != nil {
		t.Fatal(err)
	}
	if l, err := d.ReadLock(ctx(), 0); !errors.Is(err, diskhb.ErrChecksum) || l.Owner != 0 {
		t.Fatalf("torn lock: %+v %v", l, err)
	}
	if err := d.WriteMessage(ctx(), diskhb.Message{To: 3, From: 1, Seq: 1, Command: diskhb.MsgReset, TargetIncarnation: 42}); err != nil {
		t.Fatal(err)
	}
	msgs, errs, err := d.ReadMessages(ctx(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if errs[i] != nil {
			t.Fatalf("message from %d: %v", i+1, errs[i])
		}
		if want := i == 0; (m.Command == diskhb.MsgReset) != want {
			t.Fatalf("message from %d: %+v", i+1, m)
		}
	}
}

// fakeClock is a monotonic clock the test advances by hand.
type fakeClock struct{ now time.Duration }

func (c *fakeClock) Now() time.Duration { return c.now }

type node struct {
	dev *diskhb.Device
	hb  *diskhb.Heartbeater
}

func cluster3(t *testing.T, ss int) (*fakedev.Disk, *fakeClock, []*node) {
	t.Helper()
	fd, open := newFake(t, ss)
	if err := diskhb.Format(ctx(), open("admin"), header(ss), false); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	var nodes []*node
	for id := 1; id <= 3; id++ {
		dev := open([]string{"", "alpha", "beta", "gamma"}[id])
		d, err := diskhb.Open(ctx(), dev, expect())
		if err != nil {
			t.Fatal(err)
		}
		hb := diskhb.NewHeartbeater(d, diskhb.HeartbeatConfig{NodeID: id, Interval: 200 * time.Millisecond,
			SuspectAfter: 500 * time.Millisecond, DeadAfter: time.Second}, nil, clk.Now, nil)
		nodes = append(nodes, &node{dev: dev, hb: hb})
	}
	return fd, clk, nodes
}

func rounds(clk *fakeClock, nodes []*node, n int, skip ...int) map[int]diskhb.Round {
	last := map[int]diskhb.Round{}
	for range n {
		clk.now += 200 * time.Millisecond
		for i, nd := range nodes {
			if contains(skip, i+1) {
				continue
			}
			r := nd.hb.Round(ctx())
			for id, c := range last[i+1].Changes {
				if r.Changes == nil {
					r.Changes = map[int]liveness.Change{}
				}
				if _, ok := r.Changes[id]; !ok {
					r.Changes[id] = c
				}
			}
			last[i+1] = r
		}
	}
	return last
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func peer(st diskhb.Status, id int) diskhb.PeerStatus {
	for _, p := range st.Peers {
		if p.ID == id {
			return p
		}
	}
	return diskhb.PeerStatus{ID: id, State: "absent"}
}

func TestHeartbeatPathLoss(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		fd, clk, nodes := cluster3(t, ss)
		rounds(clk, nodes, 3)
		for i, nd := range nodes {
			for j := 1; j <= 3; j++ {
				if j == i+1 {
					continue
				}
				if s := nd.hb.PeerState(j); s != liveness.Live {
					t.Fatalf("%d: node %d sees %d as %v", ss, i+1, j, s)
				}
			}
		}
		// Cut node 3 off the disk: its writes fail, the others see its
		// slot stop changing: suspect, then dead.
		// (Node 1 reads before node 3 writes in a round, so node 3's last
		// good write is seen one round after the cut.)
		fd.Path("gamma").SetFailIO(true)
		last := rounds(clk, nodes, 4)
		if !errors.Is(last[3].WriteErr, diskhb.ErrIO) {
			t.Fatalf("node 3 write: %v", last[3].WriteErr)
		}
		if s := nodes[0].hb.PeerState(3); s != liveness.Suspect {
			t.Fatalf("600ms unchanged: %v", s)
		}
		rounds(clk, nodes, 2)
		if s := nodes[1].hb.PeerState(3); s != liveness.Dead {
			t.Fatalf("1s unchanged: %v", s)
		}
		if st := nodes[2].hb.Snapshot(); st.WriteFails != 6 || st.SinceWrite < time.Second {
			t.Fatalf("node 3 status %+v", st)
		}
		// Node 3 lost its path, so it cannot tell about the others: they
		// stay suspect on its disk path, never dead.
		if s := nodes[2].hb.PeerState(1); s != liveness.Suspect {
			t.Fatalf("node 3 view of node 1 without reads: %v", s)
		}
		fd.Path("gamma").SetFailIO(false)
		last = rounds(clk, nodes, 2)
		if last[1].Changes[3] != liveness.Resurrected {
			t.Fatalf("node 1 did not report node 3 coming back: %+v", last[1].Changes)
		}
		if s := nodes[0].hb.PeerState(3); s != liveness.Live {
			t.Fatalf("restored: %v", s)
		}
	}
}

// Torn and corrupted slot writes are read as unknown: they never make a
// peer live, and a peer whose every write is torn goes dead.
func TestHeartbeatTornAndCorrupt(t *testing.T) {
	fd, clk, nodes := cluster3(t, 4096)
	rounds(clk, nodes, 3)
	fd.Path("beta").SetHook(func(op fakedev.Op) fakedev.Fault {
		if op.Kind == fakedev.Write {
			return fakedev.Fault{TornBytes: 100}
		}
		return fakedev.Fault{}
	})
	last := rounds(clk, nodes, 6)
	// The device reports success; reading back its own slot tells the
	// writer its write was torn.
	if !errors.Is(last[2].WriteErr, diskhb.ErrWriteVerify) || !errors.Is(last[2].WriteErr, diskhb.ErrChecksum) {
		t.Fatalf("torn write on the writer's side: %v", last[2].WriteErr)
	}
	if r := last[1].Reads[1]; !errors.Is(r.Err, diskhb.ErrChecksum) {
		t.Fatalf("torn slot read as %+v", r)
	}
	if s := nodes[0].hb.PeerState(2); s != liveness.Dead {
		t.Fatalf("only torn writes for 1.2s: %v", s)
	}
	if p := peer(nodes[0].hb.Snapshot(), 2); !strings.Contains(p.Err, "checksum") {
		t.Fatalf("status does not show the checksum error: %+v", p)
	}
	fd.Path("beta").SetHook(nil)
	fd.Path("beta").FlipNextWrite(8 * 300)
	last = rounds(clk, nodes, 2) // node 1 reads the flipped record in the second round
	if !errors.Is(last[1].Reads[1].Err, diskhb.ErrChecksum) {
		t.Fatalf("bit-flipped slot: %+v", last[1].Reads[1])
	}
	rounds(clk, nodes, 1)
	if s := nodes[0].hb.PeerState(2); s != liveness.Live {
		t.Fatalf("after a clean write: %v", s)
	}
}

// A hung path turns into a timeout the caller sees at the deadline, and
// the heartbeat goes on: the round returns, and the hung node's slot goes
// silent for the others.
func TestHeartbeatHungPath(t *testing.T) {
	fd, clk, nodes := cluster3(t, 512)
	rounds(clk, nodes, 2)
	fd.Path("alpha").Hang()
	defer fd.Path("alpha").Release()
	done := make(chan diskhb.Round, 1)
	go func() { done <- nodes[0].hb.Round(ctx()) }()
	r := <-done // bounded by the device's 100ms deadline
	if !errors.Is(r.WriteErr, diskhb.ErrTimeout) {
		t.Fatalf("hung write: %v", r.WriteErr)
	}
	if !errors.Is(r.ReadErr, diskhb.ErrBusy) {
		t.Fatalf("read after a hung write: %v", r.ReadErr)
	}
	rounds(clk, nodes, 6, 1)
	if s := nodes[1].hb.PeerState(1); s != liveness.Dead {
		t.Fatalf("hung node seen as %v", s)
	}
}

func TestHeartbeatRestartDetected(t *testing.T) {
	fd, clk, nodes := cluster3(t, 512)
	rounds(clk, nodes, 2)
	_ = fd
	d, err := diskhb.Open(ctx(), nodes[2].dev, expect())
	if err != nil {
		t.Fatal(err)
	}
	nodes[2].hb = diskhb.NewHeartbeater(d, diskhb.HeartbeatConfig{NodeID: 3, Interval: 200 * time.Millisecond,
		SuspectAfter: 500 * time.Millisecond, DeadAfter: time.Second}, nil, clk.Now, nil)
	last := rounds(clk, nodes, 2)
	if last[1].Changes[3] != liveness.Restarted {
		t.Fatalf("restart not reported: %+v", last[1].Changes)
	}
}

func TestHeartbeatLostWriteAndDuplicateNode(t *testing.T) {
	fd, clk, nodes := cluster3(t, 512)
	rounds(clk, nodes, 2)
	fd.Path("beta").SetDropWrites(true)
	last := rounds(clk, nodes, 1)
	if !errors.Is(last[2].WriteErr, diskhb.ErrWriteVerify) {
		t.Fatalf("dropped write: %v", last[2].WriteErr)
	}
	fd.Path("beta").SetDropWrites(false)
	if last = rounds(clk, nodes, 1); last[2].WriteErr != nil {
		t.Fatalf("after recovery: %v", last[2].WriteErr)
	}
}
