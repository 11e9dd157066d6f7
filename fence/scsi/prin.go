package scsi

import (
	"encoding/binary"
	"fmt"
)

// Keys is what READ KEYS reports.
type Keys struct {
	Generation uint32   // PRgeneration: counts PR OUT commands that changed state
	Keys       []uint64 // one entry per registered I_T nexus, duplicates kept
	// Truncated: the device had more keys than the allocation length let
	// it send; Needed is the allocation length that would hold them all.
	Truncated bool
	Needed    int
}

// Reservation is what READ RESERVATION reports.
type Reservation struct {
	Generation uint32
	Held       bool
	Key        uint64 // the holder's key, when Held
	Type       Type   // when Held
	Scope      byte   // when Held; 0 is LU_SCOPE
}

// Capabilities is what REPORT CAPABILITIES reports (SPC-4 6.16.4).
type Capabilities struct {
	RLRC    bool // replace lost reservation capable
	CRH     bool // compatible reservation handling
	SIPC    bool // specify initiator ports capable
	ATPC    bool // all target ports capable
	PTPLC   bool // persist through power loss capable
	TMV     bool // type mask valid: Types is meaningful
	PTPLA   bool // persist through power loss activated
	Allow   byte // ALLOW COMMANDS field (0-7)
	Types   []Type
	rawMask uint16
}

// Supports reports whether the device says it supports reservation type
// t. Without a valid type mask it reports true: the device did not say,
// and RESERVE will tell.
func (c Capabilities) Supports(t Type) bool {
	if !c.TMV {
		return true
	}
	for _, s := range c.Types {
		if s == t {
			return true
		}
	}
	return false
}

// ParseReadKeys decodes READ KEYS parameter data (SPC-4 6.16.2):
// PRGENERATION (0-3), ADDITIONAL LENGTH (4-7), then one 8-byte key per
// registration. b holds what the device sent (allocation length minus the
// residual); an additional length beyond b is reported as Truncated.
func ParseReadKeys(b []byte) (Keys, error) {
	if len(b) < 8 {
		return Keys{}, fmt.Errorf("READ KEYS: %w: %d bytes, want at least the 8-byte header", ErrBadResponse, len(b))
	}
	k := Keys{Generation: binary.BigEndian.Uint32(b[0:])}
	n := binary.BigEndian.Uint32(b[4:])
	if n%8 != 0 {
		return Keys{}, fmt.Errorf("READ KEYS: %w: additional length %d is not a multiple of 8", ErrBadResponse, n)
	}
	avail := uint32(len(b) - 8)
	if n > avail {
		k.Truncated = true
		k.Needed = int(min(uint64(n)+8, 1<<32))
		n = avail - avail%8
	}
	k.Keys = make([]uint64, 0, n/8)
	for off := uint32(8); off < 8+n; off += 8 {
		k.Keys = append(k.Keys, binary.BigEndian.Uint64(b[off:]))
	}
	return k, nil
}

// ParseReadReservation decodes READ RESERVATION parameter data (SPC-4
// 6.16.3): PRGENERATION (0-3), ADDITIONAL LENGTH (4-7: 0 when no
// reservation is held, 16 when one is), RESERVATION KEY (8-15), obsolete
// (16-19), reserved (20), SCOPE and TYPE (21), obsolete (22-23).
func ParseReadReservation(b []byte) (Reservation, error) {
	if len(b) < 8 {
		return Reservation{}, fmt.Errorf("READ RESERVATION: %w: %d bytes, want at least the 8-byte header", ErrBadResponse, len(b))
	}
	r := Reservation{Generation: binary.BigEndian.Uint32(b[0:])}
	switch n := binary.BigEndian.Uint32(b[4:]); {
	case n == 0:
		return r, nil
	case n < 16:
		return Reservation{}, fmt.Errorf("READ RESERVATION: %w: additional length %d, want 0 or 16", ErrBadResponse, n)
	case len(b) < 24:
		return Reservation{}, fmt.Errorf("READ RESERVATION: %w: a reservation with %d bytes, want 24", ErrBadResponse, len(b))
	}
	r.Held = true
	r.Key = binary.BigEndian.Uint64(b[8:])
	r.Scope = b[21] >> 4
	r.Type = Type(b[21] & 0x0f)
	return r, nil
}

// ParseCapabilities decodes REPORT CAPABILITIES parameter data (SPC-4
// 6.16.4): LENGTH (0-1, 8), byte 2 RLR_C 0x80, CRH 0x10, SIP_C 0x08,
// ATP_C 0x04, PTPL_C 0x01; byte 3 TMV 0x80, ALLOW COMMANDS 0x70, PTPL_A
// 0x01; bytes 4-5 the type mask: WR_EX_AR 0x80, EX_AC_RO 0x40, WR_EX_RO
// 0x20, EX_AC 0x08, WR_EX 0x02 in byte 4 and EX_AC_AR 0x01 in byte 5.
func ParseCapabilities(b []byte) (Capabilities, error) {
	if len(b) < 6 {
		return Capabilities{}, fmt.Errorf("REPORT CAPABILITIES: %w: %d bytes, want 8", ErrBadResponse, len(b))
	}
	if n := binary.BigEndian.Uint16(b[0:]); n < 6 {
		return Capabilities{}, fmt.Errorf("REPORT CAPABILITIES: %w: length field %d, want 8", ErrBadResponse, n)
	}
	c := Capabilities{
		RLRC:  b[2]&0x80 != 0,
		CRH:   b[2]&0x10 != 0,
		SIPC:  b[2]&0x08 != 0,
		ATPC:  b[2]&0x04 != 0,
		PTPLC: b[2]&0x01 != 0,
		TMV:   b[3]&0x80 != 0,
		Allow: (b[3] >> 4) & 0x07,
		PTPLA: b[3]&0x01 != 0,
	}
	c.rawMask = binary.BigEndian.Uint16(b[4:])
	if c.TMV {
		for _, m := range []struct {
			bit uint16
			t   Type
		}{{0x0200, WriteExclusive}, {0x0800, ExclusiveAccess}, {0x2000, WriteExclusiveRegistrantsOnly},
			{0x4000, ExclusiveAccessRegistrantsOnly}, {0x8000, WriteExclusiveAllRegistrants}, {0x0001, ExclusiveAccessAllRegistrants}} {
			if c.rawMask&m.bit != 0 {
				c.Types = append(c.Types, m.t)
			}
		}
	}
	return c, nil
}
