package sim

import (
	"fmt"
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// The survivor-liveness checker. It follows the fault pattern the
// simulation applies (crashes and resets, pauses and freezes, per-link
// delivery, per-node disk paths), never the machines' opinion of it, and
// splits each history into fault windows: intervals during which that
// pattern does not change. A window's connected majority C is a set of
// nodes holding a strict majority of the votes, every pair of which
// delivers heartbeats both ways, each running (up, not paused or frozen,
// not already self-fenced when the window begins: such a node is on its
// way to its watchdog reset), each with a working quorum-disk path (no
// failing, hung, slow, lossy or stuck I/O). A flapping link counts as not
// delivering for as long as it flaps; packet loss up to the 5% every
// history runs with counts as delivering, heavier loss as not, and so does
// a link on which that background loss has dropped a packet and whose
// receiver then goes SuspectAfter without a packet of it (lossRuns: it
// has not heard the sender for as long as a one-way fault takes to be
// suspected, a one-way link by the contract's own measure), until its next
// packet arrives; a babbling node (its views change every heartbeat) is
// faulty and belongs to no C, though a member set may include it.
//
// With R = EndorseGuard + SuspectAfter + 3*HeartbeatInterval +
// 2*IOTimeout of the configured timing, for every window longer than R
// with a connected majority:
//
//  5. every node of C holds quorum at every instant of [start+R, end),
//     with a member set that contains C and whose other members run and
//     reach every member both ways, at least part of the time (a
//     degraded disk or a flapping link is not yet a reason to drop a
//     node);
//  6. a node of C that held quorum when the window began does not
//     self-fence in it, and goes without quorum for at most R at a time.
//
// When the pattern leaves more than one maximal connected majority (a
// one-way link between two nodes of a three-node cluster leaves two), the
// checks apply to the nodes in all of them, and the member set must
// contain one of them.

// heavyLoss is the packet-loss rate above which links count as not
// delivering: every history runs with up to 5%.
const heavyLoss = 0.05

// livenessBound is R for the configured timing.
func (w *World) livenessBound() time.Duration {
	t := w.t
	return t.EndorseGuard + t.SuspectAfter + 3*t.HeartbeatInterval + 2*t.IOTimeout
}

type pattern struct {
	running, diskOK, babble, heavy quorum.Set
	link                           [quorum.MaxNodes + 1]quorum.Set // link[a]: the nodes a delivers to
	// loose[a]: the nodes a delivers to at least part of the time
	// (flapping links included).
	loose [quorum.MaxNodes + 1]quorum.Set
}

type liveWindow struct {
	start      time.Duration
	majorities []quorum.Set
	core       quorum.Set // the nodes in every connected majority
	adj        [quorum.MaxNodes + 1]quorum.Set
	atStart    quorum.Set // core nodes quorate at the start
	quorate    quorum.Set // core nodes quorate at their last step
	gapFrom    [quorum.MaxNodes + 1]time.Duration
	pending    []Violation // property 6 findings, kept until the window outlasts R
	reported   quorum.Set
}

type liveChecker struct {
	w   *World
	r   time.Duration
	cur pattern
	// runs follows the background losses of every directed link.
	runs lossRuns
	win  liveWindow
	tok  uint64
	// Windows counts the windows longer than R that had a connected
	// majority (the windows the checker judged).
	Windows int
}

func (l *liveChecker) init(w *World) {
	l.w, l.r = w, w.livenessBound()
	l.win.start = -1
}

func (w *World) currentPattern() pattern {
	var p pattern
	for _, n := range w.nodes[1:] {
		if n.up && !n.frozen {
			p.running = p.running.Add(n.id)
		}
		if !n.pathDown && !n.pathHang && n.slow == 0 && n.flaky == 0 && !n.stuck {
			p.diskOK = p.diskOK.Add(n.id)
		}
		if w.babble[n.id] {
			p.babble = p.babble.Add(n.id)
		}
		for _, m := range w.nodes[1:] {
			if m == n || w.block[n.id][m.id] || w.mute[n.id] || w.deaf[m.id] {
				continue
			}
			p.loose[n.id] = p.loose[n.id].Add(m.id)
			if !w.flapping[n.id][m.id] && !w.lv.runs.long[n.id].Has(m.id) {
				p.link[n.id] = p.link[n.id].Add(m.id)
			}
		}
	}
	if w.loss > heavyLoss {
		p.heavy = w.allNodes()
	}
	return p
}

// patternChanged is called after every change of the fault pattern (and
// after changes that may be one); a real change ends the current window.
func (w *World) patternChanged() {
	l := &w.lv
	if len(w.nodes) == 0 || w.nodes[len(w.nodes)-1] == nil {
		return // still building the world
	}
	p := w.currentPattern()
	if l.win.start >= 0 && p == l.cur {
		return
	}
	l.close()
	l.cur = p
	l.open()
}

func (l *liveChecker) open() {
	w, p := l.w, l.cur
	win := liveWindow{start: w.now}
	healthy := p.running & p.diskOK &^ p.babble
	for _, n := range w.nodes[1:] {
		o := n.obs
		if !n.up {
			continue
		}
		// A node that has self-fenced is on its way to its reset; one
		// that has gone without quorum so long (since an earlier window)
		// that it must self-fence before R has passed is too.
		if o.stopped || (o.armed && !w.quorateNow(n) && n.abs(w.chk.quorumBound(o, true)) < w.now+l.r) {
			healthy = healthy.Remove(n.id)
		}
	}
	if p.heavy == 0 {
		// C: healthy nodes whose links deliver both ways. A member set
		// may also hold running nodes reached at least part of the time
		// both ways (a degraded disk or a flapping link is not yet a
		// reason to be dropped).
		var hadj [quorum.MaxNodes + 1]quorum.Set
		for a := quorum.NodeID(1); int(a) < len(w.nodes); a++ {
			for s := p.loose[a] & p.running; s != 0; {
				b := s.Lowest()
				s = s.Remove(b)
				if !p.running.Has(a) || !p.loose[b].Has(a) {
					continue
				}
				win.adj[a] = win.adj[a].Add(b)
				if healthy.Has(a) && healthy.Has(b) && p.link[a].Has(b) && p.link[b].Has(a) {
					hadj[a] = hadj[a].Add(b)
				}
			}
		}
		maximalCliques(healthy, &hadj, func(c quorum.Set) {
			if 2*c.Len() > w.opt.Nodes {
				win.majorities = append(win.majorities, c)
			}
		})
	}
	if len(win.majorities) > 0 {
		win.core = win.majorities[0]
		for _, c := range win.majorities[1:] {
			win.core &= c
		}
	}
	for _, n := range w.nodes[1:] {
		if win.core.Has(n.id) && w.quorateNow(n) {
			win.atStart = win.atStart.Add(n.id)
		}
	}
	win.quorate = win.atStart
	l.win = win
	l.tok++
	if win.core == 0 {
		return
	}
	tok := l.tok
	w.at(w.now+l.r+1, func() {
		if tok != l.tok {
			return
		}
		l.emitPending()
		for _, n := range w.nodes[1:] {
			if l.win.core.Has(n.id) {
				l.check(n)
			}
		}
	})
}

// close ends the current window now.
func (l *liveChecker) close() {
	w, win := l.w, &l.win
	if win.start < 0 || win.core == 0 {
		return
	}
	if w.now-win.start > l.r {
		l.Windows++
		for _, n := range w.nodes[1:] {
			if win.atStart.Has(n.id) && !win.quorate.Has(n.id) {
				l.gap(n, w.now)
			}
		}
		l.emitPending()
	}
	win.core = 0
}

// finish closes the last window at the end of a history.
func (l *liveChecker) finish() { l.close(); l.win.start = -1 }

func (l *liveChecker) emitPending() {
	for _, v := range l.win.pending {
		l.report(v)
	}
	l.win.pending = nil
}

func (l *liveChecker) report(v Violation) {
	l.w.liveness = append(l.w.liveness, v)
	l.w.trace("LIVENESS %s", v.String())
}

// finding is a property 6 violation: reported at once when the window
// already outlasts R, else when it does.
func (l *liveChecker) finding(format string, args ...any) {
	w := l.w
	v := Violation{At: w.now, Rule: 6, Msg: fmt.Sprintf(format, args...) + fmt.Sprintf(" (window from %v)", fmtDur(l.win.start))}
	if w.now-l.win.start > l.r {
		l.report(v)
		return
	}
	l.win.pending = append(l.win.pending, v)
}

func (l *liveChecker) gap(n *simNode, until time.Duration) {
	win := &l.win
	from := max(win.gapFrom[n.id], win.start)
	if until-from > l.r {
		l.finding("n%d went without quorum for %v, from %v: longer than R = %v", n.id, (until - from).Round(time.Millisecond), fmtDur(from), l.r)
	}
}

// afterStep follows a core node's quorum.
func (l *liveChecker) afterStep(n *simNode, prev quorum.Status) {
	w, win := l.w, &l.win
	if !win.core.Has(n.id) {
		return
	}
	q := w.quorateNow(n)
	switch {
	case q && !win.quorate.Has(n.id):
		win.quorate = win.quorate.Add(n.id)
		if win.atStart.Has(n.id) {
			l.gap(n, w.now)
		}
	case !q && win.quorate.Has(n.id):
		win.quorate = win.quorate.Remove(n.id)
		win.gapFrom[n.id] = w.now
	}
	if w.now > win.start+l.r {
		l.check(n)
	}
}

// check is property 5 for core node n at this instant.
func (l *liveChecker) check(n *simNode) {
	w, win := l.w, &l.win
	if win.reported.Has(n.id) {
		return
	}
	why := ""
	m := n.status.Members
	switch {
	case !w.quorateNow(n):
		why = "is not quorate"
	case !win.contains(m):
		why = fmt.Sprintf("has members %v, which do not contain the connected majority", m)
	case !win.clique(m):
		why = fmt.Sprintf("has members %v, not all connected", m)
	}
	if why == "" {
		return
	}
	if r := n.status.Reason.String(); r != "" {
		why += " (" + r + ")"
	}
	win.reported = win.reported.Add(n.id)
	l.report(Violation{At: w.now, Rule: 5, Msg: fmt.Sprintf("n%d %s, R = %v after the fault pattern last changed at %v; connected majority %v",
		n.id, why, l.r, fmtDur(win.start), win.majorities)})
}

func (win *liveWindow) contains(m quorum.Set) bool {
	for _, c := range win.majorities {
		if m&c == c {
			return true
		}
	}
	return false
}

func (win *liveWindow) clique(m quorum.Set) bool {
	for s := m; s != 0; {
		a := s.Lowest()
		s = s.Remove(a)
		if m.Remove(a)&^win.adj[a] != 0 {
			return false
		}
	}
	return true
}

// selfFence: property 6 forbids it for a core node quorate at the start.
func (l *liveChecker) selfFence(n *simNode) {
	if l.win.atStart.Has(n.id) {
		l.finding("n%d, in the connected majority and quorate when the window began, self-fences", n.id)
	}
}

// maximalCliques calls visit with every maximal clique of the graph adj
// restricted to cand (Bron-Kerbosch with a pivot).
func maximalCliques(cand quorum.Set, adj *[quorum.MaxNodes + 1]quorum.Set, visit func(quorum.Set)) {
	var bk func(r, p, x quorum.Set)
	bk = func(r, p, x quorum.Set) {
		if p == 0 && x == 0 {
			visit(r)
			return
		}
		pivot, best := quorum.NodeID(0), -1
		for s := p | x; s != 0; {
			u := s.Lowest()
			s = s.Remove(u)
			if k := (p & adj[u]).Len(); k > best {
				pivot, best = u, k
			}
		}
		for s := p &^ adj[pivot]; s != 0; {
			v := s.Lowest()
			s = s.Remove(v)
			bk(r.Add(v), p&adj[v], x&adj[v])
			p = p.Remove(v)
			x = x.Add(v)
		}
	}
	bk(0, cand, 0)
}

// flush reports the pending findings of the current window if it already
// outlasts R (a scenario's check).
func (l *liveChecker) flush() {
	if l.win.core != 0 && l.w.now-l.win.start > l.r {
		l.emitPending()
	}
}

// lossRuns follows the packets the world's background loss drops on each
// directed link, so the checker judges the deliveries that happened, not
// the loss rate: when the background loss has dropped a packet on a link
// and the receiver has then gone SuspectAfter without a packet on it (a
// late packet included), the link is in a one-way fault by the contract's
// own measure, whatever its cause, until its next packet arrives. Only
// losses drawn by the background loss start it, so a node that stops
// sending by itself (a planted bug) is still judged on delivering links.
type lossRuns struct {
	lastArr [quorum.MaxNodes + 1][quorum.MaxNodes + 1]time.Duration // arrival of the last packet
	lost    [quorum.MaxNodes + 1][quorum.MaxNodes + 1]int           // losses since then
	gen     [quorum.MaxNodes + 1][quorum.MaxNodes + 1]uint64        // arrivals, for the timers
	long    [quorum.MaxNodes + 1]quorum.Set                         // links in a long run
}

// lostPacket: the background loss dropped a packet from a to b. The first
// loss since the link's last arrival sets a timer for SuspectAfter after
// that arrival.
func (w *World) lostPacket(a, b quorum.NodeID) {
	r := &w.lv.runs
	if r.lost[a][b]++; r.lost[a][b] > 1 {
		return
	}
	g := r.gen[a][b]
	w.at(r.lastArr[a][b]+w.t.SuspectAfter, func() {
		if r.gen[a][b] == g {
			r.startRun(w, a, b)
		}
	})
}

// arrived: a packet from a to b arrived (whether the receiver is up to
// take it or not).
func (w *World) arrived(a, b quorum.NodeID) {
	r := &w.lv.runs
	r.lastArr[a][b], r.lost[a][b] = w.now, 0
	r.gen[a][b]++
	if r.long[a].Has(b) {
		r.long[a] = r.long[a].Remove(b)
		w.patternChanged()
	}
}

func (r *lossRuns) startRun(w *World, a, b quorum.NodeID) {
	if !r.long[a].Has(b) {
		r.long[a] = r.long[a].Add(b)
		w.patternChanged()
	}
}
