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
}

// OneWay drops every packet from a to b.
func (w *World) OneWay(a, b quorum.NodeID) {
	w.block[a][b] = true
	w.trace("fault: one-way %d->%d", a, b)
}

// HealNetwork removes every cut and the packet loss.
func (w *World) HealNetwork() {
	w.block = [quorum.MaxNodes + 1][quorum.MaxNodes + 1]bool{}
	w.loss = 0
	w.trace("heal: network")
}

// SetLoss sets the probability of losing each packet.
func (w *World) SetLoss(p float64) {
	w.loss = p
	w.trace("fault: packet loss %.0f%%", p*100)
}

// DiskFail makes every I/O of node id fail (a dead path).
func (w *World) DiskFail(id quorum.NodeID) {
	w.nodes[id].pathDown = true
	w.trace("fault: disk path of n%d fails", id)
}

// DiskHang makes every I/O of node id hang until DiskHeal.
func (w *World) DiskHang(id quorum.NodeID) {
	w.nodes[id].pathHang = true
	w.trace("fault: disk path of n%d hangs", id)
}

// DiskSlow makes a fraction of node id's I/Os take IOTimeout/2..2xIOTimeout.
func (w *World) DiskSlow(id quorum.NodeID, p float64) {
	w.nodes[id].slow = p
	w.trace("fault: disk path of n%d slow (%.0f%%)", id, p*100)
}

// DiskFlaky makes a fraction p of node id's I/Os fail (a lossy path).
func (w *World) DiskFlaky(id quorum.NodeID, p float64) {
	w.nodes[id].flaky = p
	w.trace("fault: disk path of n%d fails %.0f%% of I/Os", id, p*100)
}

// SetTorn sets the probability that a write lands torn or corrupted.
func (w *World) SetTorn(p float64) {
	w.torn = p
	w.trace("fault: torn writes %.0f%%", p*100)
}

// DiskHeal restores node id's path; hung I/Os complete now (late).
func (w *World) DiskHeal(id quorum.NodeID) {
	n := w.nodes[id]
	n.pathDown, n.pathHang, n.slow, n.flaky = false, false, 0, 0
	w.trace("heal: disk path of n%d", id)
	n.releaseHung()
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

// HealAll ends every fault: network, disks, pauses; crashed nodes restart.
func (w *World) HealAll() {
	w.HealNetwork()
	w.SetTorn(0)
	for _, n := range w.nodes[1:] {
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
