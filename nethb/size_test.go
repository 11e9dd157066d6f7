package nethb

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// MaxPayload is the largest network payload hbwire writes: a heartbeat
// of 16 nodes with the largest envelope.
func TestMaxPayloadIsHbwires(t *testing.T) {
	if MaxPayload != hbwire.MaxNetWithPayload {
		t.Fatalf("MaxPayload %d, hbwire.MaxNetWithPayload %d", MaxPayload, hbwire.MaxNetWithPayload)
	}
}

// sizedPayload is the payload of a node of a 16-node cluster that hears
// every peer and runs the first running of 300 packages.
func sizedPayload(t *testing.T, running int) []byte {
	t.Helper()
	names := make([]string, 300)
	for i := range names {
		names[i] = fmt.Sprintf("pkg%03d", i)
	}
	x, err := hbwire.NewPackageIndex(names)
	if err != nil {
		t.Fatal(err)
	}
	hb := quorum.Heartbeat{From: 1, Inc: 1, Seq: 1}
	e := hbwire.Envelope{Report: placement.Report{Node: 1, Inc: 1}}
	for id := quorum.NodeID(2); id <= quorum.MaxNodes; id++ {
		hb.Echo[id] = quorum.Echo{Inc: 1, Seq: 1}
		e.Report.Acks = append(e.Report.Acks, placement.Ack{Node: id, Inc: 1, Seq: 1})
	}
	if running == 0 {
		return hbwire.AppendNet(nil, &hb)
	}
	for _, n := range names[:running] {
		e.Report.Packages = append(e.Report.Packages, placement.PackageReport{Name: n, State: placement.Running})
	}
	env, err := hbwire.AppendEnvelope(nil, &e, x)
	if err != nil {
		t.Fatal(err)
	}
	return hbwire.AppendNetWith(nil, &hb, env)
}

// The packet sizes the package documentation states, measured, and the
// largest packet crosses a UDP socket whole.
func TestPacketSizes(t *testing.T) {
	for _, c := range []struct{ running, want int }{{0, 357}, {19, 726}, {300, 1569}} {
		p := basePacket()
		p.Payload = sizedPayload(t, c.running)
		b, err := p.AppendEncode(nil, testKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != c.want {
			t.Errorf("%d packages running: %d-byte packets, the documentation says %d", c.running, len(b), c.want)
		}
	}
	p := basePacket()
	p.Payload = bytes.Repeat([]byte{0xa5}, MaxPayload)
	b, err := p.AppendEncode(nil, testKey)
	if err != nil || len(b) != MaxPacket || MaxPacket != 11405 {
		t.Fatalf("largest packet: %v, %d bytes, MaxPacket %d (the documentation says 11,405)", err, len(b), MaxPacket)
	}
	rx, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.Send(rx.LocalAddr(), b); err != nil {
		t.Fatal(err)
	}
	got, _ := recvWithin(t, rx)
	if _, err := Decode(got, p.Cluster, testKey); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("largest packet over UDP: %d bytes received, %v", len(got), err)
	}
}
