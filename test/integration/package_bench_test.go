package integration

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/pkgrun"
)

// BenchmarkPackageStartHalt starts and halts a package (VIP, route, ext4
// on a loop device, a TCP service with a health check) in a network
// namespace, b.N times, and reports the median time of every step and of
// the whole plans with and without the service's own start and stop.
// Nothing is asserted. With MTC_BENCH_OUT=FILE it replaces the package
// section of that markdown file:
//
//	MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench PackageStartHalt -benchtime 20x ./test/integration
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
	msf := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	var out strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&out, format, a...) }
	host, _ := os.Hostname()
	p("## Package start and halt on one node\n\n")
	p("One package (an IPv4 VIP with its RFC 5227 probe and gratuitous ARP, a route, ext4 on a loop device with fsck -p, a TCP service with a connect health check) started and halted %d times in a network namespace on %s (%d CPUs), through the same runner as production (pkgrun.Node). Median per step, from the package's own timelines. Measured %s with:\n\n",
		b.N, host, numCPU(), time.Now().UTC().Format("2006-01-02"))
	p("    MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench PackageStartHalt -benchtime 20x ./test/integration\n\n")
	p("| step | median |\n|---|---|\n")
	for _, k := range order {
		p("| %s | %s |\n", strings.ReplaceAll(k, fs.MountPoint, "MOUNTPOINT"), msf(med(steps[k])))
	}
	p("\n| plan | whole (median) | without the service's own start or stop (median) |\n|---|---|---|\n")
	p("| start | %s | %s |\n| halt | %s | %s |\n\n", msf(med(starts)), msf(med(startsNoSvc)), msf(med(halts)), msf(med(haltsNoSvc)))
	p("The address step is the ARP probe: 2 probes 50 ms apart and 100 ms of listening (netres.DefaultProbe*); the announcement step sends the first of 5 gratuitous ARPs, the other 4 follow 200 ms apart in the background. The service's start includes its first successful health check.\n")
	fmt.Print(out.String())
	if file := os.Getenv("MTC_BENCH_OUT"); file != "" {
		if err := benchdoc.ReplaceSection(file, "package", out.String()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(med(starts))/1e6, "start-ms")
	b.ReportMetric(float64(med(startsNoSvc))/1e6, "start-no-service-ms")
	b.ReportMetric(float64(med(halts))/1e6, "halt-ms")
	b.ReportMetric(float64(med(haltsNoSvc))/1e6, "halt-no-service-ms")
}
