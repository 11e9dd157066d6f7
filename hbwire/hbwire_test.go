package hbwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"testing"

	"github.com/mtcluster/mtc/quorum"
)

// randomHeartbeat draws a heartbeat of any shape the machine can publish:
// sender 1..16, sets of node ids, echoes of any subset of the other nodes
// (all of them every other draw).
func randomHeartbeat(rng *rand.Rand, i int) quorum.Heartbeat {
	hb := quorum.Heartbeat{
		From: quorum.NodeID(1 + rng.Intn(quorum.MaxNodes)), Inc: quorum.Incarnation(rng.Uint64() | 1), Seq: quorum.Seq(rng.Uint64()),
		Epoch: rng.Uint64(), Flags: quorum.Flags(rng.Intn(256)),
		View: quorum.Set(rng.Uint32()) & validNodes, Members: quorum.Set(rng.Uint32()) & validNodes,
	}
	for id := quorum.NodeID(1); id <= quorum.MaxNodes; id++ {
		if id != hb.From && (i%2 == 0 || rng.Intn(2) == 0) {
			hb.Echo[id] = quorum.Echo{Inc: quorum.Incarnation(rng.Uint64()), Seq: quorum.Seq(rng.Uint64())}
		}
	}
	return hb
}

// Both carriers return the heartbeat unchanged, full 16-node echo tables
// included, within their size limits.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 2000; i++ {
		hb := randomHeartbeat(rng, i)
		p := AppendNet(nil, &hb)
		if len(p) > MaxNetPayload {
			t.Fatalf("network payload %d bytes, above %d", len(p), MaxNetPayload)
		}
		got, err := DecodeNet(uint32(hb.From), uint64(hb.Inc), uint64(hb.View), p)
		if err != nil || got != hb {
			t.Fatalf("network round trip: %v\n got %+v\nwant %+v", err, got, hb)
		}
		s := ToSlot(&hb)
		if len(s.Payload) > MaxSlotPayload || MaxSlotPayload > 256 {
			t.Fatalf("slot payload %d bytes (max %d), above the slot's 256", len(s.Payload), MaxSlotPayload)
		}
		got, err = FromSlot(s)
		if err != nil || got != hb {
			t.Fatalf("slot round trip: %v\n got %+v\nwant %+v", err, got, hb)
		}
	}
}

// The member set on disk follows the disk format's numbering (bit i-1 is
// node i), and the layout is the documented one, byte for byte.
func TestLayout(t *testing.T) {
	hb := quorum.Heartbeat{From: 2, Inc: 0x1122334455667788, Seq: 5, Epoch: 3, Flags: quorum.FlagQuorate,
		View: quorum.SetOf(1, 3), Members: quorum.SetOf(1, 2, 3)}
	hb.Echo[3] = quorum.Echo{Inc: 0xa, Seq: 0xb}
	hb.Echo[2] = quorum.Echo{Inc: 0xc, Seq: 0xd} // its own: never written
	s := ToSlot(&hb)
	if s.Members != 0b111 || s.View != 0b101 {
		t.Fatalf("members %b view %b on disk", s.Members, s.View)
	}
	want := []byte{Version, byte(quorum.FlagQuorate), 0, 0, 0b100}
	want = binary.BigEndian.AppendUint64(want, 0xa)
	want = binary.BigEndian.AppendUint64(want, 0xb)
	if !bytes.Equal(s.Payload, want) {
		t.Fatalf("slot payload\n got % x\nwant % x", s.Payload, want)
	}
	net := AppendNet(nil, &hb)
	wantNet := []byte{Version, byte(quorum.FlagQuorate), 1, 0, 0b100}
	wantNet = binary.BigEndian.AppendUint64(wantNet, 5)
	wantNet = binary.BigEndian.AppendUint64(wantNet, 3)
	wantNet = binary.BigEndian.AppendUint32(wantNet, uint32(quorum.SetOf(1, 2, 3)))
	wantNet = append(wantNet, want[5:]...)
	if !bytes.Equal(net, wantNet) {
		t.Fatalf("network payload\n got % x\nwant % x", net, wantNet)
	}
}

// Malformed payloads are refused with the error that says why; the
// unversioned slot layout of earlier releases is refused as another
// version, never read as a heartbeat.
func TestRefused(t *testing.T) {
	hb := quorum.Heartbeat{From: 3, Inc: 9, Seq: 1, Members: quorum.SetOf(1, 3)}
	hb.Echo[1] = quorum.Echo{Inc: 4, Seq: 2}
	good := ToSlot(&hb)
	net := AppendNet(nil, &hb)
	mod := func(p []byte, f func([]byte)) []byte { c := bytes.Clone(p); f(c); return c }
	// Earlier releases: flags byte, then 17-byte echoes (id, inc, seq).
	legacy := append([]byte{byte(quorum.FlagQuorate | quorum.FlagSettled), 1}, make([]byte, 16)...)
	slotCases := []struct {
		name    string
		s       Slot
		wantErr error
	}{
		{"legacy layout", Slot{NodeID: 3, Payload: legacy}, ErrVersion},
		{"newer version", Slot{NodeID: 3, Payload: mod(good.Payload, func(p []byte) { p[0] = Version + 1 })}, ErrVersion},
		{"empty", Slot{NodeID: 3}, ErrPayload},
		{"truncated header", Slot{NodeID: 3, Payload: good.Payload[:3]}, ErrPayload},
		{"truncated echo", Slot{NodeID: 3, Payload: good.Payload[:len(good.Payload)-1]}, ErrPayload},
		{"extra bytes", Slot{NodeID: 3, Payload: append(bytes.Clone(good.Payload), 0)}, ErrPayload},
		{"counters in a slot", Slot{NodeID: 3, Payload: net}, ErrPayload},
		{"unknown parts", Slot{NodeID: 3, Payload: mod(good.Payload, func(p []byte) { p[2] = 2 })}, ErrPayload},
		{"echoes itself", Slot{NodeID: 1, Payload: good.Payload}, ErrPayload},
		{"empty echo", Slot{NodeID: 3, Payload: mod(good.Payload, func(p []byte) { clear(p[5:]) })}, ErrPayload},
		{"sender 0", Slot{NodeID: 0, Payload: good.Payload}, ErrPayload},
		{"sender 17", Slot{NodeID: 17, Payload: good.Payload}, ErrPayload},
		{"members above 16", Slot{NodeID: 3, Members: 1 << 16, Payload: good.Payload}, ErrPayload},
	}
	for _, c := range slotCases {
		if _, err := FromSlot(c.s); !errors.Is(err, c.wantErr) {
			t.Errorf("slot %s: %v, want %v", c.name, err, c.wantErr)
		}
	}
	netCases := []struct {
		name    string
		from    uint32
		view    uint64
		p       []byte
		wantErr error
	}{
		{"network version 1 of earlier releases", 3, 0, mod(net, func(p []byte) { p[0] = 1 }), ErrVersion},
		{"no counters", 3, 0, good.Payload, ErrPayload},
		{"view bit 0", 3, 1, net, ErrPayload},
		{"view above 16", 3, 1 << 17, net, ErrPayload},
		{"members bit 0", 3, 0, mod(net, func(p []byte) { p[24] |= 1 }), ErrPayload},
		{"short", 3, 0, net[:10], ErrPayload},
		{"mask beyond bytes", 3, 0, mod(net, func(p []byte) { p[3], p[4] = 0xff, 0xfb }), ErrPayload},
		{"empty echo", 3, 0, mod(net, func(p []byte) { clear(p[25:]) }), ErrPayload},
	}
	for _, c := range netCases {
		if _, err := DecodeNet(c.from, 9, c.view, c.p); !errors.Is(err, c.wantErr) {
			t.Errorf("network %s: %v, want %v", c.name, err, c.wantErr)
		}
	}
}
