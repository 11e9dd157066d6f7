package hbwire

import (
	"bytes"
	"math/rand"
	"reflect"
	"testing"

	"github.com/mtcluster/mtc/quorum"
)

// FuzzDecodeNet feeds arbitrary network payloads: decoding never panics,
// and whatever decodes encodes back to the same bytes and the same
// heartbeat and envelope section (the layout is canonical); DecodeNet
// agrees with DecodeNetWith. The corpus is in testdata/fuzz/FuzzDecodeNet.
func FuzzDecodeNet(f *testing.F) {
	hb := quorum.Heartbeat{From: 2, Inc: 7, Seq: 9, Epoch: 1, Members: quorum.SetOf(1, 2), View: quorum.SetOf(1)}
	hb.Echo[1] = quorum.Echo{Inc: 3, Seq: 4}
	f.Add(uint8(2), uint64(hb.View), AppendNet(nil, &hb))
	e, x := layoutEnvelope()
	env, _ := AppendEnvelope(nil, &e, x)
	f.Add(uint8(2), uint64(hb.View), AppendNetWith(nil, &hb, env))
	f.Fuzz(func(t *testing.T, from uint8, view uint64, p []byte) {
		hb, env, err := DecodeNetWith(uint32(from), 5, view, p)
		if hb1, err1 := DecodeNet(uint32(from), 5, view, p); hb1 != hb || (err == nil) != (err1 == nil) {
			t.Fatalf("DecodeNet %v %+v, DecodeNetWith %v %+v", err1, hb1, err, hb)
		}
		if err != nil {
			return
		}
		again := AppendNetWith(nil, &hb, env)
		if !bytes.Equal(again, p) {
			t.Fatalf("decoded %+v re-encodes as\n% x\nnot\n% x", hb, again, p)
		}
		hb2, env2, err := DecodeNetWith(uint32(from), 5, view, again)
		if err != nil || hb2 != hb || !bytes.Equal(env2, env) {
			t.Fatalf("second decode: %v %+v", err, hb2)
		}
	})
}

// FuzzDecodeEnvelope feeds arbitrary envelopes to a decoder with a
// 5-package index: decoding never panics, and whatever decodes encodes back
// to the same bytes and decodes to the same envelope.
func FuzzDecodeEnvelope(f *testing.F) {
	x := mustIndex(f, packageNames(5)...)
	rng := rand.New(rand.NewSource(3))
	for range 4 {
		e := randomEnvelope(rng, x)
		b, err := AppendEnvelope(nil, &e, x)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{EnvelopeVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b, x)
		if err != nil {
			return
		}
		again, err := AppendEnvelope(nil, &e, x)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v re-encodes as (%v)\n% x\nnot\n% x", e, err, again, b)
		}
		e2, err := DecodeEnvelope(again, x)
		if err != nil || !reflect.DeepEqual(e2, e) {
			t.Fatalf("second decode: %v %+v", err, e2)
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
