package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// Bug is a defect planted on purpose, in the machines or in the
// simulation's driver of them, so that a test can show the checkers catch
// it. The checkers always work from the true configuration: a timing bug
// hands the machines a corrupted config.Derived while the simulation and
// its checkers derive their own.
type Bug struct {
	Name string
	// Unsafe disables a safety rule of the machine.
	Unsafe quorum.Unsafe
	// Timing corrupts the derived timing the machines run on.
	Timing func(config.Derived) config.Derived
	// LateStop: the driver begins a package stop (LateStop-1) x
	// SelfFenceAfter after the machine asks for it, so packages stop
	// LateStop times later than SelfFenceAfter after the loss of quorum.
	LateStop float64
	// FeedAfterStop: the driver feeds the watchdog on every step, also
	// after the machine has stopped feeding it.
	FeedAfterStop bool
	// MuteAfterQuorum: node 1's driver stops sending heartbeats once it
	// has held quorum (a healthy node, as far as the fault pattern goes).
	MuteAfterQuorum bool
	// StrayMembers: once node 1 has held quorum, every 40th heartbeat
	// its driver sends publishes its member set without its
	// highest-numbered peer, while the machine's set stays as it is (a
	// driver that corrupts what it sends): its members lose agreement
	// for a heartbeat, with no member leaving or joining any set.
	StrayMembers bool
	// SkipFencing: the driver reports every fence requested as done
	// (quorum.Fenced) without running it.
	SkipFencing bool
	// SkipRegistrationCheck: the driver answers every registration check
	// the machine asks for as "registered on every LUN" without reading
	// the keys.
	SkipRegistrationCheck bool

	// Liveness, against the checker's allowances for a disk path that
	// heals and for a member that leaves (liveness.go).
	//
	// PeerWritesFailAfterHeal: once any node's disk path has healed, the
	// driver of the lowest-numbered node whose path never failed reports
	// that node's own slot writes as failed, although they land.
	PeerWritesFailAfterHeal bool
	// OwnWritesFailAfterHeal: a node whose disk path has healed gets its
	// first own slot write after the heal reported, and every later one
	// reported as failed, although they land (a driver that keeps a path
	// error it saw before the heal).
	OwnWritesFailAfterHeal bool

	// Packages (histories with packages; pkgcheck.go).
	//
	// Placement disables a safety rule of the placement machines.
	Placement placement.Unsafe
	// AckBeforeWrite: the coordinator acknowledges an intent and sends
	// it to the nodes before its state-area write has landed (which may
	// fail: the ID is then given again).
	AckBeforeWrite bool
	// PkgHaltedEarly: the runners report a package halted as its halt
	// begins, while its resources are still up.
	PkgHaltedEarly bool
	// PkgIgnoreNeeds: the machines are given the definitions without
	// their needs, so dependents start before what they need.
	PkgIgnoreNeeds bool
	// PkgDropStarts: node 1's driver loses every start placement orders.
	PkgDropStarts bool
	// PkgSkipIntents: a starting node's driver feeds none of the intents
	// committed after the Durable it read (it takes the Durable for the
	// whole state area).
	PkgSkipIntents bool
}

// Bugs are the planted bugs by name (mtc sim --plant-bug).
var Bugs = map[string]Bug{
	// Safety.
	"tie-break":    {Unsafe: quorum.Unsafe{SkipTieBreak: true}},
	"agreement":    {Unsafe: quorum.Unsafe{SkipAgreement: true}},
	"shrink-guard": {Unsafe: quorum.Unsafe{SkipShrinkGuard: true}},
	"late-stop":    {LateStop: 3},
	"late-stop-timing": {Timing: func(d config.Derived) config.Derived {
		d.SelfFenceAfter *= 3
		return d
	}},
	"takeover-x0.5":   {Timing: scaleTakeover(0.5)},
	"takeover-x0.9":   {Timing: scaleTakeover(0.9)},
	"feed-after-stop": {FeedAfterStop: true},
	"fencing-skipped": {SkipFencing: true},
	"arbiter-bypass":  {Unsafe: quorum.Unsafe{ArbiterBypass: true}},
	// A node whose key a peer's fence removed registers again although it
	// has held quorum (and may run packages a survivor took over).
	"rejoin-when-armed": {Unsafe: quorum.Unsafe{RejoinWhenArmed: true}},
	// A node's self-fence clock is held by peers' member sets that echo
	// a counter of it of any age: rows of peers that no longer hear it.
	"hold-on-stale-echo": {Unsafe: quorum.Unsafe{HoldOnStaleEcho: true}},
	// A driver that never reads the keys it is asked to check: a member
	// whose key a late fence removed from the data LUN goes on.
	"registration-check-skipped": {SkipRegistrationCheck: true},
	// Liveness.
	"self-fence-half": {Timing: func(d config.Derived) config.Derived {
		d.SelfFenceAfter /= 2
		return d
	}},
	"mute-after-quorum": {MuteAfterQuorum: true},
	// A gap in quorum that no departure or re-admission explains.
	"stray-members": {StrayMembers: true},
	// Liveness, against the allowances for a healed disk and a departing
	// member: a healthy node that self-fences after a heal elsewhere; a
	// healed node that self-fences although its writes succeed; no
	// re-admission hold-down, so a member outside the connected majority
	// leaves over and over.
	"heal-fails-peer": {PeerWritesFailAfterHeal: true},
	"heal-fails-self": {OwnWritesFailAfterHeal: true},
	"no-rejoin-damping": {Timing: func(d config.Derived) config.Derived {
		d.RejoinHoldDown, d.RejoinHoldDownMax = 0, 0
		return d
	}},
	// Every drop weighs half for the damping, a drop for a broken link of
	// the node's own as well as one the clique choice made.
	"half-every-drop": {Unsafe: quorum.Unsafe{HalveEveryDrop: true}},
	// A member set held for a lagging member while another member is
	// outside the node's own row: a heartbeat listing a member its view
	// leaves out.
	"hold-set-outside-row": {Unsafe: quorum.Unsafe{HoldSetOutsideRow: true}},
	// Packages.
	"pkg-skip-acks":           {Placement: placement.Unsafe{SkipAcks: true}},
	"pkg-skip-clear":          {Placement: placement.Unsafe{SkipClear: true}},
	"runner-halted-early":     {PkgHaltedEarly: true},
	"intent-ack-before-write": {AckBeforeWrite: true},
	"pkg-drop-starts":         {PkgDropStarts: true},
	"pkg-ignore-needs":        {PkgIgnoreNeeds: true},
	"pkg-skip-intents":        {PkgSkipIntents: true},
}

// plantedWriteResult is the result the driver reports for an own slot
// write of n that completed with res; trusted: it is the write that made
// the node's healed path trusted again.
func (w *World) plantedWriteResult(n *simNode, trusted bool, res quorum.IOResult) quorum.IOResult {
	b, d := w.opt.Bug, &w.lv.disk
	switch {
	case b.OwnWritesFailAfterHeal && d.epoch[n.id] > 0 && !trusted && !d.untrusted.Has(n.id):
		return quorum.IOFailed
	case b.PeerWritesFailAfterHeal:
		healed, victim := false, quorum.NodeID(0)
		for _, m := range w.nodes[1:] {
			switch {
			case d.epoch[m.id] > 0:
				healed = true
			case victim == 0 && !d.bad.Has(m.id):
				victim = m.id
			}
		}
		if healed && victim == n.id {
			return quorum.IOFailed
		}
	}
	return res
}

func scaleTakeover(k float64) func(config.Derived) config.Derived {
	return func(d config.Derived) config.Derived {
		d.TakeoverAfter = time.Duration(float64(d.TakeoverAfter) * k)
		return d
	}
}

// BugNamed returns the planted bug called name.
func BugNamed(name string) (Bug, error) {
	b, ok := Bugs[name]
	if !ok {
		return Bug{}, fmt.Errorf("sim: no planted bug %q; there are %s", name, strings.Join(BugNames(), ", "))
	}
	b.Name = name
	return b, nil
}

// BugNames lists the planted bugs.
func BugNames() []string {
	var out []string
	for k := range Bugs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
