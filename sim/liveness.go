package sim

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mtcluster/mtc/config"
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
// way to its watchdog reset; nor without quorum then since so long that
// it must self-fence before R has passed, unless it was a node of the
// previous window's C, whose transition, begun as the pattern changed,
// is judged on), each with a working quorum-disk path (no
// failing, hung, slow, lossy or stuck I/O, and no persistent-reservation
// command the storage failed, timed out or lost the reply of still
// outstanding). A flapping link counts as not
// delivering for as long as it flaps; packet loss up to the 5% every
// history runs with counts as delivering, heavier loss as not, and so does
// a link on which that background loss, or a fault of the world (a cut,
// one-way, flapping, mute or deaf link), has dropped a packet and whose
// receiver then goes SuspectAfter without a packet of it (lossRuns: it
// has not heard the sender for as long as a one-way fault takes to be
// suspected, a one-way link by the contract's own measure), until its next
// packet arrives, heal or no heal: a link healed an instant before its
// receiver drops the sender for the silence before the heal delivers
// again at its first packet, not at the heal (flap 7459: n4 dropped n6
// for the last down phase 2 ms before n6's first packet after the heal,
// and held it down as the damping says); a babbling node (its views
// change every heartbeat) is faulty and belongs to no C, though a member
// set may include it. So is
// a node whose registration the world itself removed from a LUN (a
// scenario's preempt, World.Preempt: the storage refuses it, and it must
// stop or register again, package quorum, "Registration checks") until
// that incarnation is registered there again or ends. A removal by a
// machine's own fence is no fault of the world: its cost is the core's.
//
// A node whose disk path heals is not yet healthy: its self-fence clock
// runs from its last successful own slot write, issued before or during
// the fault, and an I/O issued before the heal may still hold its device.
// It joins C (a pattern change) once an own slot write it issued after the
// heal has completed within its deadline, as the simulation's disk model
// delivers it (diskRecovery); until then it may stay in a member set, like
// a node with a degraded disk.
//
// A node outside C may leave a node's member set and join it again:
// every change of the member set costs an agreement round (package
// quorum, "Transitions"), and the nodes the contract lets stay (a
// degraded disk, a flapping link, a disk not yet trusted again) may leave
// long after the window began, and come back while the link is up. So a
// gap in a node's quorum after start+R is excused when it lasts at most
// G = EndorseGuard + HeartbeatInterval + 2d (d: the largest delay the
// simulated network gives a delivered heartbeat), began after the node
// had held quorum in the window, and a node outside C left or joined the
// node's member set during it, or the member set of another node of C
// during it or less than G before it began (that node's agreement round
// is one every member waits for). A node of C that leaves and returns
// within such a gap costs nothing more than the gap; one missing from the
// set once it is quorate again breaks property 5 below. What bounds how often that happens is the
// damping (package quorum, "Damping"), judged on its own: a peer that has
// left a node's member set twice or more in a row (a drop less than
// FlapQuiet after its last re-admission is one more in a row; a drop at a
// moment the node still heard the peer both ways, by what the node
// received, counts half: heardBothWays; whole again if that stops within
// SuspectAfter + HeartbeatInterval after the drop) is re-admitted by that node no
// sooner than RejoinHoldDown x 2^(k-2) after its k-th drop (halves
// rounded down), at most RejoinHoldDownMax, of the configured timing less
// the clock drift it allows (followDamping); a node of C that re-admits a
// peer sooner breaks property 5. A member of C that leaves, and a gap
// longer than G or that no departure or re-admission outside C explains,
// break it too.
//
// With R = EndorseGuard + SuspectAfter + 3*HeartbeatInterval +
// 2*IOTimeout of the configured timing, for every window longer than R
// with a connected majority:
//
//  5. every node of C holds quorum at every instant of [start+R, end)
//     (but for the transitions above),
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
// contain one of them. A node on its way to its reset by the rule above
// (without quorum for so long that it must self-fence before R), but
// otherwise healthy, is asked for nothing, yet its links still shape the
// majorities: a maximal clique of the healthy nodes and those with as
// many nodes as the largest connected majority, less the nodes on their
// way out, is one more. So when such a node is one end of a missing edge,
// the majority may keep it and drop the other end, and the other end is
// outside C.

// heavyLoss is the packet-loss rate above which links count as not
// delivering: every history runs with up to 5%.
const heavyLoss = 0.05

// livenessBound is R for the configured timing.
func (w *World) livenessBound() time.Duration {
	t := w.t
	return t.EndorseGuard + t.SuspectAfter + 3*t.HeartbeatInterval + 2*t.IOTimeout
}

// transitionBound is G = EndorseGuard + HeartbeatInterval + 2d for the
// configured timing, with d the largest delay netDelay gives a delivered
// packet on this world's links: the base latency of the slowest link,
// 1ms of jitter and, for a late packet, up to a heartbeat interval more.
func (w *World) transitionBound() time.Duration {
	t := w.t
	d := time.Millisecond
	if !w.opt.Exact {
		var base time.Duration
		for a := 1; a <= w.opt.Nodes; a++ {
			for b := 1; b <= w.opt.Nodes; b++ {
				base = max(base, w.link[a][b])
			}
		}
		d = base + time.Millisecond + t.HeartbeatInterval
	}
	return t.EndorseGuard + t.HeartbeatInterval + 2*d
}

type pattern struct {
	running, diskOK, babble, heavy quorum.Set
	// preempted: up, with a registration the world removed (World.Preempt)
	// not yet restored.
	preempted quorum.Set
	link      [quorum.MaxNodes + 1]quorum.Set // link[a]: the nodes a delivers to
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

	// The transitions of members outside C (property 5): lost holds the
	// core nodes that lost quorum in this window (the latest loss at
	// gapFrom), changed the nodes that left or joined a core node's
	// member set during its latest gap (the step that began it
	// included), deferred the nodes whose gap after start+R is judged
	// when it ends (or G after it began).
	lost     quorum.Set
	changed  [quorum.MaxNodes + 1]quorum.Set
	deferred quorum.Set
	// moved: the last instant a node outside C left or joined the member
	// set of any node of C (movedOK: there was one in this window).
	moved   time.Duration
	movedOK bool
}

// damping follows, for one node n and one peer m, m's departures from
// n's member set and its re-admissions, as property 5's damping rule
// counts them (see the contract above).
type damping struct {
	drops     int
	halfUntil time.Duration // local to n: a half drop becomes whole if the hearing breaks before
	droppedAt time.Duration
	joinedAt  time.Duration
	inc       quorum.Incarnation // m's incarnation at its last counted drop
	joinInc   quorum.Incarnation // m's incarnation at its last re-admission
}

// heardRow is what the damping rule keeps of the latest network
// heartbeat one node received from a peer: when it arrived on the
// receiver's clock, and what it said of the receiver.
type heardRow struct {
	ok      bool
	inc     quorum.Incarnation
	seq     quorum.Seq
	at      time.Duration // local to the receiver
	view    quorum.Set
	flags   quorum.Flags
	echoInc quorum.Incarnation
	echoSeq quorum.Seq
}

type liveChecker struct {
	w   *World
	r   time.Duration
	g   time.Duration // transitionBound
	cur pattern
	// disk follows each node's disk path to the first own slot write
	// completed after a heal.
	disk diskRecovery
	// runs follows the packets lost on every directed link.
	runs lossRuns
	win  liveWindow
	tok  uint64
	// prevCore: the core of the window that ended last.
	prevCore quorum.Set
	// damp[n][m] follows m in n's member set, across windows, for n's
	// incarnation dampInc[n].
	damp    [quorum.MaxNodes + 1][quorum.MaxNodes + 1]damping
	dampInc [quorum.MaxNodes + 1]quorum.Incarnation
	// heard[n][m] is the latest network heartbeat of m that reached n.
	heard [quorum.MaxNodes + 1][quorum.MaxNodes + 1]heardRow
	// done: the history's judged part is over (finish).
	done bool
	// Windows counts the windows longer than R that had a connected
	// majority (the windows the checker judged).
	Windows int
}

func (l *liveChecker) init(w *World) {
	l.w, l.r, l.g = w, w.livenessBound(), w.transitionBound()
	l.win.start = -1
}

func (w *World) currentPattern() pattern {
	var p pattern
	for _, n := range w.nodes[1:] {
		if n.up && !n.frozen {
			p.running = p.running.Add(n.id)
		}
		if n.pathOK() && !w.lv.disk.untrusted.Has(n.id) {
			p.diskOK = p.diskOK.Add(n.id)
		}
		if w.babble[n.id] {
			p.babble = p.babble.Add(n.id)
		}
		if pr := w.preempted[n.id]; n.up && pr.inc == n.inc && pr.inc != 0 && !w.st.registered(pr.lun, n.id, n.inc) {
			p.preempted = p.preempted.Add(n.id)
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
	if l.done || len(w.nodes) == 0 || w.nodes[len(w.nodes)-1] == nil {
		return // still building the world
	}
	l.disk.follow(w)
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
	healthy := p.running & p.diskOK &^ p.babble &^ p.preempted
	var leaving quorum.Set
	for _, n := range w.nodes[1:] {
		o := n.obs
		if !n.up {
			continue
		}
		// A node that has self-fenced is on its way to its reset; one
		// that has gone without quorum so long that it must self-fence
		// before R has passed is too (leaving), unless it was a node of
		// the previous window's C: a transition it began there (a fault
		// detected as the pattern changed) does not let it off.
		if o.stopped {
			healthy = healthy.Remove(n.id)
		} else if o.armed && !w.quorateNow(n) && !l.prevCore.Has(n.id) && n.abs(w.chk.quorumBound(o, true)) < w.now+l.r && healthy.Has(n.id) {
			healthy = healthy.Remove(n.id)
			leaving = leaving.Add(n.id)
		}
	}
	if p.heavy == 0 {
		// C: healthy nodes whose links deliver both ways. A member set
		// may also hold running nodes reached at least part of the time
		// both ways (a degraded disk or a flapping link is not yet a
		// reason to be dropped).
		var hadj [quorum.MaxNodes + 1]quorum.Set
		cand := healthy | leaving // the nodes whose links shape the cliques
		for a := quorum.NodeID(1); int(a) < len(w.nodes); a++ {
			for s := p.loose[a] & p.running; s != 0; {
				b := s.Lowest()
				s = s.Remove(b)
				if !p.running.Has(a) || !p.loose[b].Has(a) {
					continue
				}
				win.adj[a] = win.adj[a].Add(b)
				if cand.Has(a) && cand.Has(b) && p.link[a].Has(b) && p.link[b].Has(a) {
					hadj[a] = hadj[a].Add(b)
				}
			}
		}
		top := 0
		maximalCliques(healthy, &hadj, func(c quorum.Set) {
			if 2*c.Len() > w.opt.Nodes {
				win.majorities = append(win.majorities, c)
				top = max(top, c.Len())
			}
		})
		// A node leaving is not asked to regain quorum, but its links
		// still say which sets the others may keep: a clique with it of
		// as many nodes as the largest connected majority is as good a
		// choice, and that clique less its leaving nodes is one more
		// connected majority. Where a leaving node is one end of a
		// missing edge (a flapping or one-way link), the peers may keep
		// it and drop the other end, and the contract does not pick a
		// side for them (flap 4500: n2 dropped n8, an end of the
		// flapping link, 1 ms before the window began, the others kept
		// n2, and n2 regained quorum 0.9 s later; with n2 left out of
		// every clique, C held n8 and the majority's choice broke
		// property 5). A smaller clique with a leaving node is no such
		// choice (one-way 2004: a healed mute node reaches six nodes of
		// eleven, and counting that clique would excuse dropping four
		// healthy ones).
		if leaving != 0 {
			maximalCliques(cand, &hadj, func(c quorum.Set) {
				if c&leaving == 0 || c.Len() < top {
					return
				}
				if c &^= leaving; 2*c.Len() > w.opt.Nodes && !slices.Contains(win.majorities, c) {
					win.majorities = append(win.majorities, c)
				}
			})
		}
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
	l.prevCore = win.core
	if win.start < 0 || win.core == 0 {
		return
	}
	if w.now-win.start > l.r {
		l.Windows++
		for _, n := range w.nodes[1:] {
			if win.atStart.Has(n.id) && !win.quorate.Has(n.id) {
				l.gap(n, w.now)
			}
			if win.deferred.Has(n.id) {
				l.cutTransition(n)
			}
		}
		l.emitPending()
	}
	win.core = 0
}

// finish closes the last window at the end of a history.
func (l *liveChecker) finish() { l.close(); l.win.start = -1; l.done = true }

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
	moved := prev.Members ^ n.status.Members
	l.followDamping(n, prev.Members)
	if !win.core.Has(n.id) {
		return
	}
	if moved&^win.core != 0 {
		win.moved, win.movedOK = w.now, true
	}
	q := w.quorateNow(n)
	switch {
	case q && !win.quorate.Has(n.id):
		win.quorate = win.quorate.Add(n.id)
		win.changed[n.id] |= moved
		if win.atStart.Has(n.id) {
			l.gap(n, w.now)
		}
		if win.deferred.Has(n.id) {
			l.endTransition(n)
		}
	case !q && win.quorate.Has(n.id):
		win.quorate = win.quorate.Remove(n.id)
		win.gapFrom[n.id] = w.now
		win.lost = win.lost.Add(n.id)
		win.changed[n.id] = moved
	case !q:
		win.changed[n.id] |= moved
	}
	if w.now > win.start+l.r {
		l.check(n)
	}
}

// followDamping counts the departures of peers from n's member set and
// judges their re-admissions by the damping rule of property 5, in the
// checker's own terms: from the configured timing, with the clock drift
// the timing allows, counting a drop less than FlapQuiet after the
// peer's last re-admission as one more in a row. A drop of a peer that is
// down or self-fencing, or that has restarted since it joined (the drop
// of an incarnation switch), is not counted, and a peer that has
// restarted since its last counted drop is owed no hold-down; these only
// make the rule more lenient than the core's own count.
func (l *liveChecker) followDamping(n *simNode, before quorum.Set) {
	w := l.w
	if l.dampInc[n.id] != n.inc {
		l.dampInc[n.id] = n.inc
		l.damp[n.id] = [quorum.MaxNodes + 1]damping{}
	}
	after := n.status.Members
	slow := 1 - config.MaxClockDrift
	// A half drop whose hearing broke soon after (before the node's own
	// judgment of the link could have dropped the peer) becomes whole.
	for id := quorum.NodeID(1); int(id) < len(w.nodes); id++ {
		if d := &l.damp[n.id][id]; d.halfUntil > n.local(w.now) && !l.heardBothWays(n, id) {
			d.drops++
			d.halfUntil = 0
		}
	}
	for s := before ^ after; s != 0; {
		id := s.Lowest()
		s = s.Remove(id)
		if id == n.id || int(id) >= len(w.nodes) {
			continue
		}
		m, d := w.nodes[id], &l.damp[n.id][id]
		if before.Has(id) { // a drop
			if !m.up || m.obs.stopped || m.inc != d.joinInc {
				continue
			}
			weight := 2 // in halves
			d.halfUntil = 0
			if l.heardBothWays(n, id) {
				weight = 1
				d.halfUntil = n.local(w.now) + w.t.SuspectAfter + w.t.HeartbeatInterval
			}
			if d.drops > 0 && w.now-d.joinedAt < time.Duration(float64(w.t.FlapQuiet)*slow) {
				d.drops += weight
			} else {
				d.drops = weight
			}
			d.droppedAt, d.inc = w.now, m.inc
			continue
		}
		// A re-admission.
		d.joinedAt, d.joinInc = w.now, m.inc
		k := d.drops / 2
		if k < 2 || m.inc != d.inc || !l.win.core.Has(n.id) {
			continue
		}
		h := w.t.RejoinHoldDown
		for i := 2; i < k && h < w.t.RejoinHoldDownMax; i++ {
			h *= 2
		}
		h = min(h, w.t.RejoinHoldDownMax)
		if out := w.now - d.droppedAt; out < time.Duration(float64(h)*slow)-time.Millisecond {
			l.report(Violation{At: w.now, Rule: 5, Msg: fmt.Sprintf("n%d re-admitted n%d %v after %s drops in a row (the last at %v), sooner than the hold-down of %v; fault pattern's last change at %v, connected majority %v",
				n.id, id, out.Round(time.Millisecond), halves(d.drops), fmtDur(d.droppedAt), h, fmtDur(l.win.start), l.win.majorities)})
		}
	}
}

// halves writes a count of half drops: "2", "2.5".
func halves(h int) string {
	if h%2 == 0 {
		return strconv.Itoa(h / 2)
	}
	return strconv.Itoa(h/2) + ".5"
}

// receivedEvent records a network heartbeat that reached node n (before
// its step), for heardBothWays.
func (l *liveChecker) receivedEvent(n *simNode, ev quorum.Event) {
	e, ok := ev.(quorum.NetReceived)
	if !ok {
		return
	}
	hb := &e.Heartbeat
	id := hb.From
	if id == n.id || id < 1 || int(id) > quorum.MaxNodes {
		return
	}
	r := &l.heard[n.id][id]
	if r.ok && r.inc == hb.Inc && hb.Seq <= r.seq {
		return
	}
	*r = heardRow{ok: true, inc: hb.Inc, seq: hb.Seq, at: n.local(l.w.now), view: hb.View, flags: hb.Flags,
		echoInc: hb.Echo[n.id].Inc, echoSeq: hb.Echo[n.id].Seq}
}

// heardBothWays: at a drop of m from n's member set, n and m still heard
// each other, as the observations show: m's latest network heartbeat
// reached n less than SuspectAfter ago on n's clock, lists n in its view,
// is not stopped, and echoes a counter of n's incarnation that n sent less
// than DeadAfter ago. Such a drop is the clique choice's, made for an edge
// between other nodes, and it weighs half a drop (package quorum,
// "Damping"). The test is more lenient than the core's own (it does not
// ask how old the echoed counter was when the heartbeat arrived, nor
// whether the peer has proved it hears this incarnation), which can only
// make the rule count less.
func (l *liveChecker) heardBothWays(n *simNode, m quorum.NodeID) bool {
	r := &l.heard[n.id][m]
	o := n.obs
	if !r.ok || o == nil {
		return false
	}
	now := n.local(l.w.now)
	if now-r.at > l.w.t.SuspectAfter+time.Millisecond {
		return false
	}
	says := func(view quorum.Set, flags quorum.Flags, echo quorum.Echo) bool {
		return view.Has(n.id) && flags&quorum.FlagStopped == 0 && echo.Inc == o.inc && o.held.fresh(echo.Seq, now, l.w.t.DeadAfter)
	}
	if says(r.view, r.flags, quorum.Echo{Inc: r.echoInc, Seq: r.echoSeq}) {
		return true
	}
	// The core reads the peer's latest heartbeat from either path: a
	// newer slot of the same incarnation counts as well.
	for _, hb := range o.held.rows[m] {
		if hb.Inc == r.inc && says(hb.View, hb.Flags, hb.Echo[n.id]) {
			return true
		}
	}
	return false
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
	case !w.quorateNow(n) && l.transition(n):
		return // judged when the gap ends
	case !w.quorateNow(n):
		why = "is not quorate"
		if win.lost.Has(n.id) {
			why = fmt.Sprintf("is not quorate since %v", fmtDur(win.gapFrom[n.id]))
		}
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

// transition reports whether core node n, not quorate now, is in a gap
// that a member outside C may yet excuse: it began after n had held
// quorum in this window, less than G ago, and some node is outside C.
// The gap is then judged when it ends (endTransition), or at G after it
// began if it has not.
func (l *liveChecker) transition(n *simNode) bool {
	w, win := l.w, &l.win
	from := win.gapFrom[n.id]
	if !win.lost.Has(n.id) || w.now-from > l.g || w.allNodes()&^win.core == 0 {
		return false
	}
	if !win.deferred.Has(n.id) {
		win.deferred = win.deferred.Add(n.id)
		tok := l.tok
		w.at(from+l.g+1, func() {
			if tok != l.tok || !win.deferred.Has(n.id) || win.gapFrom[n.id] != from {
				return
			}
			win.deferred = win.deferred.Remove(n.id)
			l.check(n) // still without quorum, longer than G
		})
	}
	return true
}

// endTransition judges a deferred gap of core node n as n regains quorum:
// excused if it lasted at most G and a membership change of a node
// outside C explains it.
func (l *liveChecker) endTransition(n *simNode) {
	w, win := l.w, &l.win
	win.deferred = win.deferred.Remove(n.id)
	if win.reported.Has(n.id) {
		return
	}
	from := win.gapFrom[n.id]
	if l.explained(n) && w.now-from <= l.g {
		return
	}
	win.reported = win.reported.Add(n.id)
	l.report(Violation{At: w.now, Rule: 5, Msg: fmt.Sprintf("n%d was not quorate from %v to %v, after R = %v from the fault pattern's last change at %v, and no node outside the connected majority %v left or joined its member set within G = %v (members %v)",
		n.id, fmtDur(from), fmtDur(w.now), l.r, fmtDur(win.start), win.majorities, l.g, n.status.Members)})
}

// explained: a node outside C left or joined core node n's member set
// during its current gap, or the member set of another node of C less
// than G before the gap began or during it (the agreement round that
// change costs reaches every member: n waits for that node to agree).
func (l *liveChecker) explained(n *simNode) bool {
	win := &l.win
	return win.changed[n.id]&^win.core != 0 || win.movedOK && win.moved >= win.gapFrom[n.id]-l.g
}

// cutTransition judges a deferred gap of core node n that the end of the
// window cuts short: excused only if a membership change of a node
// outside C explains it.
func (l *liveChecker) cutTransition(n *simNode) {
	w, win := l.w, &l.win
	win.deferred = win.deferred.Remove(n.id)
	if win.reported.Has(n.id) || l.explained(n) {
		return
	}
	win.reported = win.reported.Add(n.id)
	l.report(Violation{At: w.now, Rule: 5, Msg: fmt.Sprintf("n%d is not quorate since %v, after R = %v from the fault pattern's last change at %v, and no node outside the connected majority %v has left or joined its member set (members %v)",
		n.id, fmtDur(win.gapFrom[n.id]), l.r, fmtDur(win.start), win.majorities, n.status.Members)})
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

// lossRuns follows the packets the world drops on each directed link
// (its background loss, and the packets its link and node faults stop),
// so the checker judges the deliveries that happened, not the loss rate
// or the moment a fault was lifted: when the world has dropped a packet
// on a link and the receiver has then gone SuspectAfter without a packet
// on it (a late packet included), the link is in a one-way fault by the
// contract's own measure, whatever its cause, until its next packet
// arrives. During a fault the link counts as not delivering anyway; the
// run matters after the heal, until the first packet. Only packets the
// world dropped start it, so a node that stops sending by itself (a
// planted bug) is still judged on delivering links.
type lossRuns struct {
	lastArr [quorum.MaxNodes + 1][quorum.MaxNodes + 1]time.Duration // arrival of the last packet
	lost    [quorum.MaxNodes + 1][quorum.MaxNodes + 1]int           // losses since then
	gen     [quorum.MaxNodes + 1][quorum.MaxNodes + 1]uint64        // arrivals, for the timers
	long    [quorum.MaxNodes + 1]quorum.Set                         // links in a long run
}

// lostPacket: the world dropped a packet from a to b. The first
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

// diskRecovery follows each node's disk path as the world models it: a
// node whose path has been faulty is untrusted from the fault on until an
// own slot write it issued after the heal has completed within its
// deadline (slotWriteDone). The epoch counts a node's heals, so a write
// issued before the latest heal (or during the fault) never counts.
type diskRecovery struct {
	bad       quorum.Set // path faulty now
	untrusted quorum.Set // faulty now, or healed without a write since
	epoch     [quorum.MaxNodes + 1]uint64
}

// pathOK: the world's disk path of n works now. A persistent-reservation
// command the storage fails, times out or loses the reply of is a fault
// of that path too, from its issue until its outcome reaches the node.
func (n *simNode) pathOK() bool {
	return !n.pathDown && !n.pathHang && n.slow == 0 && n.flaky == 0 && !n.stuck && n.prFaults == 0
}

// follow notes the faults and heals of every node's disk path (called at
// each possible change of the fault pattern).
func (d *diskRecovery) follow(w *World) {
	for _, n := range w.nodes[1:] {
		switch ok := n.pathOK(); {
		case !ok:
			d.bad = d.bad.Add(n.id)
			d.untrusted = d.untrusted.Add(n.id)
		case d.bad.Has(n.id):
			d.bad = d.bad.Remove(n.id)
			d.epoch[n.id]++
		}
	}
}

// slotWriteIssued returns the epoch to record with an own slot write of
// n that is being issued.
func (w *World) slotWriteIssued(n *simNode) uint64 { return w.lv.disk.epoch[n.id] }

// slotWriteDone: an own slot write of n, issued in epoch, has completed
// within its deadline and its result reaches the daemon. The first such
// write issued after the latest heal makes the node's disk trusted again
// (and slotWriteDone returns true).
func (w *World) slotWriteDone(n *simNode, epoch uint64) bool {
	d := &w.lv.disk
	if !d.untrusted.Has(n.id) || d.bad.Has(n.id) || epoch != d.epoch[n.id] {
		return false
	}
	d.untrusted = d.untrusted.Remove(n.id)
	w.patternChanged()
	return true
}
