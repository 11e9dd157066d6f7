package diskhb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
	"github.com/mtcluster/mtc/quorum"
)

// fakeClock is a monotonic clock the test advances by hand.
type fakeClock struct{ now time.Duration }

func (c *fakeClock) Now() time.Duration { return c.now }

// rnode is one node's rounds on its own path of a shared fake disk, with
// the heartbeat it publishes.
type rnode struct {
	path   *fakedev.Path
	dev    *diskhb.Device
	rounds *diskhb.Rounds
	hb     quorum.Heartbeat
	op     uint64
}

const (
	testHB  = 200 * time.Millisecond
	testGen = 0x5eed
)

func newRounds(t *testing.T, fd *fakedev.Disk, name string, id int, inc uint64, gen uint64, clk *fakeClock) *rnode {
	t.Helper()
	p := fd.Path(name)
	dev := diskhb.NewDevice(p, 100*time.Millisecond, nil)
	t.Cleanup(func() { dev.Close() })
	d, err := diskhb.Open(ctx(), dev, expect())
	if err != nil {
		t.Fatal(err)
	}
	r := diskhb.NewRounds(d, diskhb.RoundsConfig{NodeID: id, NodeName: name, Incarnation: inc, Generation: gen,
		Peers: []int{1, 2, 3}, HeartbeatInterval: testHB, FailureTimeout: time.Second, Clock: clk.Now})
	return &rnode{path: p, dev: dev, rounds: r, hb: quorum.Heartbeat{From: quorum.NodeID(id), Inc: quorum.Incarnation(inc)}}
}

func rcluster(t *testing.T) (*fakedev.Disk, *fakeClock, []*rnode) {
	t.Helper()
	fd, open := newFake(t, 512)
	if err := diskhb.Format(ctx(), open("admin"), header(512), false); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	var nodes []*rnode
	for id, name := range []string{"alpha", "beta", "gamma"} {
		nodes = append(nodes, newRounds(t, fd, name, id+1, uint64(0x100+id), testGen, clk))
	}
	return fd, clk, nodes
}

// round performs one round of n as the machine asks for it: the slot
// write, then the read.
func (n *rnode) round() (w, r diskhb.RoundResult) {
	n.hb.Seq++
	n.op++
	w = n.rounds.Do(ctx(), quorum.DiskRequest{Op: n.op, Kind: quorum.DiskWriteSlot, Heartbeat: n.hb})
	n.op++
	r = n.rounds.Do(ctx(), quorum.DiskRequest{Op: n.op, Kind: quorum.DiskRead})
	return w, r
}

func obs(r diskhb.RoundResult, id int) quorum.SlotObservation {
	for _, o := range r.Done.Slots {
		if int(o.Node) == id {
			return o
		}
	}
	return quorum.SlotObservation{Node: 255}
}

// What one node writes, the others read as its heartbeat; only configured
// peers are reported and never ourselves.
func TestRoundsCarryTheHeartbeat(t *testing.T) {
	_, clk, nodes := rcluster(t)
	nodes[1].hb.Members = quorum.SetOf(1, 2)
	nodes[1].hb.Echo[1] = quorum.Echo{Inc: 0x100, Seq: 4}
	for range 2 {
		clk.now += testHB
		for _, n := range nodes {
			if w, _ := n.round(); w.Err != nil || w.Done.Result != quorum.IOOK {
				t.Fatalf("write: %+v", w)
			}
		}
	}
	_, r := nodes[0].round()
	if r.Err != nil || r.Done.Result != quorum.IOOK || !r.Done.Lock.Valid || len(r.Done.Slots) != 2 {
		t.Fatalf("read: %+v", r)
	}
	o := obs(r, 2)
	if !o.Valid || o.Heartbeat != nodes[1].hb {
		t.Fatalf("node 2 as read by node 1:\n got %+v\nwant %+v", o.Heartbeat, nodes[1].hb)
	}
	if obs(r, 1).Node != 255 {
		t.Fatal("a node's own slot is reported to its machine")
	}
}

// A peer's slot of another configuration generation counts as unknown,
// and is counted and named in the stats.
func TestRoundsGenerationChecked(t *testing.T) {
	fd, clk, nodes := rcluster(t)
	nodes[2] = newRounds(t, fd, "gamma2", 3, 0x999, testGen+1, clk)
	clk.now += testHB
	for _, n := range nodes {
		n.round()
	}
	_, r := nodes[0].round()
	if o := obs(r, 3); o.Valid {
		t.Fatalf("a slot of another generation counted: %+v", o)
	}
	if o := obs(r, 2); !o.Valid {
		t.Fatalf("a slot of our generation not counted: %+v", o)
	}
	st := nodes[0].rounds.Stats()
	if st.OtherGeneration == 0 || st.OtherGenerationPeers[3] != testGen+1 {
		t.Fatalf("stats: %+v", st)
	}
}

// A second daemon writing our slot is a conflict: seen by the read-back
// before our next write, logged, counted, and our writes count as failed
// for the failure timeout after the last one seen, although they land.
func TestRoundsForeignWriterIsAConflict(t *testing.T) {
	fd, clk, nodes := rcluster(t)
	a := nodes[0]
	clk.now += testHB
	if w, _ := a.round(); w.Err != nil {
		t.Fatal(w.Err)
	}
	impostor := newRounds(t, fd, "alpha-copy", 1, 0xbad, testGen, clk)
	clk.now += testHB / 2
	impostor.round()
	clk.now += testHB / 2
	w, _ := a.round()
	if !errors.Is(w.OwnSlot, diskhb.ErrSlotConflict) || !errors.Is(w.Err, diskhb.ErrSlotConflict) || w.Done.Result == quorum.IOOK {
		t.Fatalf("write after a foreign one: %+v", w)
	}
	if !strings.Contains(w.OwnSlot.Error(), "node id 1") || !strings.Contains(w.OwnSlot.Error(), "alpha-copy") {
		t.Fatalf("conflict does not name the node id and the other writer: %v", w.OwnSlot)
	}
	st := a.rounds.Stats()
	if st.Conflicts != 1 || !st.Conflict || st.WriteFailures != 1 || st.OwnSlotProblem == "" {
		t.Fatalf("stats after the conflict: %+v", st)
	}
	// The impostor stops; our writes still fail until the failure timeout
	// has passed since the conflict was last seen, then count again.
	for clk.now < 1100*time.Millisecond+3*testHB {
		clk.now += testHB
		w, _ = a.round()
	}
	if w.Err != nil || w.Done.Result != quorum.IOOK {
		t.Fatalf("write long after the impostor stopped: %+v", w)
	}
	if st := a.rounds.Stats(); st.Conflict || st.OwnSlotProblem != "" {
		t.Fatalf("conflict not cleared: %+v", st)
	}
}

// A write the device acknowledged but lost is found by the read-back, and
// the next write counts as failed.
func TestRoundsLostWrite(t *testing.T) {
	_, clk, nodes := rcluster(t)
	b := nodes[1]
	clk.now += testHB
	b.round()
	b.path.SetDropWrites(true)
	clk.now += testHB
	w, r := b.round()
	if w.Err != nil {
		t.Fatalf("the device reported the dropped write: %v", w.Err)
	}
	if !errors.Is(r.OwnSlot, diskhb.ErrWriteVerify) {
		t.Fatalf("read after a lost write: %+v", r.OwnSlot)
	}
	b.path.SetDropWrites(false)
	clk.now += testHB
	if w, _ = b.round(); !errors.Is(w.Err, diskhb.ErrWriteVerify) {
		t.Fatalf("the write after a lost one counted: %v", w.Err)
	}
	clk.now += testHB
	if w, _ = b.round(); w.Err != nil {
		t.Fatalf("after recovery: %v", w.Err)
	}
}

// Each I/O of a request has its own deadline: a slot read that takes most
// of io_timeout does not leave the lock read short of time, and a lock
// read that fails leaves the lock unknown without discarding the slots.
func TestRoundsPerIODeadline(t *testing.T) {
	_, clk, nodes := rcluster(t)
	a := nodes[0]
	clk.now += testHB
	a.round()
	reads := 0
	a.path.SetHook(func(op fakedev.Op) fakedev.Fault {
		if op.Kind == fakedev.Read {
			reads++
			return fakedev.Fault{Latency: 70 * time.Millisecond} // of a 100ms deadline
		}
		return fakedev.Fault{}
	})
	res := a.rounds.Do(context.Background(), quorum.DiskRequest{Op: 100, Kind: quorum.DiskRead})
	if res.Err != nil || res.LockErr != nil || !res.Done.Lock.Valid {
		t.Fatalf("two reads of 70ms each under a 100ms I/O timeout: %+v", res)
	}
	a.path.SetHook(func(op fakedev.Op) fakedev.Fault {
		if op.Kind == fakedev.Read && op.Off == diskhb.LockLBA*512 {
			return fakedev.Fault{EIO: true}
		}
		return fakedev.Fault{}
	})
	res = a.rounds.Do(context.Background(), quorum.DiskRequest{Op: 101, Kind: quorum.DiskRead})
	if res.Done.Result != quorum.IOOK || res.Done.Lock.Valid || !errors.Is(res.LockErr, diskhb.ErrIO) || len(res.Done.Slots) != 2 {
		t.Fatalf("failed lock read: %+v", res)
	}
	if st := a.rounds.Stats(); st.LockReadFailures != 1 || st.LastLockErr == "" {
		t.Fatalf("stats: %+v", st)
	}
}

// A newcomer watching a slot that another daemon writes refuses with an
// error naming the node id; an idle slot passes.
func TestWatchSlot(t *testing.T) {
	fd, clk, nodes := rcluster(t)
	clk.now += testHB
	nodes[1].round()
	d, err := diskhb.Open(ctx(), diskhb.NewDevice(fd.Path("newcomer"), 100*time.Millisecond, nil), expect())
	if err != nil {
		t.Fatal(err)
	}
	w := diskhb.SlotWatch{For: 60 * time.Millisecond, Every: 10 * time.Millisecond}
	if err := d.WatchSlot(ctx(), 2, w); err != nil {
		t.Fatalf("idle slot: %v", err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				nodes[1].round()
			}
		}
	}()
	err = d.WatchSlot(ctx(), 2, w)
	close(stop)
	<-done
	if !errors.Is(err, diskhb.ErrNodeIDInUse) || !strings.Contains(err.Error(), "node id 2") || !strings.Contains(err.Error(), `"beta"`) {
		t.Fatalf("slot written meanwhile: %v", err)
	}
	if got := d.DefaultSlotWatch(); got.For != time.Second+testHB || got.Every != testHB/2 {
		t.Fatalf("watch from the header's timing: %+v", got)
	}
}

// EBADE on a write (diskhb.ErrFenced) reaches the machine as IOFenced, distinct
// from a plain failure and a timeout.
func TestIOResultFenced(t *testing.T) {
	for err, want := range map[error]quorum.IOResult{
		nil: quorum.IOOK,
		fmt.Errorf("write slot: %w", diskhb.ErrFenced):  quorum.IOFenced,
		fmt.Errorf("write slot: %w", diskhb.ErrIO):      quorum.IOFailed,
		fmt.Errorf("write slot: %w", diskhb.ErrTimeout): quorum.IOTimeout,
	} {
		if got := diskhb.IOResult(err); got != want {
			t.Errorf("IOResult(%v) = %v, want %v", err, got, want)
		}
	}
}
