// Membership: which peers this node counts as members.

package quorum

import "github.com/mtcluster/mtc/quorum/liveness"

// computeMembers: ourselves plus the peers we hear on the network whose
// latest view includes us and that hear us (hearing), reduced to the best
// clique of mutual hearing (bestMembers), less a drop deferred for a
// stale row (deferDrops). It changes nothing but a memo of the clique
// (cliqueIn, cliqueOut) and the deferral marks.
func (n *Node) computeMembers() Set {
	return n.deferDrops(n.bestMembers())
}

// deferDrops holds the member set as it is, for one heartbeat of the
// member concerned, when the clique choice would drop a member for a
// newcomer on a one-sided edge: the member is a candidate, heard fresh on
// the network and in our own row, and its row lacks a newcomer whose own
// row lists it (lagsBehind). Such a row may be a heartbeat older than the
// newcomer's: as a partition heals, each node of the minority hears the
// majority before its fellow's row lists it, and on that row the clique
// with the majority beats the one with the fellow; a member that has just
// admitted a newcomer publishes it at once, but the newcomer's heartbeat
// may arrive first. Once the member's next heartbeat has arrived (its
// counter moved past the one the deferral began at) the choice stands, so
// a link to the newcomer that the member found broken first costs one
// heartbeat interval and a delivery; a member that goes quiet is no longer
// fresh and is dropped then. The whole set is held, not only the member:
// a set mixing the deferral with the rest of the choice is one no other
// node picks, and it would steer the kept-members tier of the choices
// that follow. Nothing is held while a member is outside our own row: the
// member set stays a clique of the view we publish.
func (n *Node) deferDrops(best Set) Set {
	in := &n.cliqueIn
	cand, fresh, row := in[MaxNodes+1], in[MaxNodes+3], in[n.self]
	added := best &^ n.members // without a newcomer, every drop stands
	keep := Set(0)
	for _, p := range n.peers {
		if p == nil {
			continue
		}
		if added == 0 || !n.members.Has(p.id) || best.Has(p.id) || !cand.Has(p.id) || !fresh.Has(p.id) || !row.Has(p.id) || !n.lagsBehind(p.id, added) {
			p.deferring = false
			continue
		}
		if !p.deferring {
			p.deferring, p.deferSeq = true, p.latest.Seq
		}
		if p.latest.Seq <= p.deferSeq {
			keep = keep.Add(p.id)
		}
	}
	// A set with a member that has left our own row meanwhile is no
	// clique of it: holding it would publish a member our view leaves
	// out, the mark of a babbler's heartbeat (noteCoherence).
	if keep == 0 || n.members&^row&^SetOf(n.self) != 0 && !n.cfg.Unsafe.HoldSetOutsideRow {
		return best
	}
	return n.members
}

// lagsBehind: member id's row lacks a newcomer of added whose own row
// lists id, the one-sided edge of a row a heartbeat older than the
// newcomer's (or of a link to the newcomer that id has found broken first:
// then its next row still lacks it, and the drop stands).
func (n *Node) lagsBehind(id NodeID, added Set) bool {
	in := &n.cliqueIn
	for s := added; s != 0; {
		q := s.Lowest()
		s = s.Remove(q)
		if in[q].Has(id) && !in[id].Has(q) {
			return true
		}
	}
	return false
}

// bestMembers is the clique choice itself. It reads the machine's state
// and changes nothing but the memo of its last answer.
func (n *Node) bestMembers() Set {
	// A node whose key a peer's fence removed joins no member set until
	// it is registered again: no peer may count it in while its storage
	// refuses it, and a member set it published with a peer would end
	// its right to register again (mayRejoin).
	if n.rj.pending {
		return SetOf(n.self)
	}
	// The inputs, as a key: which peers qualify and what they hear.
	var key [MaxNodes + 4]Set
	var cand, fresh Set
	cand = cand.Add(n.self)
	for _, p := range n.peers {
		if p == nil || !p.haveLatest || !n.netAlive(p) || !p.latest.View.Has(n.self) || p.latest.Flags&FlagStopped != 0 || n.keptOut(p) {
			continue
		}
		// A newcomer joins only once it is settled (its startup guard or
		// its own shrink guard has run out), so existing members never
		// wait on it.
		if !n.members.Has(p.id) && p.latest.Flags&FlagSettled == 0 {
			continue
		}
		// A member incarnation just fenced is about to stop.
		if n.fencedStopping(p) {
			continue
		}
		cand = cand.Add(p.id)
		key[p.id] = p.latest.View
		if n.netState(p) == liveness.Live {
			fresh = fresh.Add(p.id)
		}
		// Membership is mutual: only a peer that hears us (its
		// endorsement of us runs, and it does not echo an ever older
		// counter of ours) is in our own row. A member whose endorsement
		// ran out is dropped at once rather than costing us quorum until
		// its view changes.
		if n.inView(p) {
			key[n.self] = key[n.self].Add(p.id)
		}
	}
	key[MaxNodes+1] = cand
	key[MaxNodes+2] = n.members
	key[MaxNodes+3] = fresh
	if key == n.cliqueIn && n.cliqueOut != 0 {
		return n.cliqueOut
	}
	var adj [MaxNodes + 1]Set
	// Our own row is our view, as the peers see it in our heartbeats, so
	// every node computes the clique from the same edges.
	adj[n.self] = cand.Remove(n.self) & key[n.self]
	for s := cand.Remove(n.self); s != 0; {
		id := s.Lowest()
		s = s.Remove(id)
		adj[id] = key[id].Add(n.self) & cand
	}
	// Mutual edges only.
	for a := NodeID(1); a <= MaxNodes; a++ {
		for s := adj[a]; s != 0; {
			b := s.Lowest()
			s = s.Remove(b)
			if !adj[b].Has(a) {
				adj[a] = adj[a].Remove(b)
			}
		}
	}
	out := bestClique(n.self, cand, &adj, weights(n.self, &n.votes, n.members, fresh))
	n.cliqueIn, n.cliqueOut = key, out
	return out
}

// hearsMajority: this node and the peers it hears both ways (alive on the
// network, hearing and endorsing us, not self-fencing, whatever their
// member sets) hold a strict majority of the votes. A node in a connected
// majority keeps this through a membership change, even while a peer it
// dropped for a moment (a newcomer again) waits out its own guard.
func (n *Node) hearsMajority() bool {
	s := SetOf(n.self)
	for _, p := range n.peers {
		if p != nil && p.haveLatest && n.hearing(p) && p.latest.View.Has(n.self) && p.latest.Flags&FlagStopped == 0 {
			s = s.Add(p.id)
		}
	}
	return n.votes.Tally(s) == VoteWon
}
