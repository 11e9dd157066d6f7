package timing

import "time"

// DiskIOsPerRound is the number of quorum-disk I/Os in one heartbeat
// round, counted for the disk tolerances below: the write of the node's own
// slot, its read-back, the read of the peers' slots and the read of the
// tie-break lock, each with its own io_timeout deadline, one after the
// other. A round that reads back its own slot only now and then, or reads
// it with the peers' slots, makes fewer I/Os; counting four errs on the
// safe side.
const DiskIOsPerRound = 4

// DiskLatencyTolerance is the largest latency every quorum-disk I/O may
// have, for as long as it lasts, without the node self-fencing:
//
//	min(SelfFenceAfter / (DiskIOsPerRound + 1), IOTimeout)
//
// Derivation. A node self-fences when no write of its own slot issued in
// the last SelfFenceAfter has succeeded. Rounds run one after the other on
// the heartbeat cadence: a round starts at a heartbeat tick, or at once
// when the previous round overran it. With every I/O taking L (less than
// IOTimeout, so none fails), a round takes DiskIOsPerRound x L, so writes
// are issued P = max(HeartbeatInterval, DiskIOsPerRound x L) apart and
// each succeeds L after its issue. Just before a write succeeds, the last
// success was issued P + L earlier, so the node survives while P + L <=
// SelfFenceAfter. Since SelfFenceAfter >= 3 x HeartbeatInterval, the round
// is the longer term at that bound, giving (DiskIOsPerRound + 1) x L <=
// SelfFenceAfter. The condition involves two consecutive rounds only:
// latency below the tolerance is ridden out indefinitely, latency above
// it fails within two rounds. I/O slower than IOTimeout fails outright.
//
// Defaults (1s, 400ms): 200ms. Aggressive (300ms, 100ms): 60ms.
//
// Not counted: a slow disk also slows what peers see of this node on the
// disk path, but a node is dead only when gone on the network as well.
func (d Derived) DiskLatencyTolerance() time.Duration {
	return min(d.SelfFenceAfter/(DiskIOsPerRound+1), d.IOTimeout)
}

// DiskStallTolerance is the longest complete stall of the quorum disk (no
// I/O completes, then I/O is fast again) that a node rides out without
// self-fencing, for a stall that begins at the worst moment:
//
//	max(SelfFenceAfter - 2 x HeartbeatInterval, IOTimeout)
//
// less the time the I/Os after the stall take (the post-stall write and
// the rest of its round).
//
// Derivation. The worst stall begins as a write is issued, the previous
// successful write having been issued one HeartbeatInterval earlier, so
// the node must complete a write within SelfFenceAfter - HeartbeatInterval
// of the stall's start. A stall shorter than IOTimeout only delays that
// write, which then succeeds (IOTimeout <= SelfFenceAfter / 2, which is
// less than SelfFenceAfter - HeartbeatInterval). A longer stall fails it;
// while the failed I/O is still in the kernel a new I/O waits for it
// within its own deadline and fails (diskhb.ErrBusy) if it is still stuck
// then, and the round after the stall starts at the next heartbeat tick,
// up to one HeartbeatInterval after the stall's end: so the stall may last
// SelfFenceAfter - 2 x HeartbeatInterval.
//
// Defaults: 600ms. Aggressive: 200ms.
func (d Derived) DiskStallTolerance() time.Duration {
	return max(d.SelfFenceAfter-2*d.HeartbeatInterval, d.IOTimeout)
}
