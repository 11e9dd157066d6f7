package daemon

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/journal"
)

// The journal tells a failover's story in order: the node starts, gains
// quorum, asks for the dead peer's fence, fences it, is allowed its
// takeover, and shuts down; the numbering goes on across the restart.
func TestEventJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	jr, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	san := newFakeSAN()
	tc := newTestClusterWith(t, 3, func(tc *testCluster) {
		tc.fenceLUNs = san.luns
		for _, cn := range tc.cl.Nodes {
			san.guardDisk(tc.disk.Path(cn.Name), cn.Name)
		}
		tc.options = func(name string, o *Options) {
			if name == "n1" {
				o.Journal = jr
			}
		}
	})
	a, c := tc.nodes[0], tc.nodes[2]
	tc.waitFor("n1 quorate with all", func() bool { return quorateWith(a, "n1", "n2", "n3") })
	c.stop()
	tc.waitFor("n1 allowed n3's takeover", func() bool { _, ok := takeoverOf(a, "n3"); return ok })
	a.stop()
	if err := jr.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	evs, bad, err := journal.Read(path)
	if err != nil || bad != 0 {
		t.Fatal(err, bad)
	}
	var kinds []string
	for i, e := range evs {
		if e.Node != "n1" || e.Seq != uint64(i+1) || e.Time.IsZero() || e.Incarnation == "" {
			t.Fatalf("event %d: %+v", i, e)
		}
		kinds = append(kinds, e.Kind)
	}
	// The story, in order; other decisions (peer states) come between.
	want := []string{EventDaemonStarted, "quorum-gained", "fence", EventFenceAttempt, "fenced", "takeover", EventDaemonStopping}
	at := 0
	for _, k := range kinds {
		if at < len(want) && k == want[at] {
			at++
		}
	}
	if at != len(want) {
		t.Fatalf("journal %q lacks %q in order (from %q on)", kinds, want, want[at])
	}
	i := slices.Index(kinds, EventFenceAttempt)
	if f := evs[i]; f.Peer != "n3" || f.Took <= 0 || f.Severity != SeverityWarn || f.Error != "" || !strings.HasPrefix(f.Reason, "fenced: ") {
		t.Fatalf("fence attempt event: %+v", f)
	}
	i = slices.Index(kinds, "takeover")
	if tk := evs[i]; tk.Peer != "n3" {
		t.Fatalf("takeover event: %+v", tk)
	}
	t.Logf("journal kinds: %q", kinds)
}
