package scsi

import (
	"errors"
	"testing"
)

// TestParseSense: decoding table for both formats, current and deferred,
// with the fields the devices fencing meets actually send.
func TestParseSense(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want Sense
		err  error
	}{
		{"fixed UA registrations preempted (LIO)",
			"70 00 06 00 00 00 00 0a 00 00 00 00 2a 05 00 00 00 00",
			Sense{Key: KeyUnitAttention, ASC: 0x2a, ASCQ: 0x05}, nil},
		{"fixed UA reservations preempted",
			"70 00 06 00 00 00 00 0a 00 00 00 00 2a 03 00 00 00 00",
			Sense{Key: KeyUnitAttention, ASC: 0x2a, ASCQ: 0x03}, nil},
		{"fixed illegal request invalid opcode",
			"70 00 05 00 00 00 00 0a 00 00 00 00 20 00 00 00 00 00",
			Sense{Key: KeyIllegalRequest, ASC: 0x20}, nil},
		{"fixed illegal request invalid field in CDB byte 2, SKSV",
			"70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 c0 00 02",
			Sense{Key: KeyIllegalRequest, ASC: 0x24, SKSValid: true, SKS: [3]byte{0x40, 0, 2}}, nil},
		{"fixed with VALID information",
			"f0 00 03 00 00 12 34 0a 00 00 00 00 11 00 00 00 00 00",
			Sense{Key: KeyMediumError, ASC: 0x11, InfoValid: true, Info: 0x1234}, nil},
		{"fixed deferred",
			"71 00 04 00 00 00 00 0a 00 00 00 00 44 00 00 00 00 00",
			Sense{Deferred: true, Key: KeyHardwareError, ASC: 0x44}, nil},
		{"fixed short: key only",
			"70 00 02",
			Sense{Key: KeyNotReady}, nil},
		{"fixed additional length cuts ASC off",
			"70 00 06 00 00 00 00 04 00 00 00 00 2a 05",
			Sense{Key: KeyUnitAttention}, nil},
		{"descriptor UA",
			"72 06 2a 04 00 00 00 00",
			Sense{Descriptor: true, Key: KeyUnitAttention, ASC: 0x2a, ASCQ: 0x04}, nil},
		{"descriptor deferred",
			"73 0b 47 00 00 00 00 00",
			Sense{Descriptor: true, Deferred: true, Key: KeyAbortedCommand, ASC: 0x47}, nil},
		{"descriptor with information and SKS descriptors",
			"72 05 26 00 00 00 00 14 00 0a 80 00 00 00 00 00 00 00 00 10 02 06 00 00 80 00 08 00",
			Sense{Descriptor: true, Key: KeyIllegalRequest, ASC: 0x26, InfoValid: true, Info: 0x10, SKSValid: true, SKS: [3]byte{0, 0, 8}}, nil},
		{"descriptor header only", "72 02 04 01", Sense{Descriptor: true, Key: KeyNotReady, ASC: 4, ASCQ: 1}, nil},
		{"descriptor descriptor overruns length",
			"72 06 29 00 00 00 00 04 00 0a 80 00",
			Sense{Descriptor: true, Key: KeyUnitAttention, ASC: 0x29}, nil},
		{"empty", "", Sense{}, ErrBadResponse},
		{"vendor response code", "7f 00 00 00", Sense{}, ErrBadResponse},
		{"response code 0x00", "00 00 00 00", Sense{}, ErrBadResponse},
		{"fixed too short", "70 00", Sense{}, ErrBadResponse},
		{"descriptor too short", "72 06 2a", Sense{}, ErrBadResponse},
	} {
		got, err := ParseSense(unhex(t, c.in))
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// TestSenseErrorKinds: which sentinel each sense maps to.
func TestSenseErrorKinds(t *testing.T) {
	for _, c := range []struct {
		s    Sense
		want error
	}{
		{Sense{Key: KeyUnitAttention, ASC: 0x2a, ASCQ: 0x03}, ErrUnitAttention},
		{Sense{Key: KeyUnitAttention, ASC: 0x29, ASCQ: 0x00}, ErrUnitAttention},
		{Sense{Key: KeyIllegalRequest, ASC: 0x20}, ErrNotSupported},
		{Sense{Key: KeyIllegalRequest, ASC: 0x24}, ErrNotSupported},
		{Sense{Key: KeyIllegalRequest, ASC: 0x26}, ErrNotSupported},
		{Sense{Key: KeyIllegalRequest, ASC: 0x25}, ErrCheckCondition},
		{Sense{Key: KeyIllegalRequest, ASC: 0x26, ASCQ: 0x04}, ErrCheckCondition},
		{Sense{Key: KeyNotReady, ASC: 0x04, ASCQ: 0x0a}, ErrPath},
		{Sense{Key: KeyNotReady, ASC: 0x04, ASCQ: 0x01}, ErrCheckCondition},
		{Sense{Key: KeyMediumError, ASC: 0x11}, ErrCheckCondition},
		{Sense{Key: KeyAbortedCommand, Deferred: true}, ErrCheckCondition},
	} {
		err := error(&SenseError{Op: "X", Sense: c.s})
		if !errors.Is(err, c.want) {
			t.Errorf("%v: %v is not %v", c.s, err, c.want)
		}
		for _, other := range []error{ErrUnitAttention, ErrNotSupported, ErrPath, ErrCheckCondition, ErrReservationConflict} {
			if other != c.want && errors.Is(err, other) {
				t.Errorf("%v: %v is also %v", c.s, err, other)
			}
		}
	}
}

func TestSenseString(t *testing.T) {
	s := Sense{Key: KeyIllegalRequest, ASC: 0x24, SKSValid: true, SKS: [3]byte{0x40, 0, 2}}
	want := "sense key ILLEGAL REQUEST, ASC/ASCQ 24/00 (invalid field in CDB), bad CDB byte 2 [fixed]"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func FuzzParseSense(f *testing.F) {
	f.Add([]byte{0x70, 0, 6, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 5, 0, 0, 0, 0})
	f.Add([]byte{0x72, 6, 0x2a, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSense(b)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		_ = s.String()
		if s.Key > 0xf || s.SKS[0]&0x80 != 0 {
			t.Fatalf("out-of-range fields %+v", s)
		}
		code := b[0] & 0x7f
		if s.Descriptor != (code == 0x72 || code == 0x73) || s.Deferred != (code == 0x71 || code == 0x73) {
			t.Fatalf("format flags %+v for response code 0x%02x", s, code)
		}
		_ = (&SenseError{Op: "fuzz", Sense: s}).Error()
	})
}
