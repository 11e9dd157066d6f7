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
