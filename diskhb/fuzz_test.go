package diskhb

import (
	"reflect"
	"testing"
)

// The decoders read sectors written by other nodes, torn writes and random
// garbage. They must never panic, and whatever they accept must survive an
// encode/decode round trip unchanged (nothing is invented or lost).
//
// Random mutations almost never keep a CRC32C valid, so each input is
// decoded twice: as it is (the checks in front of the checksum), and as a
// sealed sector, padded or cut to 512 or 4096 bytes with its checksum fixed
// up (the field decoders behind it).

// sealed is b as a whole sector with a valid checksum.
func sealed(b []byte) []byte {
	ss := 512
	if len(b) > 512 {
		ss = 4096
	}
	s := make([]byte, ss)
	copy(s, b)
	seal(s)
	return s
}

// both runs check on b and on sealed(b).
func both(b []byte, check func(b []byte)) {
	check(b)
	check(sealed(b))
}

func fuzzSeeds(f *testing.F, enc func(ss int) []byte) {
	for _, ss := range []int{512, 4096} {
		b := enc(ss)
		f.Add(b)
		torn := append([]byte(nil), b...)
		clear(torn[ss/2:])
		f.Add(torn)
	}
	f.Add(make([]byte, 512))
	f.Add([]byte("MTCQ"))
}

func FuzzDecodeHeader(f *testing.F) {
	fuzzSeeds(f, func(ss int) []byte { b, _ := EncodeHeader(testHeader(ss)); return b })
	f.Fuzz(func(t *testing.T, b []byte) {
		both(b, func(b []byte) {
			h, err := DecodeHeader(b, testCluster)
			if err != nil {
				if h != (Header{}) {
					t.Fatalf("error %v with contents %+v", err, h)
				}
				return
			}
			again, err := EncodeHeader(h)
			if err != nil {
				t.Fatalf("decoded header does not encode: %v", err)
			}
			h2, err := DecodeHeader(again, testCluster)
			if err != nil || !reflect.DeepEqual(h, h2) {
				t.Fatalf("round trip differs: %+v %+v %v", h, h2, err)
			}
		})
	})
}

func FuzzDecodeSlot(f *testing.F) {
	fuzzSeeds(f, func(ss int) []byte { b, _ := EncodeSlot(testSlot(), ss, testCluster); return b })
	f.Fuzz(func(t *testing.T, b []byte) {
		both(b, func(b []byte) {
			s, err := DecodeSlot(b, testCluster, 3)
			if err != nil {
				if !reflect.DeepEqual(s, Slot{}) {
					t.Fatalf("error %v with contents %+v", err, s)
				}
				return
			}
			if s.Empty() && s.Flags&^FlagsDefined != 0 {
				t.Fatalf("undefined flags %#x reported empty", s.Flags)
			}
			again, err := EncodeSlot(s, len(b), testCluster)
			if err != nil {
				t.Fatalf("decoded slot does not encode: %v", err)
			}
			s2, err := DecodeSlot(again, testCluster, 3)
			if err != nil || !reflect.DeepEqual(s, s2) {
				t.Fatalf("round trip differs: %+v %+v %v", s, s2, err)
			}
		})
	})
}

func FuzzDecodeLock(f *testing.F) {
	fuzzSeeds(f, func(ss int) []byte {
		b, _ := EncodeLock(Lock{Owner: 2, OwnerIncarnation: 9, Generation: 3}, ss, testCluster)
		return b
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		both(b, func(b []byte) {
			l, err := DecodeLock(b, testCluster, 0)
			if err != nil {
				if l != (Lock{}) {
					t.Fatalf("error with contents %+v", l)
				}
				return
			}
			again, err := EncodeLock(l, len(b), testCluster)
			if err != nil {
				t.Fatal(err)
			}
			if l2, err := DecodeLock(again, testCluster, 0); err != nil || l2 != l {
				t.Fatalf("round trip differs: %+v %+v %v", l, l2, err)
			}
		})
	})
}

func FuzzDecodeMessage(f *testing.F) {
	fuzzSeeds(f, func(ss int) []byte {
		b, _ := EncodeMessage(Message{To: 2, From: 5, Seq: 1, Command: MsgReset}, ss, testCluster)
		return b
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		both(b, func(b []byte) {
			m, err := DecodeMessage(b, testCluster, 2, 5)
			if err != nil {
				if m != (Message{}) {
					t.Fatalf("error with contents %+v", m)
				}
				return
			}
			again, err := EncodeMessage(m, len(b), testCluster)
			if err != nil {
				t.Fatal(err)
			}
			if m2, err := DecodeMessage(again, testCluster, 2, 5); err != nil || m2 != m {
				t.Fatalf("round trip differs: %+v %+v %v", m, m2, err)
			}
		})
	})
}

// FuzzDecodeStateRecord decodes a multi-sector record of 512-byte sectors:
// the input is cut into sectors and each is sealed, so the cross-sector
// checks (torn writes, lengths, counts) are what gets fuzzed.
func FuzzDecodeStateRecord(f *testing.F) {
	for _, n := range []int{0, 10, 436, 437, 1500} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i)
		}
		b, _ := encodeRecord(magicState, Record{Generation: 3, Writer: 2, Incarnation: 9, Epoch: 4, Payload: p}, 512, testCluster, 8)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, raw := range []bool{true, false} {
			area := make([]byte, 8*512)
			copy(area, b)
			if !raw {
				for i := 0; i < len(area); i += 512 {
					seal(area[i : i+512])
				}
			}
			r, err := decodeRecord(area, magicState, 512, testCluster, 0)
			if err != nil {
				if !reflect.DeepEqual(r, Record{}) {
					t.Fatalf("error %v with contents %+v", err, r)
				}
				continue
			}
			again, err := encodeRecord(magicState, r, 512, testCluster, 8)
			if err != nil {
				t.Fatalf("decoded record does not encode: %v", err)
			}
			r2, err := decodeRecord(append(again, make([]byte, len(area)-len(again))...), magicState, 512, testCluster, 0)
			if err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("round trip differs: %+v %+v %v", r, r2, err)
			}
		}
	})
}
