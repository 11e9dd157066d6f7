package daemon

import (
	"testing"

	"github.com/mtcluster/mtc/quorum"
)

// TestFenceWorkerSkipsWithdrawnJobs: the worker drops a machine's fence
// job withdrawn after it was queued, keeps a later request for the same
// target and every other job, and forgets withdrawals once no queued job
// can match them.
func TestFenceWorkerSkipsWithdrawnJobs(t *testing.T) {
	fz := &fencing{}
	old, other := quorum.Target{Node: 3, Inc: 0x3001}, quorum.Target{Node: 4, Inc: 0x4001}
	queue := func(tg quorum.Target) fenceJob { fz.seq++; return fenceJob{t: tg, seq: fz.seq} }
	j1, j2 := queue(old), queue(other)
	// The machine withdraws node 3's request (quorum.Ready.WithdrawFence).
	fz.withdrawn = map[quorum.Target]uint64{old: fz.seq}
	j3 := queue(old) // asked again later: wanted
	runner := fenceJob{t: old, forRunner: true}
	rejoin := fenceJob{t: quorum.Target{Node: 1}, rejoin: true}
	for _, c := range []struct {
		name string
		j    fenceJob
		skip bool
	}{
		{"withdrawn", j1, true},
		{"another target", j2, false},
		{"a proof for the package runner", runner, false},
		{"a re-registration", rejoin, false},
		{"asked again after the withdrawal", j3, false},
	} {
		if got := fz.skipWithdrawn(c.j); got != c.skip {
			t.Errorf("%s: skipped %v, want %v", c.name, got, c.skip)
		}
	}
	if len(fz.withdrawn) != 0 {
		t.Errorf("withdrawals kept after every job queued before them ran: %v", fz.withdrawn)
	}
}
