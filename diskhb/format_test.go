package diskhb

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

var (
	testCluster  = uuid.MustParse("3f1b6c7e-2a44-4d1e-9a53-0c2f6f0a9b01")
	otherCluster = uuid.MustParse("9d2e1f00-5b6a-4c3d-8e7f-112233445566")
)

func testHeader(ss int) Header {
	return Header{
		ClusterUUID: testCluster, ClusterName: "payments", SectorSize: ss, Slots: 16,
		HeartbeatInterval: 200 * time.Millisecond, IOTimeout: 400 * time.Millisecond,
		FailureTimeout: time.Second, WatchdogTimeout: 3 * time.Second,
		FormattedAt: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
	}
}

func testSlot() Slot {
	return Slot{
		NodeID: 3, Flags: FlagRunning | FlagQuorate, Incarnation: 0xdeadbeefcafef00d, Seq: 4711,
		Epoch: 9, View: 0b111, Members: 0b101, ConfigGen: 2,
		WrittenAt: time.Date(2026, 11, 24, 12, 0, 1, 500, time.UTC), NodeName: "gamma",
		Payload: []byte{1, 2, 3, 4},
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		h := testHeader(ss)
		b, err := EncodeHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != ss {
			t.Fatalf("encoded %d bytes for %d-byte sectors", len(b), ss)
		}
		got, err := DecodeHeader(b, testCluster)
		if err != nil {
			t.Fatalf("%d: %v", ss, err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("%d: round trip\n got %+v\nwant %+v", ss, got, h)
		}
		if _, err := DecodeHeader(b, uuid.Nil); err != nil {
			t.Fatalf("any-cluster decode: %v", err)
		}
	}
}

func TestSlotLockMessageRoundTrip(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		s := testSlot()
		b, err := EncodeSlot(s, ss, testCluster)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSlot(b, testCluster, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("slot round trip\n got %+v\nwant %+v", got, s)
		}

		l := Lock{Index: TieBreakLock, Owner: 2, OwnerIncarnation: 77, Generation: 5, WrittenAt: time.Unix(100, 0).UTC()}
		b, err = EncodeLock(l, ss, testCluster)
		if err != nil {
			t.Fatal(err)
		}
		gl, err := DecodeLock(b, testCluster, TieBreakLock)
		if err != nil || !reflect.DeepEqual(gl, l) {
			t.Fatalf("lock round trip: %+v %v", gl, err)
		}

		m := Message{To: 2, From: 5, Seq: 3, Command: MsgReset, TargetIncarnation: 99, Arg: 1}
		b, err = EncodeMessage(m, ss, testCluster)
		if err != nil {
			t.Fatal(err)
		}
		gm, err := DecodeMessage(b, testCluster, 2, 5)
		if err != nil || gm != m {
			t.Fatalf("message round trip: %+v %v", gm, err)
		}
	}
}

// Every way a sector can be wrong must decode as an error of its own kind,
// never as a valid (let alone free) record.
func TestSlotCorruption(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		good, _ := EncodeSlot(testSlot(), ss, testCluster)
		mut := func(f func(b []byte)) []byte {
			b := append([]byte(nil), good...)
			f(b)
			return b
		}
		old, _ := EncodeSlot(Slot{NodeID: 3, Seq: 1, Incarnation: 1}, ss, testCluster)
		foreign, _ := EncodeSlot(testSlot(), ss, otherCluster)
		misplaced, _ := EncodeSlot(Slot{NodeID: 4, Seq: 1}, ss, testCluster)
		hdr, _ := EncodeHeader(testHeader(ss))
		cases := []struct {
			name string
			b    []byte
			want error
		}{
			{"blank", make([]byte, ss), ErrNotFormatted},
			{"other record type", hdr, ErrNotFormatted},
			{"bit flip in payload", mut(func(b []byte) { b[131] ^= 0x10 }), ErrChecksum},
			{"bit flip in seq", mut(func(b []byte) { b[48] ^= 1 }), ErrChecksum},
			{"bit flip in checksum", mut(func(b []byte) { b[ss-1] ^= 0x80 }), ErrChecksum},
			// A torn write: the first 512 bytes of the new record landed
			// over the old one (only possible in a 4096-byte sector), or
			// only the first 100 bytes did.
			{"torn at 100", append(append([]byte(nil), good[:100]...), old[100:]...), ErrChecksum},
			{"torn at 512", append(append([]byte(nil), good[:min(512, ss-8)]...), old[min(512, ss-8):]...), ErrChecksum},
			{"foreign cluster", foreign, ErrForeignCluster},
			{"misplaced", misplaced, ErrGeometry},
			{"future version", mut(func(b []byte) { le.PutUint32(b[8:], 2); seal(b) }), ErrVersion},
			{"wrong sector size field", mut(func(b []byte) { le.PutUint32(b[12:], 4096+512-uint32(ss)); seal(b) }), ErrGeometry},
			{"oversized payload length", mut(func(b []byte) { le.PutUint16(b[128:], 4000); seal(b) }), ErrGeometry},
		}
		for _, c := range cases {
			_, err := DecodeSlot(c.b, testCluster, 3)
			if !errors.Is(err, c.want) {
				t.Errorf("%d/%s: got %v, want %v", ss, c.name, err, c.want)
			}
		}
		if _, err := DecodeSlot(good[:ss-1], testCluster, 3); !errors.Is(err, ErrGeometry) {
			t.Errorf("%d/short: got %v", ss, err)
		}
	}
}

func TestLockCorruptionIsNeverFree(t *testing.T) {
	b, _ := EncodeLock(Lock{Index: 0, Owner: 0}, 512, testCluster)
	b[40] ^= 1 // flip a bit of a free lock
	l, err := DecodeLock(b, testCluster, 0)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("got %v", err)
	}
	if l != (Lock{}) {
		t.Fatalf("a damaged lock returned contents %+v", l)
	}
	if _, err := DecodeLock(make([]byte, 512), testCluster, 0); !errors.Is(err, ErrNotFormatted) {
		t.Fatalf("blank lock sector: %v", err)
	}
}

func TestHeaderCorruption(t *testing.T) {
	good, _ := EncodeHeader(testHeader(512))
	bad := append([]byte(nil), good...)
	bad[50] ^= 4
	if _, err := DecodeHeader(bad, testCluster); !errors.Is(err, ErrChecksum) {
		t.Fatalf("flip: %v", err)
	}
	if _, err := DecodeHeader(good, otherCluster); !errors.Is(err, ErrForeignCluster) {
		t.Fatalf("foreign: %v", err)
	}
	moved := append([]byte(nil), good...)
	le.PutUint32(moved[132:], 999)
	seal(moved)
	if _, err := DecodeHeader(moved, testCluster); !errors.Is(err, ErrGeometry) {
		t.Fatalf("moved area: %v", err)
	}
	zeroSlots := append([]byte(nil), good...)
	le.PutUint32(zeroSlots[32:], 0)
	seal(zeroSlots)
	if _, err := DecodeHeader(zeroSlots, testCluster); !errors.Is(err, ErrGeometry) {
		t.Fatalf("zero slots: %v", err)
	}
}

func TestEncodeRejectsBadInput(t *testing.T) {
	if _, err := EncodeSlot(Slot{NodeID: 0}, 512, testCluster); err == nil {
		t.Error("node id 0 accepted")
	}
	if _, err := EncodeSlot(Slot{NodeID: 1, Payload: make([]byte, MaxPayload+1)}, 512, testCluster); err == nil {
		t.Error("oversized payload accepted")
	}
	if _, err := EncodeSlot(Slot{NodeID: 1}, 1024, testCluster); !errors.Is(err, ErrGeometry) {
		t.Error("1024-byte sectors accepted")
	}
	h := testHeader(512)
	h.Slots = MaxSlots + 1
	if _, err := EncodeHeader(h); !errors.Is(err, ErrGeometry) {
		t.Error("too many slots accepted")
	}
	if _, err := EncodeLock(Lock{Index: LockSectors}, 512, testCluster); err == nil {
		t.Error("lock index out of range accepted")
	}
}

// The layout must keep every area apart and every slot in its own sector.
func TestLayout(t *testing.T) {
	for _, slots := range []int{1, 2, 16, 63, 64} {
		l := Layout{SectorSize: 4096, Slots: slots}
		if l.SlotSectorLBA(slots) >= l.MessageLBA() {
			t.Errorf("%d slots: last slot %d overlaps messages at %d", slots, l.SlotSectorLBA(slots), l.MessageLBA())
		}
		if l.MessageSectorLBA(slots, slots) != l.EndLBA()-1 {
			t.Errorf("%d slots: last message sector %d, end %d", slots, l.MessageSectorLBA(slots, slots), l.EndLBA())
		}
		if LockLBA+LockSectors > ConfigLBA || ConfigLBA+ConfigSectors > SlotLBA {
			t.Error("lock, config and slot areas overlap")
		}
	}
	if got := (Layout{SectorSize: 512, Slots: 16}).MinSize(); got != (64+64+256)*512 {
		t.Errorf("min size %d", got)
	}
}
