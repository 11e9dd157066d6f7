package diskhb

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"github.com/mtcluster/mtc/quorum/liveness"
	"log/slog"
	"sync"
	"time"
)

// HeartbeatConfig configures a node's disk heartbeat.
type HeartbeatConfig struct {
	NodeID   int
	NodeName string
	// Incarnation identifies this daemon start; 0 picks a random one.
	Incarnation uint64
	// Interval between rounds (config heartbeat_interval).
	Interval time.Duration
	// SuspectAfter and DeadAfter judge peers (config.Derived).
	SuspectAfter, DeadAfter time.Duration
}

// Published is what the node writes in its slot besides its counters; the
// membership layer sets it with Publish.
type Published struct {
	Flags     uint32
	Epoch     uint64
	View      uint64
	Members   uint64
	ConfigGen uint64
	Payload   []byte
}

// Round is the outcome of one heartbeat round: one write of our own slot
// and one read of the whole slot area.
type Round struct {
	// Now is the local monotonic time at the end of the round.
	Now time.Duration
	// Seq is the sequence number of the write attempted this round.
	Seq      uint64
	WriteErr error
	Reads    []SlotRead
	ReadErr  error
	// Changes reports, per peer id, what its record revealed this round
	// (restarts, resurrections, regressions); only non-trivial entries.
	Changes map[int]liveness.Change
}

// Heartbeater writes a node's slot every interval and judges every peer's
// liveness on the disk path by whether its counters change, on the local
// monotonic clock.
//
// It does not decide membership or quorum: it reports each Round to the
// OnRound callback (the daemon feeds the membership state machine) and
// keeps a Snapshot for status displays and tests.
type Heartbeater struct {
	disk    *Disk
	cfg     HeartbeatConfig
	log     *slog.Logger
	clock   func() time.Duration
	onRound func(Round)

	mu           sync.Mutex
	pub          Published
	seq          uint64
	peers        map[int]*liveness.Tracker
	lastReads    map[int]SlotRead
	everWritten  bool
	lastWriteOK  time.Duration
	lastWriteErr error
	writeFails   int
	lastReadOK   time.Duration
	everRead     bool
	lastReadErr  error
}

// NewHeartbeater prepares a heartbeat on d. clock returns the local
// monotonic time; nil uses the process's monotonic clock. onRound may be nil.
func NewHeartbeater(d *Disk, cfg HeartbeatConfig, log *slog.Logger, clock func() time.Duration, onRound func(Round)) *Heartbeater {
	if cfg.Incarnation == 0 {
		cfg.Incarnation = RandomIncarnation()
	}
	if clock == nil {
		start := time.Now()
		clock = func() time.Duration { return time.Since(start) }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Heartbeater{
		disk: d, cfg: cfg, clock: clock, onRound: onRound,
		log:       log.With("component", "diskhb", "node", cfg.NodeID),
		peers:     make(map[int]*liveness.Tracker),
		lastReads: make(map[int]SlotRead),
	}
	for id := 1; id <= d.hdr.Slots; id++ {
		if id != cfg.NodeID {
			h.peers[id] = &liveness.Tracker{SuspectAfter: cfg.SuspectAfter, DeadAfter: cfg.DeadAfter, NeedCoverage: true}
		}
	}
	return h
}

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

// Incarnation of this heartbeat.
func (h *Heartbeater) Incarnation() uint64 { return h.cfg.Incarnation }

// Publish sets what the next writes carry.
func (h *Heartbeater) Publish(p Published) {
	h.mu.Lock()
	h.pub = p
	h.pub.Payload = append([]byte(nil), p.Payload...)
	h.mu.Unlock()
}

// Round performs one heartbeat round now: write our slot, read all slots.
// Each I/O is bounded by the device's deadline.
func (h *Heartbeater) Round(ctx context.Context) Round {
	h.mu.Lock()
	h.seq++
	s := Slot{
		NodeID: h.cfg.NodeID, NodeName: h.cfg.NodeName,
		Flags: h.pub.Flags | FlagRunning, Incarnation: h.cfg.Incarnation, Seq: h.seq,
		Epoch: h.pub.Epoch, View: h.pub.View, Members: h.pub.Members,
		ConfigGen: h.pub.ConfigGen, Payload: h.pub.Payload, WrittenAt: time.Now(),
	}
	h.mu.Unlock()

	werr := h.disk.WriteSlot(ctx, s)
	tw := h.clock()
	reads, rerr := h.disk.ReadSlots(ctx)
	now := h.clock()

	if werr == nil && rerr == nil {
		werr = verifyOwn(reads, s)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	r := Round{Now: now, Seq: s.Seq, WriteErr: werr, Reads: reads, ReadErr: rerr}
	if werr == nil {
		if h.writeFails > 0 {
			h.log.Info("quorum disk write recovered", "failed_writes", h.writeFails)
		}
		h.everWritten, h.lastWriteOK, h.writeFails = true, tw, 0
	} else {
		h.writeFails++
		if h.writeFails == 1 {
			h.log.Warn("quorum disk write failed; the node fences itself if this lasts for the failure timeout", "err", werr, "seq", s.Seq)
		}
		h.lastWriteErr = werr
	}
	if rerr != nil {
		h.lastReadErr = rerr
		h.log.Debug("quorum disk read failed", "err", rerr)
	} else {
		h.everRead, h.lastReadOK = true, now
		for _, sr := range reads {
			h.lastReads[sr.ID] = sr
			t, ok := h.peers[sr.ID]
			if !ok {
				continue
			}
			c := t.Observe(now, sr.Observation())
			switch c {
			case liveness.Restarted, liveness.Resurrected, liveness.Regressed:
				if r.Changes == nil {
					r.Changes = make(map[int]liveness.Change)
				}
				r.Changes[sr.ID] = c
				h.log.Warn("peer slot change", "peer", sr.ID, "change", c.String(), "incarnation", sr.Slot.Incarnation, "seq", sr.Slot.Seq)
			}
		}
	}
	return r
}

// verifyOwn checks that our slot reads back as we wrote it: a device can
// report success for a write that was lost or torn on the way, and a second
// daemon with our node id shows up here first.
func verifyOwn(reads []SlotRead, wrote Slot) error {
	if wrote.NodeID > len(reads) {
		return nil
	}
	own := reads[wrote.NodeID-1]
	switch {
	case own.Err != nil:
		return fmt.Errorf("%w: %w", ErrWriteVerify, own.Err)
	case own.Slot.Incarnation != wrote.Incarnation && own.Slot.Flags&FlagEmpty == 0:
		return fmt.Errorf("%w: slot %d holds incarnation %x seq %d, ours is %x", ErrSlotConflict,
			wrote.NodeID, own.Slot.Incarnation, own.Slot.Seq, wrote.Incarnation)
	case own.Slot.Incarnation != wrote.Incarnation || own.Slot.Seq != wrote.Seq:
		return fmt.Errorf("%w: read back seq %d, wrote %d", ErrWriteVerify, own.Slot.Seq, wrote.Seq)
	}
	return nil
}

// Run performs a round every interval until ctx ends, reporting each to
// onRound. It returns ctx's error.
func (h *Heartbeater) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		r := h.Round(ctx)
		if h.onRound != nil {
			h.onRound(r)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PeerStatus is one peer as seen on the disk path.
type PeerStatus struct {
	ID          int           `json:"id"`
	Name        string        `json:"name,omitempty"`
	State       string        `json:"state"`
	Incarnation uint64        `json:"incarnation,omitempty"`
	Seq         uint64        `json:"seq,omitempty"`
	SinceChange time.Duration `json:"since_change_ns,omitempty"`
	Flags       []string      `json:"flags,omitempty"`
	Err         string        `json:"error,omitempty"`
}

// Status is a snapshot of the disk heartbeat.
type Status struct {
	NodeID      int    `json:"node_id"`
	Incarnation uint64 `json:"incarnation"`
	Seq         uint64 `json:"seq"`
	// SinceWrite is the time since our last successful slot write; -1 if
	// none succeeded yet.
	SinceWrite   time.Duration `json:"since_write_ns"`
	WriteFails   int           `json:"consecutive_write_failures"`
	LastWriteErr string        `json:"last_write_error,omitempty"`
	SinceRead    time.Duration `json:"since_read_ns"`
	LastReadErr  string        `json:"last_read_error,omitempty"`
	Peers        []PeerStatus  `json:"peers"`
}

// Snapshot returns the current status; peers whose slots were never
// written by a daemon and that were never seen are left out.
func (h *Heartbeater) Snapshot() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock()
	st := Status{NodeID: h.cfg.NodeID, Incarnation: h.cfg.Incarnation, Seq: h.seq, WriteFails: h.writeFails,
		SinceWrite: -1, SinceRead: -1}
	if h.everWritten {
		st.SinceWrite = now - h.lastWriteOK
	}
	if h.everRead {
		st.SinceRead = now - h.lastReadOK
	}
	if h.lastWriteErr != nil {
		st.LastWriteErr = h.lastWriteErr.Error()
	}
	if h.lastReadErr != nil {
		st.LastReadErr = h.lastReadErr.Error()
	}
	for id := 1; id <= h.disk.hdr.Slots; id++ {
		t, ok := h.peers[id]
		if !ok {
			continue
		}
		sr, read := h.lastReads[id]
		inc, seq, seen := t.Incarnation()
		if !seen && (!read || (sr.Err == nil && sr.Slot.Flags&FlagEmpty != 0)) {
			continue
		}
		ps := PeerStatus{ID: id, State: t.State(now).String(), Incarnation: inc, Seq: seq}
		if d, ok := t.SinceChange(now); ok {
			ps.SinceChange = d
		}
		if read {
			if sr.Err != nil {
				ps.Err = sr.Err.Error()
			} else {
				ps.Name = sr.Slot.NodeName
				ps.Flags = FlagNames(sr.Slot.Flags)
			}
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

// PeerState is peer id's liveness on the disk path now.
func (h *Heartbeater) PeerState(id int) liveness.Liveness {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.peers[id]
	if !ok {
		return liveness.Unknown
	}
	return t.State(h.clock())
}
