package integration

// The chaos suite's history checker. It merges what was observed from
// outside the daemons during one trial (the observer's probes of the VIP,
// the sampler's readings of every node's kernel, the data witness's
// acknowledged writes and the data file on the shared filesystem, the
// daemons' deaths as the harness saw them) with what the daemons wrote in
// their event journals, and finds:
//
//   - ownership overlaps: the VIP on two nodes at once, the filesystem
//     mounted on two nodes at once (sampler); two daemons whose journals
//     both claim the package running at once, a claim ending at the next
//     package state change of that daemon, at its restart or at its death
//     (as the harness observed it, not as the daemon reports it);
//   - two nodes answering: a change of the answering node with no
//     unanswered request between the old owner's last answer and the new
//     one's first. A legitimate handover always has one (the old owner
//     stops its service before the new one probes the address and starts
//     its own; a crash leaves the old one silent), and requests go out
//     every few milliseconds, so a direct switch means the old owner still
//     answered after the new one's first answer: after the takeover
//     completed, as the observations alone say;
//   - writes of a replaced node: the data file's lines, in their order on
//     the shared filesystem, with repeats of a node collapsed, must come
//     from the same nodes in the same order as the answers. A run of lines
//     of a node between two runs of its successor is a write by a node
//     after its successor started serving (a taken-over node's write);
//   - lost writes: every write the witness saw acknowledged must be in the
//     data file, tagged with the node and the start (incarnation and
//     epoch) that acknowledged it, and the file holds at least as many
//     lines of each node from the observer as the observer got answers
//     from it;
//   - writes of a fenced node: no write the witness sent after a daemon's
//     journal says an incarnation of a node was fenced or taken over may
//     be acknowledged by that incarnation (the service tags each answer
//     with the incarnation of the daemon that started it).
//
// Everything is derived from the package's definition (one VIP, one
// filesystem, one data file) and the observations; the journals are
// compared with the observations, never trusted for them.

import (
	"bufio"
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/journal"
)

// write is one request of the data witness: sent from local port Port at
// Sent, acknowledged by Node at Acked (Node "" when it failed).
type write struct {
	Port  int
	Sent  time.Duration
	Acked time.Duration
	Node  string
	// Start is "<incarnation> <epoch>" of the start that served it (the
	// service's MTC_INCARNATION and MTC_EPOCH).
	Start string
	Err   string
}

// death is a daemon's end as the harness saw it (its process reaped).
type death struct {
	Node string
	At   time.Duration
	// Deliberate: the test stopped or crashed it; otherwise its watchdog
	// killed it.
	Deliberate bool
}

// note is something the trial did (a fault injected or healed), for the
// timeline.
type note struct {
	At   time.Duration
	Text string
}

// history is everything one trial observed. Times are since Start (the
// observer's clock); journal events are placed on it by their wall clock,
// all on this one machine.
type history struct {
	Start    time.Time
	Probes   []probe
	Samples  []sample
	Writes   []write
	Data     string // the data file at the end
	Witness  string // the witness's address as the service logs it (IP)
	Observer string // the observer's IP
	Journals map[string][]journal.Event
	Deaths   []death
	Notes    []note
}

// violation is one finding of the checker.
type violation struct {
	Kind string
	At   time.Duration
	Text string
}

func (v violation) String() string {
	return fmt.Sprintf("%s at %v: %s", v.Kind, v.At.Round(time.Millisecond), v.Text)
}

// Violation kinds.
const (
	vipOverlap    = "vip-on-two-nodes"
	mountOverlap  = "mount-on-two-nodes"
	claimOverlap  = "journals-claim-two-owners"
	twoAnswering  = "two-nodes-answering"
	replacedWrite = "write-of-replaced-node"
	lostWrite     = "lost-acknowledged-write"
	fencedWrite   = "write-of-fenced-incarnation"
)

// reply is one request of the observer or the witness, answered or not.
type reply struct {
	Sent, Done time.Duration
	Node       string
	Witness    bool
	Port       int
}

// replies merges probes and writes in the order they were sent.
func (h *history) replies() []reply {
	var rs []reply
	for _, p := range h.Probes {
		rs = append(rs, reply{Sent: p.At, Done: p.At + p.Took, Node: p.Node})
	}
	for _, w := range h.Writes {
		rs = append(rs, reply{Sent: w.Sent, Done: w.Acked, Node: w.Node, Witness: true, Port: w.Port})
	}
	slices.SortStableFunc(rs, func(a, b reply) int { return cmp.Compare(a.Sent, b.Sent) })
	return rs
}

// ownerRun is a maximal sequence of answers from one node.
type ownerRun struct {
	Node        string
	First, Last reply
	Answers     int
}

// answerRuns collapses the answered requests into runs of one node.
func answerRuns(rs []reply) []ownerRun {
	var runs []ownerRun
	for _, r := range rs {
		if r.Node == "" {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].Node == r.Node {
			runs[n-1].Last = r
			runs[n-1].Answers++
			continue
		}
		runs = append(runs, ownerRun{Node: r.Node, First: r, Last: r, Answers: 1})
	}
	return runs
}

// check returns every violation in the history (at most a few per kind).
func (h *history) check() []violation {
	var out []violation
	add := func(v violation) {
		n := 0
		for _, o := range out {
			if o.Kind == v.Kind {
				n++
			}
		}
		if n < 3 {
			out = append(out, v)
		}
	}
	// Ownership in the kernels.
	for _, s := range h.Samples {
		if len(s.VIP) > 1 {
			add(violation{vipOverlap, s.At, fmt.Sprintf("the VIP is on %v at once", s.VIP)})
		}
		if len(s.Mounted) > 1 {
			add(violation{mountOverlap, s.At, fmt.Sprintf("the filesystem is mounted on %v at once", s.Mounted)})
		}
	}
	// Ownership the journals claim.
	for _, v := range h.claimOverlaps() {
		add(v)
	}
	// Answers.
	rs := h.replies()
	var prev *reply
	failedSince := false
	for i := range rs {
		r := &rs[i]
		if r.Node == "" {
			failedSince = true
			continue
		}
		if prev != nil && prev.Node != r.Node && !failedSince {
			add(violation{twoAnswering, r.Sent, fmt.Sprintf("%s answered a request sent at %v, the one sent just before (at %v) was answered by %s, with no unanswered request between: %s still answered when %s had taken over",
				r.Node, r.Sent.Round(time.Millisecond), prev.Sent.Round(time.Millisecond), prev.Node, prev.Node, r.Node)})
		}
		prev, failedSince = r, false
	}
	// The data file against the answers.
	lines := parseDataFile(h.Data)
	runs := answerRuns(rs)
	var fileRuns []string
	for _, l := range lines {
		if n := len(fileRuns); n == 0 || fileRuns[n-1] != l.Node {
			fileRuns = append(fileRuns, l.Node)
		}
	}
	var want []string
	for _, r := range runs {
		want = append(want, r.Node)
	}
	if !slices.Equal(fileRuns, want) {
		at := time.Duration(0)
		i := 0
		for i < len(fileRuns) && i < len(want) && fileRuns[i] == want[i] {
			i++
		}
		if i < len(runs) {
			at = runs[i].First.Sent
		}
		kind := replacedWrite
		if len(fileRuns) < len(want) {
			kind = lostWrite
		}
		add(violation{kind, at, fmt.Sprintf("the data file's lines come from %v in that order, the answers from %v (they differ from position %d): a node wrote while another was serving, or an owner's writes are missing",
			fileRuns, want, i)})
	}
	// Every acknowledged write of the witness is in the file, by its node.
	byPort := map[int]string{}
	startByPort := map[int]string{}
	fromObserver := map[string]int{}
	for _, l := range lines {
		host, port, err := net.SplitHostPort(l.Client)
		if err != nil {
			continue
		}
		switch host {
		case h.Witness:
			p, _ := strconv.Atoi(port)
			byPort[p] = l.Node
			startByPort[p] = l.Start
		case h.Observer:
			fromObserver[l.Node]++
		}
	}
	for _, w := range h.Writes {
		if w.Node == "" {
			continue
		}
		got, ok := byPort[w.Port]
		switch {
		case !ok:
			add(violation{lostWrite, w.Sent, fmt.Sprintf("write %d (sent at %v) was acknowledged by %s at %v but is not in the data file", w.Port, w.Sent.Round(time.Millisecond), w.Node, w.Acked.Round(time.Millisecond))})
		case got != w.Node:
			add(violation{lostWrite, w.Sent, fmt.Sprintf("write %d was acknowledged by %s but the data file has it from %s", w.Port, w.Node, got)})
		case startByPort[w.Port] != w.Start:
			add(violation{lostWrite, w.Sent, fmt.Sprintf("write %d was acknowledged by %s's start %q but the data file has it from its start %q", w.Port, w.Node, w.Start, startByPort[w.Port])})
		}
	}
	// No acknowledged write sent after its incarnation was fenced or
	// taken over.
	ends := h.incarnationEnds()
	for _, w := range h.Writes {
		inc, _, _ := strings.Cut(w.Start, " ")
		if w.Node == "" || inc == "" {
			continue
		}
		if e, ok := ends[w.Node+" "+inc]; ok && w.Sent > e.at {
			add(violation{fencedWrite, w.Sent, fmt.Sprintf("write %d, sent at %v, was acknowledged by %s incarnation %s, which %s's journal says was %s at %v",
				w.Port, w.Sent.Round(time.Millisecond), w.Node, inc, e.by, e.how, e.at.Round(time.Millisecond))})
		}
	}
	answers := map[string]int{}
	for _, p := range h.Probes {
		if p.Node != "" {
			answers[p.Node]++
		}
	}
	for _, n := range slices.Sorted(mapKeys(answers)) {
		if fromObserver[n] < answers[n] {
			add(violation{lostWrite, 0, fmt.Sprintf("the data file holds %d lines of %s from the observer, which got %d answers from it", fromObserver[n], n, answers[n])})
		}
	}
	slices.SortStableFunc(out, func(a, b violation) int { return cmp.Compare(a.At, b.At) })
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dataLine is one line of the data file: the node that served a
// connection, the client's address and the start (incarnation and epoch)
// that served it.
type dataLine struct{ Node, Client, Start string }

func parseDataFile(s string) []dataLine {
	var out []dataLine
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		l := dataLine{Node: f[0], Client: f[1]}
		if len(f) > 2 {
			l.Start = strings.Join(f[2:], " ")
		}
		out = append(out, l)
	}
	return out
}

// incEnd is when a node's incarnation was first said fenced or taken
// over, by whom and how.
type incEnd struct {
	at      time.Duration
	by, how string
}

// incarnationEnds: per "<node> <incarnation>", the first journal event of
// any daemon saying it was fenced or taken over. Every event is written
// after its decision, so no write the witness sent later may be served by
// it.
func (h *history) incarnationEnds() map[string]incEnd {
	out := map[string]incEnd{}
	for _, node := range slices.Sorted(mapKeys(h.Journals)) {
		for _, e := range h.Journals[node] {
			if (e.Kind != "fenced" && e.Kind != "takeover") || e.Peer == "" || e.PeerIncarnation == "" {
				continue
			}
			k := e.Peer + " " + e.PeerIncarnation
			at := e.Time.Sub(h.Start)
			if o, ok := out[k]; !ok || at < o.at {
				how := "fenced"
				if e.Kind == "takeover" {
					how = "taken over (" + e.Reason + ")"
				}
				out[k] = incEnd{at: at, by: node, how: how}
			}
		}
	}
	return out
}

// claim is a period in which one daemon's journal says it runs web.
type claim struct {
	Node     string
	From, To time.Duration
	End      string
}

// claims are the periods each daemon claims web running: from a
// package-running event to its next package state event, its next start,
// or its death as the harness observed it (the end of the history if
// none).
func (h *history) claims(end time.Duration) []claim {
	var out []claim
	for _, node := range slices.Sorted(mapKeys(h.Journals)) {
		var deaths []time.Duration
		for _, d := range h.Deaths {
			if d.Node == node {
				deaths = append(deaths, d.At)
			}
		}
		var open *claim
		closeAt := func(at time.Duration, why string) {
			if open == nil {
				return
			}
			// A death the harness saw before this event ended it.
			for _, d := range deaths {
				if d >= open.From && d < at {
					at, why = d, "daemon died"
					break
				}
			}
			open.To, open.End = at, why
			out = append(out, *open)
			open = nil
		}
		for _, e := range h.Journals[node] {
			at := e.Time.Sub(h.Start)
			switch {
			case e.Kind == daemon.EventDaemonStarted:
				closeAt(at, "daemon restarted")
			case e.Package == "web" && strings.HasPrefix(e.Kind, "package-") && e.Kind != "package-step":
				closeAt(at, e.Kind)
				if e.Kind == "package-running" {
					open = &claim{Node: node, From: at}
				}
			}
		}
		closeAt(end, "end of the trial")
	}
	return out
}

// claimOverlaps are the moments two daemons' claims overlap.
func (h *history) claimOverlaps() []violation {
	end := time.Duration(0)
	if n := len(h.Samples); n > 0 {
		end = h.Samples[n-1].At
	}
	if n := len(h.Probes); n > 0 && h.Probes[n-1].At > end {
		end = h.Probes[n-1].At
	}
	cs := h.claims(end)
	var out []violation
	for i, a := range cs {
		for _, b := range cs[i+1:] {
			if a.Node == b.Node {
				continue
			}
			from, to := max(a.From, b.From), min(a.To, b.To)
			if from < to {
				out = append(out, violation{claimOverlap, from, fmt.Sprintf("%s's journal says web runs there from %v to %v (%s), %s's from %v to %v (%s)",
					a.Node, a.From.Round(time.Millisecond), a.To.Round(time.Millisecond), a.End, b.Node, b.From.Round(time.Millisecond), b.To.Round(time.Millisecond), b.End)})
			}
		}
	}
	return out
}

// longestOutage is the longest time without an answer from the observer
// after from: between two answers, or from the last answer to the end.
func longestOutage(ps []probe, from time.Duration) time.Duration {
	var longest time.Duration
	last := time.Duration(-1)
	for _, p := range ps {
		if p.Node == "" {
			continue
		}
		if last >= 0 && p.At > from && p.At-max(last, from) > longest {
			longest = p.At - max(last, from)
		}
		last = p.At
	}
	return longest
}

// timeline is the merged history for a failed trial's log: the trial's
// notes, the daemons' deaths, the changes of the answering node and of
// the sampled holders, and the journals' placement, package, fencing and
// membership events.
func (h *history) timeline() string {
	type line struct {
		at   time.Duration
		text string
	}
	var ls []line
	for _, n := range h.Notes {
		ls = append(ls, line{n.At, "test: " + n.Text})
	}
	for _, d := range h.Deaths {
		how := "killed by its watchdog"
		if d.Deliberate {
			how = "stopped by the test"
		}
		ls = append(ls, line{d.At, fmt.Sprintf("harness: %s's daemon exited (%s)", d.Node, how)})
	}
	for _, r := range answerRuns(h.replies()) {
		ls = append(ls, line{r.First.Sent, fmt.Sprintf("observed: %s answers (%d answers until %v)", r.Node, r.Answers, r.Last.Sent.Round(time.Millisecond))})
	}
	var prev sample
	for i, s := range h.Samples {
		if i == 0 || !slices.Equal(s.VIP, prev.VIP) || !slices.Equal(s.Mounted, prev.Mounted) {
			ls = append(ls, line{s.At, fmt.Sprintf("sampled: VIP on %v, mounted on %v", s.VIP, s.Mounted)})
		}
		prev = s
	}
	for node, evs := range h.Journals {
		for _, e := range evs {
			if e.Kind == "package-step" && e.Error == "" {
				continue
			}
			txt := fmt.Sprintf("journal %s: %s", node, e.Kind)
			for _, f := range []string{e.Peer, e.Package, e.Reason, e.Error} {
				if f != "" {
					txt += " " + f
				}
			}
			ls = append(ls, line{e.Time.Sub(h.Start), txt})
		}
	}
	slices.SortStableFunc(ls, func(a, b line) int { return cmp.Compare(a.at, b.at) })
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%10v %s\n", l.at.Round(time.Millisecond), l.text)
	}
	return b.String()
}
