package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/quorum"
)

// The membership state a node publishes (quorum.Heartbeat) travels in the
// opaque payload of network packets, laid out here, and in the quorum-disk
// slot, laid out by quorum.SlotOf.
//
// Network payload (big-endian), after the nethb header which already
// carries the sender id, its incarnation and its view:
//
//	offset size field
//	     0    1 payload version (1)
//	     1    1 flags (quorum.Flags)
//	     2    8 publication counter (quorum.Seq)
//	    10    8 membership epoch
//	    18    4 member set (bit i = node i)
//	    22    - echoes
//
// Echoes: a 2-byte mask (bit i-1 set: an echo of node i follows), then one
// 16-byte entry per set bit in increasing node id order: that node's
// incarnation (8) and the highest publication counter heard from it (8).
// Only non-zero echoes are written.
const payloadVersion = 1

// echoLen is the size of one echo entry.
const echoLen = 16

// errPayload is a network payload that does not decode: the packet is
// treated as unreadable.
var errPayload = errors.New("membership payload does not decode")

func appendEchoes(b []byte, hb *quorum.Heartbeat) []byte {
	var mask uint16
	for id := 1; id <= quorum.MaxNodes; id++ {
		if hb.Echo[id] != (quorum.Echo{}) {
			mask |= 1 << (id - 1)
		}
	}
	b = binary.BigEndian.AppendUint16(b, mask)
	for id := 1; id <= quorum.MaxNodes; id++ {
		if e := hb.Echo[id]; e != (quorum.Echo{}) {
			b = binary.BigEndian.AppendUint64(b, uint64(e.Inc))
			b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
		}
	}
	return b
}

func decodeEchoes(b []byte, hb *quorum.Heartbeat) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: no echo mask", errPayload)
	}
	mask := binary.BigEndian.Uint16(b)
	b = b[2:]
	n := bits.OnesCount16(mask)
	if len(b) != n*echoLen {
		return fmt.Errorf("%w: %d echoes need %d bytes, have %d", errPayload, n, n*echoLen, len(b))
	}
	for id := 1; id <= quorum.MaxNodes; id++ {
		if mask&(1<<(id-1)) == 0 {
			continue
		}
		hb.Echo[id] = quorum.Echo{Inc: quorum.Incarnation(binary.BigEndian.Uint64(b[0:8])), Seq: quorum.Seq(binary.BigEndian.Uint64(b[8:16]))}
		b = b[echoLen:]
	}
	return nil
}

// encodeNetPayload is the network payload of hb.
func encodeNetPayload(hb *quorum.Heartbeat) []byte {
	b := make([]byte, 0, 22+2+quorum.MaxNodes*echoLen)
	b = append(b, payloadVersion, byte(hb.Flags))
	b = binary.BigEndian.AppendUint64(b, uint64(hb.Seq))
	b = binary.BigEndian.AppendUint64(b, hb.Epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(hb.Members))
	return appendEchoes(b, hb)
}

// decodeNetHeartbeat rebuilds the heartbeat from an accepted packet.
func decodeNetHeartbeat(from uint32, inc uint64, view uint64, payload []byte) (quorum.Heartbeat, error) {
	hb := quorum.Heartbeat{From: quorum.NodeID(from), Inc: quorum.Incarnation(inc), View: quorum.Set(view)}
	if len(payload) < 22 {
		return hb, fmt.Errorf("%w: %d bytes, need at least 22", errPayload, len(payload))
	}
	if payload[0] != payloadVersion {
		return hb, fmt.Errorf("%w: version %d", errPayload, payload[0])
	}
	hb.Flags = quorum.Flags(payload[1])
	hb.Seq = quorum.Seq(binary.BigEndian.Uint64(payload[2:10]))
	hb.Epoch = binary.BigEndian.Uint64(payload[10:18])
	hb.Members = quorum.Set(binary.BigEndian.Uint32(payload[18:22]))
	return hb, decodeEchoes(payload[22:], &hb)
}

// On the quorum disk the heartbeat travels in the slot record as
// quorum.SlotOf lays it out (the same mapping the simulation proves).

// slotObservation converts a slot read into what the machine consumes. A
// slot that failed to decode, was never written by a daemon, or whose
// payload does not decode proves nothing (Valid false).
func slotObservation(r diskhb.SlotRead) quorum.SlotObservation {
	o := quorum.SlotObservation{Node: quorum.NodeID(r.ID)}
	if !r.Valid() {
		return o
	}
	hb, err := quorum.HeartbeatOf(r.Slot)
	if err != nil {
		return o
	}
	o.Valid, o.Heartbeat = true, hb
	return o
}

// lockObservation converts the tie-break lock as read; a lock that did not
// decode is unknown, never free.
func lockObservation(l diskhb.Lock, err error) quorum.LockObservation {
	if err != nil {
		return quorum.LockObservation{}
	}
	return quorum.LockObservation{Valid: true, Record: quorum.LockRecordOf(l)}
}
