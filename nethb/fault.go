package nethb

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
)

// faultKind is what made a datagram unacceptable, finer than Reason.
type faultKind uint8

const (
	faultNone faultKind = iota
	faultShort
	faultMagic
	faultVersion
	faultPayloadLen
	faultSize
	faultForeign
	faultForged
	faultSelf
	faultConfigMismatch
	faultUnknownSender
	faultWrongNetwork
	faultOldSeq
	faultOldIncarnation
)

// fault is a refused datagram's cause with the few numbers its error
// message needs. It is a plain value: the drop path records it without
// allocating, and err builds the message only for the drops that are
// logged or returned to a caller.
type fault struct {
	kind    faultKind
	a, b, c uint64
}

// reason maps the fault to the drop reason it is counted under.
func (f fault) reason() Reason {
	switch f.kind {
	case faultForeign:
		return ReasonForeignCluster
	case faultForged:
		return ReasonForged
	case faultSelf:
		return ReasonSelf
	case faultConfigMismatch:
		return ReasonConfigMismatch
	case faultUnknownSender:
		return ReasonUnknownSender
	case faultWrongNetwork:
		return ReasonWrongNetwork
	case faultOldSeq, faultOldIncarnation:
		return ReasonReplayed
	default:
		return ReasonMalformed
	}
}

// err builds the error the fault stands for; nil for faultNone.
func (f fault) err() error {
	switch f.kind {
	case faultNone:
		return nil
	case faultShort:
		return fmt.Errorf("%w: %d bytes, less than the minimum %d", ErrMalformed, f.a, HeaderLen+MACLen)
	case faultMagic:
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], uint32(f.a))
		return fmt.Errorf("%w: bad magic %q", ErrMalformed, m[:])
	case faultVersion:
		return fmt.Errorf("%w: version %d, this node speaks %d", ErrMalformed, f.a, Version)
	case faultPayloadLen:
		return fmt.Errorf("%w: payload length %d above the maximum %d", ErrMalformed, f.a, MaxPayload)
	case faultSize:
		return fmt.Errorf("%w: %d bytes, header says %d", ErrMalformed, f.a, f.b)
	case faultForeign:
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[0:8], f.a)
		binary.BigEndian.PutUint64(u[8:16], f.b)
		return fmt.Errorf("%w: cluster %s", ErrForeignCluster, u)
	case faultForged:
		return ErrForged
	case faultSelf:
		return fmt.Errorf("packet carries our own node id %d", f.a)
	case faultConfigMismatch:
		return fmt.Errorf("node %d runs configuration generation %016x, this node %016x: install the same cluster file on every node (`mtc check` prints its generation)", f.a, f.b, f.c)
	case faultUnknownSender:
		return fmt.Errorf("node id %d is not in this node's configuration (generation %d)", f.a, f.b)
	case faultWrongNetwork:
		return fmt.Errorf("packet for network %d received on network %d", f.a, f.b)
	case faultOldSeq:
		return fmt.Errorf("sequence %d not above %d already seen from incarnation %016x", f.a, f.b, f.c)
	case faultOldIncarnation:
		return fmt.Errorf("incarnation %016x was replaced by %016x", f.a, f.b)
	}
	return fmt.Errorf("%w: fault %d", ErrMalformed, f.kind)
}
