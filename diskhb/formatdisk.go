package diskhb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrWouldErase is returned by Format without force when the area it would
// write holds anything but zeros: a quorum disk header (of any cluster), a
// damaged one, another program's signature, or data.
var ErrWouldErase = errors.New("refusing to overwrite a device that is not blank")

// ErrInUse is returned by Format, even when forced, while sectors of the
// quorum area change: a daemon (or another program) is writing the device.
var ErrInUse = errors.New("refusing to format a quorum disk in use")

// FormatPlan describes what a device holds in the area Format would write.
type FormatPlan struct {
	// Existing is the header found on the device, if it decoded.
	Existing *Header
	// ExistingErr is why the first sector did not decode as a header:
	// ErrNotFormatted for no header at all, ErrDamagedHeader for one that
	// is there but damaged.
	ExistingErr error
	// Signatures are other programs' signatures found at the start of the
	// device ("an ext4 filesystem").
	Signatures []string
	// FirstData is the offset of the first byte that is not zero in the
	// area Format would write, or -1 when it is all zero.
	FirstData int64
	// WrittenSlots are the ids of slots holding a daemon's record (of any
	// cluster).
	WrittenSlots []int
	// Records counts the lock, slot and message records (of any cluster)
	// in the areas after the header; RecordsCluster is the cluster of the
	// first. They show a quorum disk whose header was erased.
	Records        int
	RecordsCluster uuid.UUID
	// Watched is how long the device was watched for writers (0: not
	// watched); ChangedSlots are the slot ids, and ChangedAreas the names of
	// the other areas, that changed meanwhile.
	Watched      time.Duration
	ChangedSlots []int
	ChangedAreas []string

	// timing is the header whose timing bases judge how long to watch:
	// the existing header, or the timing fields of a damaged one when they
	// are all in range.
	timing *Header
}

// Blank reports whether the area Format would write is all zero.
func (p FormatPlan) Blank() bool { return p.FirstData < 0 }

// InUse reports whether anything changed while the device was watched.
func (p FormatPlan) InUse() bool { return len(p.ChangedSlots)+len(p.ChangedAreas) > 0 }

// Describe says in words what formatting would erase.
func (p FormatPlan) Describe() string {
	var parts []string
	switch {
	case p.Existing != nil:
		h := p.Existing
		formatted := "at an unknown time"
		if !h.FormattedAt.IsZero() {
			formatted = h.FormattedAt.Format(time.RFC3339)
		}
		parts = append(parts, fmt.Sprintf("the quorum disk of cluster %q (%s), formatted %s with %d slots of %d bytes",
			h.ClusterName, h.ClusterUUID, formatted, h.Slots, h.SectorSize))
	case errors.Is(p.ExistingErr, ErrDamagedHeader):
		why := strings.TrimPrefix(p.ExistingErr.Error(), "header: "+ErrDamagedHeader.Error()+": ")
		parts = append(parts, "a damaged MT-Cluster quorum disk header ("+why+")")
	case p.Records > 0:
		parts = append(parts, fmt.Sprintf("%d MT-Cluster quorum disk records of cluster %s but no header (the header sector was erased or overwritten)", p.Records, p.RecordsCluster))
	}
	parts = append(parts, p.Signatures...)
	if len(parts) == 0 && !p.Blank() {
		parts = append(parts, fmt.Sprintf("data that is neither an MT-Cluster quorum disk nor a known filesystem, volume or partition table (the first non-zero byte is at offset %d)", p.FirstData))
	}
	if len(p.WrittenSlots) > 0 {
		parts = append(parts, fmt.Sprintf("slots of node ids %v hold heartbeat records", p.WrittenSlots))
	}
	if p.InUse() {
		var what []string
		if len(p.ChangedSlots) > 0 {
			what = append(what, fmt.Sprintf("the slots of node ids %v", p.ChangedSlots))
		}
		what = append(what, p.ChangedAreas...)
		parts = append(parts, fmt.Sprintf("%s changed while watched for %v: nodes are running on this disk", strings.Join(what, " and "), p.Watched.Round(time.Millisecond)))
	}
	if p.Watched > 0 && !p.InUse() {
		parts = append(parts, fmt.Sprintf("nothing changed while watched for %v", p.Watched.Round(time.Millisecond)))
	}
	if len(parts) == 0 {
		return "nothing (all zero)"
	}
	return strings.Join(parts, "; ")
}

// formatSectorSize is the sector size the records at the start of b were
// written with: a header's own, else the device's.
func formatSectorSize(b []byte, devSS int) int {
	if ss, ok := HeaderSectorSize(b); ok && ss <= len(b) {
		return ss
	}
	return devSS
}

// watchBytes is how much of the device a watch reads: header, lock,
// config and every possible slot (slot MaxSlots is the last sector).
func watchBytes(ss int) int64 { return (SlotLBA + MaxSlots) * int64(ss) }

// PlanFormat reads what the device holds in the area that formatting it
// with header h would write (and, to name other programs' signatures, its
// first SignatureBytes). It does not watch for writers: see Watch.
func PlanFormat(ctx context.Context, dev *Device, h Header) (FormatPlan, error) {
	p := FormatPlan{FirstData: -1}
	ss := dev.SectorSize()
	if h.Slots == 0 {
		h.Slots = DefaultSlots
	}
	h.SectorSize = ss
	h.StateAreas = true
	area := h.Layout().MinSize()
	n := min(max(area, roundUp(SignatureBytes, int64(ss)), watchBytes(ss)), dev.Size())
	n -= n % int64(ss)
	if n == 0 {
		return p, fmt.Errorf("%w: device of %d bytes holds no sector", ErrGeometry, dev.Size())
	}
	b, err := readChunked(ctx, dev, 0, n)
	if err != nil {
		return p, fmt.Errorf("read the device: %w", err)
	}
	p.FirstData = firstNonZero(b[:min(area, n)])
	if p.Blank() {
		return p, nil
	}
	fss := formatSectorSize(b, ss)
	if eh, err := DecodeHeader(b[:fss], uuid.Nil); err != nil {
		p.ExistingErr = err
		if th, ok := damagedTimings(b[:fss], err); ok {
			p.timing = &th
		}
	} else {
		p.Existing, p.timing = &eh, &eh
	}
	p.Signatures = Signatures(b)
	for off := int64(LockLBA * fss); off+int64(fss) <= min(n, area); off += int64(fss) {
		if r := b[off : off+8]; string(r) == string(magicLock[:]) || string(r) == string(magicSlot[:]) || string(r) == string(magicMessage[:]) {
			if p.Records == 0 {
				copy(p.RecordsCluster[:], b[off+offUUID:off+offUUID+16])
			}
			p.Records++
		}
	}
	for id := 1; id <= MaxSlots; id++ {
		off := (SlotLBA + int64(id) - 1) * int64(fss)
		if off+int64(fss) > n {
			break
		}
		if s, err := DecodeSlot(b[off:off+int64(fss)], uuid.Nil, id); err == nil && s.Flags&FlagEmpty == 0 {
			p.WrittenSlots = append(p.WrittenSlots, id)
		}
	}
	return p, nil
}

// damagedTimings reads the timing bases of a damaged header, when they
// are all in range: a header with a flipped bit in its magic still tells
// how long its cluster's nodes may stay silent.
func damagedTimings(b []byte, err error) (Header, bool) {
	if !errors.Is(err, ErrDamagedHeader) || len(b) < 72 {
		return Header{}, false
	}
	h := Header{
		HeartbeatInterval: time.Duration(le.Uint64(b[40:])), IOTimeout: time.Duration(le.Uint64(b[48:])),
		FailureTimeout: time.Duration(le.Uint64(b[56:])), WatchdogTimeout: time.Duration(le.Uint64(b[64:])),
	}
	return h, h.checkTimings() == nil
}

// readChunked reads [off, off+n) in I/Os of at most 1 MiB, each with the
// Device's deadline.
func readChunked(ctx context.Context, dev *Device, off, n int64) ([]byte, error) {
	const chunk = 1 << 20
	out := make([]byte, 0, n)
	for pos := off; pos < off+n; pos += chunk {
		b, err := dev.Read(ctx, pos, int(min(chunk, off+n-pos)))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// Watch reads the device's header, lock, config and slot areas every
// `every` for d and records in p what changed. A daemon writes its slot
// every heartbeat interval, so a slot that stays the same for its header's
// WriterGoneAfter has no running writer.
func (p *FormatPlan) Watch(ctx context.Context, dev *Device, d, every time.Duration) error {
	ss := dev.SectorSize()
	n := min(watchBytes(ss), dev.Size())
	n -= n % int64(ss)
	first, err := readChunked(ctx, dev, 0, n)
	if err != nil {
		return fmt.Errorf("watch the device: %w", err)
	}
	fss := formatSectorSize(first, ss)
	changed, err := watchChanges(ctx, d, every, fss, func() ([]byte, error) { return readChunked(ctx, dev, 0, n) }, first, nil)
	if err != nil {
		return fmt.Errorf("watch the device: %w", err)
	}
	p.Watched = d
	areas := map[string]bool{}
	for sec := range changed {
		switch lba := int64(sec); {
		case lba >= SlotLBA:
			p.ChangedSlots = append(p.ChangedSlots, int(lba-SlotLBA)+1)
		case lba >= ConfigLBA:
			areas["the config area"] = true
		case lba >= LockLBA:
			areas["the lock area"] = true
		default:
			areas["the header"] = true
		}
	}
	slices.Sort(p.ChangedSlots)
	for _, a := range []string{"the header", "the lock area", "the config area"} {
		if areas[a] {
			p.ChangedAreas = append(p.ChangedAreas, a)
		}
	}
	return nil
}

// watchChanges re-reads with read every `every` for d and returns, for each
// sector (of size ss) whose bytes differ from first, when the first
// difference was seen. It compares raw bytes, so a writer is seen whatever
// it writes: a record whose flags or checksum are wrong, or garbage. stop,
// if set, is asked after each change and ends the watch early when it
// returns true.
func watchChanges(ctx context.Context, d, every time.Duration, ss int, read func() ([]byte, error), first []byte, stop func(sector int) bool) (map[int]time.Duration, error) {
	every = max(every, time.Millisecond)
	changed := map[int]time.Duration{}
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		elapsed := time.Since(start)
		if elapsed >= d {
			return changed, nil
		}
		t.Reset(min(every, d-elapsed))
		select {
		case <-ctx.Done():
			return changed, ctx.Err()
		case <-t.C:
		}
		b, err := read()
		if err != nil {
			return changed, err
		}
		for sec := 0; (sec+1)*ss <= len(b) && (sec+1)*ss <= len(first); sec++ {
			if _, seen := changed[sec]; seen {
				continue
			}
			if string(b[sec*ss:(sec+1)*ss]) != string(first[sec*ss:(sec+1)*ss]) {
				changed[sec] = time.Since(start)
				if stop != nil && stop(sec) {
					return changed, nil
				}
			}
		}
	}
}

// WatchSlots reads the slot area every `every` for d and returns, for each
// slot id whose sector changed, how long into the watch the change was
// first seen. stop, if set, ends the watch early when it returns true for
// a changed slot. The sectors are compared byte for byte, so any writer
// counts, whatever its record holds.
func (d *Disk) WatchSlots(ctx context.Context, dur, every time.Duration, stop func(id int) bool) (map[int]time.Duration, error) {
	ss := d.hdr.SectorSize
	read := func() ([]byte, error) { return d.dev.Read(ctx, SlotLBA*int64(ss), d.hdr.Slots*ss) }
	first, err := read()
	if err != nil {
		return nil, fmt.Errorf("read slots: %w", err)
	}
	var stopSec func(int) bool
	if stop != nil {
		stopSec = func(sec int) bool { return stop(sec + 1) }
	}
	changed, err := watchChanges(ctx, dur, every, ss, read, first, stopSec)
	if err != nil {
		return nil, fmt.Errorf("read slots: %w", err)
	}
	out := make(map[int]time.Duration, len(changed))
	for sec, at := range changed {
		out[sec+1] = at
	}
	return out, nil
}

// FormatOptions tune Format.
type FormatOptions struct {
	// Force erases a device that is not blank (an existing quorum disk of
	// any cluster, a damaged one, a filesystem, data). It never erases one
	// whose quorum area changes while watched.
	Force bool
	// WatchUnforced watches a device that is not blank also when Force is
	// not set, so that the refusal can say whether nodes are running on it.
	WatchUnforced bool
	// OnWatch, if set, is called before a watch starts with what was found
	// and how long the watch will take.
	OnWatch func(p FormatPlan, d time.Duration)
}

// Format writes a fresh quorum disk: empty config area, free locks, empty
// slots and messages, then the header last, so an interrupted format leaves
// no valid header behind. Unless force is set it writes only to a device
// whose whole quorum area is zero; it never writes to one whose slots
// change (see FormatWith).
func Format(ctx context.Context, dev *Device, h Header, force bool) error {
	_, err := FormatWith(ctx, dev, h, FormatOptions{Force: force})
	return err
}

// FormatWith is Format with options; it returns what it found on the
// device. A device that is not blank is watched, when forced (or asked to
// by WatchUnforced), for the longer WriterGoneAfter of the header found on
// it (or the timings of a damaged one) and h, the header to write, whose
// timings come from the local configuration: any change of a slot
// or of another area refuses with ErrInUse. Without Force a device that is
// not blank is refused with ErrWouldErase, saying what it holds.
func FormatWith(ctx context.Context, dev *Device, h Header, opts FormatOptions) (FormatPlan, error) {
	if h.SectorSize == 0 {
		h.SectorSize = dev.SectorSize()
	}
	if h.SectorSize != dev.SectorSize() {
		return FormatPlan{}, fmt.Errorf("%w: header for %d-byte sectors on a device with %d-byte sectors", ErrGeometry, h.SectorSize, dev.SectorSize())
	}
	if h.Slots == 0 {
		h.Slots = DefaultSlots
	}
	if h.ClusterUUID == uuid.Nil {
		return FormatPlan{}, errors.New("format: cluster UUID must be set")
	}
	// Every disk formatted now has the cluster state and report areas.
	h.StateAreas = true
	hdr, err := EncodeHeader(h)
	if err != nil {
		return FormatPlan{}, fmt.Errorf("format: %w", err)
	}
	l := h.Layout()
	if dev.Size() < l.MinSize() {
		return FormatPlan{}, fmt.Errorf("format: %w: device is %d bytes, %d slots of %d bytes need at least %d", ErrGeometry, dev.Size(), h.Slots, h.SectorSize, l.MinSize())
	}
	plan, err := PlanFormat(ctx, dev, h)
	if err != nil {
		return plan, fmt.Errorf("format: %w", err)
	}
	if !plan.Blank() && (opts.Force || opts.WatchUnforced) {
		watch, every := h.WriterGoneAfter(), h.HeartbeatInterval
		if e := plan.timing; e != nil {
			watch, every = max(watch, e.WriterGoneAfter()), min(every, e.HeartbeatInterval)
		}
		every = max(every/2, time.Millisecond)
		if opts.OnWatch != nil {
			opts.OnWatch(plan, watch)
		}
		if err := plan.Watch(ctx, dev, watch, every); err != nil {
			return plan, fmt.Errorf("format: %w", err)
		}
		if plan.InUse() {
			return plan, fmt.Errorf("%w: the device holds %s; stop every node using it first (--force does not override this)", ErrInUse, plan.Describe())
		}
	}
	if !opts.Force && !plan.Blank() {
		return plan, fmt.Errorf("%w: the device holds %s; `mtc disk init` writes only to a device whose quorum area (the first %d bytes) is zero: check the device path, or erase it with --force", ErrWouldErase, plan.Describe(), l.MinSize())
	}
	d := &Disk{dev: dev, hdr: h}
	ss := h.SectorSize
	// Invalidate the old header first, so a crash part-way leaves a
	// device that reads as not formatted rather than half old, half new.
	if err := d.writeSector(ctx, HeaderLBA, make([]byte, ss)); err != nil {
		return plan, fmt.Errorf("format: clear header: %w", err)
	}
	for lba := int64(1); lba < LockLBA; lba++ {
		if err := d.writeSector(ctx, lba, make([]byte, ss)); err != nil {
			return plan, fmt.Errorf("format: clear sector %d: %w", lba, err)
		}
	}
	for i := range LockSectors {
		if err := d.WriteLock(ctx, Lock{Index: i}); err != nil {
			return plan, fmt.Errorf("format: %w", err)
		}
	}
	for lba := int64(ConfigLBA); lba < SlotLBA; lba++ {
		if err := d.writeSector(ctx, lba, make([]byte, ss)); err != nil {
			return plan, fmt.Errorf("format: clear config sector %d: %w", lba, err)
		}
	}
	for id := 1; id <= h.Slots; id++ {
		if err := d.ClearSlot(ctx, id); err != nil {
			return plan, fmt.Errorf("format: %w", err)
		}
	}
	for lba := SlotLBA + int64(h.Slots); lba < l.MessageLBA(); lba++ {
		if err := d.writeSector(ctx, lba, make([]byte, ss)); err != nil {
			return plan, fmt.Errorf("format: clear sector %d: %w", lba, err)
		}
	}
	for to := 1; to <= h.Slots; to++ {
		for from := 1; from <= h.Slots; from++ {
			if err := d.WriteMessage(ctx, Message{To: to, From: from}); err != nil {
				return plan, fmt.Errorf("format: %w", err)
			}
		}
	}
	// The state and report areas: zero, then an empty generation-1 cluster
	// state, so that a blank state area later means wiped, not new.
	for lba := l.MessageLBA() + int64(h.Slots)*int64(h.Slots); lba < l.EndLBA(); lba += 64 {
		n := min(64, l.EndLBA()-lba)
		if err := d.dev.Write(ctx, lba*int64(ss), make([]byte, n*int64(ss))); err != nil {
			return plan, fmt.Errorf("format: clear sectors %d-%d: %w", lba, lba+n-1, err)
		}
	}
	if err := d.WriteState(ctx, Record{Generation: 1}); err != nil {
		return plan, fmt.Errorf("format: %w", err)
	}
	if err := d.writeSector(ctx, HeaderLBA, hdr); err != nil {
		return plan, fmt.Errorf("format: write header: %w", err)
	}
	return plan, nil
}
