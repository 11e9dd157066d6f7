// Registration checks: this node's own fencing registration, verified on
// every fenced LUN periodically and once the fences a re-registration may
// have raced are over (package documentation, Registration checks).

package quorum

import (
	"strings"
	"time"

	"github.com/mtcluster/mtc/config/timing"
)

// RegistrationTimeouts are the registration check's timing, derived from
// the timing bases through the fencing deadlines (FenceTimeouts: cmd, one
// PR command; attempt, one fence of every LUN):
//
//   - every: how often a node has its registration checked, and how long
//     after a re-registration the first check waits. It is the longest a
//     fence that a peer started before some instant may still remove a
//     key after it: the peer's attempt (its deadline on the peer's clock),
//     then its last command, issued before that deadline, executing at
//     the target up to two command deadlines after its issue (the
//     command's own deadline, and as long again for the abort of a
//     timed-out command to reach the target), stretched by the clock
//     drift: (attempt + 2 cmd) x (1 + MaxClockDrift). 6.98 s at the
//     default timing, 2.18 s at the aggressive one.
//   - deadline: how long the driver may take for one check (READ KEYS on
//     every fenced LUN, each through the first path that answers): one
//     fence attempt. 4.65 s and 1.48 s.
//
// every > deadline by construction, so checks never overlap. A node
// whose key a peer removed while it holds quorum therefore stops within
// every + deadline of the removal (a check whose storage fails meanwhile
// costs one period more): 11.6 s at the default timing, 3.7 s at the
// aggressive one.
func RegistrationTimeouts(t timing.Derived) (every, deadline time.Duration) {
	cmd, attempt := FenceTimeouts(t)
	every = time.Duration(float64(attempt+2*cmd) * (1 + timing.MaxClockDrift))
	return every, attempt
}

// RegistrationCheck asks the driver to read the registered keys of every
// LUN this node fences (the quorum LUN and the data LUNs; the fencing
// component's fence.Fencer.CheckRegistration, PR IN only) within the
// deadline of RegistrationTimeouts, and to report a RegistrationChecked
// with the same Op.
type RegistrationCheck struct {
	Op uint64
}

// RegistrationChecked reports a RegistrationCheck.
type RegistrationChecked struct {
	Op uint64
	// Gone lists the LUNs that answered READ KEYS without this node's
	// key: a peer's fence removed it there.
	Gone []string
	// Err says why some LUN could not be read (every path failed or
	// timed out): its registration is unknown, which is no evidence of a
	// fence. Empty when every LUN answered.
	Err string
}

func (RegistrationChecked) isEvent() {}

// checkState is the registration check's schedule.
type checkState struct {
	// every: RegistrationTimeouts' period for this machine's timing.
	every time.Duration
	// at: when the next check is due (local).
	at time.Duration
	// asked: a check is under way: op, issued at issued.
	asked  bool
	op     uint64
	issued time.Duration
	// unread: the last check could not read every LUN (reported once).
	unread bool
}

// requestCheck asks for the registration check when it is due: only
// with Config.CheckRegistration, one at a time, never while a
// re-registration is due or under way (it registers on every LUN and
// verifies that itself), nor once the node has stopped.
func (n *Node) requestCheck() {
	c := &n.chk
	if !n.cfg.CheckRegistration || c.asked || n.stopped || n.fencedByPeer || n.rj.pending || n.now < c.at {
		return
	}
	c.op++
	c.asked, c.issued = true, n.now
	n.out.CheckRegistration = append(n.out.CheckRegistration, RegistrationCheck{Op: c.op})
}

// checkDue is when the machine wants a Tick for the next check (never
// while one is under way or checks are off).
func (n *Node) checkDue() time.Duration {
	if !n.cfg.CheckRegistration || n.chk.asked {
		return never
	}
	return n.chk.at
}

// onRegistrationChecked judges a check's outcome. A key gone from a LUN
// is a fence by a peer, handled as a refused slot write is
// (ownWriteFenced): a node that never held quorum, and counted no peer
// in, registers again; any other stops at once. A check issued before a
// re-registration completed, or during one, saw the fence that
// re-registration repaired. A LUN that could not be read proves nothing:
// the node goes on and checks again at the next period.
func (n *Node) onRegistrationChecked(e RegistrationChecked) {
	c := &n.chk
	if !c.asked || e.Op != c.op {
		return // not the check we wait for
	}
	c.asked = false
	c.at = max(c.at, c.issued+n.chk.every)
	if n.stopped || n.fencedByPeer {
		return
	}
	switch {
	case len(e.Gone) > 0:
		c.unread = false
		if n.rj.pending || (n.rj.count > 0 && c.issued < n.rj.doneAt) {
			return
		}
		n.decide(Decision{Kind: RegistrationLost, Reason: "key gone from " + strings.Join(e.Gone, ", ")})
		n.ownWriteFenced(c.issued)
	case e.Err != "":
		if !c.unread {
			c.unread = true
			n.decide(Decision{Kind: RegistrationUnread, Reason: e.Err})
		}
	case c.unread:
		c.unread = false
		n.decide(Decision{Kind: RegistrationRead})
	}
}

// checkAfterRejoin schedules the first check after a completed
// re-registration: once every fence that a peer started before it may
// have landed.
func (n *Node) checkAfterRejoin() {
	n.chk.at = n.now + n.chk.every
}
