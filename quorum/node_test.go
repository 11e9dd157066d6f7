package quorum

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

func oneNode(t *testing.T) (*Node, timing.Derived) {
	t.Helper()
	d := timing.DefaultTiming().Derive()
	cfg := Config{Self: 1, Nodes: []Member{{ID: 1, Votes: 1}}, Timing: d, Incarnation: 7}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg), d
}

// serveDisk answers the machine's disk requests at once, successfully,
// until it wants nothing more, and returns the last Ready.
func serveDisk(n *Node, now time.Duration) Ready {
	n.Step(now, Tick{})
	for i := 0; i < 10; i++ {
		rd := n.Ready()
		n.Advance()
		if len(rd.Disk) == 0 {
			return rd
		}
		r := rd.Disk[0]
		done := DiskDone{Op: r.Op, Kind: r.Kind, Result: IOOK}
		if r.Kind == DiskRead {
			done.Lock = LockObservation{Valid: true}
		}
		n.Step(now, done)
	}
	return n.Ready()
}

// healthy steps n every heartbeat interval from from to to, with every
// disk I/O succeeding at once.
func healthy(n *Node, d timing.Derived, from, to time.Duration) Ready {
	var rd Ready
	for now := from; now <= to; now += d.HeartbeatInterval {
		rd = serveDisk(n, now)
	}
	return rd
}

// A single-node cluster holds quorum once its first slot write succeeds
// (it has no peer to wait for), and keeps it while its writes succeed.
func TestSingleNodeGainsQuorum(t *testing.T) {
	n, d := oneNode(t)
	n.Step(0, Tick{})
	if n.Status().Quorate {
		t.Fatal("quorate before any slot write")
	}
	rd := healthy(n, d, 0, 5*d.TakeoverAfter)
	if !rd.Status.Quorate || rd.Status.Members != SetOf(1) || rd.Status.Stopped || !rd.FeedWatchdog {
		t.Fatalf("not healthy and quorate: %+v", rd)
	}
}

// A node frozen longer than every timeout resumes: its first Step expires
// everything before deciding, so it stops its packages and does not act.
func TestResumeAfterFreezeActsOnNothingStale(t *testing.T) {
	n, d := oneNode(t)
	healthy(n, d, 0, d.EndorseGuard)
	if !n.Status().Quorate {
		t.Fatal("setup: not quorate")
	}
	resume := d.EndorseGuard + 10*d.TakeoverAfter
	n.Step(resume, Tick{})
	rd := n.Ready()
	if rd.Status.Quorate {
		t.Fatal("quorate on stale state after a freeze")
	}
	if !rd.StopPackages || rd.FeedWatchdog {
		t.Fatalf("resumed node must stop its packages and its watchdog at once: %+v", rd)
	}
	if len(rd.Fence) != 0 || len(rd.Takeover) != 0 {
		t.Fatalf("resumed node acted: fence %v takeover %v", rd.Fence, rd.Takeover)
	}
}

// Own slot writes failing for SelfFenceAfter end quorum and stop the node.
func TestOwnWriteFailureSelfFences(t *testing.T) {
	n, d := oneNode(t)
	healthy(n, d, 0, d.EndorseGuard)
	now := d.EndorseGuard
	stopped := false
	for step := 0; step < 20 && !stopped; step++ {
		now += d.HeartbeatInterval
		n.Step(now, Tick{})
		for i := 0; i < 3; i++ {
			rd := n.Ready()
			n.Advance()
			stopped = stopped || rd.StopPackages
			if len(rd.Disk) == 0 {
				break
			}
			n.Step(now, DiskDone{Op: rd.Disk[0].Op, Kind: rd.Disk[0].Kind, Result: IOFailed})
		}
	}
	if !stopped {
		t.Fatal("no self-fence after the own slot writes failed")
	}
	if now-d.EndorseGuard > d.SelfFenceAfter+2*d.HeartbeatInterval {
		t.Fatalf("self-fenced %v after the last good write; SelfFenceAfter is %v", now-d.EndorseGuard, d.SelfFenceAfter)
	}
}

func TestConfigValidate(t *testing.T) {
	d := timing.DefaultTiming().Derive()
	good := Config{Self: 1, Nodes: []Member{{1, 1}, {2, 1}}, Timing: d, Incarnation: 1}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Self = 0 }, "self node id 0"},
		{func(c *Config) { c.Self = 3 }, "not among the configured nodes"},
		{func(c *Config) { c.Incarnation = 0 }, "incarnation is 0"},
		{func(c *Config) { c.Nodes = append(c.Nodes, Member{2, 1}) }, "nodes[2]: id 2 appears twice"},
		{func(c *Config) { c.Nodes[1].Votes = -1 }, "nodes[1]: node 2 has -1 votes"},
		{func(c *Config) { c.Nodes[0].Votes, c.Nodes[1].Votes = 0, 0 }, "no votes"},
		{func(c *Config) { c.Timing = timing.Derived{} }, "timing"},
	} {
		cfg := good
		cfg.Nodes = append([]Member(nil), good.Nodes...)
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want ErrConfig containing %q", err, c.want)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
}

// A slot write the storage refuses with a reservation conflict (IOFenced)
// means a peer fenced this node: it stops in the same step, with that
// reason, not SelfFenceAfter later, and asks for no fence or takeover.
func TestOwnWriteFencedStopsAtOnce(t *testing.T) {
	for _, res := range []IOResult{IOFenced, IOFailed} {
		n, d := oneNode(t)
		healthy(n, d, 0, d.EndorseGuard)
		if !n.Status().Quorate {
			t.Fatal("setup: not quorate")
		}
		now := d.EndorseGuard + d.HeartbeatInterval
		n.Step(now, Tick{})
		rd := n.Ready()
		n.Advance()
		if len(rd.Disk) == 0 || rd.Disk[0].Kind != DiskWriteSlot {
			t.Fatalf("no slot write issued: %+v", rd.Disk)
		}
		n.Step(now, DiskDone{Op: rd.Disk[0].Op, Kind: rd.Disk[0].Kind, Result: res})
		rd = n.Ready()
		n.Advance()
		stopped := rd.StopPackages && rd.Status.Stopped && !rd.FeedWatchdog && !rd.Status.Quorate
		if res == IOFailed {
			// A plain failure waits for SelfFenceAfter: the contrast
			// shows the test tells the two apart.
			if stopped {
				t.Fatalf("IOFailed stopped the node at once: %+v", rd)
			}
			continue
		}
		if !stopped {
			t.Fatalf("IOFenced: node did not stop at once: %+v", rd)
		}
		var why string
		for _, dec := range rd.Decisions {
			if dec.Kind == SelfFence {
				why = dec.Reason
			}
		}
		if why != "fenced by a peer" {
			t.Fatalf("self-fence reason %q, want %q", why, "fenced by a peer")
		}
		if len(rd.Fence) != 0 || len(rd.Takeover) != 0 {
			t.Fatalf("fenced node acted: fence %v takeover %v", rd.Fence, rd.Takeover)
		}
	}
}
