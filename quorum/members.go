// Membership: which peers this node counts as members.

package quorum

import "github.com/mtcluster/mtc/quorum/liveness"

// computeMembers: ourselves plus the peers we hear on the network whose
// latest view includes us and that hear us (hearing), reduced to the best
// clique of mutual hearing. It reads the machine's state and
// changes nothing but a memo of its last answer (cliqueIn, cliqueOut).
func (n *Node) computeMembers() Set {
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
		if p == nil || !p.haveLatest || !n.netAlive(p) || !p.latest.View.Has(n.self) || p.latest.Flags&FlagStopped != 0 || n.heldDown(p) {
			continue
		}
		// A newcomer joins only once it is settled (its startup guard or
		// its own shrink guard has run out), so existing members never
		// wait on it.
		if !n.members.Has(p.id) && p.latest.Flags&FlagSettled == 0 {
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
