package integration

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/journal"
)

// cleanHistory is a made-up failover from n1 to n2 as the checker must
// accept it: n1 answers, dies (its probes fail), n2 answers; every
// acknowledged write is in the data file; the journals claim web on n1,
// then, after n1's death, on n2; n2's journal says it took n1's
// incarnation over before n2 first answered.
func cleanHistory() history {
	ms := time.Millisecond
	const inc1, inc2 = "00000000000000a1", "00000000000000b2"
	tag := func(node, client string) string {
		if node == "n1" {
			return node + " " + client + " " + inc1 + " 3"
		}
		return node + " " + client + " " + inc2 + " 4"
	}
	start := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	return history{
		Start: start,
		Probes: []probe{
			{At: 10 * ms, Node: "n1", Took: ms}, {At: 20 * ms, Node: "n1", Took: ms}, {At: 30 * ms, Node: "n1", Took: ms},
			{At: 40 * ms, Err: "timeout", Took: 150 * ms}, {At: 70 * ms, Err: "timeout", Took: 150 * ms},
			{At: 100 * ms, Node: "n2", Took: ms}, {At: 110 * ms, Node: "n2", Took: ms},
		},
		Writes: []write{
			{Port: 20000, Sent: 15 * ms, Acked: 16 * ms, Node: "n1", Start: inc1 + " 3"},
			{Port: 20001, Sent: 50 * ms, Acked: 200 * ms, Err: "timeout"},
			{Port: 20002, Sent: 105 * ms, Acked: 106 * ms, Node: "n2", Start: inc2 + " 4"},
		},
		Samples: []sample{
			{At: 25 * ms, VIP: []string{"n1"}, Mounted: []string{"n1"}},
			{At: 60 * ms},
			{At: 90 * ms, Mounted: []string{"n2"}},
			{At: 100 * ms, VIP: []string{"n2"}, Mounted: []string{"n2"}},
		},
		Data: strings.Join([]string{
			tag("n1", "10.213.0.200:40001"), tag("n1", "10.213.0.201:20000"), tag("n1", "10.213.0.200:40002"), tag("n1", "10.213.0.200:40003"),
			// n1's last write, its answer lost in the crash.
			tag("n1", "10.213.0.200:40004"),
			tag("n2", "10.213.0.200:40005"), tag("n2", "10.213.0.201:20002"), tag("n2", "10.213.0.200:40006"),
		}, "\n") + "\n",
		Witness:  "10.213.0.201",
		Observer: "10.213.0.200",
		Journals: map[string][]journal.Event{
			"n1": {{Time: at(0), Node: "n1", Kind: "daemon-started"}, {Time: at(5 * ms), Node: "n1", Kind: "package-running", Package: "web"}},
			"n2": {{Time: at(0), Node: "n2", Kind: "daemon-started"},
				{Time: at(90 * ms), Node: "n2", Kind: "takeover", Peer: "n1", PeerIncarnation: inc1, Reason: "watchdog deadline passed"},
				{Time: at(95 * ms), Node: "n2", Kind: "package-running", Package: "web"},
				{Time: at(96 * ms), Node: "n2", Kind: "package-step", Package: "web"}},
		},
		Deaths: []death{{Node: "n1", At: 35 * ms}},
	}
}

func kinds(vs []violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Kind) {
			out = append(out, v.Kind)
		}
	}
	return out
}

// TestChaosCheckerFindsPlantedViolations: the history checker accepts a
// clean failover, and finds each violation planted into it.
func TestChaosCheckerFindsPlantedViolations(t *testing.T) {
	ms := time.Millisecond
	if vs := func() []violation { h := cleanHistory(); return h.check() }(); len(vs) > 0 {
		t.Fatalf("a clean failover: %v", vs)
	}
	for _, tc := range []struct {
		name  string
		plant func(h *history)
		want  string
	}{
		{"the VIP on two nodes", func(h *history) {
			h.Samples = append(h.Samples, sample{At: 120 * ms, VIP: []string{"n1", "n2"}, Mounted: []string{"n2"}})
		}, vipOverlap},
		{"the filesystem mounted on two nodes", func(h *history) {
			h.Samples[2].Mounted = []string{"n1", "n2"}
		}, mountOverlap},
		{"two journals claiming web (n1 never died)", func(h *history) {
			h.Deaths = nil
		}, claimOverlap},
		{"the new owner answering right after the old one", func(h *history) {
			h.Probes = slices.Delete(h.Probes, 3, 5)
			h.Writes = slices.Delete(h.Writes, 1, 2)
		}, twoAnswering},
		{"the old owner answering between the new one's answers", func(h *history) {
			h.Probes = append(h.Probes, probe{At: 105 * ms, Node: "n1", Took: ms})
			slices.SortFunc(h.Probes, func(a, b probe) int { return int(a.At - b.At) })
		}, twoAnswering},
		{"a write of the replaced node after its successor's", func(h *history) {
			h.Data += "n1 10.213.0.200:40007\nn2 10.213.0.200:40008\n"
		}, replacedWrite},
		{"an acknowledged witness write missing", func(h *history) {
			h.Data = strings.Replace(h.Data, "n1 10.213.0.201:20000 00000000000000a1 3\n", "", 1)
		}, lostWrite},
		{"an acknowledged write in the file from another start of its node", func(h *history) {
			h.Data = strings.Replace(h.Data, "n2 10.213.0.201:20002 00000000000000b2 4", "n2 10.213.0.201:20002 00000000000000b2 5", 1)
		}, lostWrite},
		{"a write acknowledged by an incarnation after its takeover", func(h *history) {
			// n1, taken over at 90 ms, answers a write sent at 92 ms
			// (its service survived; n2 has not answered yet).
			h.Writes = append(h.Writes, write{Port: 20003, Sent: 92 * ms, Acked: 93 * ms, Node: "n1", Start: "00000000000000a1 3"})
			slices.SortFunc(h.Writes, func(a, b write) int { return int(a.Sent - b.Sent) })
		}, fencedWrite},
		{"an acknowledged write in the file from another node", func(h *history) {
			h.Writes[2].Node = "n3"
			h.Probes = append(h.Probes, probe{At: 106 * ms, Node: "n3", Took: ms})
		}, lostWrite},
		{"the new owner's writes missing", func(h *history) {
			i := strings.Index(h.Data, "n2 ")
			h.Data = h.Data[:i]
		}, lostWrite},
		{"fewer lines of a node than the observer's answers", func(h *history) {
			for _, c := range []string{"40002", "40003", "40004"} {
				h.Data = strings.Replace(h.Data, "n1 10.213.0.200:"+c+" 00000000000000a1 3\n", "", 1)
			}
		}, lostWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := cleanHistory()
			tc.plant(&h)
			vs := h.check()
			if !slices.Contains(kinds(vs), tc.want) {
				t.Errorf("planted %s: found %v, want a %s", tc.name, vs, tc.want)
			}
		})
	}
}

// TestChaosClaims: a daemon's claim of web ends at its next package
// event, at its restart, or at its death as observed.
func TestChaosClaims(t *testing.T) {
	ms := time.Millisecond
	start := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	h := history{Start: start, Journals: map[string][]journal.Event{
		"n1": {
			{Time: at(10 * ms), Kind: "package-running", Package: "web"},
			{Time: at(20 * ms), Kind: "package-halted", Package: "web"},
			{Time: at(30 * ms), Kind: "package-running", Package: "web"},
			{Time: at(50 * ms), Kind: "daemon-started"},
			{Time: at(60 * ms), Kind: "package-running", Package: "web"},
		},
	}, Deaths: []death{{Node: "n1", At: 40 * ms}}}
	got := h.claims(100 * ms)
	want := []claim{{"n1", 10 * ms, 20 * ms, "package-halted"}, {"n1", 30 * ms, 40 * ms, "daemon died"}, {"n1", 60 * ms, 100 * ms, "end of the trial"}}
	if !slices.Equal(got, want) {
		t.Errorf("claims %+v, want %+v", got, want)
	}
}

// TestChaosLongestOutage: the longest time without an answer after the
// fault, to the end of the answers.
func TestChaosLongestOutage(t *testing.T) {
	ms := time.Millisecond
	ps := []probe{{At: 10 * ms, Node: "n1"}, {At: 20 * ms}, {At: 300 * ms, Node: "n2"}, {At: 310 * ms, Node: "n2"}, {At: 400 * ms}, {At: 500 * ms, Node: "n2"}}
	if got := longestOutage(ps, 15*ms); got != 285*ms {
		t.Errorf("longest outage %v, want 285ms (fault at 15ms, first answer after at 300ms)", got)
	}
	if got := longestOutage(ps, 0); got != 290*ms {
		t.Errorf("longest outage %v, want 290ms", got)
	}
}
