package quorum

import (
	"errors"
	"math/rand"
	"testing"

	"github.com/google/uuid"
	"github.com/mtcluster/mtc/diskhb"
)

// A heartbeat survives the trip through diskhb's real slot encoding, for
// a full 16-node echo table too; a torn sector decodes as unknown.
func TestSlotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	cluster := uuid.New()
	for i := 0; i < 500; i++ {
		hb := Heartbeat{
			From: NodeID(1 + rng.Intn(MaxNodes)), Inc: Incarnation(rng.Uint64() | 1), Seq: Seq(rng.Uint64()),
			Epoch: rng.Uint64(), Flags: Flags(rng.Intn(16)),
			View: Set(rng.Uint32()) &^ 1 & (1<<(MaxNodes+1) - 1), Members: Set(rng.Uint32()) &^ 1 & (1<<(MaxNodes+1) - 1),
		}
		for id := NodeID(1); id <= MaxNodes; id++ {
			if id != hb.From && (i%2 == 0 || rng.Intn(2) == 0) {
				hb.Echo[id] = Echo{Inc: Incarnation(rng.Uint64() | 1), Seq: Seq(rng.Uint64())}
			}
		}
		b, err := diskhb.EncodeSlot(SlotOf(hb), 512, cluster)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		s, err := diskhb.DecodeSlot(b, cluster, int(hb.From))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		got, err := HeartbeatOf(s)
		if err != nil {
			t.Fatal(err)
		}
		if got != hb {
			t.Fatalf("round trip changed the heartbeat:\n got %+v\nwant %+v", got, hb)
		}
		torn := append([]byte(nil), b...)
		torn[200] ^= 0x10
		if _, err := diskhb.DecodeSlot(torn, cluster, int(hb.From)); !errors.Is(err, diskhb.ErrChecksum) {
			t.Fatalf("a corrupted slot decoded: %v", err)
		}
	}
	if _, err := HeartbeatOf(diskhb.Slot{NodeID: 1, Payload: []byte{0, 1}}); !errors.Is(err, ErrPayload) {
		t.Fatalf("a malformed payload was accepted: %v", err)
	}
	r := LockRecord{Owner: 3, Inc: 9, Gen: 4}
	if LockRecordOf(LockOf(r)) != r {
		t.Fatal("lock record round trip")
	}
}
