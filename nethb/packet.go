package nethb

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/google/uuid"
)

// Wire constants. See the package documentation for the byte layout.
const (
	// Magic opens every heartbeat packet ("MTHB").
	Magic = "MTHB"
	// Version is the wire format version this package writes and accepts.
	Version = 1
	// HeaderLen is the size of the fixed header before the payload.
	HeaderLen = 60
	// MACLen is the size of the HMAC-SHA256 tag that closes a packet.
	MACLen = sha256.Size
	// MaxPayload bounds the opaque payload: a membership heartbeat with
	// the largest placement envelope (hbwire.MaxNetWithPayload; a test
	// keeps them equal). A heartbeat that carries a report of many
	// packages is larger than one Ethernet frame and IP fragments it: at
	// 16 nodes, a node running 300 packages sends 1,569-byte packets (two
	// fragments at MTU 1500), the largest packet is 11,405 bytes (eight).
	// Without an envelope a packet is at most 357 bytes.
	MaxPayload = 11313
	// MaxPacket is the largest valid packet.
	MaxPacket = HeaderLen + MaxPayload + MACLen
	// MaxNodeID is the largest node id a packet can carry in its view bitmask.
	MaxNodeID = 63
)

// Decode errors. Each drop reason has its own error; Receiver counts them.
var (
	// ErrMalformed is a packet too short, with a bad magic, an unknown
	// version, or a payload length that disagrees with its size.
	ErrMalformed = errors.New("malformed heartbeat packet")
	// ErrForeignCluster is a packet whose cluster UUID is not ours.
	ErrForeignCluster = errors.New("heartbeat from another cluster")
	// ErrForged is a packet whose MAC does not verify under our key.
	ErrForged = errors.New("heartbeat MAC does not verify (forged, corrupted, or a different cluster key)")
)

// Packet is one decoded heartbeat.
type Packet struct {
	// Network is the index of the heartbeat network it was sent on.
	Network uint8
	// Cluster is the sender's cluster UUID.
	Cluster uuid.UUID
	// From is the sender's node id.
	From uint32
	// Incarnation is chosen at random once per daemon start.
	Incarnation uint64
	// Seq increases by one with every packet the sender sends on Network.
	Seq uint64
	// Generation is the sender's configuration generation.
	Generation uint64
	// View has bit i set when the sender currently hears node id i.
	View uint64
	// Payload is the membership state the sender publishes (opaque here).
	Payload []byte
}

// AppendEncode appends the encoded, authenticated packet to dst.
func (p *Packet) AppendEncode(dst []byte, key []byte) ([]byte, error) {
	if len(p.Payload) > MaxPayload {
		return dst, fmt.Errorf("heartbeat payload is %d bytes, more than the maximum %d", len(p.Payload), MaxPayload)
	}
	start := len(dst)
	dst = append(dst, Magic...)
	dst = append(dst, Version, p.Network)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.Payload)))
	dst = append(dst, p.Cluster[:]...)
	dst = binary.BigEndian.AppendUint32(dst, p.From)
	dst = binary.BigEndian.AppendUint64(dst, p.Incarnation)
	dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	dst = binary.BigEndian.AppendUint64(dst, p.Generation)
	dst = binary.BigEndian.AppendUint64(dst, p.View)
	dst = append(dst, p.Payload...)
	m := hmac.New(sha256.New, key)
	m.Write(dst[start:])
	return m.Sum(dst), nil
}

// Decode parses and authenticates b. It checks, in order, the framing
// (ErrMalformed), the cluster UUID (ErrForeignCluster) and the MAC
// (ErrForged). The returned Payload aliases b.
func Decode(b []byte, cluster uuid.UUID, key []byte) (Packet, error) {
	var p Packet
	if f := decode(b, cluster, newVerifier(key), &p); f.kind != faultNone {
		return Packet{}, f.err()
	}
	return p, nil
}

// verifier computes packet MACs under one key. It keeps its HMAC state and
// output buffer, so checking a packet allocates nothing; one verifier
// serves one goroutine.
type verifier struct {
	mac hash.Hash
	sum [MACLen]byte
}

func newVerifier(key []byte) *verifier { return &verifier{mac: hmac.New(sha256.New, key)} }

// verify reports whether tag is the MAC of body.
func (v *verifier) verify(body, tag []byte) bool {
	v.mac.Reset()
	v.mac.Write(body)
	return hmac.Equal(v.mac.Sum(v.sum[:0]), tag)
}

// decode is the one decoder: it checks b from the cheapest test to the
// dearest (length, magic, version, payload length, cluster UUID, and only
// then the MAC), so most garbage costs a few comparisons. It fills p and
// returns a fault of kind faultNone, or the fault that stopped it; a fault
// is a small value that builds its error only when asked, so dropping a
// datagram allocates nothing.
func decode(b []byte, cluster uuid.UUID, v *verifier, p *Packet) fault {
	if len(b) < HeaderLen+MACLen {
		return fault{kind: faultShort, a: uint64(len(b))}
	}
	if string(b[0:4]) != Magic {
		return fault{kind: faultMagic, a: uint64(binary.BigEndian.Uint32(b[0:4]))}
	}
	if b[4] != Version {
		return fault{kind: faultVersion, a: uint64(b[4])}
	}
	n := int(binary.BigEndian.Uint16(b[6:8]))
	if n > MaxPayload {
		return fault{kind: faultPayloadLen, a: uint64(n)}
	}
	if len(b) != HeaderLen+n+MACLen {
		return fault{kind: faultSize, a: uint64(len(b)), b: uint64(HeaderLen + n + MACLen)}
	}
	if [16]byte(b[8:24]) != cluster {
		return fault{kind: faultForeign, a: binary.BigEndian.Uint64(b[8:16]), b: binary.BigEndian.Uint64(b[16:24])}
	}
	if !v.verify(b[:HeaderLen+n], b[HeaderLen+n:]) {
		return fault{kind: faultForged}
	}
	p.Network = b[5]
	p.Cluster = cluster
	p.From = binary.BigEndian.Uint32(b[24:28])
	p.Incarnation = binary.BigEndian.Uint64(b[28:36])
	p.Seq = binary.BigEndian.Uint64(b[36:44])
	p.Generation = binary.BigEndian.Uint64(b[44:52])
	p.View = binary.BigEndian.Uint64(b[52:60])
	p.Payload = b[HeaderLen : HeaderLen+n]
	return fault{}
}
