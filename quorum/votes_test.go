package quorum

import (
	"math/rand"
	"testing"
)

// naiveTally is the obviously correct version of Votes.Tally: count each
// configured node's votes one by one and compare the fractions as
// rationals without integer shortcuts.
func naiveTally(v *Votes, members Set) VoteResult {
	total, yes := 0, 0
	for id := 0; id <= MaxNodes; id++ {
		total += v[id]
		if id > 0 && members.Has(NodeID(id)) {
			yes += v[id]
		}
	}
	if total == 0 {
		return VoteLost
	}
	no := total - yes
	switch {
	case yes > no:
		return VoteWon
	case yes == no:
		return VotePending
	}
	return VoteLost
}

// TestTallyMatchesNaive checks Tally against naiveTally on many random
// clusters (votes 0..3 per node) and member sets, in the manner of a quick
// check.
func TestTallyMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	seen := map[VoteResult]int{}
	for i := 0; i < 50000; i++ {
		var v Votes
		n := 1 + rng.Intn(MaxNodes)
		for id := 1; id <= n; id++ {
			v[id] = rng.Intn(4)
			if rng.Intn(3) > 0 {
				v[id] = 1
			}
		}
		members := Set(rng.Uint32()) & (Set(1)<<(n+1) - 2)
		got, want := v.Tally(members), naiveTally(&v, members)
		if got != want {
			t.Fatalf("votes %v members %v: Tally = %v, naive = %v", v, members, got, want)
		}
		seen[got]++
	}
	for _, r := range []VoteResult{VoteLost, VotePending, VoteWon} {
		if seen[r] == 0 {
			t.Errorf("no random input produced %v: the generator does not cover every outcome", r)
		}
	}
}

func TestTallyExamples(t *testing.T) {
	for _, c := range []struct {
		votes   []int // votes of nodes 1..
		members Set
		want    VoteResult
	}{
		{[]int{1, 1}, SetOf(1, 2), VoteWon},
		{[]int{1, 1}, SetOf(1), VotePending},
		{[]int{1, 1, 1}, SetOf(1, 2), VoteWon},
		{[]int{1, 1, 1}, SetOf(3), VoteLost},
		{[]int{1, 1, 1, 1}, SetOf(1, 4), VotePending},
		{[]int{2, 1, 1}, SetOf(1), VotePending},
		{[]int{2, 1, 1}, SetOf(1, 3), VoteWon},
		{[]int{0, 1, 1}, SetOf(1, 2), VotePending},
		{[]int{0, 0}, SetOf(1, 2), VoteLost},
	} {
		var v Votes
		for i, n := range c.votes {
			v[i+1] = n
		}
		if got := v.Tally(c.members); got != c.want {
			t.Errorf("votes %v members %v: got %v, want %v", c.votes, c.members, got, c.want)
		}
	}
}

// TestBestClique checks the member-set choice against brute force: among
// the cliques containing self, the most votes, then the most votes of
// current members kept, then the lowest ids.
func TestBestClique(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 3000; i++ {
		n := 2 + rng.Intn(9)
		var v Votes
		var members Set
		for id := 1; id <= n; id++ {
			v[id] = rng.Intn(3) // zero-vote nodes too
			if rng.Intn(2) > 0 {
				members = members.Add(NodeID(id))
			}
		}
		self := NodeID(1 + rng.Intn(n))
		var fresh Set
		for id := 1; id <= n; id++ {
			if rng.Intn(2) > 0 {
				fresh = fresh.Add(NodeID(id))
			}
		}
		var adj [MaxNodes + 1]Set
		for a := 1; a <= n; a++ {
			for b := a + 1; b <= n; b++ {
				if rng.Intn(4) > 0 {
					adj[a] = adj[a].Add(NodeID(b))
					adj[b] = adj[b].Add(NodeID(a))
				}
			}
		}
		cand := adj[self].Add(self)
		got := bestClique(self, cand, &adj, weights(self, &v, members, fresh))
		// Brute force.
		var want Set
		var bestKey [3]int
		first := true
		for sub := Set(0); sub < Set(1)<<(n+1); sub += 2 {
			if !sub.Has(self) || sub&^cand != 0 {
				continue
			}
			clique := true
			for _, a := range sub.IDs() {
				if sub.Remove(a)&^adj[a] != 0 {
					clique = false
					break
				}
			}
			if !clique {
				continue
			}
			key := [3]int{v.Of(sub), v.Of(sub & members.Add(self)), v.Of(sub & fresh.Add(self))}
			better := first
			for k := 0; k < 3 && !better; k++ {
				if key[k] != bestKey[k] {
					better = key[k] > bestKey[k]
					break
				}
				if k == 2 {
					better = lexLess(sub, want)
				}
			}
			if better {
				want, bestKey, first = sub, key, false
			}
		}
		if got != want {
			t.Fatalf("self %d votes %v members %v adj %v: bestClique = %v, brute force = %v", self, v[:n+1], members, adj[:n+1], got, want)
		}
	}
}

// lexLess: a's sorted ids come before b's (a proper prefix comes after,
// since a superset is preferred on equal votes).
func lexLess(a, b Set) bool {
	ai, bi := a.IDs(), b.IDs()
	for i := 0; i < len(ai) && i < len(bi); i++ {
		if ai[i] != bi[i] {
			return ai[i] < bi[i]
		}
	}
	return len(ai) > len(bi)
}
