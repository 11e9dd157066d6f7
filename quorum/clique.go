package quorum

// cliqueRank orders the candidate member sets: a set's rank is the sum of
// its nodes' weights, compared as a number. weights builds them so that
// the sum compares the votes first, then the votes of the current members
// the set keeps, then the votes of the peers this node hears fresh on the
// network (their counter changed within SuspectAfter): among sets of equal
// votes, one that drops no member (and so costs no shrink guard) beats one
// that swaps a member for a newcomer, and among those that keep as many,
// one of peers heard now beats one holding a peer about to be lost (a
// peer across a cut whose last view, still in its row, lists everybody).
type cliqueRank [MaxNodes + 1]int64

// weights: self counts as a member and as fresh. The kept members' and the
// fresh peers' votes are each at most the total of the votes, below the
// base b, so no tier carries into the one above.
func weights(self NodeID, votes *Votes, members, fresh Set) *cliqueRank {
	var w cliqueRank
	b := int64(votes.Total()) + 1
	members = members.Add(self)
	fresh = fresh.Add(self)
	for id := NodeID(1); id <= MaxNodes; id++ {
		v := int64(votes[id])
		if v <= 0 {
			continue
		}
		w[id] = v * b * b
		if members.Has(id) {
			w[id] += v * b
		}
		if fresh.Has(id) {
			w[id] += v
		}
	}
	return &w
}

func (w *cliqueRank) of(s Set) int64 {
	t := int64(0)
	for s != 0 {
		id := s.Lowest()
		t += w[id]
		s = s.Remove(id)
	}
	return t
}

// bestClique returns the member set self should publish: among the sets
// that contain self, are contained in cand and whose every pair is
// connected in adj (adj[a] holds b when a and b hear each other), the one
// of highest rank (cliqueRank: votes, then the current members' votes it
// keeps); among equal ranks the one whose sorted ids come first (so {1,2}
// beats {1,3} beats {2,3}), preferring a superset on ties (zero-vote
// nodes are kept). Nodes that share their views and their member sets
// pick the same set.
func bestClique(self NodeID, cand Set, adj *[MaxNodes + 1]Set, rank *cliqueRank) Set {
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
	best, bestRank := start, int64(-1)
	var walk func(cur Set, curRank int64, rest Set)
	walk = func(cur Set, curRank int64, rest Set) {
		if rest == 0 {
			if curRank > bestRank {
				best, bestRank = cur, curRank
			}
			return
		}
		if curRank+rank.of(rest) <= bestRank {
			return
		}
		id := rest.Lowest()
		rest = rest.Remove(id)
		walk(cur.Add(id), curRank+rank[id], rest&adj[id])
		walk(cur, curRank, rest)
	}
	walk(start, rank.of(start), rest)
	return best
}
