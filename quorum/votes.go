package quorum

// VoteResult is the outcome of counting a member set's votes.
type VoteResult uint8

const (
	// VoteLost: the set holds less than half of the configured votes.
	VoteLost VoteResult = iota
	// VotePending: the set holds exactly half; only the quorum disk's
	// tie-break lock can decide for it.
	VotePending
	// VoteWon: the set holds a strict majority.
	VoteWon
)

func (r VoteResult) String() string {
	switch r {
	case VoteLost:
		return "lost"
	case VotePending:
		return "tie"
	case VoteWon:
		return "won"
	}
	return "invalid"
}

// Votes holds the configured votes of every node id (0 for ids not in the
// cluster).
type Votes [MaxNodes + 1]int

// Total is the sum of all configured votes.
func (v *Votes) Total() int {
	t := 0
	for _, n := range v {
		t += n
	}
	return t
}

// Of is the sum of the votes of the nodes in s.
func (v *Votes) Of(s Set) int {
	t := 0
	for s != 0 {
		id := s.Lowest()
		t += v[id]
		s = s.Remove(id)
	}
	return t
}

// Tally counts the votes of members against the configured total: a strict
// majority wins, exactly half is pending (tie-break), less loses. A cluster
// with no votes at all never wins.
func (v *Votes) Tally(members Set) VoteResult {
	total := v.Total()
	if total <= 0 {
		return VoteLost
	}
	yes := v.Of(members)
	switch {
	case 2*yes > total:
		return VoteWon
	case 2*yes == total:
		return VotePending
	}
	return VoteLost
}
