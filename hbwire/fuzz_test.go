package hbwire

import (
	"bytes"
	"testing"

	"github.com/mtcluster/mtc/quorum"
)

// FuzzDecodeNet feeds arbitrary network payloads: decoding never panics,
// and whatever decodes encodes back to the same bytes and the same
// heartbeat (the layout is canonical). The corpus is in
// testdata/fuzz/FuzzDecodeNet.
func FuzzDecodeNet(f *testing.F) {
	hb := quorum.Heartbeat{From: 2, Inc: 7, Seq: 9, Epoch: 1, Members: quorum.SetOf(1, 2), View: quorum.SetOf(1)}
	hb.Echo[1] = quorum.Echo{Inc: 3, Seq: 4}
	f.Add(uint8(2), uint64(hb.View), AppendNet(nil, &hb))
	f.Fuzz(func(t *testing.T, from uint8, view uint64, p []byte) {
		hb, err := DecodeNet(uint32(from), 5, view, p)
		if err != nil {
			return
		}
		again := AppendNet(nil, &hb)
		if !bytes.Equal(again, p) {
			t.Fatalf("decoded %+v re-encodes as\n% x\nnot\n% x", hb, again, p)
		}
		hb2, err := DecodeNet(uint32(from), 5, view, again)
		if err != nil || hb2 != hb {
			t.Fatalf("second decode: %v %+v", err, hb2)
		}
	})
}

// FuzzDecodeSlot does the same for slot records.
func FuzzDecodeSlot(f *testing.F) {
	hb := quorum.Heartbeat{From: 3, Inc: 7, Seq: 9, Epoch: 1, Members: quorum.SetOf(1, 3)}
	hb.Echo[1] = quorum.Echo{Inc: 3, Seq: 4}
	s := ToSlot(&hb)
	f.Add(uint8(3), s.View, s.Members, s.Payload)
	f.Fuzz(func(t *testing.T, id uint8, view, members uint64, p []byte) {
		in := Slot{NodeID: int(id), Incarnation: 5, Seq: 6, Epoch: 7, View: view, Members: members, Payload: p}
		hb, err := FromSlot(in)
		if err != nil {
			return
		}
		out := ToSlot(&hb)
		if !bytes.Equal(out.Payload, p) || out.View != view || out.Members != members || out.NodeID != in.NodeID {
			t.Fatalf("decoded %+v re-encodes as %+v, not %+v", hb, out, in)
		}
		hb2, err := FromSlot(out)
		if err != nil || hb2 != hb {
			t.Fatalf("second decode: %v %+v", err, hb2)
		}
	})
}
