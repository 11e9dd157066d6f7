package scsi

import (
	"errors"
	"slices"
	"testing"
)

func TestParseReadKeys(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want Keys
		err  error
	}{
		{"none", "00 00 00 07 00 00 00 00", Keys{Generation: 7, Keys: []uint64{}}, nil},
		{"two", "00 00 00 09 00 00 00 10 00 00 00 00 00 00 11 aa 00 00 00 00 00 00 22 bb",
			Keys{Generation: 9, Keys: []uint64{0x11aa, 0x22bb}}, nil},
		{"duplicate key (two paths of one node)", "00 00 00 01 00 00 00 10 4d 54 43 00 00 00 01 01 4d 54 43 00 00 00 01 01",
			Keys{Generation: 1, Keys: []uint64{0x4d54430000000101, 0x4d54430000000101}}, nil},
		{"truncated by allocation length", "00 00 00 02 00 00 00 18 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02",
			Keys{Generation: 2, Keys: []uint64{1, 2}, Truncated: true, Needed: 32}, nil},
		{"truncated mid-key", "00 00 00 02 00 00 00 10 00 00 00 00 00 00 00 01 00 00 00",
			Keys{Generation: 2, Keys: []uint64{1}, Truncated: true, Needed: 24}, nil},
		{"short header", "00 00 00", Keys{}, ErrBadResponse},
		{"length not multiple of 8", "00 00 00 01 00 00 00 05 00 00 00 00 00", Keys{}, ErrBadResponse},
	} {
		got, err := ParseReadKeys(unhex(t, c.in))
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
			continue
		}
		if got.Generation != c.want.Generation || !slices.Equal(got.Keys, c.want.Keys) || got.Truncated != c.want.Truncated || got.Needed != c.want.Needed {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseReadReservation(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want Reservation
		err  error
	}{
		{"none", "00 00 00 03 00 00 00 00", Reservation{Generation: 3}, nil},
		{"type 5 by 0x22bb", "00 00 00 04 00 00 00 10 00 00 00 00 00 00 22 bb 00 00 00 00 00 05 00 00",
			Reservation{Generation: 4, Held: true, Key: 0x22bb, Type: WriteExclusiveRegistrantsOnly}, nil},
		{"scope bits", "00 00 00 04 00 00 00 10 00 00 00 00 00 00 22 bb 00 00 00 00 00 21 00 00",
			Reservation{Generation: 4, Held: true, Key: 0x22bb, Type: WriteExclusive, Scope: 2}, nil},
		{"bad length", "00 00 00 04 00 00 00 08 00 00 00 00 00 00 22 bb", Reservation{}, ErrBadResponse},
		{"held but short", "00 00 00 04 00 00 00 10 00 00 00 00 00 00 22 bb 00 00", Reservation{}, ErrBadResponse},
		{"short header", "00 00", Reservation{}, ErrBadResponse},
	} {
		got, err := ParseReadReservation(unhex(t, c.in))
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseCapabilities(t *testing.T) {
	// What LIO (Linux 6.1) reports, seen in the lab: CRH, SIP_C, ATP_C,
	// PTPL_C; TMV, ALLOW COMMANDS 1; types 1, 3, 5, 6, 7, 8.
	c, err := ParseCapabilities(unhex(t, "00 08 1d 90 ea 01 00 00"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.CRH || !c.SIPC || !c.ATPC || !c.PTPLC || c.RLRC || !c.TMV || c.PTPLA || c.Allow != 1 {
		t.Errorf("flags %+v", c)
	}
	if want := Types; !slices.Equal(c.Types, want) {
		t.Errorf("types %v, want %v", c.Types, want)
	}
	c, err = ParseCapabilities(unhex(t, "00 08 01 f1 20 00 00 00"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.PTPLA || c.Allow != 7 || !slices.Equal(c.Types, []Type{WriteExclusiveRegistrantsOnly}) || !c.Supports(WriteExclusiveRegistrantsOnly) || c.Supports(WriteExclusive) {
		t.Errorf("PTPL_A, allow 7, type 5 only: %+v", c)
	}
	c, err = ParseCapabilities(unhex(t, "00 08 00 00 00 00 00 00"))
	if err != nil || c.TMV || len(c.Types) != 0 || !c.Supports(WriteExclusive) {
		t.Errorf("no type mask: %+v %v (want Supports to defer to RESERVE)", c, err)
	}
	for _, bad := range []string{"00 08 00", "00 02 00 00 00 00 00 00"} {
		if _, err := ParseCapabilities(unhex(t, bad)); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v, want ErrBadResponse", bad, err)
		}
	}
}

func FuzzParseReadKeys(f *testing.F) {
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0x11, 0xaa, 0, 0, 0, 0, 0, 0, 0x22, 0xbb})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseReadKeys(b)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if 8+8*len(k.Keys) > len(b) {
			t.Fatalf("%d keys from %d bytes", len(k.Keys), len(b))
		}
		if k.Truncated && k.Needed <= len(b)-len(b)%8 && k.Needed <= 8+8*len(k.Keys) {
			t.Fatalf("truncated but needs only %d bytes of %d", k.Needed, len(b))
		}
	})
}

func FuzzParseReadReservation(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0x22, 0xbb, 0, 0, 0, 0, 0, 5, 0, 0})
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReadReservation(b)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if r.Held && len(b) < 24 {
			t.Fatalf("a reservation from %d bytes", len(b))
		}
		if !r.Held && (r.Key != 0 || r.Type != 0) {
			t.Fatalf("no reservation but key/type set: %+v", r)
		}
		_ = r.Type.String()
	})
}

func FuzzParseCapabilities(f *testing.F) {
	f.Add([]byte{0, 8, 0x1d, 0x80, 0xea, 0x01, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCapabilities(b)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if !c.TMV && len(c.Types) != 0 {
			t.Fatalf("types %v without TMV", c.Types)
		}
		for _, ty := range c.Types {
			if !ty.Valid() {
				t.Fatalf("invalid type %v", ty)
			}
		}
	})
}
