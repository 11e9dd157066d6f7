package sim

import "github.com/mtcluster/mtc/quorum"

// The invariants, checked on the absolute clock as the history unfolds:
//
//  1. At most one partition holds quorum: any two nodes that hold quorum
//     at the same instant include each other in their member sets.
//  2. No takeover of X's packages while X's current incarnation still
//     runs them and is neither fenced nor reset by its watchdog; no
//     package ever runs on two such nodes at once.
//  3. A node without quorum requests no fencing and no takeover, and a
//     node that lost quorum (or its own disk writes) has stopped its
//     packages by its deadline.
//  4. After every fault has healed, the cluster re-forms: every node is up
//     and holds quorum with all nodes as members, within a bound derived
//     from the timings (ReformBound).

// quorateNow: n holds quorum at this instant, by its last decision and the
// lease that decision runs on.
func (w *World) quorateNow(n *simNode) bool {
	return n.up && n.status.Quorate && n.local(w.now) < n.status.QuorateUntil
}

// live: n can act on the shared storage (up, not frozen as a whole VM, not
// fenced).
func (w *World) live(n *simNode) bool { return n.up && !n.vmFrozen && !n.fenced }

func (w *World) checkQuorate(n *simNode) {
	if !w.quorateNow(n) {
		return
	}
	for _, m := range w.nodes[1:] {
		if m == n || !w.quorateNow(m) {
			continue
		}
		if !n.status.Members.Has(m.id) || !m.status.Members.Has(n.id) {
			w.violate(1, "n%d quorate with %v and n%d quorate with %v", n.id, n.status.Members, m.id, m.status.Members)
		}
	}
}

func (w *World) checkPackages() {
	var seen quorum.Set
	for _, n := range w.nodes[1:] {
		if !w.live(n) {
			continue
		}
		if both := seen & n.running; both != 0 {
			w.violate(2, "package(s) %v run on two nodes at once (one is n%d)", both, n.id)
		}
		seen |= n.running
	}
}

func (w *World) checkActor(n *simNode, what string, target quorum.NodeID) {
	st := n.drv.Node.Status()
	if !(n.up && st.Quorate && n.local(w.now) < st.QuorateUntil) {
		w.violate(3, "n%d requests %s of n%d without quorum", n.id, what, target)
	}
}

func (w *World) checkDeadlines() {
	for _, n := range w.nodes[1:] {
		if !n.up || n.frozen || n.running == 0 {
			continue
		}
		st := n.status
		if st.Armed && !st.Stopped && n.local(w.now) > st.StopDeadline+tolerance {
			w.violate(3, "n%d still runs packages %v past its stop deadline", n.id, n.running)
		}
	}
}

// tolerance absorbs the rounding of local deadlines to absolute time.
const tolerance = 1000 // ns

// checkReformed is invariant 4, called once the re-form bound has passed
// after the last fault healed.
func (w *World) checkReformed() {
	all := quorum.Set(0)
	for _, n := range w.nodes[1:] {
		all = all.Add(n.id)
	}
	for _, n := range w.nodes[1:] {
		if !w.quorateNow(n) || n.status.Members != all {
			w.violate(4, "faults healed but n%d is not quorate with every node (up=%v quorate=%v members=%v)", n.id, n.up, n.status.Quorate, n.status.Members)
			return
		}
	}
}
