package diskhb

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/quorum"
)

// RandomIncarnation returns a random non-zero incarnation number.
func RandomIncarnation() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// NewMember builds the Member of node self (named name) of a cluster of
// the given node ids, one vote each, at timing t, with a random
// incarnation, on d. log receives the rounds' conflicts and mismatches.
func NewMember(d *Disk, self int, name string, nodes []int, t config.Derived, log *slog.Logger) (*Member, error) {
	inc := RandomIncarnation()
	qc := quorum.Config{Self: quorum.NodeID(self), Timing: t, Incarnation: quorum.Incarnation(inc)}
	for _, id := range nodes {
		qc.Nodes = append(qc.Nodes, quorum.Member{ID: quorum.NodeID(id), Votes: 1})
	}
	if err := qc.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) }
	r := NewRounds(d, RoundsConfig{NodeID: self, NodeName: name, Incarnation: inc, Peers: nodes,
		HeartbeatInterval: t.HeartbeatInterval, FailureTimeout: t.FailureTimeout, Clock: clock, Log: log})
	return &Member{Rounds: r, Node: quorum.New(qc), Clock: clock}, nil
}

// Member runs a node's membership machine (quorum.Driver over a
// quorum.Node) on the quorum disk alone, with no network, performing its
// disk requests with Rounds exactly as the daemon does. `mtc bench disk`
// measures the daemon's real I/O pattern with it, and the lab and the
// loop-device tests judge peers' disk liveness with it. It stops no
// packages and feeds no watchdog: it is a measuring and testing harness,
// not a node.
type Member struct {
	Rounds *Rounds
	Node   *quorum.Node
	// Clock is the local monotonic clock the machine is stepped with; it
	// must be the Rounds' clock.
	Clock func() time.Duration
	// OnRound, if set, is called after each slot-area read with the
	// round's results: the write that preceded it (zero if none) and the
	// read, and the machine's status after the read.
	OnRound func(MemberRound)

	mu      sync.Mutex
	status  quorum.Status
	pending []quorum.DiskRequest
	wake    time.Duration
	write   *RoundResult
}

// MemberRound is one round of a Member: its slot write and the read after it.
type MemberRound struct {
	Write, Read RoundResult
	Status      quorum.Status
}

// Status is the machine's status after its last step.
func (m *Member) Status() quorum.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Run steps the machine until ctx ends, performing each disk request
// synchronously (the machine keeps at most one outstanding). It returns
// ctx's error.
func (m *Member) Run(ctx context.Context) error {
	drv := &quorum.Driver{Node: m.Node, FX: (*memberFX)(m)}
	m.step(drv, quorum.Tick{})
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		var req *quorum.DiskRequest
		if len(m.pending) > 0 {
			req = &m.pending[0]
			m.pending = m.pending[1:]
		}
		wake := m.wake
		m.mu.Unlock()
		if req != nil {
			res := m.Rounds.Do(ctx, *req)
			m.step(drv, res.Done)
			m.report(req.Kind, res)
			continue
		}
		timer.Reset(max(0, wake-m.Clock()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			m.step(drv, quorum.Tick{})
		}
	}
}

func (m *Member) step(drv *quorum.Driver, ev quorum.Event) {
	rd := drv.Step(m.Clock(), ev)
	m.mu.Lock()
	m.status = rd.Status
	m.mu.Unlock()
}

func (m *Member) report(kind quorum.DiskOp, res RoundResult) {
	switch kind {
	case quorum.DiskWriteSlot:
		m.write = &res
	case quorum.DiskRead:
		r := MemberRound{Read: res, Status: m.Status()}
		if m.write != nil {
			r.Write = *m.write
		}
		m.write = nil
		if m.OnRound != nil {
			m.OnRound(r)
		}
	}
}

// memberFX implements quorum.Effects for a Member: only the disk and the
// wake-up act; the rest has no edge here.
type memberFX Member

var _ quorum.Effects = (*memberFX)(nil)

func (f *memberFX) Broadcast(quorum.Heartbeat)  {}
func (f *memberFX) FeedWatchdog()               {}
func (f *memberFX) StopPackages()               {}
func (f *memberFX) Fence(quorum.Target)         {}
func (f *memberFX) WithdrawFence(quorum.Target) {}
func (f *memberFX) Takeover(quorum.Takeover)    {}

// Rejoin: a Member registers on no LUN, so no fence removes its key and
// the machine never asks; if it did, no Rejoined would come and the
// node would stop at its write deadline, as without re-registration.
func (f *memberFX) Rejoin() {}

// CheckRegistration: a Member registers on no LUN (Config.CheckRegistration
// is off), so the machine never asks.
func (f *memberFX) CheckRegistration(quorum.RegistrationCheck) {}
func (f *memberFX) Decided(quorum.Decision)                    {}
func (f *memberFX) StartDisk(r quorum.DiskRequest) {
	f.mu.Lock()
	f.pending = append(f.pending, r)
	f.mu.Unlock()
}
func (f *memberFX) WakeAt(t time.Duration) {
	f.mu.Lock()
	f.wake = t
	f.mu.Unlock()
}
