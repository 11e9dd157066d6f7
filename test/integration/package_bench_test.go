package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/pkgrun"
)

// BenchmarkPackageStartHalt starts and halts a package (VIP, route, ext4
// on a loop device, a TCP service with a health check) in a network
// namespace, b.N times, and reports the median time of every step and of
// the whole plans with and without the service's own start and stop:
//
//	go test -run '^$' -bench BenchmarkPackageStartHalt -benchtime 10x ./test/integration/
func BenchmarkPackageStartHalt(b *testing.B) {
	seg := newSegment(b, "alpha", "obs")
	fs := ext4(b)
	nd := seg.node("alpha", vipSpec(b, "10.214.0.100/24", fs, "alpha"))
	ctx := context.Background()
	steps := map[string][]time.Duration{}
	var order []string
	add := func(tl *pkgrun.Timeline) (total, service time.Duration) {
		for _, s := range tl.Steps {
			key := tl.Kind + ": " + s.Name
			if _, ok := steps[key]; !ok {
				order = append(order, key)
			}
			steps[key] = append(steps[key], s.Duration())
			if strings.Contains(s.Name, "service ") {
				service += s.Duration()
			}
		}
		return tl.End.Sub(tl.Start), service
	}
	var starts, halts, startsNoSvc, haltsNoSvc []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := nd.pkg.Start(ctx, nil); err != nil {
			b.Fatal(err)
		}
		if err := nd.pkg.Halt(ctx); err != nil {
			b.Fatal(err)
		}
		s, ss := add(nd.pkg.LastStart())
		h, hs := add(nd.pkg.LastHalt())
		starts, startsNoSvc = append(starts, s), append(startsNoSvc, s-ss)
		halts, haltsNoSvc = append(halts, h), append(haltsNoSvc, h-hs)
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		d = append([]time.Duration(nil), d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	var out strings.Builder
	fmt.Fprintf(&out, "median of %d runs\n", b.N)
	for _, k := range order {
		fmt.Fprintf(&out, "  %-70s %8.1f ms\n", k, float64(med(steps[k]))/1e6)
	}
	fmt.Fprintf(&out, "  start %.1f ms (without the service %.1f ms), halt %.1f ms (without the service %.1f ms)\n",
		float64(med(starts))/1e6, float64(med(startsNoSvc))/1e6, float64(med(halts))/1e6, float64(med(haltsNoSvc))/1e6)
	fmt.Print(out.String())
	b.ReportMetric(float64(med(starts))/1e6, "start-ms")
	b.ReportMetric(float64(med(startsNoSvc))/1e6, "start-no-service-ms")
	b.ReportMetric(float64(med(halts))/1e6, "halt-ms")
	b.ReportMetric(float64(med(haltsNoSvc))/1e6, "halt-no-service-ms")
}
