package diskhb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"time"

	"github.com/google/uuid"
)

// FormatVersion is the on-disk format version this code writes and reads.
const FormatVersion = 1

// Record magics: 8 bytes at offset 0 of every sector the format owns.
var (
	magicHeader  = [8]byte{'M', 'T', 'C', 'Q', 'H', 'D', 'R', '1'}
	magicSlot    = [8]byte{'M', 'T', 'C', 'Q', 'S', 'L', 'T', '1'}
	magicLock    = [8]byte{'M', 'T', 'C', 'Q', 'L', 'C', 'K', '1'}
	magicMessage = [8]byte{'M', 'T', 'C', 'Q', 'M', 'S', 'G', '1'}
)

// Layout constants, in logical sectors (LBAs) from the start of the device.
const (
	HeaderLBA     = 0  // the header sector
	LockLBA       = 8  // first sector of the lock area
	LockSectors   = 8  // lock area size: index 0 is the tie-break lock
	ConfigLBA     = 16 // first sector of the config area (reserved)
	ConfigSectors = 48 // config area size
	SlotLBA       = 64 // slot of node id k is at SlotLBA + k - 1

	// MaxSlots is the largest slot count (and so the largest node id). The
	// membership bitmasks in a slot are 64 bits wide.
	MaxSlots = 64
	// DefaultSlots is the slot count written by `mtc disk init`: the
	// largest supported cluster.
	DefaultSlots = 16

	// TieBreakLock is the index in the lock area of the tie-break lock.
	TieBreakLock = 0

	// MaxPayload is the largest opaque payload a slot carries for the
	// membership layer.
	MaxPayload = 256
)

// Layout gives the position of every area for a given slot count.
type Layout struct {
	SectorSize int
	Slots      int
	// StateAreas: the disk has the cluster state and node report areas
	// after the message area (state.go); every disk this version formats
	// does, disks formatted before them do not.
	StateAreas bool
}

// MessageLBA is the first sector of the message area: one sector per
// (receiver, sender) pair, so every sector keeps exactly one writer.
func (l Layout) MessageLBA() int64 { return SlotLBA + roundUp(int64(l.Slots), 64) }

// MessageSectorLBA is where sender writes its messages for receiver.
func (l Layout) MessageSectorLBA(to, from int) int64 {
	return l.MessageLBA() + int64(to-1)*int64(l.Slots) + int64(from-1)
}

// SlotSectorLBA is the slot sector of node id.
func (l Layout) SlotSectorLBA(id int) int64 { return SlotLBA + int64(id-1) }

// EndLBA is the first sector past the format's areas.
func (l Layout) EndLBA() int64 {
	if l.StateAreas {
		return l.ReportLBA() + int64(l.Slots)*l.ReportSectors()
	}
	return l.MessageLBA() + int64(l.Slots)*int64(l.Slots)
}

// MinSize is the smallest device in bytes that holds this layout.
func (l Layout) MinSize() int64 { return l.EndLBA() * int64(l.SectorSize) }

func roundUp(v, m int64) int64 { return (v + m - 1) / m * m }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Common record prelude, shared by every record type:
//
//	off len field
//	0   8   magic (record type specific)
//	8   4   format version
//	12  4   sector size the record was written for
//	16  16  cluster UUID
//	S-4 4   CRC32C (Castagnoli) of bytes [0, S-4)
//
// The checksum sits in the last four bytes of the sector, so a write torn
// anywhere leaves a mismatching checksum.
const (
	offMagic   = 0
	offVersion = 8
	offSecSize = 12
	offUUID    = 16
	preludeLen = 32
)

var le = binary.LittleEndian

func putPrelude(b []byte, magic [8]byte, cluster uuid.UUID) {
	copy(b[offMagic:], magic[:])
	le.PutUint32(b[offVersion:], FormatVersion)
	le.PutUint32(b[offSecSize:], uint32(len(b)))
	copy(b[offUUID:], cluster[:])
}

func seal(b []byte) {
	n := len(b) - 4
	le.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
}

// maxMagicDistance is how many bits a magic may differ from a record's
// magic and still be recognised as that record, damaged: one flipped bit
// must not turn a quorum disk into "not a quorum disk" (and so into one
// that `mtc disk init` may erase). The four record magics differ from
// each other in at least 7 bits, and random bytes come within 4 bits of a
// given 64-bit magic with a probability of about 4e-14.
const maxMagicDistance = 4

// magicDistance is the number of bits in which b's first 8 bytes differ
// from magic.
func magicDistance(b []byte, magic [8]byte) int {
	d := 0
	for i := range magic {
		d += bits.OnesCount8(b[i] ^ magic[i])
	}
	return d
}

// checkPrelude validates a record in the order that gives the most useful
// error: no magic at all, then checksum, then version, then cluster. A
// magic within maxMagicDistance bits of the expected one, and a checksum
// that does not match, are reported wrapping damaged as well (ErrChecksum
// for most records, ErrDamagedHeader for the header).
func checkPrelude(b []byte, magic [8]byte, cluster uuid.UUID, damaged error) error {
	if len(b) != 512 && len(b) != 4096 {
		return fmt.Errorf("%w: record of %d bytes, want 512 or 4096", ErrGeometry, len(b))
	}
	if !bytes.Equal(b[offMagic:offMagic+8], magic[:]) {
		if isZero(b) {
			return fmt.Errorf("%w: sector is blank", ErrNotFormatted)
		}
		if d := magicDistance(b, magic); d <= maxMagicDistance {
			return fmt.Errorf("%w: magic %q is %d bit(s) away from %q", damaged, printable(b[:8]), d, magic[:])
		}
		return fmt.Errorf("%w: magic %q", ErrNotFormatted, printable(b[:8]))
	}
	n := len(b) - 4
	if got, want := le.Uint32(b[n:]), crc32.Checksum(b[:n], castagnoli); got != want {
		if damaged != ErrChecksum {
			return fmt.Errorf("%w: %w: stored %08x, computed %08x", damaged, ErrChecksum, got, want)
		}
		return fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, got, want)
	}
	if v := le.Uint32(b[offVersion:]); v != FormatVersion {
		return fmt.Errorf("%w: %d (this mtc reads version %d)", ErrVersion, v, FormatVersion)
	}
	if ss := le.Uint32(b[offSecSize:]); int(ss) != len(b) {
		return fmt.Errorf("%w: record written for %d-byte sectors, read as %d", ErrGeometry, ss, len(b))
	}
	if cluster != uuid.Nil {
		var got uuid.UUID
		copy(got[:], b[offUUID:offUUID+16])
		if got != cluster {
			return fmt.Errorf("%w: record of cluster %s, expected %s", ErrForeignCluster, got, cluster)
		}
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}

func putString(b []byte, s string) {
	clear(b)
	copy(b, s)
}

func getString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Header is the first sector of a quorum disk. Every node checks it at start
// and refuses to join when it names another cluster, another geometry or
// other timing bases than its own configuration.
//
//	off len field
//	0   32  prelude (magic "MTCQHDR1", version, sector size, cluster UUID)
//	32  4   slot count
//	36  4   reserved (0)
//	40  8   heartbeat interval, ns
//	48  8   I/O timeout, ns
//	56  8   failure timeout, ns
//	64  8   watchdog timeout, ns
//	72  8   formatted at, Unix ns (wall clock, for display only)
//	80  32  cluster name, NUL padded
//	112 4   lock area LBA      116 4  lock area sectors
//	120 4   config area LBA    124 4  config area sectors
//	128 4   slot area LBA      132 4  message area LBA
//	136 4   state area LBA     140 4  state copy sectors   (0: no state
//	144 4   report area LBA    148 4  report sectors        areas)
//	S-4 4   CRC32C
type Header struct {
	ClusterUUID       uuid.UUID
	ClusterName       string
	SectorSize        int
	Slots             int
	HeartbeatInterval time.Duration
	IOTimeout         time.Duration
	FailureTimeout    time.Duration
	WatchdogTimeout   time.Duration
	FormattedAt       time.Time
	// StateAreas: the disk has the cluster state and report areas (bytes
	// 136-151 hold their positions; zero on disks formatted before them).
	StateAreas bool
}

// Layout of the disk this header describes.
func (h Header) Layout() Layout {
	return Layout{SectorSize: h.SectorSize, Slots: h.Slots, StateAreas: h.StateAreas}
}

func checkSectorSize(ss int) error {
	if ss != 512 && ss != 4096 {
		return fmt.Errorf("%w: sector size %d, want 512 or 4096", ErrGeometry, ss)
	}
	return nil
}

// EncodeHeader returns the header sector.
func EncodeHeader(h Header) ([]byte, error) {
	if err := checkSectorSize(h.SectorSize); err != nil {
		return nil, err
	}
	if h.Slots < 1 || h.Slots > MaxSlots {
		return nil, fmt.Errorf("%w: slot count %d, want 1..%d", ErrGeometry, h.Slots, MaxSlots)
	}
	if len(h.ClusterName) > 32 {
		return nil, fmt.Errorf("cluster name %q is longer than 32 bytes", h.ClusterName)
	}
	if err := h.checkTimings(); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	b := make([]byte, h.SectorSize)
	putPrelude(b, magicHeader, h.ClusterUUID)
	le.PutUint32(b[32:], uint32(h.Slots))
	le.PutUint64(b[40:], uint64(h.HeartbeatInterval))
	le.PutUint64(b[48:], uint64(h.IOTimeout))
	le.PutUint64(b[56:], uint64(h.FailureTimeout))
	le.PutUint64(b[64:], uint64(h.WatchdogTimeout))
	if !h.FormattedAt.IsZero() {
		le.PutUint64(b[72:], uint64(h.FormattedAt.UnixNano()))
	}
	putString(b[80:112], h.ClusterName)
	l := h.Layout()
	le.PutUint32(b[112:], LockLBA)
	le.PutUint32(b[116:], LockSectors)
	le.PutUint32(b[120:], ConfigLBA)
	le.PutUint32(b[124:], ConfigSectors)
	le.PutUint32(b[128:], SlotLBA)
	le.PutUint32(b[132:], uint32(l.MessageLBA()))
	if l.StateAreas {
		le.PutUint32(b[136:], uint32(l.StateLBA()))
		le.PutUint32(b[140:], uint32(l.StateSectors()))
		le.PutUint32(b[144:], uint32(l.ReportLBA()))
		le.PutUint32(b[148:], uint32(l.ReportSectors()))
	}
	seal(b)
	return b, nil
}

// ErrDamagedHeader means the header sector holds what was an MT-Cluster
// header, but it cannot be trusted: its magic is a few bits away from the
// header's, its checksum does not match, or it checksums but describes an
// impossible disk (a slot count or timing base out of range). Unlike
// ErrNotFormatted, it means the device very likely is a cluster's quorum
// disk whose nodes may still be running: never re-initialise it without
// first checking that no slot changes (`mtc disk dump`).
var ErrDamagedHeader = errors.New("damaged MT-Cluster quorum disk header")

// headerAreas are the area offsets every version-1 header stores at bytes
// 112-135 (the message area is at LBA 128 for every slot count up to
// MaxSlots). A sector that carries them under a wrong magic is a damaged
// header, not a foreign one.
var headerAreas = [6]uint32{LockLBA, LockSectors, ConfigLBA, ConfigSectors, SlotLBA, SlotLBA + MaxSlots}

func hasHeaderAreas(b []byte) bool {
	if len(b) < 136 {
		return false
	}
	for i, v := range headerAreas {
		if le.Uint32(b[112+4*i:]) != v {
			return false
		}
	}
	return true
}

// HeaderSectorSize reports the sector size that the header in b, the first
// bytes of a device, says it was written for: when b holds a header whose
// magic is at most a few bits damaged and whose sector-size field is 512 or
// 4096. It lets a tool read a regular file with the sector size it was
// formatted with.
func HeaderSectorSize(b []byte) (int, bool) {
	if len(b) < 136 || (magicDistance(b, magicHeader) > maxMagicDistance && !hasHeaderAreas(b)) {
		return 0, false
	}
	switch ss := le.Uint32(b[offSecSize:]); ss {
	case 512, 4096:
		return int(ss), true
	}
	return 0, false
}

// DecodeHeader parses a header sector. cluster may be uuid.Nil to accept any
// cluster (for inspection); otherwise a header of another cluster is
// ErrForeignCluster. A sector with no header at all is ErrNotFormatted; a
// header that is there but damaged or impossible is ErrDamagedHeader.
func DecodeHeader(b []byte, cluster uuid.UUID) (Header, error) {
	if err := checkPrelude(b, magicHeader, cluster, ErrDamagedHeader); err != nil {
		if errors.Is(err, ErrNotFormatted) && hasHeaderAreas(b) {
			return Header{}, fmt.Errorf("header: %w: magic %q, but the area offsets of an MT-Cluster header", ErrDamagedHeader, printable(b[:8]))
		}
		return Header{}, fmt.Errorf("header: %w", err)
	}
	var h Header
	copy(h.ClusterUUID[:], b[offUUID:offUUID+16])
	h.SectorSize = len(b)
	h.Slots = int(le.Uint32(b[32:]))
	h.HeartbeatInterval = time.Duration(le.Uint64(b[40:]))
	h.IOTimeout = time.Duration(le.Uint64(b[48:]))
	h.FailureTimeout = time.Duration(le.Uint64(b[56:]))
	h.WatchdogTimeout = time.Duration(le.Uint64(b[64:]))
	if ns := le.Uint64(b[72:]); ns != 0 {
		h.FormattedAt = time.Unix(0, int64(ns)).UTC()
	}
	h.ClusterName = getString(b[80:112])
	if h.Slots < 1 || h.Slots > MaxSlots {
		return Header{}, fmt.Errorf("header: %w: %w: slot count %d, want 1..%d", ErrDamagedHeader, ErrGeometry, h.Slots, MaxSlots)
	}
	l := h.Layout()
	if le.Uint32(b[112:]) != LockLBA || le.Uint32(b[116:]) != LockSectors ||
		le.Uint32(b[120:]) != ConfigLBA || le.Uint32(b[124:]) != ConfigSectors ||
		le.Uint32(b[128:]) != SlotLBA || int64(le.Uint32(b[132:])) != l.MessageLBA() {
		return Header{}, fmt.Errorf("header: %w: %w: area offsets differ from format version %d", ErrDamagedHeader, ErrGeometry, FormatVersion)
	}
	if !isZero(b[136:152]) {
		h.StateAreas = true
		l = h.Layout()
		if int64(le.Uint32(b[136:])) != l.StateLBA() || int64(le.Uint32(b[140:])) != l.StateSectors() ||
			int64(le.Uint32(b[144:])) != l.ReportLBA() || int64(le.Uint32(b[148:])) != l.ReportSectors() {
			return Header{}, fmt.Errorf("header: %w: %w: state and report area offsets differ from format version %d", ErrDamagedHeader, ErrGeometry, FormatVersion)
		}
	}
	if err := h.checkTimings(); err != nil {
		return Header{}, fmt.Errorf("header: %w: %w", ErrDamagedHeader, err)
	}
	return h, nil
}

// errTiming is a timing base in a header that no configuration can have.
var errTiming = errors.New("timing base out of range")

// maxTiming bounds every timing base in a header: far above any sane
// configuration (a failure timeout of minutes would already be useless),
// low enough that sums of the bases cannot overflow a time.Duration.
const maxTiming = 24 * time.Hour

// checkTimings rejects timing bases that are zero, negative or absurd: a
// header holding them was not written by a valid configuration.
func (h Header) checkTimings() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat_interval", h.HeartbeatInterval}, {"io_timeout", h.IOTimeout},
		{"failure_timeout", h.FailureTimeout}, {"watchdog_timeout", h.WatchdogTimeout},
	} {
		if f.v <= 0 || f.v > maxTiming {
			return fmt.Errorf("%w: %s is %d ns, want more than 0 and at most %v", errTiming, f.name, int64(f.v), maxTiming)
		}
	}
	return nil
}

// WriterGoneAfter is how long a slot must stay unchanged before the
// quorum-disk tools may conclude that no daemon writes it, judged by this
// header's timing: a daemon that cannot write its slot for failure_timeout
// stops feeding its watchdog, which resets it within watchdog_timeout; two
// heartbeat intervals cover the sampling, and a twentieth of the rest the
// clock-rate drift between nodes (config.MaxClockDrift is 5%).
func (h Header) WriterGoneAfter() time.Duration {
	base := h.FailureTimeout + h.WatchdogTimeout
	return base + base/20 + 2*h.HeartbeatInterval
}

// Slot flags: the writer's state, for peers and for `mtc disk dump`.
const (
	// FlagEmpty marks a slot written by `mtc disk init` or `clear-slot`:
	// no daemon has written it since.
	FlagEmpty uint32 = 1 << iota
	// FlagRunning: the daemon is running.
	FlagRunning
	// FlagQuorate: the writer holds quorum.
	FlagQuorate
	// FlagSelfFencing: the writer has stopped feeding its watchdog and is
	// stopping its packages.
	FlagSelfFencing
	// FlagLeaving: the writer is leaving the cluster cleanly.
	FlagLeaving
)

// FlagsDefined are the flag bits format version 1 defines; a slot with
// any other bit set was not written by this format's encoder as intended.
const FlagsDefined = FlagEmpty | FlagRunning | FlagQuorate | FlagSelfFencing | FlagLeaving

// FlagNames renders flags for humans; bits this format does not define
// are shown as "undefined:0x...".
func FlagNames(f uint32) []string {
	var out []string
	for i, n := range []string{"empty", "running", "quorate", "self-fencing", "leaving"} {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if u := f &^ FlagsDefined; u != 0 {
		out = append(out, fmt.Sprintf("undefined:%#x", u))
	}
	return out
}

// Empty reports whether the slot is exactly an empty record, as `mtc disk
// init` and `clear-slot` write it: the empty flag and no other. A record
// with the empty flag and others set is contradictory, not empty.
func (s Slot) Empty() bool { return s.Flags == FlagEmpty }

// Slot is the record a node writes in its own slot sector every heartbeat
// interval. Only the node with this id ever writes this sector.
//
//	off len field
//	0   32  prelude (magic "MTCQSLT1", version, sector size, cluster UUID)
//	32  4   node id (1-based; must match the slot's position)
//	36  4   flags (Flag*)
//	40  8   incarnation: random, chosen at each daemon start
//	48  8   sequence number: +1 per write within an incarnation
//	56  8   membership epoch
//	64  8   view: bit i-1 set = the writer hears node i on the network
//	72  8   members: bit i-1 set = node i is in the writer's membership
//	80  8   config generation
//	88  8   written at, Unix ns (writer's wall clock; display only, never
//	        compared with another node's clock)
//	96  32  node name, NUL padded
//	128 2   payload length
//	130 256 payload (opaque to this package)
//	S-4 4   CRC32C
type Slot struct {
	NodeID      int
	Flags       uint32
	Incarnation uint64
	Seq         uint64
	Epoch       uint64
	View        uint64
	Members     uint64
	ConfigGen   uint64
	WrittenAt   time.Time
	NodeName    string
	Payload     []byte
}

// EncodeSlot returns the slot sector for s.
func EncodeSlot(s Slot, sectorSize int, cluster uuid.UUID) ([]byte, error) {
	if err := checkSectorSize(sectorSize); err != nil {
		return nil, err
	}
	if s.NodeID < 1 || s.NodeID > MaxSlots {
		return nil, fmt.Errorf("slot: node id %d out of range 1..%d", s.NodeID, MaxSlots)
	}
	if len(s.Payload) > MaxPayload {
		return nil, fmt.Errorf("slot: payload of %d bytes exceeds %d", len(s.Payload), MaxPayload)
	}
	if len(s.NodeName) > 32 {
		return nil, fmt.Errorf("slot: node name %q is longer than 32 bytes", s.NodeName)
	}
	b := make([]byte, sectorSize)
	putPrelude(b, magicSlot, cluster)
	le.PutUint32(b[32:], uint32(s.NodeID))
	le.PutUint32(b[36:], s.Flags)
	le.PutUint64(b[40:], s.Incarnation)
	le.PutUint64(b[48:], s.Seq)
	le.PutUint64(b[56:], s.Epoch)
	le.PutUint64(b[64:], s.View)
	le.PutUint64(b[72:], s.Members)
	le.PutUint64(b[80:], s.ConfigGen)
	if !s.WrittenAt.IsZero() {
		le.PutUint64(b[88:], uint64(s.WrittenAt.UnixNano()))
	}
	putString(b[96:128], s.NodeName)
	le.PutUint16(b[128:], uint16(len(s.Payload)))
	copy(b[130:], s.Payload)
	seal(b)
	return b, nil
}

// DecodeSlot parses the slot sector expected to belong to node id want (0
// accepts any). Any error means the slot's contents are unknown.
func DecodeSlot(b []byte, cluster uuid.UUID, want int) (Slot, error) {
	if err := checkPrelude(b, magicSlot, cluster, ErrChecksum); err != nil {
		return Slot{}, fmt.Errorf("slot %d: %w", want, err)
	}
	var s Slot
	s.NodeID = int(le.Uint32(b[32:]))
	if want != 0 && s.NodeID != want {
		return Slot{}, fmt.Errorf("slot %d: %w: holds a record of node %d", want, ErrGeometry, s.NodeID)
	}
	s.Flags = le.Uint32(b[36:])
	s.Incarnation = le.Uint64(b[40:])
	s.Seq = le.Uint64(b[48:])
	s.Epoch = le.Uint64(b[56:])
	s.View = le.Uint64(b[64:])
	s.Members = le.Uint64(b[72:])
	s.ConfigGen = le.Uint64(b[80:])
	if ns := le.Uint64(b[88:]); ns != 0 {
		s.WrittenAt = time.Unix(0, int64(ns)).UTC()
	}
	s.NodeName = getString(b[96:128])
	n := int(le.Uint16(b[128:]))
	if n > MaxPayload {
		return Slot{}, fmt.Errorf("slot %d: %w: payload length %d exceeds %d", want, ErrGeometry, n, MaxPayload)
	}
	if n > 0 {
		s.Payload = append([]byte(nil), b[130:130+n]...)
	}
	return s, nil
}

// Lock is a record in the lock area. The tie-break lock is index 0.
//
//	off len field
//	0   32  prelude (magic "MTCQLCK1", version, sector size, cluster UUID)
//	32  4   lock index
//	36  4   owner node id; 0 = free
//	40  8   owner incarnation
//	48  8   generation: +1 on every change of owner
//	56  8   written at, Unix ns (display only)
//	S-4 4   CRC32C
//
// Unlike slots, a lock sector has several potential writers; the protocol
// that makes this safe (claim, wait, read back) belongs to the membership
// layer. A lock whose checksum fails is unknown, never free.
type Lock struct {
	Index            int
	Owner            int
	OwnerIncarnation uint64
	Generation       uint64
	WrittenAt        time.Time
}

// Free reports whether nobody owns the lock.
func (l Lock) Free() bool { return l.Owner == 0 }

// EncodeLock returns the lock sector for l.
func EncodeLock(l Lock, sectorSize int, cluster uuid.UUID) ([]byte, error) {
	if err := checkSectorSize(sectorSize); err != nil {
		return nil, err
	}
	if l.Index < 0 || l.Index >= LockSectors {
		return nil, fmt.Errorf("lock: index %d out of range 0..%d", l.Index, LockSectors-1)
	}
	if l.Owner < 0 || l.Owner > MaxSlots {
		return nil, fmt.Errorf("lock: owner %d out of range 0..%d", l.Owner, MaxSlots)
	}
	b := make([]byte, sectorSize)
	putPrelude(b, magicLock, cluster)
	le.PutUint32(b[32:], uint32(l.Index))
	le.PutUint32(b[36:], uint32(l.Owner))
	le.PutUint64(b[40:], l.OwnerIncarnation)
	le.PutUint64(b[48:], l.Generation)
	if !l.WrittenAt.IsZero() {
		le.PutUint64(b[56:], uint64(l.WrittenAt.UnixNano()))
	}
	seal(b)
	return b, nil
}

// DecodeLock parses lock sector number index.
func DecodeLock(b []byte, cluster uuid.UUID, index int) (Lock, error) {
	if err := checkPrelude(b, magicLock, cluster, ErrChecksum); err != nil {
		return Lock{}, fmt.Errorf("lock %d: %w", index, err)
	}
	var l Lock
	l.Index = int(le.Uint32(b[32:]))
	if l.Index != index {
		return Lock{}, fmt.Errorf("lock %d: %w: holds lock record %d", index, ErrGeometry, l.Index)
	}
	l.Owner = int(le.Uint32(b[36:]))
	if l.Owner > MaxSlots {
		return Lock{}, fmt.Errorf("lock %d: %w: owner %d out of range", index, ErrGeometry, l.Owner)
	}
	l.OwnerIncarnation = le.Uint64(b[40:])
	l.Generation = le.Uint64(b[48:])
	if ns := le.Uint64(b[56:]); ns != 0 {
		l.WrittenAt = time.Unix(0, int64(ns)).UTC()
	}
	return l, nil
}

// Message commands carried in the message area.
const (
	// MsgNone: an empty message sector.
	MsgNone uint32 = 0
	// MsgReset asks the receiver to stop its packages and reset itself
	// (a "poison pill"), as part of disk-based fencing.
	MsgReset uint32 = 1
)

// Message is a record in the message area: sender From writes it for
// receiver To; only From ever writes that sector.
//
//	off len field
//	0   32  prelude (magic "MTCQMSG1", version, sector size, cluster UUID)
//	32  4   to (receiver node id)
//	36  4   from (sender node id)
//	40  8   sequence number (+1 per message)
//	48  4   command (Msg*)
//	52  4   reserved
//	56  8   target incarnation: the receiver incarnation it is meant for
//	64  8   argument
//	S-4 4   CRC32C
type Message struct {
	To, From          int
	Seq               uint64
	Command           uint32
	TargetIncarnation uint64
	Arg               uint64
}

// EncodeMessage returns the message sector for m.
func EncodeMessage(m Message, sectorSize int, cluster uuid.UUID) ([]byte, error) {
	if err := checkSectorSize(sectorSize); err != nil {
		return nil, err
	}
	if m.To < 1 || m.To > MaxSlots || m.From < 1 || m.From > MaxSlots {
		return nil, fmt.Errorf("message: node ids %d -> %d out of range 1..%d", m.From, m.To, MaxSlots)
	}
	b := make([]byte, sectorSize)
	putPrelude(b, magicMessage, cluster)
	le.PutUint32(b[32:], uint32(m.To))
	le.PutUint32(b[36:], uint32(m.From))
	le.PutUint64(b[40:], m.Seq)
	le.PutUint32(b[48:], m.Command)
	le.PutUint64(b[56:], m.TargetIncarnation)
	le.PutUint64(b[64:], m.Arg)
	seal(b)
	return b, nil
}

// DecodeMessage parses the message sector from -> to.
func DecodeMessage(b []byte, cluster uuid.UUID, to, from int) (Message, error) {
	if err := checkPrelude(b, magicMessage, cluster, ErrChecksum); err != nil {
		return Message{}, fmt.Errorf("message %d->%d: %w", from, to, err)
	}
	m := Message{
		To:                int(le.Uint32(b[32:])),
		From:              int(le.Uint32(b[36:])),
		Seq:               le.Uint64(b[40:]),
		Command:           le.Uint32(b[48:]),
		TargetIncarnation: le.Uint64(b[56:]),
		Arg:               le.Uint64(b[64:]),
	}
	if m.To != to || m.From != from {
		return Message{}, fmt.Errorf("message %d->%d: %w: holds message %d->%d", from, to, ErrGeometry, m.From, m.To)
	}
	return m, nil
}
