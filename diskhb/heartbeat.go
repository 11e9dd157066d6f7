package diskhb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/quorum"
)

// SlotOfHeartbeat is the slot record that carries hb, written by the node
// named name under configuration generation gen. Its payload is laid out
// by package hbwire, the heartbeat's one encoding.
func SlotOfHeartbeat(hb *quorum.Heartbeat, name string, gen uint64) Slot {
	w := hbwire.ToSlot(hb)
	flags := FlagRunning
	if hb.Flags&quorum.FlagQuorate != 0 {
		flags |= FlagQuorate
	}
	if hb.Flags&quorum.FlagStopped != 0 {
		flags |= FlagSelfFencing
	}
	return Slot{
		NodeID: w.NodeID, Flags: flags, Incarnation: w.Incarnation, Seq: w.Seq, Epoch: w.Epoch,
		View: w.View, Members: w.Members, ConfigGen: gen, NodeName: name, Payload: w.Payload,
	}
}

// HeartbeatOfSlot reads the heartbeat a slot record carries (an error
// wrapping hbwire.ErrPayload or hbwire.ErrVersion when it carries none).
func HeartbeatOfSlot(s Slot) (quorum.Heartbeat, error) {
	return hbwire.FromSlot(hbwire.Slot{NodeID: s.NodeID, Incarnation: s.Incarnation, Seq: s.Seq, Epoch: s.Epoch,
		View: s.View, Members: s.Members, Payload: s.Payload})
}

// LockOfRecord is the tie-break lock sector's record for r.
func LockOfRecord(r quorum.LockRecord) Lock {
	return Lock{Index: TieBreakLock, Owner: int(r.Owner), OwnerIncarnation: uint64(r.Inc), Generation: r.Gen}
}

// RecordOfLock reads a tie-break lock sector's record.
func RecordOfLock(l Lock) quorum.LockRecord {
	return quorum.LockRecord{Owner: quorum.NodeID(l.Owner), Inc: quorum.Incarnation(l.OwnerIncarnation), Gen: l.Generation}
}

// RoundsConfig configures the quorum-disk rounds of one node.
type RoundsConfig struct {
	NodeID   int
	NodeName string
	// Incarnation is this daemon start's (the machine's) incarnation.
	Incarnation uint64
	// Generation is the configuration generation written into every slot
	// (config.Cluster.Generation); a peer's slot of another generation
	// counts as unknown.
	Generation uint64
	// Peers are the configured peers' node ids: only their slots are
	// reported to the machine.
	Peers []int
	// HeartbeatInterval bounds the rate of own-slot read-backs before a
	// write (at most one per interval, only after a round shorter than a
	// quarter of it); FailureTimeout is how long a
	// foreign write over our slot keeps our own writes counted as failed.
	HeartbeatInterval, FailureTimeout time.Duration
	// Clock is the local monotonic clock; nil uses the process's.
	Clock func() time.Duration
	// Log receives conflicts, verification failures and generation
	// mismatches (nil discards them).
	Log *slog.Logger
}

// Rounds performs the membership machine's quorum-disk requests
// (quorum.DiskRequest) on a Disk: the one implementation of the disk
// heartbeat, run by the daemon, `mtc bench disk` and the lab (through
// Member when there is no network).
//
// Each I/O has its own deadline (the Device's I/O timeout): a request of
// several I/Os does not share one. A DiskWriteSlot first reads our own
// slot back (at most once per heartbeat interval, and only after a fast
// round) to see whether another writer has overwritten it since our last
// write, then writes; a DiskRead reads the whole slot area in one I/O,
// which shows our own slot again, then the tie-break lock. See the
// package documentation for the budget of a round.
//
// Rounds is safe for use by one goroutine performing requests while
// others read its Stats.
type Rounds struct {
	disk *Disk
	cfg  RoundsConfig
	log  *slog.Logger

	peers map[int]bool

	mu            sync.Mutex
	wrote         bool   // a write succeeded in this incarnation
	lastOKSeq     uint64 // sequence number of the last successful write
	lastSeq       uint64 // sequence number of the last attempted write
	lastOK        bool   // the last attempted write succeeded
	lastVerify    time.Duration
	verified      bool
	roundStart    time.Duration // start of the current round's write
	lastRound     time.Duration // how long the last write-and-read round took
	failNext      bool          // an own-slot problem fails the next write
	conflictUntil time.Duration // writes count as failed until then
	conflicting   bool
	otherGen      map[int]uint64 // peers whose slot holds another generation, and which
	stats         RoundStats
}

// RoundStats are the counters of a node's quorum-disk rounds.
type RoundStats struct {
	// Writes and WriteFailures count own-slot writes as reported to the
	// machine (a write over a conflict counts as failed).
	Writes, WriteFailures uint64
	// Reads and ReadFailures count slot-area reads; LockReadFailures the
	// tie-break lock reads that failed (the lock then counts as unknown).
	Reads, ReadFailures, LockReadFailures uint64
	// Verifies counts own-slot read-backs before a write.
	Verifies uint64
	// Conflicts counts reads that found our slot written by another
	// daemon (another incarnation) since our last write.
	Conflicts uint64
	// VerifyFailures counts reads that found our slot not as we last
	// wrote it for another reason: unreadable, cleared, or older than an
	// acknowledged write.
	VerifyFailures uint64
	// OtherGeneration counts peer slot reads that carried another
	// configuration generation (counted as unknown).
	OtherGeneration uint64
	// OtherGenerationPeers are the peers whose last read slot carries
	// another generation, with that generation.
	OtherGenerationPeers map[int]uint64 `json:",omitempty"`
	// Conflict is set while our writes count as failed because another
	// daemon writes our slot; OwnSlotProblem is the last problem found
	// with our slot (kept until a clean read-back).
	Conflict       bool
	OwnSlotProblem string
	// LastWriteErr, LastReadErr and LastLockErr are the last errors of
	// each kind, cleared by a success.
	LastWriteErr, LastReadErr, LastLockErr string
}

// RoundResult is the outcome of one request.
type RoundResult struct {
	// Done is what the machine is told (quorum.DiskDone).
	Done quorum.DiskDone
	// Err is the failure of the request: an I/O error, or for a write
	// counted as failed although it landed, the own-slot problem.
	Err error
	// Seq is the sequence number written (DiskWriteSlot).
	Seq uint64
	// Reads are every slot as read (DiskRead).
	Reads []SlotRead
	// LockErr is why the tie-break lock counts as unknown (DiskRead);
	// the slots were read nevertheless.
	LockErr error
	// OwnSlot is the problem found with our own slot, if any.
	OwnSlot error
}

// NewRounds prepares the rounds of node cfg.NodeID on d.
func NewRounds(d *Disk, cfg RoundsConfig) *Rounds {
	if cfg.Clock == nil {
		start := time.Now()
		cfg.Clock = func() time.Duration { return time.Since(start) }
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Rounds{disk: d, cfg: cfg, log: log, peers: make(map[int]bool), otherGen: make(map[int]uint64)}
	for _, id := range cfg.Peers {
		if id != cfg.NodeID {
			r.peers[id] = true
		}
	}
	return r
}

// Stats returns a snapshot of the counters.
func (r *Rounds) Stats() RoundStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Conflict = r.conflicting
	if len(r.otherGen) > 0 {
		s.OtherGenerationPeers = make(map[int]uint64, len(r.otherGen))
		for id, g := range r.otherGen {
			s.OtherGenerationPeers[id] = g
		}
	}
	return s
}

// Do performs req; every I/O has its own deadline. It never blocks past
// the sum of its I/Os' deadlines.
func (r *Rounds) Do(ctx context.Context, req quorum.DiskRequest) RoundResult {
	res := RoundResult{Done: quorum.DiskDone{Op: req.Op, Kind: req.Kind}}
	switch req.Kind {
	case quorum.DiskWriteSlot:
		r.writeSlot(ctx, &req.Heartbeat, &res)
	case quorum.DiskRead:
		r.read(ctx, &res)
	case quorum.DiskWriteLock:
		l := LockOfRecord(req.Lock)
		l.WrittenAt = time.Now() // display only, never compared
		res.Err = r.disk.WriteLock(ctx, l)
	default:
		res.Err = fmt.Errorf("unknown quorum-disk request kind %v", req.Kind)
	}
	res.Done.Result = IOResult(res.Err)
	return res
}

// IOResult classifies an I/O error for the machine.
func IOResult(err error) quorum.IOResult {
	switch {
	case err == nil:
		return quorum.IOOK
	case errors.Is(err, ErrFenced):
		return quorum.IOFenced
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return quorum.IOTimeout
	default:
		return quorum.IOFailed
	}
}

func (r *Rounds) writeSlot(ctx context.Context, hb *quorum.Heartbeat, res *RoundResult) {
	now := r.cfg.Clock()
	r.mu.Lock()
	// The read-back costs one I/O in the round: only when the last round
	// was fast (a quarter of a heartbeat interval), so it never lengthens
	// a slow round, and at most once per heartbeat interval.
	verify := r.wrote && r.lastRound < r.cfg.HeartbeatInterval/4 &&
		(!r.verified || now-r.lastVerify >= r.cfg.HeartbeatInterval)
	r.roundStart = now
	r.mu.Unlock()
	var verr error
	if verify {
		// A failed read-back proves nothing either way: the write goes on.
		var sr SlotRead
		if sr, verr = r.disk.ReadSlot(ctx, r.cfg.NodeID); verr == nil {
			r.mu.Lock()
			r.verified, r.lastVerify = true, now
			r.stats.Verifies++
			res.OwnSlot = r.checkOwn(sr, now)
			r.mu.Unlock()
		}
	}

	s := SlotOfHeartbeat(hb, r.cfg.NodeName, r.cfg.Generation)
	s.WrittenAt = time.Now() // display only, never compared
	res.Seq = s.Seq
	err := r.disk.WriteSlot(ctx, s)
	if err != nil && verr != nil {
		// Name the first I/O that failed: a hang that caught the
		// read-back shows as its timeout, not only as the write's busy.
		err = fmt.Errorf("%w (after the read-back of our slot before it failed: %w)", err, verr)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	now = r.cfg.Clock()
	r.lastSeq, r.lastOK = s.Seq, err == nil
	if err == nil {
		r.wrote, r.lastOKSeq = true, s.Seq
		switch {
		case now < r.conflictUntil:
			err = fmt.Errorf("own slot write landed but is not counted: %w (%s)", ErrSlotConflict, r.stats.OwnSlotProblem)
		case r.failNext:
			err = fmt.Errorf("own slot write landed but is not counted: %w (%s)", ErrWriteVerify, r.stats.OwnSlotProblem)
		default:
			if r.conflicting {
				r.conflicting = false
				r.log.Warn("quorum disk: no foreign write seen over our slot for the failure timeout; our writes count again", "slot", r.cfg.NodeID)
			}
		}
		r.failNext = false
	}
	res.Err = err
	if err != nil {
		r.stats.WriteFailures++
		r.stats.LastWriteErr = err.Error()
		return
	}
	r.stats.Writes++
	r.stats.LastWriteErr = ""
}

// checkOwn compares our slot as read with what we wrote and records a
// problem. Called with r.mu held; only after a successful write.
func (r *Rounds) checkOwn(sr SlotRead, now time.Duration) error {
	var err error
	switch {
	case sr.Err != nil:
		if !r.lastOK {
			return nil // our last write failed or timed out: it may be torn
		}
		err = fmt.Errorf("%w: slot %d unreadable after a successful write: %w", ErrWriteVerify, r.cfg.NodeID, sr.Err)
	case sr.Slot.Flags&FlagEmpty != 0:
		err = fmt.Errorf("%w: slot %d was cleared (mtc disk init or clear-slot) while this daemon runs", ErrWriteVerify, r.cfg.NodeID)
	case sr.Slot.Incarnation != r.cfg.Incarnation || sr.Slot.Seq > r.lastSeq:
		err = fmt.Errorf("%w: slot %d holds incarnation %016x sequence %d written by node %q, ours is %016x at sequence %d: another daemon runs with node id %d; stop one of them",
			ErrSlotConflict, r.cfg.NodeID, sr.Slot.Incarnation, sr.Slot.Seq, sr.Slot.NodeName, r.cfg.Incarnation, r.lastSeq, r.cfg.NodeID)
	case sr.Slot.Seq < r.lastOKSeq:
		err = fmt.Errorf("%w: slot %d holds sequence %d, older than the %d written last: the storage lost an acknowledged write", ErrWriteVerify, r.cfg.NodeID, sr.Slot.Seq, r.lastOKSeq)
	}
	if err == nil {
		if r.stats.OwnSlotProblem != "" && now >= r.conflictUntil {
			r.stats.OwnSlotProblem = ""
		}
		return nil
	}
	if errors.Is(err, ErrSlotConflict) {
		r.stats.Conflicts++
		if !r.conflicting {
			r.log.Error("quorum disk: CONFLICT: another daemon writes this node's slot; this node's writes no longer count and it will self-fence unless the other stops",
				"slot", r.cfg.NodeID, "err", err, "hold", r.cfg.FailureTimeout)
		}
		r.conflicting = true
		r.conflictUntil = now + r.cfg.FailureTimeout
	} else {
		r.stats.VerifyFailures++
		r.failNext = true
		if err.Error() != r.stats.OwnSlotProblem {
			r.log.Error("quorum disk: own slot did not read back as written; the next write counts as failed", "slot", r.cfg.NodeID, "err", err)
		}
	}
	r.stats.OwnSlotProblem = err.Error()
	return err
}

func (r *Rounds) read(ctx context.Context, res *RoundResult) {
	reads, err := r.disk.ReadSlots(ctx)
	if err != nil {
		res.Err = err
		r.mu.Lock()
		r.lastRound = r.cfg.Clock() - r.roundStart
		r.stats.ReadFailures++
		r.stats.LastReadErr = err.Error()
		r.mu.Unlock()
		return
	}
	res.Reads = reads
	// The lock read has a deadline of its own; when it fails the slots
	// still count and the lock is unknown (never free).
	lock, lerr := r.disk.ReadLock(ctx, TieBreakLock)
	if lerr == nil {
		res.Done.Lock = quorum.LockObservation{Valid: true, Record: RecordOfLock(lock)}
	}
	res.LockErr = lerr
	now := r.cfg.Clock()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRound = now - r.roundStart
	r.stats.Reads++
	r.stats.LastReadErr = ""
	r.stats.LastLockErr = ""
	if lerr != nil {
		r.stats.LockReadFailures++
		r.stats.LastLockErr = lerr.Error()
	}
	for _, sr := range reads {
		if sr.ID == r.cfg.NodeID {
			if r.wrote {
				res.OwnSlot = r.checkOwn(sr, now)
			}
			continue
		}
		if r.peers[sr.ID] {
			res.Done.Slots = append(res.Done.Slots, r.observe(sr))
		}
	}
}

// observe converts a peer's slot into what the machine consumes. A slot
// that failed to decode, was never written by a daemon, was written under
// another configuration generation, or whose payload does not decode
// proves nothing (Valid false). Called with r.mu held.
func (r *Rounds) observe(sr SlotRead) quorum.SlotObservation {
	o := quorum.SlotObservation{Node: quorum.NodeID(sr.ID)}
	if !sr.Valid() {
		return o
	}
	if g := sr.Slot.ConfigGen; g != r.cfg.Generation {
		r.stats.OtherGeneration++
		if r.otherGen[sr.ID] != g {
			r.log.Warn("quorum disk: a peer's slot carries another configuration generation; it counts as unknown: install the same cluster file on every node",
				"peer", sr.ID, "name", sr.Slot.NodeName, "generation", fmt.Sprintf("%016x", g), "ours", fmt.Sprintf("%016x", r.cfg.Generation))
		}
		r.otherGen[sr.ID] = g
		return o
	}
	delete(r.otherGen, sr.ID)
	hb, err := HeartbeatOfSlot(sr.Slot)
	if err != nil {
		return o
	}
	o.Valid, o.Heartbeat = true, hb
	return o
}
