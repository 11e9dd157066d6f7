package scsi

import (
	"encoding/binary"
	"fmt"
)

// Operation codes.
const (
	OpTestUnitReady          = 0x00
	OpPersistentReserveIn    = 0x5e
	OpPersistentReserveOut   = 0x5f
	prOutParamLen            = 24 // basic PR OUT parameter list (SPC-4 6.17.3)
	testUnitReadyLen         = 6
	persistentReserveCDBSize = 10
)

// InAction is a PERSISTENT RESERVE IN service action (SPC-4 table 162).
type InAction byte

// PERSISTENT RESERVE IN service actions.
const (
	ReadKeys           InAction = 0x00
	ReadReservation    InAction = 0x01
	ReportCapabilities InAction = 0x02
	ReadFullStatus     InAction = 0x03
)

func (a InAction) String() string {
	switch a {
	case ReadKeys:
		return "READ KEYS"
	case ReadReservation:
		return "READ RESERVATION"
	case ReportCapabilities:
		return "REPORT CAPABILITIES"
	case ReadFullStatus:
		return "READ FULL STATUS"
	}
	return fmt.Sprintf("service action 0x%02x", byte(a))
}

// OutAction is a PERSISTENT RESERVE OUT service action (SPC-4 table 170).
type OutAction byte

// PERSISTENT RESERVE OUT service actions.
const (
	Register                  OutAction = 0x00
	Reserve                   OutAction = 0x01
	Release                   OutAction = 0x02
	Clear                     OutAction = 0x03
	Preempt                   OutAction = 0x04
	PreemptAndAbort           OutAction = 0x05
	RegisterAndIgnoreExisting OutAction = 0x06
)

func (a OutAction) String() string {
	switch a {
	case Register:
		return "REGISTER"
	case Reserve:
		return "RESERVE"
	case Release:
		return "RELEASE"
	case Clear:
		return "CLEAR"
	case Preempt:
		return "PREEMPT"
	case PreemptAndAbort:
		return "PREEMPT AND ABORT"
	case RegisterAndIgnoreExisting:
		return "REGISTER AND IGNORE EXISTING KEY"
	}
	return fmt.Sprintf("service action 0x%02x", byte(a))
}

// Type is a persistent reservation type (SPC-4 table 169). The scope is
// always LU_SCOPE (0).
type Type byte

// Reservation types.
const (
	// WriteExclusive (1): only the holder's I_T nexus may write.
	WriteExclusive Type = 0x1
	// ExclusiveAccess (3): only the holder's I_T nexus may read or write.
	ExclusiveAccess Type = 0x3
	// WriteExclusiveRegistrantsOnly (5): every registered I_T nexus may
	// write, the others only read. Fencing's default, as in fence_scsi: a
	// preempted node's writes fail with RESERVATION CONFLICT while the
	// survivors, all registered, go on writing.
	WriteExclusiveRegistrantsOnly Type = 0x5
	// ExclusiveAccessRegistrantsOnly (6): unregistered nexuses may neither
	// read nor write.
	ExclusiveAccessRegistrantsOnly Type = 0x6
	// WriteExclusiveAllRegistrants (7): like 5, every registrant is a
	// holder.
	WriteExclusiveAllRegistrants Type = 0x7
	// ExclusiveAccessAllRegistrants (8): like 6, every registrant is a
	// holder.
	ExclusiveAccessAllRegistrants Type = 0x8
)

// Types lists the defined reservation types in order.
var Types = []Type{WriteExclusive, ExclusiveAccess, WriteExclusiveRegistrantsOnly,
	ExclusiveAccessRegistrantsOnly, WriteExclusiveAllRegistrants, ExclusiveAccessAllRegistrants}

func (t Type) String() string {
	switch t {
	case 0:
		return "none"
	case WriteExclusive:
		return "Write Exclusive"
	case ExclusiveAccess:
		return "Exclusive Access"
	case WriteExclusiveRegistrantsOnly:
		return "Write Exclusive, Registrants Only"
	case ExclusiveAccessRegistrantsOnly:
		return "Exclusive Access, Registrants Only"
	case WriteExclusiveAllRegistrants:
		return "Write Exclusive, All Registrants"
	case ExclusiveAccessAllRegistrants:
		return "Exclusive Access, All Registrants"
	}
	return fmt.Sprintf("type 0x%x", byte(t))
}

// Valid reports whether t is a defined reservation type.
func (t Type) Valid() bool {
	for _, v := range Types {
		if t == v {
			return true
		}
	}
	return false
}

// OutParams is the basic PERSISTENT RESERVE OUT parameter list.
type OutParams struct {
	Key        uint64 // RESERVATION KEY: the key this I_T nexus is registered with
	ServiceKey uint64 // SERVICE ACTION RESERVATION KEY: new key, or the victim's
	APTPL      bool   // activate persist through power loss (REGISTER only)
	AllTgPt    bool   // register on all target ports (REGISTER only)
}

// TestUnitReadyCDB is TEST UNIT READY (SPC-4 6.37): six zero bytes.
func TestUnitReadyCDB() []byte { return make([]byte, testUnitReadyLen) }

// PRInCDB builds PERSISTENT RESERVE IN (SPC-4 6.16.1): opcode 0x5E,
// service action in byte 1, allocation length in bytes 7-8.
func PRInCDB(a InAction, alloc uint16) []byte {
	c := make([]byte, persistentReserveCDBSize)
	c[0] = OpPersistentReserveIn
	c[1] = byte(a) & 0x1f
	binary.BigEndian.PutUint16(c[7:], alloc)
	return c
}

// PROutCDB builds PERSISTENT RESERVE OUT (SPC-4 6.17.1): opcode 0x5F,
// service action in byte 1, scope (LU_SCOPE, 0) and type in byte 2, the
// parameter list length (24) in bytes 5-8. The type is ignored by the
// target for REGISTER, REGISTER AND IGNORE EXISTING KEY and CLEAR; it is
// sent as 0 for those, as sg_persist does.
func PROutCDB(a OutAction, t Type) []byte {
	c := make([]byte, persistentReserveCDBSize)
	c[0] = OpPersistentReserveOut
	c[1] = byte(a) & 0x1f
	switch a {
	case Register, RegisterAndIgnoreExisting, Clear:
	default:
		c[2] = byte(t) & 0x0f
	}
	binary.BigEndian.PutUint32(c[5:], prOutParamLen)
	return c
}

// PROutData builds the 24-byte parameter list (SPC-4 6.17.3): reservation
// key (0-7), service action reservation key (8-15), obsolete (16-19),
// flags (20: SPEC_I_PT 0x08, ALL_TG_PT 0x04, APTPL 0x01), reserved and
// obsolete (21-23).
func PROutData(p OutParams) []byte {
	b := make([]byte, prOutParamLen)
	binary.BigEndian.PutUint64(b[0:], p.Key)
	binary.BigEndian.PutUint64(b[8:], p.ServiceKey)
	if p.AllTgPt {
		b[20] |= 0x04
	}
	if p.APTPL {
		b[20] |= 0x01
	}
	return b
}
