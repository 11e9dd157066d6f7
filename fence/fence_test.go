package fence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum/ident"
)

// cluster is a fake SAN: LUNs on one target, and each node's paths to
// them (node 1 has two paths to every LUN, as through multipath).
type cluster struct {
	t     *prfake.Target
	luns  []string
	ports map[ident.NodeID]map[string][]*prfake.Port
}

func newCluster(nodes int, luns ...string) *cluster {
	c := &cluster{t: prfake.New(luns...), luns: luns, ports: map[ident.NodeID]map[string][]*prfake.Port{}}
	for n := ident.NodeID(1); n <= ident.NodeID(nodes); n++ {
		c.ports[n] = map[string][]*prfake.Port{}
		paths := 1
		if n == 1 {
			paths = 2
		}
		for _, l := range luns {
			for i := range paths {
				c.ports[n][l] = append(c.ports[n][l], c.t.Port(l, fmt.Sprintf("node%d-port%d", n, i)))
			}
		}
	}
	return c
}

func (c *cluster) lunsOf(n ident.NodeID) []*LUN {
	var out []*LUN
	for _, l := range c.luns {
		lun := &LUN{Name: l}
		for _, p := range c.ports[n][l] {
			lun.Paths = append(lun.Paths, NewSCSIPath(l+"@"+p.Nexus(), BackendFake, p, nil))
		}
		out = append(out, lun)
	}
	return out
}

func (c *cluster) fencer(n ident.NodeID) *Fencer {
	return &Fencer{Cluster: testCluster, Self: n}
}

func key(n ident.NodeID) uint64 { return uint64(NodeKey(testCluster, n)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (c *cluster) unfenceAll(t *testing.T, ctx context.Context) {
	t.Helper()
	for n := range c.ports {
		if err := c.fencer(n).Unfence(ctx, c.lunsOf(n)); err != nil {
			t.Fatalf("node %d unfence: %v", n, err)
		}
	}
}

func TestUnfenceFenceThreeNodes(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(3, "quorum", "data1")
	c.unfenceAll(t, ctx)
	for _, l := range c.luns {
		st := c.t.State(l)
		if !st.Held || st.Type != DefaultType {
			t.Fatalf("%s after unfence: reservation %+v, want type 5 held", l, st)
		}
		// Node 1's two paths, node 2's and node 3's one each.
		want := map[uint64]int{key(1): 2, key(2): 1, key(3): 1}
		got := map[uint64]int{}
		for _, k := range st.Keys {
			got[k]++
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s keys %v, want %v", l, got, want)
		}
	}
	// Unfence again (a restarted daemon): idempotent.
	if err := c.fencer(2).Unfence(ctx, c.lunsOf(2)); err != nil {
		t.Fatal(err)
	}

	proof, err := c.fencer(3).Fence(ctx, 1, 0xabc, c.lunsOf(3))
	if err != nil {
		t.Fatal(err)
	}
	if !proof.Valid() || proof.Victim() != 1 || proof.Incarnation() != 0xabc || !slices.Equal(proof.LUNs(), c.luns) || !proof.Covers("data1") || proof.Covers("data9") || proof.Key() != NodeKey(testCluster, 1) {
		t.Errorf("proof %v", proof)
	}
	for _, l := range c.luns {
		st := c.t.State(l)
		if slices.Contains(st.Keys, key(1)) || !slices.Contains(st.Keys, key(2)) || !slices.Contains(st.Keys, key(3)) {
			t.Errorf("%s keys after fencing node 1: %x", l, st.Keys)
		}
		if !st.Held || st.Type != DefaultType || st.Key == key(1) {
			t.Errorf("%s reservation after fencing node 1: %+v", l, st)
		}
		for _, p := range c.ports[1][l] {
			if err := p.Write(ctx, 0); !errors.Is(err, prfake.ErrConflict) {
				t.Errorf("%s: fenced node 1 wrote through %s: %v", l, p.Nexus(), err)
			}
		}
		for _, n := range []ident.NodeID{2, 3} {
			if err := c.ports[n][l][0].Write(ctx, 0); err != nil {
				t.Errorf("%s: node %d cannot write after fencing node 1: %v", l, n, err)
			}
		}
	}
	// Fencing an already fenced node: verified again, no preempt needed.
	if _, err := c.fencer(2).Fence(ctx, 1, 0xabc, c.lunsOf(2)); err != nil {
		t.Errorf("fencing node 1 again: %v", err)
	}
	// The fenced node learns it is fenced and does not re-register.
	_, err = c.fencer(1).Fence(ctx, 2, 1, c.lunsOf(1))
	if !errors.Is(err, ErrSelfFenced) {
		t.Errorf("fenced node 1 fencing node 2: %v, want ErrSelfFenced", err)
	}
	if st := c.t.State("quorum"); slices.Contains(st.Keys, key(1)) {
		t.Errorf("fenced node 1 registered itself again: %x", st.Keys)
	}
}

func TestProofZeroInvalid(t *testing.T) {
	var p Proof
	if p.Valid() || p.Covers("quorum") || p.String() != "no fencing proof" {
		t.Errorf("zero proof: valid %v", p.Valid())
	}
}

// TestFenceAbortsInFlightWrite: a write the victim had in flight when it
// was preempted fails: PREEMPT AND ABORT, not PREEMPT.
func TestFenceAbortsInFlightWrite(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	c.unfenceAll(t, ctx)
	victim := c.ports[2]["data1"][0]
	written := make(chan error, 1)
	go func() { written <- victim.Write(ctx, 200*time.Millisecond) }()
	time.Sleep(20 * time.Millisecond) // let the write be admitted
	if _, err := c.fencer(1).Fence(ctx, 2, 7, c.lunsOf(1)); err != nil {
		t.Fatal(err)
	}
	if err := <-written; !errors.Is(err, prfake.ErrConflict) {
		t.Errorf("victim's in-flight write: %v, want a reservation conflict", err)
	}
}

func TestFenceClearsUnitAttention(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	c.unfenceAll(t, ctx)
	ua := [2]byte{0x2a, 0x03}
	isPA := func(cdb []byte) bool {
		return cdb[0] == scsi.OpPersistentReserveOut && cdb[1] == byte(scsi.PreemptAndAbort)
	}
	c.ports[1]["data1"][0].Inject(prfake.Fault{Match: isPA, UnitAttention: &ua})
	if _, err := c.fencer(1).Fence(ctx, 2, 7, c.lunsOf(1)); err != nil {
		t.Fatalf("fence through a unit attention: %v", err)
	}
	if st := c.t.State("data1"); slices.Contains(st.Keys, key(2)) {
		t.Errorf("victim still registered: %x", st.Keys)
	}
}

func TestFencePathFailover(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	c.unfenceAll(t, ctx)
	isPA := func(cdb []byte) bool {
		return cdb[0] == scsi.OpPersistentReserveOut && cdb[1] == byte(scsi.PreemptAndAbort)
	}
	c.ports[1]["data1"][0].Inject(prfake.Fault{Match: isPA, PathFail: true})
	if _, err := c.fencer(1).Fence(ctx, 2, 7, c.lunsOf(1)); err != nil {
		t.Fatalf("fence with the first path failing: %v", err)
	}

	// A lost reply after the preempt took effect: the second path's
	// preempt conflicts (the victim is gone) and the read-back proves it.
	c2 := newCluster(2, "data1")
	c2.unfenceAll(t, ctx)
	c2.ports[1]["data1"][0].Inject(prfake.Fault{Match: isPA, LostReply: true})
	if _, err := c2.fencer(1).Fence(ctx, 2, 7, c2.lunsOf(1)); err != nil {
		t.Fatalf("fence with a lost reply: %v", err)
	}
}

func TestFenceFailsClosed(t *testing.T) {
	isPA := func(cdb []byte) bool {
		return cdb[0] == scsi.OpPersistentReserveOut && cdb[1] == byte(scsi.PreemptAndAbort)
	}
	for _, tc := range []struct {
		name  string
		fault prfake.Fault
		want  error
	}{
		{"every path fails", prfake.Fault{Match: isPA, PathFail: true}, ErrPath},
		{"preempt slower than the deadline", prfake.Fault{Match: isPA, Delay: time.Hour}, ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := newCluster(2, "quorum", "data1")
			c.unfenceAll(t, ctx)
			for _, p := range c.ports[1]["data1"] {
				p.Inject(tc.fault)
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			proof, err := c.fencer(1).Fence(short, 2, 7, c.lunsOf(1))
			if !errors.Is(err, tc.want) || proof.Valid() {
				t.Fatalf("Fence = %v, %v; want no proof and %v", proof, err, tc.want)
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.LUN != "data1" {
				t.Errorf("error %v does not name LUN data1", err)
			}
		})
	}
}

// TestFenceRace: two survivors fencing each other at once. The storage
// serializes the preempts: exactly one ends with a proof and the other
// with ErrSelfFenced, whichever order the target sees them in.
func TestFenceRace(t *testing.T) {
	for trial := range 40 {
		ctx := ctxT(t)
		c := newCluster(2, "quorum", "data1")
		c.unfenceAll(t, ctx)
		// Interleave: in half the trials node 2's whole fence runs between
		// node 1's read of the keys and its preempt.
		var wg sync.WaitGroup
		var p1, p2 Proof
		var e1, e2 error
		if trial%2 == 0 {
			isPA := func(cdb []byte) bool {
				return cdb[0] == scsi.OpPersistentReserveOut && cdb[1] == byte(scsi.PreemptAndAbort)
			}
			c.ports[1]["quorum"][0].Inject(prfake.Fault{Match: isPA, Before: func() {
				p2, e2 = c.fencer(2).Fence(ctx, 1, 1, c.lunsOf(2))
			}})
			p1, e1 = c.fencer(1).Fence(ctx, 2, 2, c.lunsOf(1))
		} else {
			wg.Add(2)
			go func() { defer wg.Done(); p1, e1 = c.fencer(1).Fence(ctx, 2, 2, c.lunsOf(1)) }()
			go func() { defer wg.Done(); p2, e2 = c.fencer(2).Fence(ctx, 1, 1, c.lunsOf(2)) }()
			wg.Wait()
		}
		if p1.Valid() == p2.Valid() {
			t.Fatalf("trial %d: node 1 proof %v (%v), node 2 proof %v (%v); want exactly one", trial, p1, e1, p2, e2)
		}
		loser := e1
		if p1.Valid() {
			loser = e2
		}
		if !errors.Is(loser, ErrSelfFenced) {
			t.Fatalf("trial %d: loser's error %v, want ErrSelfFenced", trial, loser)
		}
		for _, l := range c.luns {
			st := c.t.State(l)
			n1, n2 := slices.Contains(st.Keys, key(1)), slices.Contains(st.Keys, key(2))
			if n1 == n2 {
				t.Fatalf("trial %d: %s keys %x: want exactly one node registered", trial, l, st.Keys)
			}
		}
	}
}

func TestUnfenceRefusesForeignReservation(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	other := c.ports[2]["data1"][0]
	p := NewSCSIPath("data1", BackendFake, other, nil)
	if err := p.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: 0x11aa}); err != nil {
		t.Fatal(err)
	}
	if err := p.Out(ctx, scsi.Reserve, scsi.WriteExclusive, scsi.OutParams{Key: 0x11aa}); err != nil {
		t.Fatal(err)
	}
	err := c.fencer(1).Unfence(ctx, c.lunsOf(1))
	if !errors.Is(err, ErrForeignReservation) {
		t.Fatalf("unfence on a LUN reserved as Write Exclusive by a foreign key: %v", err)
	}
}

// noReads is a backend that can issue PR OUT but not read PR state (block
// PR on an older kernel).
type noReads struct{ Path }

func (noReads) ReadKeys(context.Context) (scsi.Keys, error) {
	return scsi.Keys{}, fmt.Errorf("read keys: %w", ErrNotSupported)
}

func (noReads) ReadReservation(context.Context) (scsi.Reservation, error) {
	return scsi.Reservation{}, fmt.Errorf("read reservation: %w", ErrNotSupported)
}

func TestCannotVerifyFailsClosed(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	c.unfenceAll(t, ctx)
	l := c.lunsOf(1)
	for i, p := range l[0].Paths {
		l[0].Paths[i] = noReads{p}
	}
	if err := c.fencer(1).Unfence(ctx, l); !errors.Is(err, ErrNotSupported) {
		t.Errorf("unfence without reads: %v, want ErrNotSupported", err)
	}
	if proof, err := c.fencer(1).Fence(ctx, 2, 1, l); !errors.Is(err, ErrNotSupported) || proof.Valid() {
		t.Errorf("fence without reads: %v %v, want no proof and ErrNotSupported", proof, err)
	}
}

func TestFenceBadRequests(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	for _, tc := range []struct {
		name   string
		f      *Fencer
		victim ident.NodeID
		luns   []*LUN
	}{
		{"self", c.fencer(1), 1, c.lunsOf(1)},
		{"victim 0", c.fencer(1), 0, c.lunsOf(1)},
		{"no LUNs", c.fencer(1), 2, nil},
		{"LUN without paths", c.fencer(1), 2, []*LUN{{Name: "x"}}},
		{"bad type", &Fencer{Cluster: testCluster, Self: 1, Type: 2}, 2, c.lunsOf(1)},
	} {
		if _, err := tc.f.Fence(ctx, tc.victim, 1, tc.luns); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", tc.name, err)
		}
	}
	if c.ports[1]["data1"][0].Commands() != 0 {
		t.Error("a bad request reached the target")
	}
}

// TestUnfenceAfterTargetRestart: a target that lost its registrations
// (no APTPL) is re-registered by Unfence through the reset's unit
// attention; with APTPL the registrations survive.
func TestUnfenceAfterTargetRestart(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	c.unfenceAll(t, ctx)
	c.t.Restart()
	if st := c.t.State("data1"); len(st.Keys) != 0 || st.Held {
		t.Fatalf("after restart without APTPL: %+v", st)
	}
	if _, err := c.fencer(1).Fence(ctx, 2, 1, c.lunsOf(1)); !errors.Is(err, ErrSelfFenced) {
		t.Errorf("fencing with the registrations lost: %v, want ErrSelfFenced (fail closed)", err)
	}
	c.unfenceAll(t, ctx)

	f := &Fencer{Cluster: testCluster, Self: 1, APTPL: true}
	if err := f.Unfence(ctx, c.lunsOf(1)); err != nil {
		t.Fatal(err)
	}
	c.t.Restart()
	if st := c.t.State("data1"); !st.APTPL || len(st.Keys) == 0 {
		t.Errorf("after restart with APTPL: %+v", st)
	}
}

// TestRejoinDropsStaleRegistrations: registrations of our key from a
// nexus that is no longer ours (an old session) are removed by Rejoin,
// kept by Unfence; a stale nexus holding the reservation hands it over.
func TestRejoinDropsStaleRegistrations(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	stale := NewSCSIPath("old-session", BackendFake, c.t.Port("data1", "node1-old-session"), nil)
	if err := stale.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: key(1)}); err != nil {
		t.Fatal(err)
	}
	if err := stale.Out(ctx, scsi.Reserve, DefaultType, scsi.OutParams{Key: key(1)}); err != nil {
		t.Fatal(err)
	}
	if err := c.fencer(1).Unfence(ctx, c.lunsOf(1)); err != nil {
		t.Fatal(err)
	}
	if st := c.t.State("data1"); st.Nexus["node1-old-session"] != key(1) {
		t.Fatalf("Unfence removed the stale registration: %+v", st)
	}
	if err := c.fencer(1).Rejoin(ctx, c.lunsOf(1)); err != nil {
		t.Fatal(err)
	}
	st := c.t.State("data1")
	if _, ok := st.Nexus["node1-old-session"]; ok || st.Nexus["node1-port0"] != key(1) || st.Nexus["node1-port1"] != key(1) {
		t.Errorf("after rejoin: %+v; want node1's two live paths only", st.Nexus)
	}
	if !st.Held || st.Holder == "node1-old-session" || st.Key != key(1) {
		t.Errorf("reservation after rejoin: %+v", st)
	}
	// Node 2 rejoining with nothing stale: a plain unfence.
	if err := c.fencer(2).Rejoin(ctx, c.lunsOf(2)); err != nil {
		t.Fatal(err)
	}
}
