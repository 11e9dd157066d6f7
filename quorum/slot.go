package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mtcluster/mtc/diskhb"
)

// The quorum disk carries the same heartbeat as the network, in the
// writer's slot (diskhb.Slot). The fields diskhb defines hold the
// counters, views and state; the payload holds what only this package
// reads:
//
//	off len field
//	0   1   Flags
//	1   17  per echoed peer: node id (1), incarnation (8), counter (8),
//	        little-endian; as many entries as the payload length allows
//
// 1 + 15 x 17 = 256 bytes for a 16-node cluster, diskhb.MaxPayload.

// echoSize is the size of one echo entry in the slot payload.
const echoSize = 17

// ErrPayload means a slot's payload is not a heartbeat of this package:
// the slot counts as unknown.
var ErrPayload = errors.New("slot payload is not a membership heartbeat")

func toDisk(s Set) uint64   { return uint64(s) >> 1 }
func fromDisk(v uint64) Set { return Set(uint32(v<<1)) &^ 1 }

// SlotOf is the slot record that carries hb.
func SlotOf(hb Heartbeat) diskhb.Slot {
	flags := diskhb.FlagRunning
	if hb.Flags&FlagQuorate != 0 {
		flags |= diskhb.FlagQuorate
	}
	if hb.Flags&FlagStopped != 0 {
		flags |= diskhb.FlagSelfFencing
	}
	p := make([]byte, 1, 1+echoSize*MaxNodes)
	p[0] = byte(hb.Flags)
	for id := NodeID(1); id <= MaxNodes; id++ {
		e := hb.Echo[id]
		if e.Inc == 0 || id == hb.From {
			continue // a node never echoes itself
		}
		p = append(p, byte(id))
		p = binary.LittleEndian.AppendUint64(p, uint64(e.Inc))
		p = binary.LittleEndian.AppendUint64(p, uint64(e.Seq))
	}
	return diskhb.Slot{
		NodeID:      int(hb.From),
		Flags:       flags,
		Incarnation: uint64(hb.Inc),
		Seq:         uint64(hb.Seq),
		Epoch:       hb.Epoch,
		View:        toDisk(hb.View),
		Members:     toDisk(hb.Members),
		Payload:     p,
	}
}

// HeartbeatOf reads the heartbeat a slot record carries.
func HeartbeatOf(s diskhb.Slot) (Heartbeat, error) {
	p := s.Payload
	if s.NodeID < 1 || s.NodeID > MaxNodes {
		return Heartbeat{}, fmt.Errorf("%w: node id %d", ErrPayload, s.NodeID)
	}
	if len(p) < 1 || (len(p)-1)%echoSize != 0 {
		return Heartbeat{}, fmt.Errorf("%w: %d bytes", ErrPayload, len(p))
	}
	hb := Heartbeat{
		From:    NodeID(s.NodeID),
		Inc:     Incarnation(s.Incarnation),
		Seq:     Seq(s.Seq),
		Epoch:   s.Epoch,
		Flags:   Flags(p[0]),
		View:    fromDisk(s.View),
		Members: fromDisk(s.Members),
	}
	for e := p[1:]; len(e) > 0; e = e[echoSize:] {
		id := NodeID(e[0])
		if id < 1 || id > MaxNodes {
			return Heartbeat{}, fmt.Errorf("%w: echo of node %d", ErrPayload, id)
		}
		hb.Echo[id] = Echo{Inc: Incarnation(binary.LittleEndian.Uint64(e[1:])), Seq: Seq(binary.LittleEndian.Uint64(e[9:]))}
	}
	return hb, nil
}

// LockOf is the tie-break lock sector's record for r.
func LockOf(r LockRecord) diskhb.Lock {
	return diskhb.Lock{Index: diskhb.TieBreakLock, Owner: int(r.Owner), OwnerIncarnation: uint64(r.Inc), Generation: r.Gen}
}

// LockRecordOf reads a tie-break lock sector's record.
func LockRecordOf(l diskhb.Lock) LockRecord {
	return LockRecord{Owner: NodeID(l.Owner), Inc: Incarnation(l.OwnerIncarnation), Gen: l.Generation}
}
