package hbwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// EnvelopeVersion is the envelope layout version this package writes and
// reads. It is independent of Version: an envelope travels inside a network
// payload and alone in a quorum-disk report area.
const EnvelopeVersion = 2

// Bounds of an envelope. MaxEnvelope is the largest envelope AppendEnvelope
// writes: MaxPackages packages all failed with reasons filling
// MaxReasonTotal, all marked, 15 acks, MaxTakeovers takeovers and
// MaxRelayedIntents intents. It fits a quorum-disk report area
// (diskhb.Layout.MaxReportPayload: 13,952 bytes with 512-byte sectors).
const (
	// MaxPackages is the most packages a PackageIndex holds (so an index
	// never reaches 0xFFFF, "no package" in an intent, and MaxEnvelope
	// fits a report area).
	MaxPackages = 1000
	// MaxRelayedIntents is the most intents one envelope relays.
	MaxRelayedIntents = 16
	// MaxTakeovers is the most takeovers one report carries: the placement
	// machine keeps the last 2 x MaxNodes its quorum machine allowed.
	MaxTakeovers = 2 * quorum.MaxNodes
	// MaxReason is the longest failure reason of one package, in bytes;
	// MaxReasonTotal bounds the reasons of one report together. A longer
	// reason is cut at a UTF-8 boundary; once the total is spent, the
	// reasons of the packages after it are cut (to nothing at worst). The
	// failing node logs the whole reason itself.
	MaxReason      = 120
	MaxReasonTotal = 4096

	envFixedLen   = 1 + 8 + 1 + 1 + 8 + 8 + 8 + 4 + 8 + 2 + 2 + 1 + 1 + 1
	envPackageLen = 2 + 1
	envAckLen     = 1 + 8 + 8
	envTakeLen    = 1 + 8 + 1
	envIntentLen  = 8 + 1 + 2 + 1
	envDoneLen    = 8

	MaxEnvelope = envFixedLen +
		MaxPackages*(envPackageLen+1) + MaxReasonTotal + // every package failed, with its reason length
		MaxPackages*2 + // every package marked
		(quorum.MaxNodes-1)*envAckLen +
		MaxTakeovers*envTakeLen +
		MaxRelayedIntents*envIntentLen +
		1 + placement.MaxCompleted*envDoneLen

	// noPackage is the package index of an intent without a package.
	noPackage = math.MaxUint16
	// envLeftovers is bit 0 of the envelope's flags: LeftoversStopped.
	envLeftovers = 1
)

// ErrPackages is wrapped (beside ErrPayload) by DecodeEnvelope when the
// sender's package set is not this node's.
var ErrPackages = errors.New("the sender's package definitions are not this node's (different package names, or nodes, policies, priorities or dependencies): every node must have the same package files; its report is ignored until they agree")

// ErrEnvelope is wrapped by AppendEnvelope: the envelope cannot be encoded.
var ErrEnvelope = errors.New("placement report cannot be encoded")

// PackageIndex maps package names to small indexes; every node builds it
// from the same configuration (sorted package names), so the wire carries
// indexes, not names. Its fingerprint travels in every envelope, so a node
// whose package set differs is refused (ErrPackages) instead of having its
// indexes read as other packages.
type PackageIndex struct {
	names []string
	index map[string]uint16
	fp    uint64
}

// NewPackageIndex indexes names (in any order: it sorts a copy). Names must
// be non-empty and distinct, at most MaxPackages of them.
func NewPackageIndex(names []string) (*PackageIndex, error) {
	if len(names) > MaxPackages {
		return nil, fmt.Errorf("package index: %d packages, a cluster runs at most %d", len(names), MaxPackages)
	}
	x := &PackageIndex{names: slices.Clone(names), index: make(map[string]uint16, len(names))}
	slices.Sort(x.names)
	h := fnv.New64a()
	for i, n := range x.names {
		if n == "" {
			return nil, errors.New("package index: empty package name")
		}
		if i > 0 && x.names[i-1] == n {
			return nil, fmt.Errorf("package index: package %q named twice", n)
		}
		x.index[n] = uint16(i)
		h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(n))))
		h.Write([]byte(n))
	}
	x.fp = h.Sum64()
	return x, nil
}

// WithDefinitions returns a copy of the index whose fingerprint also
// covers defs, a canonical encoding of what placement knows of every
// package (its nodes, policies, priority, dependencies): nodes whose
// package files differ in any of these, not only in the names, then
// refuse each other's envelopes (ErrPackages) rather than place the same
// packages by different rules.
func (x *PackageIndex) WithDefinitions(defs []byte) *PackageIndex {
	y := *x
	h := fnv.New64a()
	h.Write(binary.BigEndian.AppendUint64(nil, x.fp))
	h.Write(defs)
	y.fp = h.Sum64()
	return &y
}

// Names returns the indexed names in index order (sorted).
func (x *PackageIndex) Names() []string { return slices.Clone(x.names) }

// Envelope is what a node publishes besides its membership heartbeat.
type Envelope struct {
	Report placement.Report
	// LastIntent is the ID of the last operator intent the sender has applied.
	LastIntent uint64
	// Intents are committed operator intents the sender relays (the quorum
	// coordinator relays those its members have not applied yet), ID
	// ascending, at most MaxRelayedIntents.
	Intents []placement.Intent
}

// AppendEnvelope appends the encoding of e to b. Package names are written
// as their indexes in x; a failure reason is cut as MaxReason and
// MaxReasonTotal say (the reason of a package in another state is not
// written). It fails, wrapping ErrEnvelope, on a package name x does not
// know, a package listed or marked twice, a value out of its range (node
// ids, states, kinds, takeover reasons, a zero incarnation), or more acks,
// takeovers or intents than the bounds, or intents not in ascending ID
// order. The result is at most MaxEnvelope bytes.
func AppendEnvelope(b []byte, e *Envelope, x *PackageIndex) ([]byte, error) {
	out, err := appendEnvelope(b, e, x)
	if err != nil {
		return b, fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	return out, nil
}

func appendEnvelope(b []byte, e *Envelope, x *PackageIndex) ([]byte, error) {
	r := &e.Report
	if err := checkReporter(r.Node, r.Inc, r.Members); err != nil {
		return b, err
	}
	switch {
	case len(r.Packages) > len(x.names) || len(r.Marked) > len(x.names):
		return b, fmt.Errorf("%d packages and %d marks, %d packages defined", len(r.Packages), len(r.Marked), len(x.names))
	case len(r.Acks) > quorum.MaxNodes-1:
		return b, fmt.Errorf("%d acks, at most %d", len(r.Acks), quorum.MaxNodes-1)
	case len(r.Takeovers) > MaxTakeovers:
		return b, fmt.Errorf("%d takeovers, at most %d", len(r.Takeovers), MaxTakeovers)
	case len(e.Intents) > MaxRelayedIntents:
		return b, fmt.Errorf("%d intents, at most %d", len(e.Intents), MaxRelayedIntents)
	case len(r.Completed) > placement.MaxCompleted:
		return b, fmt.Errorf("%d completed intents, at most %d", len(r.Completed), placement.MaxCompleted)
	}
	start := len(b)
	var flags byte
	if r.LeftoversStopped {
		flags |= envLeftovers
	}
	b = append(b, EnvelopeVersion)
	b = binary.BigEndian.AppendUint64(b, x.fp)
	b = append(b, flags, byte(r.Node))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Inc))
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, r.Epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(r.Members))
	b = binary.BigEndian.AppendUint64(b, e.LastIntent)

	var seen indexSet
	budget := MaxReasonTotal
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Packages)))
	for _, p := range r.Packages {
		i, err := x.lookup(p.Name, &seen, "report lists")
		if err != nil {
			return b, err
		}
		if err := checkState(p.State); err != nil {
			return b, fmt.Errorf("package %q: %w", p.Name, err)
		}
		b = binary.BigEndian.AppendUint16(b, i)
		b = append(b, byte(p.State))
		if hasReason(p.State) {
			reason := cutReason(p.Reason, min(MaxReason, budget))
			budget -= len(reason)
			b = append(b, byte(len(reason)))
			b = append(b, reason...)
		}
	}
	seen = indexSet{}
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Marked)))
	for _, name := range r.Marked {
		i, err := x.lookup(name, &seen, "report marks")
		if err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint16(b, i)
	}
	var acked quorum.Set
	b = append(b, byte(len(r.Acks)))
	for _, a := range r.Acks {
		if err := checkAck(r.Node, a, &acked); err != nil {
			return b, err
		}
		b = append(b, byte(a.Node))
		b = binary.BigEndian.AppendUint64(b, uint64(a.Inc))
		b = binary.BigEndian.AppendUint64(b, a.Seq)
	}
	b = append(b, byte(len(r.Takeovers)))
	for _, t := range r.Takeovers {
		if err := checkTakeover(t); err != nil {
			return b, err
		}
		b = append(b, byte(t.Node))
		b = binary.BigEndian.AppendUint64(b, uint64(t.Inc))
		b = append(b, byte(t.Reason))
	}
	b = append(b, byte(len(e.Intents)))
	for k, it := range e.Intents {
		if err := checkIntent(e.Intents, k); err != nil {
			return b, err
		}
		i := uint16(noPackage)
		if it.Package != "" {
			var ok bool
			if i, ok = x.index[it.Package]; !ok {
				return b, fmt.Errorf("intent %d names package %q, which is not defined", it.ID, it.Package)
			}
		}
		b = binary.BigEndian.AppendUint64(b, it.ID)
		b = append(b, byte(it.Kind))
		b = binary.BigEndian.AppendUint16(b, i)
		b = append(b, byte(it.Node))
	}
	b = append(b, byte(len(r.Completed)))
	for k, id := range r.Completed {
		if err := checkCompleted(r.Completed, k); err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint64(b, id)
	}
	if n := len(b) - start; n > MaxEnvelope {
		return b, fmt.Errorf("%d bytes, above %d", n, MaxEnvelope)
	}
	return b, nil
}

// DecodeEnvelope decodes an envelope written by AppendEnvelope with the
// same package index. It refuses, wrapping ErrPayload, anything
// AppendEnvelope cannot have written (bounds, unknown states, kinds,
// indexes, node ids, trailing bytes), ErrPackages beside it when the
// sender's package set differs, and ErrVersion another layout version.
func DecodeEnvelope(b []byte, x *PackageIndex) (Envelope, error) {
	e, err := decodeEnvelope(b, x)
	if err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// decodeEnvelope may return a partly filled envelope with its error.
func decodeEnvelope(b []byte, x *PackageIndex) (Envelope, error) {
	var e Envelope
	if len(b) < 1 {
		return e, bad("empty")
	}
	if b[0] != EnvelopeVersion {
		return e, fmt.Errorf("%w: envelope version %d, this node reads version %d", ErrVersion, b[0], EnvelopeVersion)
	}
	if len(b) > MaxEnvelope {
		return e, bad("%d bytes, above %d", len(b), MaxEnvelope)
	}
	d := decoder{b: b[1:]}
	fp := d.u64()
	flags := d.u8()
	r := &e.Report
	r.Node = quorum.NodeID(d.u8())
	r.Inc = quorum.Incarnation(d.u64())
	r.Seq = d.u64()
	r.Epoch = d.u64()
	r.Members = quorum.Set(d.u32())
	e.LastIntent = d.u64()
	switch {
	case !d.ok():
		return e, d.err()
	case fp != x.fp:
		return e, bad("%w", ErrPackages)
	case flags&^envLeftovers != 0:
		return e, bad("unknown flags %08b", flags)
	}
	r.LeftoversStopped = flags&envLeftovers != 0
	if err := checkReporter(r.Node, r.Inc, r.Members); err != nil {
		return e, bad("%w", err)
	}

	var seen indexSet
	budget := MaxReasonTotal
	n := int(d.u16())
	if n > len(x.names) {
		return e, bad("%d packages, %d defined", n, len(x.names))
	}
	if n > 0 {
		r.Packages = make([]placement.PackageReport, n)
	}
	for k := range r.Packages {
		p := &r.Packages[k]
		i := d.u16()
		p.State = placement.State(d.u8())
		if !d.ok() {
			return e, d.err()
		}
		var err error
		if p.Name, err = x.name(i, &seen); err != nil {
			return e, err
		}
		if err := checkState(p.State); err != nil {
			return e, bad("package %q: %w", p.Name, err)
		}
		if hasReason(p.State) {
			reason := d.bytes(int(d.u8()))
			if !d.ok() {
				return e, d.err()
			}
			budget -= len(reason)
			switch {
			case len(reason) > MaxReason:
				return e, bad("package %q: reason of %d bytes, above %d", p.Name, len(reason), MaxReason)
			case budget < 0:
				return e, bad("package %q: the reasons add up to more than %d bytes", p.Name, MaxReasonTotal)
			case !utf8.Valid(reason):
				return e, bad("package %q: reason not UTF-8", p.Name)
			}
			p.Reason = string(reason)
		}
	}
	seen = indexSet{}
	n = int(d.u16())
	if n > len(x.names) {
		return e, bad("%d marks, %d packages defined", n, len(x.names))
	}
	if n > 0 {
		r.Marked = make([]string, n)
	}
	for k := range r.Marked {
		i := d.u16()
		if !d.ok() {
			return e, d.err()
		}
		var err error
		if r.Marked[k], err = x.name(i, &seen); err != nil {
			return e, err
		}
	}
	if n = int(d.u8()); n > quorum.MaxNodes-1 {
		return e, bad("%d acks, at most %d", n, quorum.MaxNodes-1)
	}
	if n > 0 {
		r.Acks = make([]placement.Ack, n)
	}
	var acked quorum.Set
	for k := range r.Acks {
		a := &r.Acks[k]
		a.Node = quorum.NodeID(d.u8())
		a.Inc = quorum.Incarnation(d.u64())
		a.Seq = d.u64()
		if !d.ok() {
			return e, d.err()
		}
		if err := checkAck(r.Node, *a, &acked); err != nil {
			return e, bad("%w", err)
		}
	}
	if n = int(d.u8()); n > MaxTakeovers {
		return e, bad("%d takeovers, at most %d", n, MaxTakeovers)
	}
	if n > 0 {
		r.Takeovers = make([]placement.Takeover, n)
	}
	for k := range r.Takeovers {
		t := &r.Takeovers[k]
		t.Node = quorum.NodeID(d.u8())
		t.Inc = quorum.Incarnation(d.u64())
		t.Reason = quorum.TakeoverReason(d.u8())
		if !d.ok() {
			return e, d.err()
		}
		if err := checkTakeover(*t); err != nil {
			return e, bad("%w", err)
		}
	}
	if n = int(d.u8()); n > MaxRelayedIntents {
		return e, bad("%d intents, at most %d", n, MaxRelayedIntents)
	}
	if n > 0 {
		e.Intents = make([]placement.Intent, n)
	}
	for k := range e.Intents {
		it := &e.Intents[k]
		it.ID = d.u64()
		it.Kind = placement.IntentKind(d.u8())
		i := d.u16()
		it.Node = quorum.NodeID(d.u8())
		if !d.ok() {
			return e, d.err()
		}
		if i != noPackage {
			if int(i) >= len(x.names) {
				return e, bad("intent %d: package index %d, %d packages defined", it.ID, i, len(x.names))
			}
			it.Package = x.names[i]
		}
		if err := checkIntent(e.Intents, k); err != nil {
			return e, bad("%w", err)
		}
	}
	if n = int(d.u8()); n > placement.MaxCompleted {
		return e, bad("%d completed intents, at most %d", n, placement.MaxCompleted)
	}
	if n > 0 {
		r.Completed = make([]uint64, n)
	}
	for k := range r.Completed {
		r.Completed[k] = d.u64()
		if !d.ok() {
			return e, d.err()
		}
		if err := checkCompleted(r.Completed, k); err != nil {
			return e, bad("%w", err)
		}
	}
	if !d.ok() {
		return e, d.err()
	}
	if len(d.b) != 0 {
		return e, bad("%d bytes after its end", len(d.b))
	}
	return e, nil
}

// bad is a decoding error: it wraps ErrPayload.
func bad(format string, args ...any) error {
	return fmt.Errorf("%w: envelope: "+format, append([]any{ErrPayload}, args...)...)
}

// decoder reads big-endian fields; past the end it reads zeros and
// remembers that it ran short.
type decoder struct {
	b     []byte
	short bool
}

func (d *decoder) take(n int) []byte {
	if d.short || len(d.b) < n {
		d.short = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) bytes(n int) []byte { return d.take(n) }
func (d *decoder) ok() bool           { return !d.short }
func (d *decoder) err() error         { return bad("truncated") }

// indexSet is a set of package indexes (below MaxPackages).
type indexSet [(MaxPackages + 63) / 64]uint64

// add adds i and reports whether it was absent.
func (s *indexSet) add(i uint16) bool {
	w, bit := i/64, uint64(1)<<(i%64)
	if s[w]&bit != 0 {
		return false
	}
	s[w] |= bit
	return true
}

func (x *PackageIndex) lookup(name string, seen *indexSet, what string) (uint16, error) {
	i, ok := x.index[name]
	if !ok {
		return 0, fmt.Errorf("%s package %q, which is not defined", what, name)
	}
	if !seen.add(i) {
		return 0, fmt.Errorf("%s package %q twice", what, name)
	}
	return i, nil
}

func (x *PackageIndex) name(i uint16, seen *indexSet) (string, error) {
	if int(i) >= len(x.names) {
		return "", bad("package index %d, %d packages defined", i, len(x.names))
	}
	if !seen.add(i) {
		return "", bad("package %q listed twice", x.names[i])
	}
	return x.names[i], nil
}

func checkNode(id quorum.NodeID, what string) error {
	if id < 1 || id > quorum.MaxNodes {
		return fmt.Errorf("%s node id %d outside 1..%d", what, id, quorum.MaxNodes)
	}
	return nil
}

func checkReporter(id quorum.NodeID, inc quorum.Incarnation, members quorum.Set) error {
	if err := checkNode(id, "reporter"); err != nil {
		return err
	}
	if inc == 0 {
		return fmt.Errorf("node %d reports with incarnation 0", id)
	}
	if members&^validNodes != 0 {
		return fmt.Errorf("member set %#x names ids outside 1..%d", uint32(members), quorum.MaxNodes)
	}
	return nil
}

func checkState(s placement.State) error {
	if s > placement.HaltFailed {
		return fmt.Errorf("unknown state %d", s)
	}
	return nil
}

func hasReason(s placement.State) bool { return s == placement.Failed || s == placement.HaltFailed }

func checkAck(self quorum.NodeID, a placement.Ack, acked *quorum.Set) error {
	if err := checkNode(a.Node, "acknowledged"); err != nil {
		return err
	}
	if a.Node == self || acked.Has(a.Node) {
		return fmt.Errorf("node %d acknowledged twice or by itself", a.Node)
	}
	*acked = acked.Add(a.Node)
	return nil
}

func checkTakeover(t placement.Takeover) error {
	if err := checkNode(t.Node, "takeover of"); err != nil {
		return err
	}
	if t.Reason != quorum.TakeoverFenced && t.Reason != quorum.TakeoverWatchdog {
		return fmt.Errorf("takeover of node %d: unknown reason %d", t.Node, t.Reason)
	}
	return nil
}

// checkIntent checks intents[k] and that its ID is above the one before.
func checkIntent(intents []placement.Intent, k int) error {
	it := intents[k]
	switch {
	case it.Kind < placement.IntentRun || it.Kind > placement.IntentClear:
		return fmt.Errorf("intent %d: unknown kind %d", it.ID, it.Kind)
	case it.Node > quorum.MaxNodes:
		return fmt.Errorf("intent %d: node id %d above %d", it.ID, it.Node, quorum.MaxNodes)
	case k > 0 && it.ID <= intents[k-1].ID:
		return fmt.Errorf("intent %d after intent %d: intents go in ascending ID order", it.ID, intents[k-1].ID)
	}
	return nil
}

func checkCompleted(ids []uint64, k int) error {
	switch {
	case ids[k] == 0:
		return fmt.Errorf("completed intent 0")
	case k > 0 && ids[k] <= ids[k-1]:
		return fmt.Errorf("completed intent %d after %d: they go in ascending ID order", ids[k], ids[k-1])
	}
	return nil
}

// cutReason returns s, valid UTF-8, cut to at most n bytes at a rune
// boundary.
func cutReason(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
