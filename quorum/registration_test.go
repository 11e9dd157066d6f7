package quorum

import (
	"testing"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// The check's period outlasts a fence that started before it (one
// attempt and two command deadlines, stretched by the drift) and its own
// deadline, for the documented profiles and across the accepted range of
// the bases; the package documentation's figures are these.
func TestRegistrationTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name            string
		tm              timing.Timing
		every, deadline time.Duration
	}{
		{"default", timing.DefaultTiming(), 6982500 * time.Microsecond, 4650 * time.Millisecond},
		{"aggressive", timing.AggressiveTiming(), 2184 * time.Millisecond, 1480 * time.Millisecond},
	} {
		every, deadline := RegistrationTimeouts(tc.tm.Derive())
		if every != tc.every || deadline != tc.deadline {
			t.Errorf("%s: every %v, deadline %v; want %v, %v", tc.name, every, deadline, tc.every, tc.deadline)
		}
	}
	for _, tm := range []timing.Timing{
		timing.DefaultTiming(), timing.AggressiveTiming(), profiles["long"],
		{HeartbeatInterval: 100 * time.Millisecond, IOTimeout: 2 * time.Second, FailureTimeout: 5 * time.Second, WatchdogTimeout: 10 * time.Second},
	} {
		d := tm.Derive()
		every, deadline := RegistrationTimeouts(d)
		cmd, attempt := FenceTimeouts(d)
		if every <= deadline || every < attempt+2*cmd {
			t.Errorf("%+v: every %v, deadline %v: a check must outlast a racing fence (%v) and its own deadline", tm, every, deadline, attempt+2*cmd)
		}
	}
}

// checkedNode is a one-node machine with registration checks.
func checkedNode(t *testing.T) (*Node, timing.Derived) {
	t.Helper()
	d := timing.DefaultTiming().Derive()
	cfg := Config{Self: 1, Nodes: []Member{{ID: 1, Votes: 1}}, Timing: d, Incarnation: 7, CheckRegistration: true}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg), d
}

// A node asks for a check every period after its start, one at a time
// (an unanswered check holds the next one back), and the NextTick it
// asks for brings it to each; without Config.CheckRegistration it never
// asks.
func TestRegistrationCheckedEveryPeriod(t *testing.T) {
	n, d := checkedNode(t)
	every, _ := RegistrationTimeouts(d)
	var asked []time.Duration
	var pending *RegistrationCheck
	for now := time.Duration(0); now <= 5*every; {
		rd := serveDisk(n, now)
		for _, c := range rd.CheckRegistration {
			if pending != nil {
				t.Fatalf("a second check asked at %v while one is under way", now)
			}
			asked = append(asked, now)
			pending = &c
		}
		if pending != nil && len(asked) < 3 { // the third is never answered
			n.Step(now+time.Millisecond, RegistrationChecked{Op: pending.Op})
			n.Advance()
			pending = nil
		}
		now = min(n.Ready().NextTick, now+d.HeartbeatInterval)
	}
	if len(asked) != 3 {
		t.Fatalf("checks asked at %v, want 3 (the last never answered)", asked)
	}
	for i, at := range asked {
		if want := time.Duration(i+1) * every; at != want {
			t.Errorf("check %d asked at %v, want %v", i+1, at, want)
		}
	}
	if st := n.Status(); st.Stopped || !st.Quorate {
		t.Fatalf("a check under way stopped the node: %+v", st)
	}

	off, _ := oneNode(t)
	healthy(off, d, 0, 3*every)
	for now := 3 * every; now < 4*every; now += d.HeartbeatInterval {
		off.Step(now, Tick{})
		if rd := off.Ready(); len(rd.CheckRegistration) > 0 {
			t.Fatalf("a check asked at %v without Config.CheckRegistration", now)
		}
		off.Advance()
	}
}

// A member whose key a late fence removed from the data LUN (it stays on
// the quorum LUN, so its slot writes land) stops as fenced by a peer at
// its next check, and the others keep quorum without it.
func TestDataLUNLostWhileQuorateStops(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.checking()
	c.formed()
	every, deadline := RegistrationTimeouts(c.d)
	from := c.now
	c.dataGone[3] = true
	c.run(from + every + deadline)
	n := c.nodes[3]
	if n.stoppedAt < 0 || n.count(RegistrationLost) != 1 {
		t.Fatalf("node 3 not stopped for its lost registration (stopped at %v)\n%s", n.stoppedAt, n.log())
	}
	var why string
	for _, dec := range n.decisions {
		if dec.Kind == SelfFence {
			why = dec.Reason
		}
	}
	if why != "fenced by a peer" || n.stoppedAt > from+every+tcIOTime {
		t.Fatalf("node 3 stopped at %v (%q), want as fenced by a peer by %v", n.stoppedAt, why, from+every+tcIOTime)
	}
	c.run(c.now + 2*c.d.TakeoverAfter)
	for _, id := range []NodeID{1, 2} {
		if st := c.nodes[id].m.Status(); !st.Quorate || st.Members != SetOf(1, 2) || st.Stopped {
			t.Errorf("node %d: quorate=%v members %v stopped=%v; want quorate with {1,2}", id, st.Quorate, st.Members, st.Stopped)
		}
	}
}

// Seed 1993 of the simulation (docs/liveness-findings.md, A7) in the
// small: a restarted node fenced before it held quorum registers again
// and joins; a second fence of the same incarnation, slower, lands on the
// data LUN just after the re-registration. The first check after the
// re-registration comes one period after it (not at the period after the
// start, which the re-registration postpones), finds the key gone, and,
// the node having held quorum since, stops it.
func TestLateFenceAfterRejoinIsFound(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.checking()
	c.formed()
	every, _ := RegistrationTimeouts(c.d)
	var doneAt time.Duration = -1
	c.onRejoin = func(id NodeID) {
		if id == 3 && doneAt < 0 {
			doneAt = c.now + tcIOTime
			c.dataGone[3] = true // the slow fence's preempt on the data LUN
		}
	}
	c.restart(3, 3777, false)
	c.fenced[3] = true
	c.run(c.now + 3*every)
	n := c.nodes[3]
	if doneAt < 0 || n.count(RejoinDone) != 1 {
		t.Fatalf("node 3 did not register again\n%s", n.log())
	}
	if !n.everQ || n.gainedAt < doneAt {
		t.Fatalf("node 3 never held quorum after its re-registration\n%s", n.log())
	}
	at := c.checkAt[3]
	if len(at) == 0 || at[0] != doneAt+every {
		t.Fatalf("node 3's checks at %v, want the first at the re-registration (%v) + %v", at, doneAt, every)
	}
	if n.stoppedAt != doneAt+every+tcIOTime || n.count(RegistrationLost) != 1 {
		t.Fatalf("node 3 stopped at %v, want at the first check's answer (%v)\n%s", n.stoppedAt, doneAt+every+tcIOTime, n.log())
	}
}

// A node that never held quorum and never counted a peer in (cut off
// the network) whose key a check finds gone registers again, as after a
// refused slot write, and joins once the network heals.
func TestLostRegistrationBeforeQuorumRejoins(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.checking()
	c.formed()
	every, _ := RegistrationTimeouts(c.d)
	c.cut(1, 3)
	c.cut(3, 1)
	c.cut(2, 3)
	c.cut(3, 2)
	c.restart(3, 3777, false)
	c.run(c.now + every/2)
	c.dataGone[3] = true
	c.run(c.now + every)
	n := c.nodes[3]
	if n.everQ || n.stoppedAt >= 0 || n.count(RegistrationLost) != 1 || c.rejoins[3] != 1 || n.count(RejoinDone) != 1 {
		t.Fatalf("node 3: quorate=%v stopped at %v, %d losses, %d re-registrations; want one of each, running\n%s",
			n.everQ, n.stoppedAt, n.count(RegistrationLost), c.rejoins[3], n.log())
	}
	c.heal()
	c.run(c.now + 3*c.d.TakeoverAfter)
	if st := n.m.Status(); !st.Quorate || st.Members != SetOf(1, 2, 3) {
		t.Fatalf("node 3 not quorate with every node after the heal: %+v\n%s", st, n.log())
	}
}

// A LUN that cannot be read is not a removed key: the node goes on,
// reports it once however many checks fail, and reports when a check
// reads every LUN again.
func TestUnreadableLUNIsNoFence(t *testing.T) {
	c := newCluster(t, 3, profiles["default"])
	c.checking()
	c.formed()
	every, _ := RegistrationTimeouts(c.d)
	c.checkErr[3] = "LUN data: read keys: path failure"
	c.dataGone[3] = true // unknowable while the LUN cannot be read
	c.run(c.now + 4*every)
	n := c.nodes[3]
	if n.stoppedAt >= 0 || n.count(RegistrationUnread) != 1 || n.count(RegistrationLost) != 0 || c.checks[3] < 4 {
		t.Fatalf("node 3: stopped at %v, %d unread, %d lost after %d checks; want running, 1 and 0\n%s",
			n.stoppedAt, n.count(RegistrationUnread), n.count(RegistrationLost), c.checks[3], n.log())
	}
	c.checkErr[3], c.dataGone[3] = "", false
	c.run(c.now + every + time.Second)
	if n.count(RegistrationRead) != 1 || n.stoppedAt >= 0 {
		t.Fatalf("node 3: %d read again, stopped at %v\n%s", n.count(RegistrationRead), n.stoppedAt, n.log())
	}
}

// A check issued before a re-registration completed saw the fence that
// re-registration repaired: its "gone" counts for nothing, and the next
// check waits a period from the re-registration.
func TestCheckBeforeRejoinCountsForNothing(t *testing.T) {
	n, d := checkedNode(t)
	every, _ := RegistrationTimeouts(d)
	n.Step(0, Tick{})
	rd := n.Ready()
	n.Advance()
	// The very first slot write is refused: a peer's fence (never armed).
	n.Step(0, DiskDone{Op: rd.Disk[0].Op, Kind: DiskWriteSlot, Result: IOFenced})
	rd = n.Ready()
	n.Advance()
	if !rd.Status.Rejoining {
		t.Fatalf("not re-registering after the refused write: %+v", rd.Status)
	}
	// Hand-made: a check asked before the refusal, still under way.
	n.chk.asked, n.chk.op, n.chk.issued = true, 99, 0
	now := 2 * d.HeartbeatInterval
	n.Step(now, Tick{})
	n.Advance()
	n.Step(now, Rejoined{})
	n.Advance()
	n.Step(now+time.Millisecond, RegistrationChecked{Op: 99, Gone: []string{"quorum", "data"}})
	rd = n.Ready()
	n.Advance()
	if rd.Status.Stopped || n.Status().Rejoins != 1 {
		t.Fatalf("a check older than the re-registration counted: stopped=%v rejoins=%d %v", rd.Status.Stopped, n.Status().Rejoins, rd.Decisions)
	}
	for _, dec := range rd.Decisions {
		if dec.Kind == RegistrationLost {
			t.Fatalf("a check older than the re-registration reported a loss: %v", dec)
		}
	}
	if got := n.chk.at; got != now+every {
		t.Fatalf("next check due at %v, want a period after the re-registration (%v)", got, now+every)
	}
}
