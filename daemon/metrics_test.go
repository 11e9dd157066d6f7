package daemon

import (
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mtcluster/mtc/fence"
)

// scrape returns the metrics page and a lookup of one series' value.
func scrape(t *testing.T, d *Daemon) (string, func(series string) (float64, bool)) {
	t.Helper()
	h, err := d.MetricsHandler()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	page := string(b)
	return page, func(series string) (float64, bool) {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(page)
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("%s: %v", series, err)
		}
		return v, true
	}
}

// The metrics page shows what the status shows: quorum, members, each
// peer's state and paths, the disk and heartbeat counters, and the
// distributions of disk round times and heartbeat gaps as they happen.
func TestMetrics(t *testing.T) {
	tc := newTestCluster(t, 3)
	a := tc.nodes[0]
	if problems, err := promtest.CollectAndLint(a.d.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %+v", err, problems)
	}
	tc.waitFor("n1 quorate with all", func() bool { return quorateWith(a, "n1", "n2", "n3") })
	tc.waitFor("disk writes and heartbeat gaps observed", func() bool {
		_, get := scrape(t, a.d)
		w, _ := get(`mtc_quorum_disk_round_seconds_count{kind="write",result="ok"}`)
		g, _ := get(`mtc_heartbeat_gap_seconds_count{network="lan",peer="n2"}`)
		return w > 2 && g > 2
	})
	page, get := scrape(t, a.d)
	for series, want := range map[string]float64{
		`mtc_up`:      1,
		`mtc_quorate`: 1,
		`mtc_members`: 3,
		`mtc_peer_state{peer="n2",state="alive"}`: 1,
		`mtc_peer_state{peer="n2",state="dead"}`:  0,
		`mtc_peer_member{peer="n3"}`:              1,
		`mtc_fence_luns{method="pr"}`:             0,
	} {
		if v, ok := get(series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if v, ok := get(`mtc_decisions_total{kind="quorum-gained"}`); !ok || v < 1 {
		t.Errorf("quorum-gained decisions %v (present %v), want at least 1", v, ok)
	}
	for _, name := range []string{"mtc_heartbeats_sent_total", "mtc_heartbeats_accepted_total", "mtc_quorum_disk_writes_total", "mtc_watchdog_feeds_total", "go_goroutines"} {
		if !strings.Contains(page, "\n"+name) {
			t.Errorf("no %s on the page", name)
		}
	}

	// A peer that stops is shown as it leaves.
	tc.nodes[2].stop()
	tc.waitFor("n3 out of the member set in the metrics", func() bool {
		_, get := scrape(t, a.d)
		m, _ := get(`mtc_peer_member{peer="n3"}`)
		alive, _ := get(`mtc_peer_state{peer="n3",state="alive"}`)
		n, _ := get(`mtc_members`)
		return m == 0 && alive == 0 && n == 2
	})
}

// A fence shows in the metrics: one attempt of n3 by n1 with outcome
// fenced, its duration in the histogram, and the LUNs counted as PR.
func TestMetricsFence(t *testing.T) {
	san := newFakeSAN()
	tc := newFencedCluster(t, 3, san)
	a, c := tc.nodes[0], tc.nodes[2]
	tc.waitFor("n1 quorate with all", func() bool { return quorateWith(a, "n1", "n2", "n3") })
	c.stop()
	tc.waitFor("n1 fenced n3", func() bool { return len(a.d.Status().Fencing.Fenced) == 1 })
	_, get := scrape(t, a.d)
	for series, want := range map[string]float64{
		`mtc_fence_attempts_total{outcome="fenced",victim="n3"}`: 1,
		`mtc_fence_seconds_count{outcome="fenced"}`:              1,
		`mtc_fence_luns{method="pr"}`:                            2,
		`mtc_fence_luns{method="watchdog"}`:                      0,
	} {
		if v, ok := get(series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

func TestFenceOutcome(t *testing.T) {
	for err, want := range map[error]string{
		nil: fenceOK,
		fmt.Errorf("fence n3: %w", fence.ErrSelfFenced):       fenceSelfFenced,
		fmt.Errorf("lun x: %w", fence.ErrReservationConflict): fenceConflict,
		fmt.Errorf("lun x: %w", fence.ErrNotSupported):        fenceUnsupported,
		fmt.Errorf("lun x: %w", fence.ErrTimeout):             fencePath,
		fmt.Errorf("lun x: %w", fence.ErrPath):                fencePath,
		fmt.Errorf("verify: %w", fence.ErrVerify):             fenceFailed,
	} {
		if got := fenceOutcome(err); got != want {
			t.Errorf("fenceOutcome(%v) = %q, want %q", err, got, want)
		}
	}
}
