package quorum

// bestClique returns the member set self should publish: among the sets
// that contain self, are contained in cand and whose every pair is
// connected in adj (adj[a] holds b when a and b hear each other), the one
// with the most votes; among equal votes the one whose sorted ids come
// first (so {1,2} beats {1,3} beats {2,3}), preferring a superset on ties
// (zero-vote nodes are kept). Every node applies the same rule to the same
// views, so nodes that share their views pick the same set.
func bestClique(self NodeID, cand Set, adj *[MaxNodes + 1]Set, votes *Votes) Set {
	cand = cand.Add(self)
	// Fast path: cand is already a clique.
	complete := true
	for s := cand; s != 0; {
		id := s.Lowest()
		s = s.Remove(id)
		if cand.Remove(id)&^adj[id] != 0 {
			complete = false
			break
		}
	}
	if complete {
		return cand
	}
	start := SetOf(self)
	rest := cand.Remove(self) & adj[self]
	best, bestVotes := start, -1
	var walk func(cur Set, curVotes int, rest Set)
	walk = func(cur Set, curVotes int, rest Set) {
		if rest == 0 {
			if curVotes > bestVotes {
				best, bestVotes = cur, curVotes
			}
			return
		}
		if curVotes+votes.Of(rest) <= bestVotes {
			return
		}
		id := rest.Lowest()
		rest = rest.Remove(id)
		walk(cur.Add(id), curVotes+votes[id], rest&adj[id])
		walk(cur, curVotes, rest)
	}
	walk(start, votes.Of(start), rest)
	return best
}
