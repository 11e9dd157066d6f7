// Membership: which peers this node counts as members.

package quorum

// computeMembers: ourselves plus the peers we hear on the network whose
// latest view includes us, reduced to the best clique of mutual hearing.
func (n *Node) computeMembers() Set {
	// The inputs, as a key: which peers qualify and what they hear.
	var key [MaxNodes + 2]Set
	var cand Set
	cand = cand.Add(n.self)
	for _, p := range n.peers {
		if p == nil || !p.haveLatest || !n.netAlive(p) || !p.latest.View.Has(n.self) || p.latest.Flags&FlagStopped != 0 {
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
	}
	key[MaxNodes+1] = cand
	if key == n.cliqueIn && n.cliqueOut != 0 {
		return n.cliqueOut
	}
	var adj [MaxNodes + 1]Set
	adj[n.self] = cand.Remove(n.self)
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
	out := bestClique(n.self, cand, &adj, &n.votes)
	n.cliqueIn, n.cliqueOut = key, out
	return out
}
