package diskhb_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mtcluster/mtc/diskhb"
)

func formatted(t *testing.T, ss int) (*diskhb.Disk, func(off int64, b []byte)) {
	t.Helper()
	fd, open := newFake(t, ss)
	dev := open("admin")
	if err := diskhb.Format(ctx(), dev, header(ss), false); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(ctx(), dev, expect())
	if err != nil {
		t.Fatal(err)
	}
	return d, func(off int64, b []byte) { fd.Poke(off, b) }
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// Records of every size up to the area's bound come back as written, with
// both sector sizes; one byte more is refused.
func TestStateAndReportRoundTrip(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		d, _ := formatted(t, ss)
		l := d.Header().Layout()
		if !l.HasStateAreas() || l.StateSectors()*int64(ss) != diskhb.StateCopyBytes {
			t.Fatalf("%d: layout %+v", ss, l)
		}
		// A new disk holds an empty generation-1 state.
		sr, err := d.ReadState(ctx())
		if err != nil || sr.Record.Generation != 1 || len(sr.Record.Payload) != 0 || sr.Record.Writer != 0 {
			t.Fatalf("%d: fresh state %+v, %v", ss, sr, err)
		}
		chunk := ss - 76
		for gen, n := range []int{0, 1, chunk, chunk + 1, 3*chunk - 1, l.MaxStatePayload()} {
			r := diskhb.Record{Generation: uint64(gen + 2), Writer: 2, Incarnation: 0xabc, Epoch: 7, Payload: payload(n)}
			if err := d.WriteState(ctx(), r); err != nil {
				t.Fatalf("%d: write %d bytes: %v", ss, n, err)
			}
			sr, err := d.ReadState(ctx())
			if err != nil || sr.Record.Generation != r.Generation || !bytes.Equal(sr.Record.Payload, r.Payload) ||
				sr.Record.Writer != 2 || sr.Record.Incarnation != 0xabc || sr.Record.Epoch != 7 || sr.Copy != int(r.Generation%2) {
				t.Fatalf("%d: %d bytes: read %+v (%d bytes), %v", ss, n, sr.Copy, len(sr.Record.Payload), err)
			}
		}
		if err := d.WriteState(ctx(), diskhb.Record{Generation: 99, Writer: 1, Payload: payload(l.MaxStatePayload() + 1)}); !errors.Is(err, diskhb.ErrTooLarge) {
			t.Fatalf("%d: oversized state: %v", ss, err)
		}
		for id := 1; id <= 4; id++ {
			r := diskhb.Record{Generation: uint64(10 + id), Writer: id, Incarnation: uint64(id), Payload: payload(id * 100)}
			if err := d.WriteReport(ctx(), r); err != nil {
				t.Fatal(err)
			}
		}
		for id := 1; id <= 4; id++ {
			r, err := d.ReadReport(ctx(), id)
			if err != nil || r.Writer != id || r.Generation != uint64(10+id) || !bytes.Equal(r.Payload, payload(id*100)) {
				t.Fatalf("%d: report %d: %+v, %v", ss, id, r.Writer, err)
			}
		}
		if err := d.WriteReport(ctx(), diskhb.Record{Generation: 1, Writer: 5}); !errors.Is(err, diskhb.ErrGeometry) {
			t.Fatalf("report of node 5 on a 4-slot disk: %v", err)
		}
	}
}

// A write torn between sectors never reads as a shorter or mixed record:
// the copy is torn, and the reader takes the other, older, whole copy.
// With both copies bad the state is unknown, never empty.
func TestStateTornWriteFallsBack(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		d, poke := formatted(t, ss)
		l := d.Header().Layout()
		old := diskhb.Record{Generation: 4, Writer: 1, Payload: payload(3 * (ss - 76))}
		if err := d.WriteState(ctx(), old); err != nil {
			t.Fatal(err)
		}
		// Generation 6 lands in the same copy as 4; only its first sector
		// reaches the disk: sectors 1 and 2 still hold generation 4.
		next, err := diskhb.EncodeStateRecord(diskhb.Record{Generation: 6, Writer: 1, Payload: payload(3 * (ss - 76))}, l, cluster)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WriteState(ctx(), diskhb.Record{Generation: 5, Writer: 1, Payload: []byte("five")}); err != nil {
			t.Fatal(err)
		}
		poke(l.StateCopyLBA(0)*int64(ss), next[:ss])
		sr, err := d.ReadState(ctx())
		if err != nil || sr.Record.Generation != 5 || string(sr.Record.Payload) != "five" || !errors.Is(sr.Problems[0], diskhb.ErrTorn) {
			t.Fatalf("%d: after a torn write: %+v problems %v, %v", ss, sr.Record.Generation, sr.Problems, err)
		}
		// Copy 1 damaged too (one bit): unknown.
		b := make([]byte, ss)
		copy(b, next[:ss])
		b[100] ^= 1
		poke(l.StateCopyLBA(1)*int64(ss), b)
		if _, err := d.ReadState(ctx()); !errors.Is(err, diskhb.ErrStateUnknown) || !errors.Is(err, diskhb.ErrChecksum) {
			t.Fatalf("%d: both copies bad: %v", ss, err)
		}
		// Both copies blank (wiped): unknown as well, not "no state".
		poke(l.StateCopyLBA(0)*int64(ss), make([]byte, 2*l.StateSectors()*int64(ss)))
		if _, err := d.ReadState(ctx()); !errors.Is(err, diskhb.ErrStateUnknown) {
			t.Fatalf("%d: wiped state: %v", ss, err)
		}
	}
}

// A generation in the copy it does not belong to (a writer that broke the
// rule, or a copy moved by hand) is not trusted.
func TestStateCopyParity(t *testing.T) {
	d, poke := formatted(t, 512)
	l := d.Header().Layout()
	if err := d.WriteState(ctx(), diskhb.Record{Generation: 2, Writer: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := diskhb.EncodeStateRecord(diskhb.Record{Generation: 9, Writer: 1}, l, cluster)
	if err != nil {
		t.Fatal(err)
	}
	poke(l.StateCopyLBA(0)*512, b)
	sr, err := d.ReadState(ctx())
	if err != nil || sr.Record.Generation != 1 || sr.Problems[0] == nil {
		t.Fatalf("generation 9 in copy 0: %+v %v", sr, err)
	}
}

// A report area holds its own node's record only.
func TestReportOfAnotherNode(t *testing.T) {
	d, poke := formatted(t, 512)
	l := d.Header().Layout()
	b, _, err := encodeReportForTest(d, diskhb.Record{Generation: 1, Writer: 3})
	if err != nil {
		t.Fatal(err)
	}
	poke(l.ReportAreaLBA(2)*512, b)
	if _, err := d.ReadReport(ctx(), 2); !errors.Is(err, diskhb.ErrGeometry) {
		t.Fatalf("node 3's record in node 2's area: %v", err)
	}
	if _, err := d.ReadReport(ctx(), 4); !errors.Is(err, diskhb.ErrBlank) || !errors.Is(err, diskhb.ErrNotFormatted) {
		t.Fatalf("never written report: %v", err)
	}
}

// encodeReportForTest writes r through the disk into its own area and
// reads the sectors back, to place them elsewhere.
func encodeReportForTest(d *diskhb.Disk, r diskhb.Record) ([]byte, int, error) {
	if err := d.WriteReport(ctx(), r); err != nil {
		return nil, 0, err
	}
	l := d.Header().Layout()
	b, err := d.Device().Read(ctx(), l.ReportAreaLBA(r.Writer)*512, 512)
	return b, 1, err
}

// A disk formatted before the state areas existed (zero at header bytes
// 136-151) still opens, and says plainly what it lacks.
func TestDiskWithoutStateAreas(t *testing.T) {
	_, open := newFake(t, 512)
	dev := open("admin")
	if err := diskhb.Format(ctx(), dev, header(512), false); err != nil {
		t.Fatal(err)
	}
	hb, err := dev.Read(ctx(), 0, 512)
	if err != nil {
		t.Fatal(err)
	}
	h, err := diskhb.DecodeHeader(hb, cluster)
	if err != nil || !h.StateAreas {
		t.Fatalf("new header: %+v %v", h, err)
	}
	h.StateAreas = false
	old, err := diskhb.EncodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old[136:152], make([]byte, 16)) {
		t.Fatal("a header without state areas stores their positions")
	}
	if err := dev.Write(ctx(), 0, old); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(ctx(), dev, expect())
	if err != nil {
		t.Fatalf("open an earlier disk: %v", err)
	}
	if err := d.WriteSlot(ctx(), diskhb.Slot{NodeID: 1, Incarnation: 1, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadState(ctx()); !errors.Is(err, diskhb.ErrNoStateArea) {
		t.Fatalf("ReadState on an earlier disk: %v", err)
	}
	if err := d.WriteReport(ctx(), diskhb.Record{Generation: 1, Writer: 1}); !errors.Is(err, diskhb.ErrNoStateArea) {
		t.Fatalf("WriteReport on an earlier disk: %v", err)
	}
	// Garbage where the positions go is a damaged header.
	bad := append([]byte(nil), hb...)
	bad[140]++
	diskhb.ResealForTest(bad)
	if _, err := diskhb.DecodeHeader(bad, cluster); !errors.Is(err, diskhb.ErrDamagedHeader) {
		t.Fatalf("wrong state area positions: %v", err)
	}
}
