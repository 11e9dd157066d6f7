// Package hbwire is the one encoding of what a node publishes: its
// membership heartbeat (quorum.Heartbeat), which the network heartbeat
// (package nethb) and the quorum disk slot (package diskhb) both carry as
// an opaque payload, and its envelope (Envelope: its placement report and
// the operator intents it applied or relays), which travels in a section of
// every network payload and alone in the node's quorum-disk report area
// (diskhb.Disk.WriteReport). It is pure: it depends on the quorum and
// placement types and the standard library's encoding only.
//
// # Payload
//
// Big-endian, the same layout on both carriers:
//
//	off  size  field
//	0    1     layout version (Version)
//	1    1     flags (quorum.Flags)
//	2    1     parts: bit 0 set when the counters follow, bit 1 when an
//	           envelope section follows the echoes (network only)
//	3    2     echo mask: bit i-1 set when an echo of node i follows
//	5    20    counters, only when parts bit 0 is set: publication
//	           counter (8), membership epoch (8), member set (4, bit i =
//	           node i)
//	.    16n   echoes, one per set mask bit in increasing node id order:
//	           the node's incarnation (8) and the highest publication
//	           counter heard from it (8)
//	.    2     envelope length m (1..MaxEnvelope), only when parts bit 1
//	           is set
//	.    m     envelope (below)
//
// What the carrier's own header already holds is not repeated: a network
// packet carries the sender id, its incarnation and its view in the nethb
// header, so its payload has the counters (AppendNet, DecodeNet); a slot
// carries the sender id, incarnation, counter, epoch, view and member set
// in its own record fields, so its payload has none (ToSlot, FromSlot). A
// node never echoes itself, so a 16-node cluster has at most 15 echoes: a
// slot payload is at most 5 + 15 x 16 = 245 bytes (diskhb.MaxPayload is
// 256), a network payload 265 (MaxNetPayload) without the envelope section
// and 265 + 2 + MaxEnvelope = MaxNetWithPayload with it (AppendNetWith,
// DecodeNetWith; DecodeNet ignores the section).
//
// # Envelope
//
// Big-endian, EnvelopeVersion 2. Packages are named by their index in the
// PackageIndex every node builds from the same package definitions (the
// sorted names); the envelope carries a fingerprint of that index, and a
// node with other package definitions is refused (ErrPackages), never read
// with shifted indexes.
//
//	off  size  field
//	0    1     envelope version (EnvelopeVersion)
//	1    8     package index fingerprint (FNV-1a 64 over every name in
//	           index order, each preceded by its length (2))
//	9    1     flags: bit 0 LeftoversStopped
//	10   1     reporter node id
//	11   8     reporter incarnation (not 0)
//	19   8     report Seq
//	27   8     report Epoch
//	35   4     report Members (bit i = node i)
//	39   8     LastIntent
//	47   2     package count, then per package in the report's order:
//	           index (2), state (1, placement.State), and for Failed and
//	           HaltFailed a reason: length (1) and UTF-8 bytes
//	.    2     marked count, then the marked packages' indexes (2 each)
//	.    1     ack count (at most 15), then per ack: node (1),
//	           incarnation (8), Seq (8)
//	.    1     takeover count (at most MaxTakeovers), then per takeover:
//	           node (1), incarnation (8), reason (1, quorum.TakeoverReason)
//	.    1     intent count (at most MaxRelayedIntents), then per intent in
//	           ascending ID: ID (8), kind (1, placement.IntentKind),
//	           package index (2, 0xFFFF: none), node (1, 0: none)
//	.    1     completed count (at most placement.MaxCompleted), then
//	           the IDs (8 each, ascending, not 0) of the one-shot intents
//	           the reporter completed (placement.Report.Completed)
//
// A reason is cut at a UTF-8 boundary to MaxReason (120) bytes, and the
// reasons of one report to MaxReasonTotal (4096) together, so MaxEnvelope
// (11,046 bytes: MaxPackages packages all failed and marked, 15 acks, 32
// takeovers, 16 intents, 16 completed intents) fits a quorum-disk report area (13,952 bytes with
// 512-byte sectors). Typical sizes at 16 nodes and 300 packages: a node
// running 19 of them publishes 367 bytes, a node running all 300 1,210
// (TestEnvelopeSizes). The reason of a package in another state is not
// carried.
//
// The decoder refuses whatever the encoder cannot write: unknown states,
// kinds, takeover reasons and flags, package indexes beyond the index, a
// package listed or marked twice, node ids outside 1..16 (0 allowed only
// as an intent's node), an ack of the reporter itself or of a node twice,
// intents out of ID order, a reason too long or not UTF-8, trailing bytes.
//
// # Versions
//
// Version starts at 16 so that a version byte is never a flags byte of the
// unversioned slot payload earlier releases wrote (flags 0-15 first, then
// 17-byte echoes): such a payload, and any other version, is refused with
// ErrVersion and the slot or packet counts as unreadable, never as a sign
// of life. Every node of a cluster must run a release with the same
// Version; the same holds for EnvelopeVersion (an envelope of another
// version is refused with ErrVersion).
package hbwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/mtcluster/mtc/quorum"
)

// Version is the payload layout version this package writes and reads.
const Version = 16

// Sizes of the payload's parts.
const (
	headerLen   = 5
	countersLen = 20
	echoLen     = 16
	// MaxEchoes is the largest number of echoes: every node but the sender.
	MaxEchoes = quorum.MaxNodes - 1
	// MaxSlotPayload and MaxNetPayload are the largest payloads.
	MaxSlotPayload = headerLen + MaxEchoes*echoLen
	MaxNetPayload  = headerLen + countersLen + MaxEchoes*echoLen
)

// Bits of the parts byte.
const (
	// partCounters: the counters follow the header.
	partCounters = 1
	// partEnvelope: an envelope section follows the echoes (network
	// payloads only).
	partEnvelope = 2
)

// MaxNetWithPayload is the largest network payload with an envelope
// section: nethb.MaxPayload.
const MaxNetWithPayload = MaxNetPayload + 2 + MaxEnvelope

// Errors. Both mean the payload proves nothing about its sender.
var (
	// ErrPayload: the payload does not decode (length, bounds, ids).
	ErrPayload = errors.New("heartbeat payload does not decode")
	// ErrVersion: the payload is of another layout version, or of the
	// unversioned slot layout of earlier releases.
	ErrVersion = errors.New("heartbeat payload of another layout version: every node must run the same MT-Cluster release")
)

// validNodes are the bits of a Set that can name a node.
const validNodes = quorum.Set(1<<(quorum.MaxNodes+1) - 2)

func appendPayload(b []byte, hb *quorum.Heartbeat, counters bool, env []byte) []byte {
	var mask uint16
	for id := quorum.NodeID(1); id <= quorum.MaxNodes; id++ {
		if id != hb.From && hb.Echo[id] != (quorum.Echo{}) {
			mask |= 1 << (id - 1)
		}
	}
	var parts byte
	if counters {
		parts |= partCounters
	}
	if len(env) > 0 {
		parts |= partEnvelope
	}
	b = append(b, Version, byte(hb.Flags), parts)
	b = binary.BigEndian.AppendUint16(b, mask)
	if counters {
		b = binary.BigEndian.AppendUint64(b, uint64(hb.Seq))
		b = binary.BigEndian.AppendUint64(b, hb.Epoch)
		b = binary.BigEndian.AppendUint32(b, uint32(hb.Members))
	}
	for id := quorum.NodeID(1); id <= quorum.MaxNodes; id++ {
		if mask&(1<<(id-1)) != 0 {
			e := hb.Echo[id]
			b = binary.BigEndian.AppendUint64(b, uint64(e.Inc))
			b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
		}
	}
	if len(env) > 0 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(env)))
		b = append(b, env...)
	}
	return b
}

// decodePayload fills hb (whose From is set) from p and returns its
// envelope section (nil when absent); counters says whether the carrier
// expects them in the payload (and so is the network, which alone may carry
// an envelope section).
func decodePayload(p []byte, hb *quorum.Heartbeat, counters bool) ([]byte, error) {
	if len(p) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrPayload)
	}
	if p[0] != Version {
		if p[0] < Version {
			return nil, fmt.Errorf("%w: first byte %d: the unversioned layout of an earlier release, or version %d; this node reads version %d", ErrVersion, p[0], p[0], Version)
		}
		return nil, fmt.Errorf("%w: version %d, this node reads version %d", ErrVersion, p[0], Version)
	}
	if len(p) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes, the header needs %d", ErrPayload, len(p), headerLen)
	}
	hb.Flags = quorum.Flags(p[1])
	parts := p[2]
	mask := binary.BigEndian.Uint16(p[3:5])
	known := byte(partCounters)
	if counters {
		known |= partEnvelope
	}
	switch {
	case parts&^known != 0:
		return nil, fmt.Errorf("%w: unknown parts %08b", ErrPayload, parts)
	case counters != (parts&partCounters != 0):
		return nil, fmt.Errorf("%w: counters present=%v where the carrier expects %v", ErrPayload, parts&partCounters != 0, counters)
	}
	p = p[headerLen:]
	if counters {
		if len(p) < countersLen {
			return nil, fmt.Errorf("%w: counters truncated", ErrPayload)
		}
		hb.Seq = quorum.Seq(binary.BigEndian.Uint64(p[0:8]))
		hb.Epoch = binary.BigEndian.Uint64(p[8:16])
		m, err := set(uint64(binary.BigEndian.Uint32(p[16:20])), "member set")
		if err != nil {
			return nil, err
		}
		hb.Members = m
		p = p[countersLen:]
	}
	if hb.From >= 1 && mask&(1<<(hb.From-1)) != 0 {
		return nil, fmt.Errorf("%w: node %d echoes itself", ErrPayload, hb.From)
	}
	n := bits.OnesCount16(mask)
	var env []byte
	if parts&partEnvelope != 0 {
		if len(p) < n*echoLen+2 {
			return nil, fmt.Errorf("%w: %d echoes and an envelope length need %d bytes, have %d", ErrPayload, n, n*echoLen+2, len(p))
		}
		l := int(binary.BigEndian.Uint16(p[n*echoLen:]))
		env = p[n*echoLen+2:]
		if l == 0 || l > MaxEnvelope || len(env) != l {
			return nil, fmt.Errorf("%w: envelope section of %d bytes, its length says %d (1..%d)", ErrPayload, len(env), l, MaxEnvelope)
		}
		p = p[:n*echoLen]
	}
	if len(p) != n*echoLen {
		return nil, fmt.Errorf("%w: %d echoes need %d bytes, have %d", ErrPayload, n, n*echoLen, len(p))
	}
	for id := quorum.NodeID(1); id <= quorum.MaxNodes; id++ {
		if mask&(1<<(id-1)) == 0 {
			continue
		}
		e := quorum.Echo{Inc: quorum.Incarnation(binary.BigEndian.Uint64(p[0:8])), Seq: quorum.Seq(binary.BigEndian.Uint64(p[8:16]))}
		if e == (quorum.Echo{}) {
			// The encoder leaves out an echo of nothing heard.
			return nil, fmt.Errorf("%w: empty echo of node %d", ErrPayload, id)
		}
		hb.Echo[id] = e
		p = p[echoLen:]
	}
	return env, nil
}

// set checks that v (bit i = node i) names configured node ids only.
func set(v uint64, what string) (quorum.Set, error) {
	if v&^uint64(validNodes) != 0 {
		return 0, fmt.Errorf("%w: %s %#x names ids outside 1..%d", ErrPayload, what, v, quorum.MaxNodes)
	}
	return quorum.Set(v), nil
}

func checkFrom(from uint64) (quorum.NodeID, error) {
	if from < 1 || from > quorum.MaxNodes {
		return 0, fmt.Errorf("%w: sender id %d outside 1..%d", ErrPayload, from, quorum.MaxNodes)
	}
	return quorum.NodeID(from), nil
}

// AppendNet appends the network payload of hb to b. The sender id, its
// incarnation and hb.View travel in the nethb header.
func AppendNet(b []byte, hb *quorum.Heartbeat) []byte { return appendPayload(b, hb, true, nil) }

// AppendNetWith appends the network payload of hb followed by an optional
// envelope section (env nil or empty: none; the result is then
// byte-identical to AppendNet). env is an encoded envelope
// (AppendEnvelope), at most MaxEnvelope bytes: a longer one is a
// programming error and panics.
func AppendNetWith(b []byte, hb *quorum.Heartbeat, env []byte) []byte {
	if len(env) > MaxEnvelope {
		panic(fmt.Sprintf("hbwire: envelope of %d bytes, above MaxEnvelope %d", len(env), MaxEnvelope))
	}
	return appendPayload(b, hb, true, env)
}

// DecodeNet rebuilds the heartbeat of an accepted packet from the nethb
// header's sender id, incarnation and view and its payload. It accepts
// payloads with and without an envelope section and ignores the section
// (its framing is checked, not its content).
func DecodeNet(from uint32, inc, view uint64, payload []byte) (quorum.Heartbeat, error) {
	hb, _, err := DecodeNetWith(from, inc, view, payload)
	return hb, err
}

// DecodeNetWith is DecodeNet that also returns the envelope section's
// bytes (nil when absent; they alias payload), for DecodeEnvelope.
func DecodeNetWith(from uint32, inc, view uint64, payload []byte) (quorum.Heartbeat, []byte, error) {
	id, err := checkFrom(uint64(from))
	if err != nil {
		return quorum.Heartbeat{}, nil, err
	}
	hb := quorum.Heartbeat{From: id, Inc: quorum.Incarnation(inc)}
	if hb.View, err = set(view, "view"); err != nil {
		return quorum.Heartbeat{}, nil, err
	}
	env, err := decodePayload(payload, &hb, true)
	if err != nil {
		return quorum.Heartbeat{}, nil, err
	}
	return hb, env, nil
}

// Slot is the part of a quorum-disk slot record (diskhb.Slot) that carries
// a heartbeat: its record fields and its payload. View and Members follow
// the disk format's numbering, bit i-1 = node i (as `mtc disk dump` shows
// them).
type Slot struct {
	NodeID                  int
	Incarnation, Seq, Epoch uint64
	View, Members           uint64
	Payload                 []byte
}

func toDisk(s quorum.Set) uint64 { return uint64(s&validNodes) >> 1 }

// ToSlot is the slot record that carries hb.
func ToSlot(hb *quorum.Heartbeat) Slot {
	return Slot{
		NodeID: int(hb.From), Incarnation: uint64(hb.Inc), Seq: uint64(hb.Seq), Epoch: hb.Epoch,
		View: toDisk(hb.View), Members: toDisk(hb.Members),
		Payload: appendPayload(make([]byte, 0, MaxSlotPayload), hb, false, nil),
	}
}

// FromSlot reads the heartbeat a slot record carries.
func FromSlot(s Slot) (quorum.Heartbeat, error) {
	id, err := checkFrom(uint64(s.NodeID))
	if err != nil {
		return quorum.Heartbeat{}, err
	}
	hb := quorum.Heartbeat{From: id, Inc: quorum.Incarnation(s.Incarnation), Seq: quorum.Seq(s.Seq), Epoch: s.Epoch}
	if s.View>>quorum.MaxNodes != 0 || s.Members>>quorum.MaxNodes != 0 {
		return quorum.Heartbeat{}, fmt.Errorf("%w: view %#x or members %#x name ids above %d", ErrPayload, s.View, s.Members, quorum.MaxNodes)
	}
	hb.View, hb.Members = quorum.Set(s.View<<1), quorum.Set(s.Members<<1)
	if _, err := decodePayload(s.Payload, &hb, false); err != nil {
		return quorum.Heartbeat{}, err
	}
	return hb, nil
}
