package hbwire_test

import (
	"testing"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// The largest envelope fits a node's quorum-disk report area, whatever
// the sector size.
func TestEnvelopeFitsReportArea(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		l := diskhb.Layout{SectorSize: ss, Slots: quorum.MaxNodes, StateAreas: true}
		if n := l.MaxReportPayload(); hbwire.MaxEnvelope > n {
			t.Errorf("%d-byte sectors: a report area holds %d bytes, MaxEnvelope is %d", ss, n, hbwire.MaxEnvelope)
		}
	}
}

// The placement machine publishes no more takeovers than an envelope
// carries, however many its quorum machine allowed, and its report
// encodes.
func TestPlacementTakeoversBound(t *testing.T) {
	m, err := placement.New(placement.Config{Self: 1, Inc: 1, Nodes: []placement.Node{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	var last *placement.Report
	for i := range 3 * hbwire.MaxTakeovers {
		tk := placement.Takeover{Target: quorum.Target{Node: 2, Inc: quorum.Incarnation(i + 1)}, Reason: quorum.TakeoverFenced}
		m.Step(0, placement.TakeoversAllowed{Takeovers: []placement.Takeover{tk}})
		if r := m.Ready().Report; r != nil {
			last = r
		}
		m.Advance()
	}
	if last == nil {
		t.Fatal("the machine published no report")
	}
	if n := len(last.Takeovers); n != hbwire.MaxTakeovers {
		t.Fatalf("report carries %d takeovers after %d allowed; MaxTakeovers is %d", n, 3*hbwire.MaxTakeovers, hbwire.MaxTakeovers)
	}
	x, _ := hbwire.NewPackageIndex(nil)
	if _, err := hbwire.AppendEnvelope(nil, &hbwire.Envelope{Report: *last}, x); err != nil {
		t.Fatal(err)
	}
}
