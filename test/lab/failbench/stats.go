package failbench

import (
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
