package nethb

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary datagrams to the decoder and the receiver:
// neither may panic, and anything Decode accepts must re-encode to the
// same bytes (so no two encodings authenticate the same packet).
// The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	p := basePacket()
	good, _ := p.AppendEncode(nil, testKey)
	f.Add(good)
	f.Add(good[:HeaderLen])
	f.Add([]byte{})
	r, err := NewReceiver(ReceiverConfig{Cluster: testCluster, Key: testKey, Self: 2, Peers: testPeers()[:1]})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b, testCluster, testKey)
		if err == nil {
			re, err := got.AppendEncode(nil, testKey)
			if err != nil {
				t.Fatalf("re-encode of an accepted packet: %v", err)
			}
			if !bytes.Equal(re, b) {
				t.Fatalf("accepted packet re-encodes differently:\n% x\n% x", b, re)
			}
		}
		_, _ = r.Accept(0, addrA, b)
	})
}
