package sim

import (
	"testing"

	"github.com/mtcluster/mtc/config"
)

// TestMeasurePlacement: one history of the placement measurement, on a
// smaller cluster, completes and measures.
func TestMeasurePlacement(t *testing.T) {
	r, err := MeasurePlacement(config.DefaultTiming(), 5, 40, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Incomplete != 0 || r.Steps == 0 || r.Settled.Max <= 0 || r.Takeover.Max <= 0 || r.Moved == 0 {
		t.Fatalf("measurement incomplete: %v", r)
	}
	t.Log(r)
}
