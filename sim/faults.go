package sim

import (
	"time"

	"github.com/mtcluster/mtc/quorum"
)

// The faults a history or a scenario script injects. Each takes effect at
// the current absolute time.

// Partition cuts the network between the groups (both ways); nodes in no
// group form one more group. It replaces any earlier cut.
func (w *World) Partition(groups [][]quorum.NodeID) {
	var g [quorum.MaxNodes + 1]int
	for i, grp := range groups {
		for _, id := range grp {
			g[id] = i + 1
		}
	}
	for a := 1; a < len(w.nodes); a++ {
		for b := 1; b < len(w.nodes); b++ {
			w.block[a][b] = a != b && g[a] != g[b]
		}
	}
	w.trace("fault: partition %v", groups)
	w.patternChanged()
}

// OneWay drops every packet from a to b.
func (w *World) OneWay(a, b quorum.NodeID) {
	w.block[a][b] = true
	w.trace("fault: one-way %d->%d", a, b)
	w.patternChanged()
}

// Deaf makes node id receive nothing (it still sends).
func (w *World) Deaf(id quorum.NodeID) {
	w.deaf[id] = true
	w.trace("fault: n%d deaf", id)
	w.patternChanged()
}

// Mute makes node id send nothing (it still receives).
func (w *World) Mute(id quorum.NodeID) {
	w.mute[id] = true
	w.trace("fault: n%d mute", id)
	w.patternChanged()
}

// Babble makes node id's heartbeats carry a view that changes every time
// (a faulty peer, modelled on the wire).
func (w *World) Babble(id quorum.NodeID) {
	w.babble[id] = true
	w.trace("fault: n%d babbles", id)
	w.patternChanged()
}

// Flap makes the link between a and b go down and up, both ways, each
// phase lasting period (a random half to one and a half of it outside
// exact runs), until the network heals. A flapping link counts as not
// delivering for the liveness checker, for as long as it flaps.
func (w *World) Flap(a, b quorum.NodeID, period time.Duration) {
	if w.flapping[a][b] {
		return
	}
	w.flapping[a][b], w.flapping[b][a] = true, true
	w.flapGen[a][b]++
	gen := w.flapGen[a][b]
	w.trace("fault: link %d<->%d flaps every %v", a, b, period)
	w.patternChanged()
	var toggle func()
	toggle = func() {
		if !w.flapping[a][b] || gen != w.flapGen[a][b] {
			return
		}
		down := !w.flapDown[a][b]
		w.flapDown[a][b], w.flapDown[b][a] = down, down
		d := period
		if !w.opt.Exact {
			d = w.uniform(period/2, period*3/2)
		}
		w.at(w.now+d, toggle)
	}
	toggle()
}

// HealNetwork removes every cut, deafness, muteness, flapping link,
// babbling node and the packet loss.
func (w *World) HealNetwork() {
	w.block = [quorum.MaxNodes + 1][quorum.MaxNodes + 1]bool{}
	w.flapping = [quorum.MaxNodes + 1][quorum.MaxNodes + 1]bool{}
	for a := range w.flapGen {
		for b := range w.flapGen[a] {
			w.flapGen[a][b]++
		}
	}
	w.flapDown = [quorum.MaxNodes + 1][quorum.MaxNodes + 1]bool{}
	w.deaf, w.mute, w.babble = [quorum.MaxNodes + 1]bool{}, [quorum.MaxNodes + 1]bool{}, [quorum.MaxNodes + 1]bool{}
	w.loss = 0
	w.trace("heal: network")
	w.patternChanged()
}

// SetLoss sets the probability of losing each packet.
func (w *World) SetLoss(p float64) {
	w.loss = p
	w.trace("fault: packet loss %.0f%%", p*100)
	w.patternChanged()
}

// SlowStop makes node id's package stops take d (d < 0: hang until the
// watchdog resets the node; 0: at once again). The stop budget is the
// watchdog timeout: once the machine stops feeding it, the watchdog ends
// any stop that is still under way.
func (w *World) SlowStop(id quorum.NodeID, d time.Duration) {
	w.nodes[id].stopDelay = d
	switch {
	case d < 0:
		w.trace("fault: n%d package stops hang", id)
	case d > 0:
		w.trace("fault: n%d package stops take %v", id, d)
	default:
		w.trace("heal: n%d package stops", id)
	}
}

// DiskFail makes every I/O of node id fail (a dead path).
func (w *World) DiskFail(id quorum.NodeID) {
	w.nodes[id].pathDown = true
	w.trace("fault: disk path of n%d fails", id)
	w.patternChanged()
}

// DiskHang makes every I/O of node id hang until DiskHeal.
func (w *World) DiskHang(id quorum.NodeID) {
	w.nodes[id].pathHang = true
	w.trace("fault: disk path of n%d hangs", id)
	w.patternChanged()
}

// DiskSlow makes a fraction of node id's I/Os take IOTimeout/2..2xIOTimeout.
func (w *World) DiskSlow(id quorum.NodeID, p float64) {
	w.nodes[id].slow = p
	w.trace("fault: disk path of n%d slow (%.0f%%)", id, p*100)
	w.patternChanged()
}

// DiskFlaky makes a fraction p of node id's I/Os fail (a lossy path).
func (w *World) DiskFlaky(id quorum.NodeID, p float64) {
	w.nodes[id].flaky = p
	w.trace("fault: disk path of n%d fails %.0f%% of I/Os", id, p*100)
	w.patternChanged()
}

// SetTorn sets the probability that a write lands torn or corrupted.
func (w *World) SetTorn(p float64) {
	w.torn = p
	w.trace("fault: torn writes %.0f%%", p*100)
	w.patternChanged()
}

// DiskHeal restores node id's path; hung I/Os complete now (late).
func (w *World) DiskHeal(id quorum.NodeID) {
	n := w.nodes[id]
	n.pathDown, n.pathHang, n.slow, n.flaky = false, false, 0, 0
	w.trace("heal: disk path of n%d", id)
	n.releaseHung()
	w.patternChanged()
}

// Crash stops node id at once.
func (w *World) Crash(id quorum.NodeID) { w.nodes[id].crash("crash") }

// Restart boots a crashed node with a new incarnation.
func (w *World) Restart(id quorum.NodeID) {
	n := w.nodes[id]
	n.bootToken++ // cancels a pending reboot
	n.restart()
}

// Pause stops node id's daemon for d (the packages and the hardware
// watchdog keep running); VMFreeze stops the whole machine for d (the
// watchdog stands still too, and the clock jumps on resume).
func (w *World) Pause(id quorum.NodeID, d time.Duration) { w.freezeFor(id, d, false) }

// VMFreeze: see Pause.
func (w *World) VMFreeze(id quorum.NodeID, d time.Duration) { w.freezeFor(id, d, true) }

func (w *World) freezeFor(id quorum.NodeID, d time.Duration, vm bool) {
	n := w.nodes[id]
	if !n.up || n.frozen {
		return
	}
	n.freeze(vm)
	tok := n.bootToken
	w.at(w.now+d, func() {
		if tok == n.bootToken {
			n.resume()
		}
	})
}

// Resume ends a pause or freeze now.
func (w *World) Resume(id quorum.NodeID) { w.nodes[id].resume() }

// SetFencing turns the fencing component on or off.
func (w *World) SetFencing(on bool) {
	w.fencing = on
	w.trace("fencing %v", map[bool]string{true: "on", false: "off"}[on])
}

// HealAll ends every fault: network, disks, pauses, slow package stops;
// crashed nodes restart.
func (w *World) HealAll() {
	w.HealNetwork()
	w.SetTorn(0)
	for _, n := range w.nodes[1:] {
		n.stopDelay = 0
		if n.pathDown || n.pathHang || n.slow > 0 || n.flaky > 0 {
			w.DiskHeal(n.id)
		}
		if n.frozen {
			n.resume()
		}
	}
	for _, n := range w.nodes[1:] {
		if !n.up {
			w.Restart(n.id)
		}
	}
}

// reformBound is how long after the last fault healed the cluster must
// have re-formed: a node that lost quorum just before the heal stops
// within SelfFenceAfter, is reset by its watchdog WatchdogTimeout later,
// reboots, publishes unsettled for its startup guard (DeadAfter + Margin)
// and joins within a few heartbeats; a tie may take TiePending. Doubled,
// since it bounds liveness, not safety.
func (w *World) reformBound() time.Duration {
	t := w.t
	return 2 * (t.SelfFenceAfter + t.WatchdogTimeout + rebootDelay + t.DeadAfter + t.Margin + 10*t.HeartbeatInterval + t.TiePending)
}
