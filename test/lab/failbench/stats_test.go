package failbench

import (
	"testing"
	"time"
)

func TestPctNearestRank(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6} // 1..10, unsorted
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.95, 10}, {1, 10}, {0, 1}, {0.1, 1}, {0.11, 2}} {
		if got := Pct(d, c.q); got != c.want {
			t.Errorf("Pct(1..10, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if Pct(nil, 0.5) != 0 {
		t.Error("Pct of nothing is not 0")
	}
	if d[0] != 5 {
		t.Error("Pct sorted its input")
	}
}

func TestQuantilesCells(t *testing.T) {
	d := []time.Duration{3 * time.Second, 1 * time.Second, 2 * time.Second}
	if got := Quantiles(d); got != "2.00 s | 3.00 s | 3.00 s" {
		t.Fatalf("Quantiles %q", got)
	}
}
