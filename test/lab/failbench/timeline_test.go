package failbench

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/pkgrun"
)

func TestReadTimeline(t *testing.T) {
	crashed := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return crashed.Add(time.Duration(ms) * time.Millisecond) }
	pv := daemon.PackageView{Name: "web",
		Failover: &daemon.FailoverView{From: "n1", To: "n2", Lost: at(900), Reason: "watchdog",
			TakenOver: 6 * time.Second, Claimed: 6100 * time.Millisecond, Started: 6200 * time.Millisecond, Running: 6900 * time.Millisecond},
		LastStart: &pkgrun.Timeline{Steps: []pkgrun.StepRecord{
			{Name: "mount /tmp/x/mnt", Start: at(7100), End: at(7140)},
			{Name: "address", Start: at(7140), End: at(7350)},
			{Name: "mount /tmp/x/mnt", Start: at(7350), End: at(7400)}, // the same step again: its last time
		}}}
	mnt := func(s string) string { return strings.ReplaceAll(s, "/tmp/x/mnt", "MOUNTPOINT") }
	tl, ok := ReadTimeline(pv, "n1", "n2", crashed, mnt)
	if !ok {
		t.Fatal("the failover was not read")
	}
	ms := time.Millisecond
	want := Timeline{To: "n2", Reason: "watchdog", Left: 900 * ms, TakenOver: 6900 * ms, Claimed: 7000 * ms, Started: 7100 * ms, Running: 7800 * ms,
		Steps: map[string]time.Duration{"mount MOUNTPOINT": 50 * ms, "address": 210 * ms}, StepOrder: []string{"mount MOUNTPOINT", "address"}}
	if tl.To != want.To || tl.Reason != want.Reason || tl.Left != want.Left || tl.TakenOver != want.TakenOver || tl.Claimed != want.Claimed ||
		tl.Started != want.Started || tl.Running != want.Running || !slices.Equal(tl.StepOrder, want.StepOrder) ||
		tl.Steps["mount MOUNTPOINT"] != want.Steps["mount MOUNTPOINT"] || tl.Steps["address"] != want.Steps["address"] || len(tl.Steps) != 2 {
		t.Fatalf("ReadTimeline = %+v\nwant %+v", tl, want)
	}
	if got := MergeSteps([]string{"address", "service tcp"}, tl); !slices.Equal(got, []string{"address", "service tcp", "mount MOUNTPOINT"}) {
		t.Errorf("MergeSteps = %q", got)
	}

	for _, c := range []struct {
		name       string
		from, node string
		change     func(*daemon.FailoverView)
	}{
		{"another old owner", "n3", "n2", func(*daemon.FailoverView) {}},
		{"seen from another node", "n1", "n3", func(*daemon.FailoverView) {}},
		{"not running yet", "n1", "n2", func(f *daemon.FailoverView) { f.Running = 0 }},
		{"an earlier failover", "n1", "n2", func(f *daemon.FailoverView) { f.Lost = crashed.Add(-time.Second) }},
	} {
		f := *pv.Failover
		c.change(&f)
		p := pv
		p.Failover = &f
		if _, ok := ReadTimeline(p, c.from, c.node, crashed, mnt); ok {
			t.Errorf("%s: read as the failover after the crash", c.name)
		}
	}
	if _, ok := ReadTimeline(daemon.PackageView{Name: "web"}, "n1", "n2", crashed, mnt); ok {
		t.Error("a package without a failover gave a timeline")
	}
	pv.LastStart = nil
	if tl, ok := ReadTimeline(pv, "n1", "n2", crashed, mnt); !ok || tl.Steps != nil || tl.StepOrder != nil {
		t.Errorf("without a last start: %+v, %v", tl, ok)
	}
}
