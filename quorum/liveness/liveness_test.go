package liveness

import (
	"testing"
	"time"
)

const ms = time.Millisecond

func newTracker(coverage bool) *Tracker {
	return &Tracker{SuspectAfter: 500 * ms, DeadAfter: 1000 * ms, NeedCoverage: coverage}
}

func obs(inc, seq uint64) Observation { return Observation{Valid: true, Incarnation: inc, Seq: seq} }

func TestTrackerSeenOnceIsUnknownThenDead(t *testing.T) {
	tr := newTracker(true)
	if s := tr.State(0); s != Unknown {
		t.Fatalf("before any observation: %v", s)
	}
	if c := tr.Observe(0, obs(1, 10)); c != FirstSeen {
		t.Fatalf("first observation: %v", c)
	}
	// Unchanged for less than DeadAfter: still unknown, not live, not dead.
	for now := 200 * ms; now < 1000*ms; now += 200 * ms {
		tr.Observe(now, obs(1, 10))
		if s := tr.State(now); s != Unknown {
			t.Fatalf("at %v: %v, want unknown", now, s)
		}
	}
	tr.Observe(1000*ms, obs(1, 10))
	if s := tr.State(1000 * ms); s != Dead {
		t.Fatalf("unchanged for DeadAfter: %v", s)
	}
}

func TestTrackerLiveSuspectDead(t *testing.T) {
	tr := newTracker(true)
	tr.Observe(0, obs(1, 1))
	tr.Observe(200*ms, obs(1, 2))
	if s := tr.State(200 * ms); s != Live {
		t.Fatalf("after a change: %v", s)
	}
	tr.Observe(700*ms, obs(1, 2))
	if s := tr.State(700 * ms); s != Suspect {
		t.Fatalf("500ms unchanged: %v", s)
	}
	tr.Observe(1200*ms, obs(1, 2))
	if s := tr.State(1200 * ms); s != Dead {
		t.Fatalf("1s unchanged: %v", s)
	}
	if c := tr.Observe(1400*ms, obs(1, 3)); c != Resurrected {
		t.Fatalf("change after dead: %v, want resurrected", c)
	}
	if s := tr.State(1400 * ms); s != Live {
		t.Fatalf("after resurrection: %v", s)
	}
}

// On the disk path our own failed reads prove nothing: without successful
// observations spanning DeadAfter the peer stays suspect.
func TestTrackerCoverage(t *testing.T) {
	disk := newTracker(true)
	disk.Observe(0, obs(1, 1))
	disk.Observe(100*ms, obs(1, 2))
	// Our reads fail from here on: no observations at all.
	if s := disk.State(5 * time.Second); s != Suspect {
		t.Fatalf("disk path without reads: %v, want suspect", s)
	}
	net := newTracker(false)
	net.Observe(0, obs(1, 1))
	net.Observe(100*ms, obs(1, 2))
	if s := net.State(1100 * ms); s != Dead {
		t.Fatalf("network path silent for DeadAfter: %v, want dead", s)
	}
}

// A corrupt record is never a sign of life: a peer whose slot reads back
// corrupt goes suspect and then dead on the disk path, never live.
func TestTrackerCorruptReadsNeverLive(t *testing.T) {
	tr := newTracker(true)
	tr.Observe(0, obs(1, 1))
	tr.Observe(100*ms, obs(1, 2))
	for now := 200 * ms; now <= 3000*ms; now += 200 * ms {
		tr.Observe(now, Observation{}) // checksum failures
		s := tr.State(now)
		if s == Live && now-100*ms >= 500*ms {
			t.Fatalf("at %v: live on corrupt reads only", now)
		}
	}
	if s := tr.State(3000 * ms); s != Dead {
		t.Fatalf("only corrupt reads for 2.9s: %v, want dead", s)
	}
	never := newTracker(true)
	for now := time.Duration(0); now <= 3000*ms; now += 200 * ms {
		never.Observe(now, Observation{})
	}
	if s := never.State(3000 * ms); s != Unknown {
		t.Fatalf("never a valid record: %v, want unknown", s)
	}
	if !tr.LastReadInvalid() {
		t.Fatal("last read not reported invalid")
	}
}

func TestTrackerRestartAndRegression(t *testing.T) {
	tr := newTracker(true)
	tr.Observe(0, obs(1, 5))
	if c := tr.Observe(100*ms, obs(2, 1)); c != Restarted {
		t.Fatalf("new incarnation: %v", c)
	}
	if inc, seq, _ := tr.Incarnation(); inc != 2 || seq != 1 {
		t.Fatalf("tracked %d/%d", inc, seq)
	}
	tr.Observe(200*ms, obs(2, 9))
	if c := tr.Observe(300*ms, obs(2, 4)); c != Regressed {
		t.Fatalf("lower seq: %v", c)
	}
}

// A peer's liveness never depends on its clock: the same sequence of
// counters gives the same states whatever the peer's timestamps.
func TestTrackerDeterministic(t *testing.T) {
	run := func() []Liveness {
		tr := newTracker(true)
		var out []Liveness
		seq := uint64(0)
		for i := range 40 {
			now := time.Duration(i) * 150 * ms
			if i%7 != 0 {
				seq++
			}
			if i > 20 && i < 30 {
				seq-- // frozen: no change
				seq++
			}
			tr.Observe(now, obs(1, seq))
			out = append(out, tr.State(now))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %v vs %v", i, a[i], b[i])
		}
	}
}
