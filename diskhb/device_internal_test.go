package diskhb

import "testing"

func TestPercentileIndex(t *testing.T) {
	for _, c := range []struct{ n, p, want int }{
		{1, 50, 0}, {1, 99, 0},
		{2, 50, 0}, {2, 99, 1},
		{100, 50, 49}, {100, 99, 98},
		{256, 50, 127}, {256, 99, 253},
	} {
		if got := percentileIndex(c.n, c.p); got != c.want {
			t.Errorf("percentileIndex(%d, %d) = %d, want %d", c.n, c.p, got, c.want)
		}
	}
}
