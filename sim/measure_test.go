package sim

import (
	"testing"

	"github.com/mtcluster/mtc/config"
)

// BenchmarkDetection reports, as custom metrics, how long survivors take
// to drop a dead node and to hold quorum again, with the default and the
// aggressive timing. Measured, never asserted.
func BenchmarkDetection(b *testing.B) {
	for _, c := range []struct {
		name string
		t    config.Timing
	}{{"default", config.DefaultTiming()}, {"aggressive", config.AggressiveTiming()}} {
		b.Run(c.name, func(b *testing.B) {
			var d Detection
			var err error
			for i := 0; i < b.N; i++ {
				d, err = MeasureDetection(c.t, 5, 1, 200)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(d.Decided.P50.Milliseconds()), "decide-p50-ms")
			b.ReportMetric(float64(d.Decided.P99.Milliseconds()), "decide-p99-ms")
			b.ReportMetric(float64(d.Decided.Max.Milliseconds()), "decide-max-ms")
			b.ReportMetric(float64(d.Requorate.P50.Milliseconds()), "quorate-p50-ms")
			b.ReportMetric(float64(d.Requorate.Max.Milliseconds()), "quorate-max-ms")
			b.ReportMetric(float64(d.Gap.P50.Milliseconds()), "gap-p50-ms")
			b.ReportMetric(float64(d.Gap.Max.Milliseconds()), "gap-max-ms")
			b.Log(d)
		})
	}
}

// TestMeasureDetection checks that the measurement itself works (every
// history decides and regains quorum, every gap is accounted for), not how
// fast.
func TestMeasureDetection(t *testing.T) {
	d, err := MeasureDetection(config.AggressiveTiming(), 3, 1, 20)
	if err != nil {
		t.Fatal(err)
	}
	if d.Histories != 20 || d.Undecided != 0 || d.NoQuorum != 0 {
		t.Fatalf("measurement incomplete: %v", d)
	}
	// A gap is measured when there is one: never longer than the time
	// watched, and present whenever a history has one.
	if d.Gap.Max > 3*config.AggressiveTiming().Derive().TakeoverAfter || (d.GapHistories > 0) != (d.Gap.Max > 0) {
		t.Fatalf("gap measurement inconsistent: %v", d)
	}
	t.Log(d)
}

// BenchmarkTakeoverTwoNodes reports crash -> takeover allowed in a
// two-node cluster with fencing, the fence as arbiter against the
// tie-break lock, at the default and the aggressive timing. Measured,
// never asserted.
func BenchmarkTakeoverTwoNodes(b *testing.B) {
	for _, tc := range []struct {
		name string
		t    config.Timing
	}{{"default", config.DefaultTiming()}, {"aggressive", config.AggressiveTiming()}} {
		for _, arbiter := range []bool{true, false} {
			name := tc.name + "/lock"
			if arbiter {
				name = tc.name + "/arbiter"
			}
			b.Run(name, func(b *testing.B) {
				var r TakeoverTimes
				var err error
				for i := 0; i < b.N; i++ {
					if r, err = MeasureTakeover(tc.t, 2, arbiter, 1, 200); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(r.Allowed.P50.Milliseconds()), "takeover-p50-ms")
				b.ReportMetric(float64(r.Allowed.P99.Milliseconds()), "takeover-p99-ms")
				b.ReportMetric(float64(r.Allowed.Max.Milliseconds()), "takeover-max-ms")
				b.Log(r)
			})
		}
	}
}

// TestMeasureTakeover checks that the measurement works: every history of
// a two-node crash ends in a takeover, with the arbiter on a verified
// fence; not how fast.
func TestMeasureTakeover(t *testing.T) {
	for _, arbiter := range []bool{true, false} {
		r, err := MeasureTakeover(config.AggressiveTiming(), 2, arbiter, 1, 20)
		if err != nil {
			t.Fatal(err)
		}
		if r.Histories != 20 || r.Never != 0 || (arbiter && r.Fenced != 20) {
			t.Fatalf("measurement incomplete: %v", r)
		}
		t.Log(r)
	}
}
