package diskhb

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/google/uuid"
)

// The cluster state area and the node report areas hold what must outlive
// every node (operator intents, packages disabled or in maintenance,
// failure marks: the cluster state) and what each node runs (its report).
// Their payloads are opaque here: the placement layer encodes them.
//
// Layout (after the message area, from the next multiple of 64 sectors):
//
//	StateLBA                   StateSectors   cluster state, copy 0
//	StateLBA+StateSectors      StateSectors   cluster state, copy 1
//	ReportLBA+(k-1)*ReportSectors  ReportSectors  report of node id k
//
// StateSectors is StateCopyBytes (64 KiB) in sectors, ReportSectors is
// ReportBytes (16 KiB): at 16 slots, 576 KiB with 512-byte sectors and
// 1.9 MiB with 4096-byte ones, in all. What fits: a state payload of up to
// 60,928 bytes (512-byte sectors; 64,928 with 4096) and a report of up to
// 15,232 (16,232): 300 packages take about 75 bytes each in the state (name,
// flags, intended node, failed-on-node bits) and 4 in a report (package
// index, state, a bit of history), so 22 KB and 1.2 KB.
//
// A record spans several sectors; every sector carries the 32-byte prelude,
// the record's generation, the sector's index and the record's sector
// count, payload length, writer node, writer incarnation and epoch, a
// chunk of the payload, and its own CRC32C. A record is whole only if every
// one of its sectors checks and agrees on all of these: a write torn
// between sectors (the device writes sectors, not records) reads as torn,
// never as a shorter record.
//
// One writer per sector: a node's report area is written by that node
// only; the cluster state is written by one node at a time, the placement
// coordinator of the quorate partition (a rule of the writer, which this
// package cannot check), alternately into copy Generation%2, so a torn
// write leaves the previous generation whole in the other copy. Readers
// take the whole copy with the highest generation. A state area whose two
// copies are both torn, damaged or blank is unknown (ErrStateUnknown),
// never empty: Format writes an empty generation-1 record, so only a wiped
// or damaged area reads as blank.
//
// Disks formatted before these areas existed have no such areas (their
// header stores zero at bytes 136-151): they still work for heartbeats,
// and ReadState and WriteState return ErrNoStateArea, which says to
// re-initialise the disk during a cluster-wide outage.

var (
	magicState  = [8]byte{'M', 'T', 'C', 'Q', 'S', 'T', 'A', '1'}
	magicReport = [8]byte{'M', 'T', 'C', 'Q', 'R', 'P', 'T', '1'}
)

// Sizes of the state and report areas in bytes, whatever the sector size.
const (
	StateCopyBytes = 64 << 10
	ReportBytes    = 16 << 10
)

// recHeaderLen is the per-sector header of a multi-sector record.
//
//	off len field
//	0   32  prelude (magic "MTCQSTA1" state or "MTCQRPT1" report)
//	32  8   generation (> 0)
//	40  4   index of this sector in the record
//	44  4   sector count of the record
//	48  4   payload length in bytes
//	52  4   writer node id
//	56  8   writer incarnation
//	64  8   epoch (the writer's membership epoch when it wrote)
//	72  ... payload chunk, zero padded
//	S-4 4   CRC32C
const recHeaderLen = 72

// Errors of the state and report areas.
var (
	// ErrNoStateArea: the disk was formatted without state and report
	// areas.
	ErrNoStateArea = errors.New("this quorum disk has no cluster state area (it was initialised by an earlier MT-Cluster): operator intents and failure marks are not kept across a restart of the whole cluster; re-initialise it with `mtc disk init --force` while every node is stopped")
	// ErrStateUnknown: neither copy of the cluster state is whole.
	ErrStateUnknown = errors.New("cluster state unknown: neither copy on the quorum disk is whole")
	// ErrTorn: a record's sectors disagree (a write torn between them).
	ErrTorn = errors.New("record torn between sectors")
	// ErrTooLarge: a payload larger than its area.
	ErrTooLarge = errors.New("payload larger than its area")
	// ErrRecordVerify: a state or report record did not read back as
	// written although the device reported success.
	ErrRecordVerify = errors.New("record did not read back as written")
)

// ErrBlank is a state copy or report area that holds nothing: never
// written, or wiped. It matches ErrNotFormatted too.
var ErrBlank error = blankError{}

type blankError struct{}

func (blankError) Error() string   { return "blank (never written, or wiped)" }
func (blankError) Is(t error) bool { return t == ErrNotFormatted }

// Record is a cluster state or node report record.
type Record struct {
	// Generation numbers the writes of the area, from 1; the cluster
	// state's copy is Generation%2.
	Generation uint64
	// Writer and Incarnation say who wrote it (Writer 0: `mtc disk
	// init`); Epoch is the writer's membership epoch at the time.
	Writer      int
	Incarnation uint64
	Epoch       uint64
	Payload     []byte
}

// HasStateAreas reports whether the layout includes the state and report
// areas (every disk formatted by this version does).
func (l Layout) HasStateAreas() bool { return l.StateAreas }

// StateLBA is the first sector of the cluster state area.
func (l Layout) StateLBA() int64 {
	return roundUp(l.MessageLBA()+int64(l.Slots)*int64(l.Slots), 64)
}

// StateSectors is the size of one copy of the cluster state in sectors.
func (l Layout) StateSectors() int64 { return StateCopyBytes / int64(l.SectorSize) }

// StateCopyLBA is the first sector of copy c (0 or 1).
func (l Layout) StateCopyLBA(c int) int64 { return l.StateLBA() + int64(c)*l.StateSectors() }

// ReportLBA is the first sector of the report areas.
func (l Layout) ReportLBA() int64 { return l.StateLBA() + 2*l.StateSectors() }

// ReportSectors is the size of one node's report area in sectors.
func (l Layout) ReportSectors() int64 { return ReportBytes / int64(l.SectorSize) }

// ReportAreaLBA is the first sector of node id's report area.
func (l Layout) ReportAreaLBA(id int) int64 {
	return l.ReportLBA() + int64(id-1)*l.ReportSectors()
}

func chunkLen(ss int) int { return ss - recHeaderLen - 4 }

// MaxStatePayload and MaxReportPayload are the largest payloads.
func (l Layout) MaxStatePayload() int {
	return int(l.StateSectors()) * chunkLen(l.SectorSize)
}
func (l Layout) MaxReportPayload() int {
	return int(l.ReportSectors()) * chunkLen(l.SectorSize)
}

// encodeRecord returns the sectors of r, at most maxSectors of them.
func encodeRecord(magic [8]byte, r Record, ss int, cluster uuid.UUID, maxSectors int64) ([]byte, error) {
	if err := checkSectorSize(ss); err != nil {
		return nil, err
	}
	if r.Generation == 0 {
		return nil, errors.New("record generation 0: generations start at 1")
	}
	if r.Writer < 0 || r.Writer > MaxSlots {
		return nil, fmt.Errorf("%w: writer node id %d", ErrGeometry, r.Writer)
	}
	cl := chunkLen(ss)
	n := max(1, (len(r.Payload)+cl-1)/cl)
	if int64(n) > maxSectors {
		return nil, fmt.Errorf("%w: %d bytes, the area holds %d", ErrTooLarge, len(r.Payload), int(maxSectors)*cl)
	}
	out := make([]byte, n*ss)
	for i := range n {
		b := out[i*ss : (i+1)*ss]
		putPrelude(b, magic, cluster)
		le.PutUint64(b[32:], r.Generation)
		le.PutUint32(b[40:], uint32(i))
		le.PutUint32(b[44:], uint32(n))
		le.PutUint32(b[48:], uint32(len(r.Payload)))
		le.PutUint32(b[52:], uint32(r.Writer))
		le.PutUint64(b[56:], r.Incarnation)
		le.PutUint64(b[64:], r.Epoch)
		lo := min(i*cl, len(r.Payload))
		copy(b[recHeaderLen:ss-4], r.Payload[lo:min(lo+cl, len(r.Payload))])
		seal(b)
	}
	return out, nil
}

// decodeRecord reads a record from the start of area (whole sectors).
// writer, when not 0, is the only node allowed to have written it.
func decodeRecord(area []byte, magic [8]byte, ss int, cluster uuid.UUID, writer int) (Record, error) {
	if len(area) < ss || len(area)%ss != 0 {
		return Record{}, fmt.Errorf("%w: area of %d bytes", ErrGeometry, len(area))
	}
	first := area[:ss]
	if err := checkPrelude(first, magic, cluster, ErrChecksum); err != nil {
		if isZero(first) {
			return Record{}, ErrBlank
		}
		return Record{}, err
	}
	r := Record{
		Generation:  le.Uint64(first[32:]),
		Writer:      int(le.Uint32(first[52:])),
		Incarnation: le.Uint64(first[56:]),
		Epoch:       le.Uint64(first[64:]),
	}
	n := int(le.Uint32(first[44:]))
	length := int(le.Uint32(first[48:]))
	cl := chunkLen(ss)
	switch {
	case le.Uint32(first[40:]) != 0:
		return Record{}, fmt.Errorf("%w: the first sector says it is sector %d", ErrTorn, le.Uint32(first[40:]))
	case n < 1 || n*ss > len(area) || length > n*cl || length <= (n-1)*cl && n > 1:
		return Record{}, fmt.Errorf("%w: %d sectors for %d bytes in an area of %d sectors", ErrChecksum, n, length, len(area)/ss)
	case r.Generation == 0:
		return Record{}, fmt.Errorf("%w: generation 0", ErrChecksum)
	case r.Writer < 0 || r.Writer > MaxSlots:
		return Record{}, fmt.Errorf("%w: writer node id %d", ErrGeometry, r.Writer)
	case writer != 0 && r.Writer != writer:
		return Record{}, fmt.Errorf("%w: written by node %d in the area of node %d", ErrGeometry, r.Writer, writer)
	}
	r.Payload = make([]byte, length)
	for i := range n {
		b := area[i*ss : (i+1)*ss]
		if i > 0 {
			if err := checkPrelude(b, magic, cluster, ErrChecksum); err != nil {
				return Record{}, fmt.Errorf("%w: sector %d of %d: %w", ErrTorn, i, n, err)
			}
			if le.Uint64(b[32:]) != r.Generation || le.Uint32(b[40:]) != uint32(i) || int(le.Uint32(b[44:])) != n ||
				int(le.Uint32(b[48:])) != length || int(le.Uint32(b[52:])) != r.Writer ||
				le.Uint64(b[56:]) != r.Incarnation || le.Uint64(b[64:]) != r.Epoch {
				return Record{}, fmt.Errorf("%w: sector %d of %d belongs to generation %d, sector 0 to %d", ErrTorn, i, n, le.Uint64(b[32:]), r.Generation)
			}
		}
		lo := min(i*cl, length)
		copy(r.Payload[lo:min(lo+cl, length)], b[recHeaderLen:ss-4])
	}
	return r, nil
}

// EncodeStateRecord and DecodeStateRecord are the cluster state's record
// codec, for tests and tools; ReadState and WriteState use them.
func EncodeStateRecord(r Record, l Layout, cluster uuid.UUID) ([]byte, error) {
	return encodeRecord(magicState, r, l.SectorSize, cluster, l.StateSectors())
}

// DecodeStateRecord decodes one copy of the cluster state.
func DecodeStateRecord(area []byte, ss int, cluster uuid.UUID) (Record, error) {
	return decodeRecord(area, magicState, ss, cluster, 0)
}

// StateRead is what ReadState found: the newest whole copy, and what is
// wrong with each copy (nil for a whole one).
type StateRead struct {
	Record Record
	// Copy is which copy Record came from.
	Copy int
	// Problems are per copy.
	Problems [2]error
}

// ReadState reads both copies of the cluster state and returns the whole
// one with the higher generation. Neither whole: ErrStateUnknown, wrapping
// both problems.
func (d *Disk) ReadState(ctx context.Context) (StateRead, error) {
	l := d.hdr.Layout()
	if !l.StateAreas {
		return StateRead{}, ErrNoStateArea
	}
	ss := d.hdr.SectorSize
	b, err := d.dev.Read(ctx, l.StateLBA()*int64(ss), int(2*l.StateSectors())*ss)
	if err != nil {
		return StateRead{}, fmt.Errorf("read cluster state: %w", err)
	}
	var sr StateRead
	var recs [2]Record
	best := -1
	for c := range 2 {
		area := b[int64(c)*l.StateSectors()*int64(ss) : int64(c+1)*l.StateSectors()*int64(ss)]
		recs[c], sr.Problems[c] = decodeRecord(area, magicState, ss, d.hdr.ClusterUUID, 0)
		if sr.Problems[c] == nil && recs[c].Generation%2 != uint64(c) {
			sr.Problems[c] = fmt.Errorf("%w: generation %d in copy %d", ErrChecksum, recs[c].Generation, c)
		}
		if sr.Problems[c] == nil && (best < 0 || recs[c].Generation > recs[best].Generation) {
			best = c
		}
	}
	if best < 0 {
		return sr, fmt.Errorf("%w (copy 0: %w; copy 1: %w)", ErrStateUnknown, sr.Problems[0], sr.Problems[1])
	}
	sr.Record, sr.Copy = recs[best], best
	return sr, nil
}

// WriteState writes r into copy r.Generation%2 and reads it back. The
// caller is the one writer of the cluster state (see above) and gives the
// generation after the one it read.
func (d *Disk) WriteState(ctx context.Context, r Record) error {
	l := d.hdr.Layout()
	if !l.StateAreas {
		return ErrNoStateArea
	}
	b, err := EncodeStateRecord(r, l, d.hdr.ClusterUUID)
	if err != nil {
		return fmt.Errorf("write cluster state: %w", err)
	}
	return d.writeRecord(ctx, l.StateCopyLBA(int(r.Generation%2)), b, "cluster state")
}

// ReadReport reads node id's report.
func (d *Disk) ReadReport(ctx context.Context, id int) (Record, error) {
	l := d.hdr.Layout()
	if !l.StateAreas {
		return Record{}, ErrNoStateArea
	}
	if id < 1 || id > d.hdr.Slots {
		return Record{}, fmt.Errorf("read report: node id %d, disk has %d slots: %w", id, d.hdr.Slots, ErrGeometry)
	}
	ss := d.hdr.SectorSize
	b, err := d.dev.Read(ctx, l.ReportAreaLBA(id)*int64(ss), int(l.ReportSectors())*ss)
	if err != nil {
		return Record{}, fmt.Errorf("read report of node %d: %w", id, err)
	}
	r, err := decodeRecord(b, magicReport, ss, d.hdr.ClusterUUID, id)
	if err != nil {
		return Record{}, fmt.Errorf("report of node %d: %w", id, err)
	}
	return r, nil
}

// WriteReport writes r into node r.Writer's report area and reads it back.
func (d *Disk) WriteReport(ctx context.Context, r Record) error {
	l := d.hdr.Layout()
	if !l.StateAreas {
		return ErrNoStateArea
	}
	if r.Writer < 1 || r.Writer > d.hdr.Slots {
		return fmt.Errorf("write report: node id %d, disk has %d slots: %w", r.Writer, d.hdr.Slots, ErrGeometry)
	}
	b, err := encodeRecord(magicReport, r, d.hdr.SectorSize, d.hdr.ClusterUUID, l.ReportSectors())
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return d.writeRecord(ctx, l.ReportAreaLBA(r.Writer), b, fmt.Sprintf("report of node %d", r.Writer))
}

// writeRecord writes a record's sectors in one I/O and reads them back: a
// device that acknowledged a write it did not keep is found now, not at
// the next whole-cluster restart.
func (d *Disk) writeRecord(ctx context.Context, lba int64, b []byte, what string) error {
	off := lba * int64(d.hdr.SectorSize)
	if err := d.dev.Write(ctx, off, b); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	got, err := d.dev.Read(ctx, off, len(b))
	if err != nil {
		return fmt.Errorf("read back %s: %w", what, err)
	}
	if crc32.Checksum(got, castagnoli) != crc32.Checksum(b, castagnoli) {
		return fmt.Errorf("%w: %s read back differs from what was written", ErrRecordVerify, what)
	}
	return nil
}
