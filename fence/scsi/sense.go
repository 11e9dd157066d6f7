package scsi

import (
	"encoding/binary"
	"fmt"
)

// SenseKey is the sense key of sense data (SPC-4 table 49).
type SenseKey byte

// Sense keys.
const (
	KeyNoSense        SenseKey = 0x0
	KeyRecoveredError SenseKey = 0x1
	KeyNotReady       SenseKey = 0x2
	KeyMediumError    SenseKey = 0x3
	KeyHardwareError  SenseKey = 0x4
	KeyIllegalRequest SenseKey = 0x5
	KeyUnitAttention  SenseKey = 0x6
	KeyDataProtect    SenseKey = 0x7
	KeyBlankCheck     SenseKey = 0x8
	KeyVendorSpecific SenseKey = 0x9
	KeyCopyAborted    SenseKey = 0xa
	KeyAbortedCommand SenseKey = 0xb
	KeyVolumeOverflow SenseKey = 0xd
	KeyMiscompare     SenseKey = 0xe
	KeyCompleted      SenseKey = 0xf
)

var senseKeyNames = [16]string{
	"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
	"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
	"COPY ABORTED", "ABORTED COMMAND", "RESERVED (0xC)", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED",
}

func (k SenseKey) String() string { return senseKeyNames[k&0xf] }

// Sense is decoded sense data, from either format.
type Sense struct {
	// Descriptor: the data was in descriptor format (0x72/0x73), else fixed
	// (0x70/0x71).
	Descriptor bool
	// Deferred: the error belongs to an earlier command (0x71/0x73), not
	// to the one that reported it.
	Deferred bool
	Key      SenseKey
	ASC      byte
	ASCQ     byte
	// Info is the INFORMATION field when InfoValid.
	InfoValid bool
	Info      uint64
	// SKS is the 3-byte sense-key specific field when SKSValid (for
	// ILLEGAL REQUEST: which byte of the CDB or parameter list is bad).
	SKSValid bool
	SKS      [3]byte
}

// Response codes of sense data (SPC-4 4.5.1).
const (
	senseFixedCurrent       = 0x70
	senseFixedDeferred      = 0x71
	senseDescriptorCurrent  = 0x72
	senseDescriptorDeferred = 0x73
)

// ParseSense decodes sense data in fixed or descriptor format. b is what
// the device returned (sb_len_wr bytes); fields the device did not send
// are left zero. It fails with ErrBadResponse on an unknown response code
// or data too short for its format's key fields.
func ParseSense(b []byte) (Sense, error) {
	if len(b) == 0 {
		return Sense{}, fmt.Errorf("sense data: %w: empty", ErrBadResponse)
	}
	switch code := b[0] & 0x7f; code {
	case senseFixedCurrent, senseFixedDeferred:
		return parseFixed(b, code == senseFixedDeferred)
	case senseDescriptorCurrent, senseDescriptorDeferred:
		return parseDescriptor(b, code == senseDescriptorDeferred)
	default:
		return Sense{}, fmt.Errorf("sense data: %w: response code 0x%02x is neither fixed (0x70/0x71) nor descriptor (0x72/0x73)", ErrBadResponse, code)
	}
}

// parseFixed: byte 0 VALID and response code, 2 sense key, 3-6
// INFORMATION, 7 additional length, 12 ASC, 13 ASCQ, 15-17 sense-key
// specific (SKSV in byte 15 bit 7) (SPC-4 4.5.3).
func parseFixed(b []byte, deferred bool) (Sense, error) {
	if len(b) < 3 {
		return Sense{}, fmt.Errorf("sense data: %w: fixed format with %d bytes, want at least 3", ErrBadResponse, len(b))
	}
	s := Sense{Deferred: deferred, Key: SenseKey(b[2] & 0x0f)}
	// The device may send less than the additional length says, or more
	// bytes than it counts: trust neither beyond what both allow.
	n := len(b)
	if len(b) >= 8 {
		n = min(n, 8+int(b[7]))
	}
	if n >= 7 && b[0]&0x80 != 0 {
		s.InfoValid = true
		s.Info = uint64(binary.BigEndian.Uint32(b[3:7]))
	}
	if n >= 13 {
		s.ASC = b[12]
	}
	if n >= 14 {
		s.ASCQ = b[13]
	}
	if n >= 18 && b[15]&0x80 != 0 {
		s.SKSValid = true
		copy(s.SKS[:], b[15:18])
		s.SKS[0] &= 0x7f
	}
	return s, nil
}

// parseDescriptor: byte 1 sense key, 2 ASC, 3 ASCQ, 7 additional length,
// then descriptors of (type, additional length, data) from byte 8 (SPC-4
// 4.5.2). Type 0x00 is INFORMATION, type 0x02 sense-key specific.
func parseDescriptor(b []byte, deferred bool) (Sense, error) {
	if len(b) < 4 {
		return Sense{}, fmt.Errorf("sense data: %w: descriptor format with %d bytes, want at least 4", ErrBadResponse, len(b))
	}
	s := Sense{Descriptor: true, Deferred: deferred, Key: SenseKey(b[1] & 0x0f), ASC: b[2], ASCQ: b[3]}
	if len(b) < 8 {
		return s, nil
	}
	end := min(len(b), 8+int(b[7]))
	for off := 8; off+2 <= end; {
		typ, l := b[off], int(b[off+1])
		d := b[off+2 : min(end, off+2+l)]
		switch {
		case typ == 0x00 && len(d) >= 10: // INFORMATION: VALID, reserved, 8 bytes
			s.InfoValid = d[0]&0x80 != 0
			s.Info = binary.BigEndian.Uint64(d[2:10])
		case typ == 0x02 && len(d) >= 5: // sense-key specific: 2 reserved, SKSV + 3 bytes
			if d[2]&0x80 != 0 {
				s.SKSValid = true
				copy(s.SKS[:], d[2:5])
				s.SKS[0] &= 0x7f
			}
		}
		off += 2 + l
	}
	return s, nil
}

// UnitAttention reports whether s is a unit attention.
func (s Sense) UnitAttention() bool { return s.Key == KeyUnitAttention }

func (s Sense) String() string {
	f := "fixed"
	if s.Descriptor {
		f = "descriptor"
	}
	if s.Deferred {
		f += ", deferred"
	}
	str := fmt.Sprintf("sense key %s, ASC/ASCQ %02X/%02X", s.Key, s.ASC, s.ASCQ)
	if d := ascName(s.ASC, s.ASCQ); d != "" {
		str += " (" + d + ")"
	}
	if s.SKSValid && s.Key == KeyIllegalRequest {
		field := "parameter list"
		if s.SKS[0]&0x40 != 0 {
			field = "CDB"
		}
		str += fmt.Sprintf(", bad %s byte %d", field, binary.BigEndian.Uint16(s.SKS[1:]))
	}
	return str + " [" + f + "]"
}

// ascName names the additional sense codes fencing meets.
func ascName(asc, ascq byte) string {
	switch uint16(asc)<<8 | uint16(ascq) {
	case 0x0000:
		return "no additional sense information"
	case 0x0401:
		return "logical unit is in process of becoming ready"
	case 0x0402:
		return "logical unit not ready, initializing command required"
	case 0x0403:
		return "logical unit not ready, manual intervention required"
	case 0x040a:
		return "logical unit not accessible, asymmetric access state transition"
	case 0x0800:
		return "logical unit communication failure"
	case 0x2000:
		return "invalid command operation code"
	case 0x2400:
		return "invalid field in CDB"
	case 0x2500:
		return "logical unit not supported"
	case 0x2600:
		return "invalid field in parameter list"
	case 0x2604:
		return "invalid release of persistent reservation"
	case 0x2700:
		return "write protected"
	case 0x2900:
		return "power on, reset, or bus device reset occurred"
	case 0x2901:
		return "power on occurred"
	case 0x2902:
		return "SCSI bus reset occurred"
	case 0x2903:
		return "bus device reset function occurred"
	case 0x2907:
		return "I_T nexus loss occurred"
	case 0x2a01:
		return "mode parameters changed"
	case 0x2a03:
		return "reservations preempted"
	case 0x2a04:
		return "reservations released"
	case 0x2a05:
		return "registrations preempted"
	case 0x2a06:
		return "asymmetric access state changed"
	case 0x2a09:
		return "capacity data has changed"
	case 0x2f00:
		return "commands cleared by another initiator"
	case 0x3f03:
		return "inquiry data has changed"
	case 0x3f0e:
		return "reported luns data has changed"
	case 0x4700:
		return "SCSI parity error"
	case 0x4b00:
		return "data phase error"
	case 0x5506:
		return "insufficient registration resources"
	}
	return ""
}
