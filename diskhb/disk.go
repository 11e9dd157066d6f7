package diskhb

import (
	"context"
	"fmt"
	"github.com/mtcluster/mtc/quorum/liveness"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Disk is an opened, validated quorum disk. Its methods do one I/O each
// through the Device, so each has the Device's deadline; every write is one
// sector.
type Disk struct {
	dev *Device
	hdr Header
}

// Expect is what a node's configuration says the quorum disk must be.
type Expect struct {
	ClusterUUID uuid.UUID
	// MaxNodeID is the largest configured node id; the disk must have a
	// slot for it.
	MaxNodeID int
	// Timing bases; zero values are not checked (inspection tools).
	HeartbeatInterval, IOTimeout, FailureTimeout, WatchdogTimeout time.Duration
}

// ReadHeader reads and decodes the header sector without checking it
// against any configuration (cluster may be uuid.Nil).
func ReadHeader(ctx context.Context, dev *Device, cluster uuid.UUID) (Header, error) {
	b, err := dev.Read(ctx, HeaderLBA, dev.SectorSize())
	if err != nil {
		return Header{}, fmt.Errorf("read header: %w", err)
	}
	return DecodeHeader(b, cluster)
}

// Open reads the header and checks it against the configuration: cluster,
// sector size, slots, device size and timing bases. A node must not join a
// disk that disagrees with its configuration.
func Open(ctx context.Context, dev *Device, want Expect) (*Disk, error) {
	h, err := ReadHeader(ctx, dev, want.ClusterUUID)
	if err != nil {
		return nil, err
	}
	if h.SectorSize != dev.SectorSize() {
		return nil, fmt.Errorf("%w: header written for %d-byte sectors, device has %d-byte sectors", ErrGeometry, h.SectorSize, dev.SectorSize())
	}
	if want.MaxNodeID > h.Slots {
		return nil, fmt.Errorf("%w: the configuration has node id %d but the disk has %d slots; re-initialise it with more slots", ErrGeometry, want.MaxNodeID, h.Slots)
	}
	if need := h.Layout().MinSize(); dev.Size() < need {
		return nil, fmt.Errorf("%w: device is %d bytes, the layout needs %d", ErrGeometry, dev.Size(), need)
	}
	var diffs []string
	cmp := func(name string, disk, cfg time.Duration) {
		if cfg != 0 && disk != cfg {
			diffs = append(diffs, fmt.Sprintf("%s is %v on disk, %v in the configuration", name, disk, cfg))
		}
	}
	cmp("heartbeat_interval", h.HeartbeatInterval, want.HeartbeatInterval)
	cmp("io_timeout", h.IOTimeout, want.IOTimeout)
	cmp("failure_timeout", h.FailureTimeout, want.FailureTimeout)
	cmp("watchdog_timeout", h.WatchdogTimeout, want.WatchdogTimeout)
	if len(diffs) > 0 {
		return nil, fmt.Errorf("%w: %s; every node must use the timings stored on the disk: fix the configuration, or stop all nodes and re-initialise the disk", ErrTimingMismatch, strings.Join(diffs, "; "))
	}
	return &Disk{dev: dev, hdr: h}, nil
}

// Header is the header the disk was opened with.
func (d *Disk) Header() Header { return d.hdr }

// Device is the underlying deadline-bounded device.
func (d *Disk) Device() *Device { return d.dev }

func (d *Disk) writeSector(ctx context.Context, lba int64, b []byte) error {
	return d.dev.Write(ctx, lba*int64(d.hdr.SectorSize), b)
}

// WriteSlot writes s into its own slot sector.
func (d *Disk) WriteSlot(ctx context.Context, s Slot) error {
	if s.NodeID > d.hdr.Slots {
		return fmt.Errorf("write slot: node id %d, disk has %d slots: %w", s.NodeID, d.hdr.Slots, ErrGeometry)
	}
	b, err := EncodeSlot(s, d.hdr.SectorSize, d.hdr.ClusterUUID)
	if err != nil {
		return err
	}
	if err := d.writeSector(ctx, d.hdr.Layout().SlotSectorLBA(s.NodeID), b); err != nil {
		return fmt.Errorf("write slot %d: %w", s.NodeID, err)
	}
	return nil
}

// SlotRead is one slot as read from the disk. Err is non-nil when the
// contents are unknown (checksum, torn write, foreign record); it is never
// a reason to treat the slot as free.
type SlotRead struct {
	ID   int
	Slot Slot
	Err  error
}

// Valid reports whether the slot decoded and was written by a daemon
// (not just initialised or cleared).
func (r SlotRead) Valid() bool { return r.Err == nil && r.Slot.Flags&FlagEmpty == 0 }

// Observation converts the read into a liveness observation.
func (r SlotRead) Observation() liveness.Observation {
	if !r.Valid() {
		return liveness.Observation{}
	}
	return liveness.Observation{Valid: true, Incarnation: r.Slot.Incarnation, Seq: r.Slot.Seq}
}

// ReadSlots reads the whole slot area in one I/O and decodes every slot.
// The error is the I/O error; decoding problems are per slot.
func (d *Disk) ReadSlots(ctx context.Context) ([]SlotRead, error) {
	ss := d.hdr.SectorSize
	b, err := d.dev.Read(ctx, SlotLBA*int64(ss), d.hdr.Slots*ss)
	if err != nil {
		return nil, fmt.Errorf("read slots: %w", err)
	}
	out := make([]SlotRead, d.hdr.Slots)
	for i := range out {
		id := i + 1
		s, err := DecodeSlot(b[i*ss:(i+1)*ss], d.hdr.ClusterUUID, id)
		out[i] = SlotRead{ID: id, Slot: s, Err: err}
	}
	return out, nil
}

// ReadSlot reads node id's slot sector alone, in one I/O. The error is
// the I/O error; a decoding problem is in the SlotRead.
func (d *Disk) ReadSlot(ctx context.Context, id int) (SlotRead, error) {
	b, err := d.readSlotSector(ctx, id)
	if err != nil {
		return SlotRead{}, err
	}
	s, err := DecodeSlot(b, d.hdr.ClusterUUID, id)
	return SlotRead{ID: id, Slot: s, Err: err}, nil
}

func (d *Disk) readSlotSector(ctx context.Context, id int) ([]byte, error) {
	if id < 1 || id > d.hdr.Slots {
		return nil, fmt.Errorf("read slot: node id %d, disk has %d slots: %w", id, d.hdr.Slots, ErrGeometry)
	}
	ss := d.hdr.SectorSize
	b, err := d.dev.Read(ctx, d.hdr.Layout().SlotSectorLBA(id)*int64(ss), ss)
	if err != nil {
		return nil, fmt.Errorf("read slot %d: %w", id, err)
	}
	return b, nil
}

// ClearSlot overwrites node id's slot with an empty record. Only for a
// node that is certainly not running: see `mtc disk clear-slot`.
func (d *Disk) ClearSlot(ctx context.Context, id int) error {
	return d.WriteSlot(ctx, Slot{NodeID: id, Flags: FlagEmpty})
}

// ReadLock reads lock index of the lock area.
func (d *Disk) ReadLock(ctx context.Context, index int) (Lock, error) {
	if index < 0 || index >= LockSectors {
		return Lock{}, fmt.Errorf("lock index %d out of range 0..%d", index, LockSectors-1)
	}
	ss := d.hdr.SectorSize
	b, err := d.dev.Read(ctx, int64(LockLBA+index)*int64(ss), ss)
	if err != nil {
		return Lock{}, fmt.Errorf("read lock %d: %w", index, err)
	}
	return DecodeLock(b, d.hdr.ClusterUUID, index)
}

// WriteLock writes l into its lock sector.
func (d *Disk) WriteLock(ctx context.Context, l Lock) error {
	b, err := EncodeLock(l, d.hdr.SectorSize, d.hdr.ClusterUUID)
	if err != nil {
		return err
	}
	if err := d.writeSector(ctx, int64(LockLBA+l.Index), b); err != nil {
		return fmt.Errorf("write lock %d: %w", l.Index, err)
	}
	return nil
}

// WriteMessage writes m into the sector that m.From owns for m.To.
func (d *Disk) WriteMessage(ctx context.Context, m Message) error {
	if m.To > d.hdr.Slots || m.From > d.hdr.Slots {
		return fmt.Errorf("write message %d->%d: %w: disk has %d slots", m.From, m.To, ErrGeometry, d.hdr.Slots)
	}
	b, err := EncodeMessage(m, d.hdr.SectorSize, d.hdr.ClusterUUID)
	if err != nil {
		return err
	}
	if err := d.writeSector(ctx, d.hdr.Layout().MessageSectorLBA(m.To, m.From), b); err != nil {
		return fmt.Errorf("write message %d->%d: %w", m.From, m.To, err)
	}
	return nil
}

// ReadMessages reads every message addressed to node to, in one I/O.
// Entry i is from node i+1.
func (d *Disk) ReadMessages(ctx context.Context, to int) ([]Message, []error, error) {
	if to < 1 || to > d.hdr.Slots {
		return nil, nil, fmt.Errorf("read messages: node id %d out of range 1..%d", to, d.hdr.Slots)
	}
	ss, n := d.hdr.SectorSize, d.hdr.Slots
	b, err := d.dev.Read(ctx, d.hdr.Layout().MessageSectorLBA(to, 1)*int64(ss), n*ss)
	if err != nil {
		return nil, nil, fmt.Errorf("read messages for %d: %w", to, err)
	}
	msgs, errs := make([]Message, n), make([]error, n)
	for i := range n {
		msgs[i], errs[i] = DecodeMessage(b[i*ss:(i+1)*ss], d.hdr.ClusterUUID, to, i+1)
	}
	return msgs, errs, nil
}
