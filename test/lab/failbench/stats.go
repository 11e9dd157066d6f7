package failbench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Pct is the q-quantile of d by nearest rank (0 for none).
func Pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Sec formats d in seconds, as the benchmark reports write them.
func Sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// Quantiles is the p50, p95 and max cells of a report row for d:
// "p50 | p95 | max".
func Quantiles(d []time.Duration) string {
	return Sec(Pct(d, 0.5)) + " | " + Sec(Pct(d, 0.95)) + " | " + Sec(Pct(d, 1))
}
