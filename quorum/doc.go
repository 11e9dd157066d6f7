// Package quorum decides, on every node, who is alive, which partition may
// run packages, who must be fenced and who must fence itself.
//
// It is a pure deterministic state machine in the style of etcd-io/raft's
// RawNode: the driver feeds events with Step(now, ev) — network heartbeats,
// quorum-disk results, fencing results, Tick — where now is the node's own
// monotonic clock, and performs the actions collected in Ready (heartbeat
// to send, disk I/O to start, fence, takeover, stop packages, feed the
// watchdog, decisions to log, when to Tick next), then calls Advance. The
// machine never sleeps, reads a clock or does I/O. Every Step first expires
// what has gone stale by now, so a node that was frozen longer than every
// timeout acts on nothing old when it resumes. Driver is the thin loop both
// the daemon and the simulation (package sim) use; Effects is its seam.
//
// Where things are: node.go holds the machine, Step and evaluate, the one
// place that stores what the queries decide; peer.go the peers, their
// incarnations and liveness classes; lease.go what a node publishes, its
// echoes (endorsements) and the shrink guard; members.go the member set;
// quorate.go the quorum test and the self-fence deadline; fence.go fencing,
// takeover and re-registration; registration.go the checks of this node's
// own registration; disk.go the quorum-disk round; lock.go the tie-break lock;
// clique.go and votes.go the pure arithmetic; decision.go what is logged.
//
// # Liveness
//
// A peer is judged on two paths, the network and the quorum disk, each by
// whether its (incarnation, counter) changes on our clock
// (liveness.Tracker): gone on a path after DeadAfter without change, dead
// when gone on both, partitioned when gone on the network but changing on
// the disk. A peer seen once is unknown, never alive. On the network a peer
// counts only once it has proved that it hears this incarnation: one of its
// packets echoes our current incarnation with a counter we sent less than
// DeadAfter ago. Incarnations are random, drawn at each start, so no
// recording of a peer's packets made before we started can pass for it (and
// one made since carries counters we have already seen, which are no news).
// They are not ordered: a new one is adopted only once it is
// seen changing, never while it publishes FlagStopped, and never on the
// disk's word while the current one is alive on the network, so neither a
// stale or late-landing slot nor a late packet of a dead incarnation shadows
// the live one; the replaced incarnation is retired (its messages ignored,
// unless it keeps counting on the network while the current one is silent
// there: then it was retired wrongly and may come back).
//
// # Membership
//
// A node's member set is itself plus the peers it hears on the network
// (alive there) whose latest published view includes it, whose latest
// heartbeat endorses it (see Quorum: membership is mutual, so a peer whose
// endorsement ran out is dropped at once instead of costing quorum until
// its view changes), that are not self-fencing, and, for peers not yet
// members, that publish themselves settled (see below). The view a node
// publishes is the set of peers it hears and that hear it: a peer whose
// packets keep arriving while they echo an ever older counter of ours, by
// more than SuspectAfter + HeartbeatInterval (hearsWithin), does not hear
// us; a peer that went silent still counts until it is gone or its
// endorsement runs out, and for hearsWithin after its first packet once
// it is back (a silence of SuspectAfter or more: that packet echoes what
// it heard before it, which is no sign of deafness); a peer held down after repeated drops (Damping,
// below) is left out. So a link that works one way only is broken in the
// views of both of its ends, whichever end notices. When the views
// disagree (one-way or chained partitions) it publishes the clique of
// mutual hearing with the most votes, then the most votes of its current
// members kept, then the most votes of peers it hears fresh on the
// network (their counter changed within SuspectAfter), then the lowest ids
// (bestClique), its own row being its own published view, so nodes
// sharing views, member sets and freshness pick the same set. The third
// rule keeps a node beside a cut from following a stale row: until a peer
// across the cut is gone, its last view (which lists everybody) stays in
// its row, and a node hearing both sides would otherwise keep that peer
// and drop a healthy one of its own side by the lowest ids, leaving its
// side without agreement until the peer's endorsement runs out. The
// second rule makes a node that re-admits a peer a moment
// before the others do (its hold-down ended a little earlier) keep its
// current members rather than swap one of them for the peer, which would
// cost that member a shrink guard. Freshness is local, so two nodes may
// pick different sets for a moment; member sets differ between nodes only
// during a change, and safety never rests on the choice (agreement and
// the shrink guard below hold whatever set each node picks). A node
// whose choice would drop a member for a newcomer, only because the
// member's row lacks the newcomer while the newcomer's lists the member,
// holds its member set until that member's next heartbeat (deferDrops):
// the row may be a heartbeat old (as a partition heals, each node of the
// minority hears the majority before its fellow's row lists it); if the
// next row still lacks the newcomer, the drop stands. Membership lives
// on the network only; the disk carries the same heartbeat for
// liveness, agreement and the tie-break.
//
// # Damping
//
// A peer that leaves the member set and comes back at once, again and
// again (it babbles: its views change every heartbeat; or a link of it
// flaps), would cost the majority a transition each time, and each drop
// restarts the shrink guard, so nobody would settle. So each node damps
// re-admission, in the manner of BGP route-flap damping (RFC 2439), on
// its own observations only: it counts a peer's drops from its member
// set (not a drop seen as an incarnation switch, nor of a peer that
// publishes its self-fence; a crash seen first as silence does count),
// one more in a row when the drop comes less than FlapQuiet after
// the peer's last re-admission, else starting again at one. A drop of a
// peer this node still hears both ways (fresh on the network, echoing it,
// listing it in its view) counts half: the clique choice made it for an
// edge between other nodes, and at such a moment nodes may choose
// differently (one has noticed a deaf node a heartbeat before another,
// and its view no longer lists it; a node that has not yet noticed sees
// two equal cliques). A whole count would turn a healthy peer dropped
// once for a lost heartbeat and once for such a moment into a held-down
// one, left out of this node's view, and so into a broken edge for every
// other node's choice: the choice of a moment would cascade into a split.
// A half drop is made whole when this node stops hearing the peer both
// ways within hearsWithin of it (SuspectAfter + HeartbeatInterval, the
// time its own judgment of the link takes): the link between them was
// failing and another node noticed first, as at one end of a flapping
// link. The half weight is for peers whose views describe their hearing,
// and a heartbeat shows whether they do: a node's member set is a clique
// of its own row, which is the view it publishes in the same step, so
// every member but the sender is in its view (a member set held for one
// heartbeat of a lagging member is held only while it is such a clique).
// A heartbeat listing a member its view leaves out comes from a babbler,
// whose random views list this node every other heartbeat; counted in
// halves its drops would put its hold-down off, and the others would
// re-admit it and disagree about it for longer. For hearsWithin after
// such a heartbeat the peer is left out of this node's view and member
// set, as a held-down peer is, its drops weigh whole, and a half drop of
// it within hearsWithin before is made whole. Every node that receives the
// heartbeat judges it alike, so the nodes drop the babbler together and
// none re-admits it while it babbles; the damping then holds it down as
// any peer dropped again and again.
// After the first drop a peer may come back at once (a peer dropped by a
// moment's wrong clique choice costs nothing more); after the k-th drop in
// a row (halves rounded down), k >= 2, it stays out of this node's view
// and member set until it has
// been heard both ways, without a break, for RejoinHoldDown x 2^(k-2)
// since the drop, at most RejoinHoldDownMax (config.Derived:
// RejoinHoldDown = EndorseGuard, RejoinHoldDownMax = 8 x EndorseGuard =
// FlapQuiet; 1.05 s to 8.4 s at the default timing, 0.32 s to 2.5 s at
// the aggressive one). The count outlives the peer's incarnation, so a
// node does not escape its hold-down by restarting. Leaving the peer out
// of the published view as well, not only of the member set, keeps the
// nodes' choices consistent: a node's hold-down is visible to every
// other node's clique choice, so nobody re-admits the peer while a
// member still refuses it (which would break agreement for everyone
// until the last hold-down ended). Hearing, not the peer's views, ends
// the hold-down: two nodes that each hold the other down (both sides of
// a healed partition) leave each other out of their views, and waiting
// for the other's view would never end.
//
// What it costs. Since the hold-down is at least EndorseGuard, the
// shrink guard of the previous drop has run out before the peer is back,
// so the majority settles between two drops and is quorate again within
// the transition bound G (Transitions) after each. A single babbling or
// flapping node X therefore costs the majority one transition per drop,
// at most two before the first hold-down, then one per hold-down, the
// hold-downs doubling to RejoinHoldDownMax; a babbling X in practice
// costs two in all, since its random views must hold every member at
// once to be re-admitted, and X, refused by the others, self-fences.
// A dropped node stays out at least as long as its current hold-down
// after its last drop, and re-enters within a heartbeat and a delivery
// after it ends and X's view holds the members. A flapping link keeps
// its far end out for as long as it flaps (the hearing breaks at every
// down phase longer than SuspectAfter + HeartbeatInterval, after which
// the first packet echoes a counter too old), and for the hold-down
// after; a node whose link flaps slower than RejoinHoldDownMax is
// re-admitted between flaps and forgiven after FlapQuiet.
//
// # Quorum
//
// A node holds quorum when all of these hold:
//
//   - votes: its member set holds a strict majority of the configured
//     votes (Votes.Tally = VoteWon), or exactly half (VotePending) and a
//     member of the set holds the tie-break lock;
//   - agreement: every other member's latest heartbeat publishes the same
//     member set and the Settled flag, and endorses this node: it echoes
//     this node's own counter, sent less than DeadAfter ago on this node's
//     clock (an endorsement lease timed by the receiver on its own clock,
//     never across clocks);
//   - settled: no node outside its member set can still count on an
//     endorsement it gave earlier (the shrink guard, below);
//   - own disk: a write of its own slot issued less than SelfFenceAfter
//     ago has succeeded.
//
// Status.QuorateUntil is when the leases run out if nothing new arrives;
// the machine asks for a Tick then.
//
// Shrink guard. When a node drops a peer P, P may still hold an endorsement
// from it, valid until DeadAfter after P sent the counter it echoes, which
// was before this node received it. So the node records, for every member,
// when it received the counter it echoes, and after dropping P it publishes
// itself unsettled until EndorseGuard (DeadAfter plus clock drift) after
// that receipt. Echoes carry only counters received on the network, so a
// peer cut off the network cannot keep its lease alive through the disk. A
// member that stops hearing us (above) leaves our view and so our member set
// in the step we notice, before our next heartbeat: a member that still
// sends but no longer receives gets no endorsement newer than the last one
// it could have heard, and the guard after it runs from there, not from its
// last packet. A peer outside the member set still gets its newest counter
// echoed: a heartbeat whose member set lacks P is no endorsement P can count
// on (agreement needs P's own set, which holds P), and the echo is how P
// proves that it hears us. A starting node publishes unsettled for
// EndorseGuard too: a previous incarnation may have endorsed someone. Why
// two quorate nodes A and B always include each other: their member sets MA
// and MB intersect (two majorities, or a majority and a half; two disjoint
// halves are decided by the lock), say at Q, whose heartbeats endorse A with
// MA and B with MB. If MA = MB, done. Otherwise Q changed its set between
// the two heartbeats, and the later one is settled, so no node outside the
// later set can still count on the earlier one: the node counting on the
// earlier endorsement, say A, is in the later set MB. B then counts on an
// endorsement by A that publishes MB, older than A's current set MA (a node
// publishes its current set); were B outside MA, A would have dropped B
// since, and B's lease on A's endorsement would have run out before A was
// settled, as A is while quorate. So B is in MA and A in MB. (Q may be A
// itself: the second half of the argument alone applies.) Removing the guard
// (Unsafe.SkipShrinkGuard) lets the simulation find split brains in about
// one random history in five (sim.TestPlantedBugs).
//
// # Transitions
//
// A membership change costs the nodes that make it a stretch without
// quorum (they stop fencing and taking over; their packages keep running).
// With D = DeadAfter, H = HeartbeatInterval, EG = EndorseGuard, T =
// hearsWithin = SuspectAfter + H, and d the largest delay of a delivered
// heartbeat, consider a fault that starts at t0 and leaves a connected
// majority C (nodes that hear each other both ways, with their disks)
// whose nodes were quorate together before it:
//
//   - A member X that goes silent to C (crashed, paused, mute, cut off):
//     each A in C counts on X's endorsement until D after it sent the
//     counter X echoes last (sA, within H + 2d before X's last packet) and
//     drops X then (or when X is gone, D after its last packet); A's own
//     guard runs EG from its receipt of X's last counter. So A is without
//     quorum from sA + D to that receipt + EG + d: at most H + (EG - D) +
//     3d. Measured in the simulation: 253 ms at the default timing, 68 ms
//     at the aggressive one.
//
//   - A member X that still sends to some A in C but does not hear A (deaf,
//     or a one-way link): A notices when a packet of X arrives T after the
//     counter of A's that X echoes, by t0 + T + H + d; in that step A's view
//     and member set exclude X (A's guard ends EG after the receipt of the
//     last counter of X it echoed as a member, before then), and every node
//     of C sees A's view within d and drops X too. A node may pick another
//     clique for a moment, until it notices itself (within H); its guard for
//     a node it so dropped ends within EG + d of the first drop. So every
//     node of C is without quorum for at most G = EG + H + 2d, and quorate
//     again by t0 + EG + SuspectAfter + 3H + 3d. Measured in the simulation
//     (a deaf node, 3 and 5 nodes): 852 ms at the default timing, 267 ms at
//     the aggressive one.
//
//   - A link that fails both ways between two members X and Y that both
//     still hear the rest of C: nothing arrives to tell it from a slow link
//     until the endorsement of one end by the other runs out, by t0 + D; in
//     that step that end's view drops the other, and C is quorate again by
//     t0 + D + EG + H + 3d, within G of that step.
//
// The first two stay below the survivor-liveness bound R = EndorseGuard +
// SuspectAfter + 3H + 2 IOTimeout that the simulation checks: G <= R as long
// as 2d <= SuspectAfter + 2H + 2 IOTimeout, and C is quorate again by t0 + R
// as long as 3d <= 2 IOTimeout. The link that fails both ways meets R only
// while D/2 <= 2H + 2 IOTimeout - 3d: at the default and aggressive
// profiles, not at failure timeouts of many heartbeats. Dropping a member on
// silence alone any earlier would turn every suspected path (SuspectAfter)
// into a membership change. All three stay below SelfFenceAfter +
// SettleGrace, so no node of C self-fences: SettleGrace is all the room
// TakeoverAfter leaves, (2H + 0.05 F)/1.05 - 1ms with F = FailureTimeout
// (config.Derived), so F + SettleGrace - G = (0.95 H - 0.0025 F)/1.05 - 2ms
// - 2d, positive for F up to 100 H while d stays below about a third of H
// (TestTransitionFitsTheGraceForAcceptedTimings checks it without d). A node
// in such a transition — its member set, or the set of peers it hears both
// ways, holds a strict majority, and only agreement, settling or the
// tie-break is missing — keeps SettleGrace on its stop deadline for the
// whole wait: its own guard, and its members' settled flags after that. A
// node that hears no majority (the faulty one) stops after F.
//
// Why a gap at all. Take two members A and B that both keep running, neither
// able to tell whether the other crashed or is cut off. A may count on B's
// endorsement until LA (D after it sent the counter B echoes), B on A's
// until LB. A's guard for B, which must cover LB, ends at EA >= LB; B's at
// EB >= LA. For A to drop B without a moment out of quorum, EA < LA; for B,
// EB < LB. Then LB <= EA < LA <= EB < LB: a contradiction. So one of two
// members that part goes without quorum, and since neither knows which one
// the majority will keep, both may. The gap is the lease asymmetry of one
// exchange of counters (up to a heartbeat interval and a round trip) plus
// the drift allowance of the guard. It is logged as quorum-settling (a
// warning), not quorum-lost, and becomes quorum-lost (an error) only when
// the change has not completed within EndorseGuard + 1.5 H (G with room for
// delays) or the majority is gone. Forming (a node joins a quorate
// partition) pauses quorum for one delivery and is logged as quorum-joining,
// at info level.
//
// # Tie-break
//
// An exact split (two-node 1|1 included) is decided by the quorum disk's
// tie-break lock, a delta lease in the style of sanlock's delta_lease.c.
// The lock sector holds (owner, owner incarnation, generation). A node
// whose member set holds exactly half of the votes, agrees with its
// members and sees no member advertising the lock may claim it once its
// own reads have shown the sector unchanged for TieClaimAfter; a claim is:
// write (self, incarnation, generation+1); wait LockSettle; read back; the
// claim still there means won. The holder renews every HeartbeatInterval
// while it needs the lock, and counts on it for TieHold after issuing the
// claim or its last successful renewal; it drops it at once when a read
// shows another record. It advertises the lock with FlagTieHolder, which
// its members believe within their endorsement leases.
//
// Why one winner. Two racing claimers: the later write wins. A claimer
// decides on a read that did not yet show the earlier claim, so its own
// claim lands within two I/O timeouts of that read, before the earlier
// claimer's read-back, which waits LockSettle (two I/O timeouts stretched
// by drift); the earlier claimer sees the later claim and loses. An old
// holder: a new claim needs TieClaimAfter of silence; the holder's last
// successful write landed before the silence began, its hold ends TieHold
// after that write's issue, and its members stop believing its flag at
// most DeadAfter later; TieClaimAfter, that sum stretched by the clock
// drift plus Margin, exceeds all of it (TestTimingRelations). A holder
// cannot renew after its hold ran out (it must claim again), so no late
// renewal overwrites a new owner except a write that hung past its
// timeout, which only makes the new owner give the lock up (safe, not
// live).
//
// Pending tie. A node whose agreed member set holds exactly half keeps its
// packages while the lock is decided, for at most TiePending, but only up
// to the last of its reads that showed the lock quiet: no claim or renewal
// by a node outside its set seen within TieHold (stretched by drift) plus
// one I/O timeout before that read. A claim seen once stays live until its
// claimer has read it back and would have renewed it, so reads that still
// show it unchanged do not count; once the other half's claim is visible
// the self-fence runs from the last quiet read, which was issued before the
// claim landed and so before the other half can win (LockSettle after its
// claim), and the other half's takeover timing holds. (The simulation's
// independent checker found the earlier rule, which compared with the start
// of the pending tie, extending the grace past a claim seen just before
// it.) A survivor whose member set becomes exactly half because
// the lock holder died waits TieClaimAfter from the holder's last renewal;
// if the lock was renewed less than about Margin + LockSettle before that,
// the survivor self-fences before it can win (safe, not live).
//
// Fence as arbiter. In a cluster of two voting nodes whose quorum LUN has
// persistent reservations (Config.FenceArbiter: the driver registered this
// node there, as every node of the cluster does before it joins), a node
// that has held quorum, writes its slot, and whose peer left its member
// set asks to fence the peer at once, without quorum; the higher-id node
// waits FenceStagger first unless the peer is dead on both paths (two
// PREEMPT AND ABORTs arriving at one LUN at the same instant have
// soft-locked a real target). The fencing component preempts the peer's
// key on every LUN, the quorum LUN included, and reports Fenced only once
// it verified the peer's key gone and ours registered. The first lock read
// issued after that Fenced which shows the lock quiet (as for the pending
// tie: no write by another node seen within TieHold, stretched, plus one
// I/O timeout) wins the tie: the node counts as the holder, becomes
// quorate once agreement and settling hold as always, may take over at
// once (the peer is fenced), and writes the lock at once, counting on it
// as a normal hold from that write's issue (for at most TieHold before
// the write succeeds). A verified fence that fails to find our key is
// FenceFailed with SelfFenced: the node stops at once, as it does when a
// slot or lock write meets IOFenced once it has held quorum.
//
// Why one winner. The storage serializes preempts: a verified fence by A
// means that at its read-back A's key was registered and B's was not. Keys
// are removed only by preempts and come back only when an incarnation
// that has not held quorum registers: as it starts, or again after a fence
// removed its key before it held quorum (Re-registration after a fence);
// below, "incarnation" is such a registration's stretch. Were B's
// incarnation to verify a fence of A as well, at its read-back A's key
// was gone and B's present; whichever
// read-back came later contradicts the other's preempt, which removed that
// key for the rest of its incarnation. So of two incarnations that race,
// at most one wins. Why not both quorate: B cannot be quorate through the
// majority (it holds exactly half), nor through A's endorsement (A is
// settled, so no lease of B on A runs), nor through the lock: its lock
// writes after the fence are refused, and any claim or renewal it made
// before landed before A's read issued after the fence, which shows it;
// A's quiet rule then waits until such a claim or hold has run out, as the
// pending-tie rule does. A later incarnation of B registers again only
// after the fence, starts unarmed (so it never asks for an arbiter fence),
// and may win only the lock, which needs TieClaimAfter of quiet: A writes
// the lock at its win and renews it every HeartbeatInterval while the tie
// lasts. Without Config.FenceArbiter, or without a verified fence (LUNs
// without persistent reservations, a fence that keeps failing), the lock
// decides, and the two may run side by side: the lock's winner, once
// quorate, fences too.
//
// # Self-fence, fencing and takeover
//
// A node stops its packages and stops feeding its watchdog (Ready.
// StopPackages, FeedWatchdog false, Status.Stopped; for good in this
// incarnation) when it has not held quorum for SelfFenceAfter (plus
// SettleGrace while it is in a transition, above), or no write of its own
// slot issued within SelfFenceAfter has succeeded (armed or not: a node
// cut off the disk, a fenced one included, is reset and comes back with a
// new incarnation; a fenced one that never held quorum registers again
// first, Re-registration after a fence). The clock starts where quorum really ran out (the
// earlier of the step that found it gone and Status.QuorateUntil), not at
// the last step that found it held, or later, at the last step at which a
// majority still held the node as a member: some set with this node and a
// strict majority of the votes is what every other member of it last
// published, settled and not stopped, echoing a counter of ours sent less
// than DeadAfter ago. That is the lease the quorum test rests on, so no
// node can be quorate without this one before such a step (a quorate set
// without it shares a member with that majority, which is settled without
// it only after its guard for it has run out), and the takeover argument
// below holds from it as from the last quorum. It matters when two
// membership changes follow each other: a node whose own set moved on a
// moment before the last settled heartbeat of its previous set arrived (a
// lost packet, a babbling peer's next view) never saw that set quorate,
// while its peers were quorate with it and wait for it again; without the
// hold its clock would run from before the first change and it would
// self-fence as the second completes. A self-fencing node publishes
// FlagStopped and its peers drop it at once, without a guard. A node
// started with Config.LeftoversRunning (packages of an earlier incarnation
// of the daemon may still run on this machine) does not feed the watchdog
// until the driver reports LeftoversStopped.
//
// The lowest-id member of a quorate partition requests fencing of every
// node that left the member set (and of nodes never heard since this node
// started), except a node whose current incarnation was never in the
// member set and is alive on a path or was seen starting after its
// predecessor (adopted on an incarnation switch), or whose first packet
// since this node started arrived less than hearsWithin ago without proof
// yet that it hears us (a node starting as the coordinator forms quorum
// proves itself within that): a newcomer runs no packages, and the
// fence, whose keys name a node and not an incarnation, would land on
// the new incarnation as it joins and reset it again. Its
// departed incarnation is then taken over after TakeoverAfter. The
// request for a node that left, for the first time in a row
// (Damping), in the incarnation it still runs, that
// this node hears both ways and that counts this node in its view, waits
// while that holds, up to a heartbeat interval past EndorseGuard after the
// drop (returning, in fence.go): such a node comes back once the guards
// and hold-downs of its drop run out, which is about when the
// coordinator is quorate again without it, and a fence asked at that
// moment would reset a member for nothing. A node silent on the network
// or deaf to this one is fenced without the wait. A request
// still without an outcome when the node becomes such a newcomer, or is
// admitted to the member set again, is withdrawn (Ready.WithdrawFence,
// decision FenceWithdrawn): the fencing component runs fences one at a
// time, and one queued behind a slow fence would otherwise land on the
// node as it joins; one already begun runs to its end, and the
// registration checks catch what it removed. It allows the takeover of
// that node's packages when the
// fencing component reports it Fenced, or when TakeoverAfter has passed
// since the later of its departure and the start of this node's current
// quorate stretch. Counting from the quorate stretch matters: while this
// node is continuously quorate without X, X cannot be quorate, so X's last
// quorum precedes the stretch and its watchdog reset follows within
// SelfFenceAfter + WatchdogTimeout (+ drift, in Margin).
// A member incarnation this node has just fenced is not counted in again
// for a heartbeat interval and two I/O deadlines: one that held quorum
// may not register again and stops at its next write of the quorum disk,
// and counted in for that moment (its views may well list everybody) it
// would cost the others a transition; one still heard after that
// registered again or cannot reach its disk, and counts as any peer.
//
// # Re-registration after a fence
//
// Fencing keys name a node, not an incarnation, so a fence meant for an
// earlier incarnation of node X (one that crashed, or that a coordinator
// never heard restart) also removes the registration the new incarnation
// made as it started; the new one then finds its slot write refused
// (IOFenced). Stopping it would cost a reset and a rejoin for nothing:
// the survivors fenced X to take over what its earlier incarnation ran,
// and the new one runs nothing yet. So a slot or lock write refused with
// IOFenced makes the node register again (Ready.Rejoin; the driver runs
// fence.Fencer.Rejoin and reports Rejoined) instead of stopping, when all
// of these hold for its incarnation:
//
//   - it never held quorum (not Armed): it started no package, so no
//     writer of it but the daemon's own quorum-disk slot and lock exists;
//   - nothing an earlier incarnation left on this machine still runs
//     (LeftoversStopped reported, or Config.LeftoversRunning false): the
//     registration opens the storage to the whole host's I_T nexus, and a
//     daemon restarted without a reboot shares it with what its
//     predecessor started; stopped, the predecessor's packages have
//     completed their I/O (a stopped package has unmounted and
//     deactivated its storage, an exited process has no AIO in flight);
//   - no member set it computed, and so published, held a peer: no
//     quorate partition counted it in (agreement needs every member to
//     publish the same set), so a fence by a coordinator was not a
//     departure of this incarnation from its member set, and no takeover
//     of a member concerned it;
//   - it has asked fewer than MaxRejoins times in this incarnation.
//
// Otherwise it stops at once, as before. The first re-registration is
// asked one HeartbeatInterval after the refusal (a fence still under way
// on the other LUNs ends first, so its verification does not meet our key
// again), each further one after twice the previous backoff; a failed one
// (Rejoined with Err) is retried under the same bound. While one is due
// or under way the node is not quorate (LossRejoining), so it cannot
// start a package on storage it cannot reach; it joins no member set (it
// publishes itself alone and not settled, so no peer counts it in, and a
// re-registration that fails on a dead path can be retried: a member set
// with a peer would end its right to register again); once registered it
// writes its slot at once; and a write refused
// meanwhile, or issued before the last re-registration completed, counts
// as the same fence. Its own write deadline still runs: SelfFenceAfter
// after the issue of its last successful slot write it stops, so the
// re-registrations of one fence fit in SelfFenceAfter. A fence that finds
// our own key gone while fencing a peer (FenceFailed with SelfFenced)
// always stops the node: only a quorate node, or an armed arbiter, fences.
//
// Why it is safe. The survivors' takeover concerns what X's departed
// incarnation ran; fencing made the storage refuse that incarnation's
// writes. After the re-registration the storage accepts writes from X's
// nexus again, which now carries only this incarnation's writes: the
// predecessor's packages are confirmed stopped, and this incarnation has
// none. A write of the predecessor still queued on the host when its
// daemon died was aborted by the PREEMPT AND ABORT if it had reached the
// target, and a write not yet sent belongs to a package or daemon that
// has since stopped (a stop completes only once its I/O has); the
// predecessor's slot writes concern only X's own slot. Once the new
// incarnation holds quorum, a fence stops it as before: from then on it
// may run packages a survivor takes over. For the fence as arbiter, a
// re-registration is what a later start of the same node would be: an
// incarnation that has not held quorum registers after the fence; it
// never asks for an arbiter fence while unarmed and can win the tie only
// through the lock (Fence as arbiter, above). A test of this rule must
// show a planted Unsafe.RejoinWhenArmed caught (package sim).
//
// # Registration checks
//
// A refused slot write tells a node that its key is gone from the
// quorum LUN, but nothing it does itself tells it that its key is gone
// from a data LUN: only its packages write there. A fence lands LUN by
// LUN, and a fence that a peer started before a re-registration (above)
// may land on one LUN before the re-registration and on another after
// it: the node is registered on the quorum LUN, its slot writes land, it
// holds quorum, and the storage refuses its packages' writes. So a node
// whose driver registered it for fencing (Config.CheckRegistration) has
// its registration checked on every fenced LUN (Ready.CheckRegistration:
// READ KEYS through the fencing component, PR IN only; the outcome comes
// back as RegistrationChecked): every period E after its start, one at
// a time, and E after every completed re-registration, where E is the
// longest a fence started before an instant may still remove a key
// after it (RegistrationTimeouts: one fence attempt and two command
// deadlines, stretched by the clock drift; 6.98 s at the default timing,
// 2.18 s at the aggressive one), as long as a target executes a command
// within a command deadline after its initiator gave up on it; a preempt
// that a target holds longer (one waiting on a hung victim's connection)
// is found by a later check, E apart. No check is asked while a
// re-registration is due or under way (it verifies every LUN itself).
//
// A key found gone from a LUN is a fence by a peer (RegistrationLost),
// handled as a slot write refused with IOFenced: a node that never held
// quorum, whose leftovers are stopped and that counted no peer in,
// registers again (Re-registration after a fence, with its bound of
// MaxRejoins); any other stops at once, as fenced by a peer. A check
// issued before the last re-registration completed saw the fence that
// re-registration repaired, and counts for nothing. A LUN that no path
// could read (a dead path, a timeout) proves nothing about the key: the
// node reports it once (RegistrationUnread) and goes on; the next
// period checks again. So a node that holds quorum while a peer's fence
// removed its key from some LUN stops within E plus one check's deadline
// of the removal, one period more for each check its storage fails
// meanwhile.
//
// What it does not do. A check does not re-register a node that holds
// quorum or has held it: its key may have been removed by a coordinator
// that dropped it, and the survivors may take its packages over. READ
// KEYS lists keys, not the nexuses that hold them, so a registration of
// this node's key left on the LUN by an earlier session of its own (a
// replaced HBA, an old iSCSI session; Rejoin removes such registrations)
// hides a path of its that is not registered. A target that loses every
// registration (a power cycle without APTPL) makes every node that checks
// it stop: the LUN can no longer fence anybody, and a fence there would
// find the fencer's own key gone and stop it too (set [fence] aptpl where
// the target supports it).
//
// # Decision table
//
// For a cluster of n equal votes, seen from node A about peer X (the
// outcome after DeadAfter, then the guard):
//
//	network to X   disk of X      A's side            outcome on A's side
//	------------   ---------      -----------------   -----------------------------------------
//	alive (both    any            -                   X is a member
//	 ways)
//	gone           changing       majority            X partitioned: dropped, fenced, taken over
//	gone           gone           majority            X dead: dropped, fenced, taken over
//	gone           any            less than half      A loses quorum, self-fences after F
//	gone           any            exactly half        tie-break: claim the lock; the winner's side
//	                                                  keeps quorum, the loser's self-fences
//	one-way, or    any            -                   not a member (hearing must be mutual); the
//	 X deaf                                           clique with most votes, lowest ids, wins;
//	                                                  a node that hears no majority self-fences
//	alive          A's own disk   any                 A's writes fail: A loses quorum and
//	               path lost                          self-fences after F; the others drop it
//	                                                  when it publishes Stopped
//	alive          X's disk       any                 X self-fences (above); A drops it once it
//	               path lost                          publishes Stopped, then fences, takes over
//	X restarted (new incarnation)                     old incarnation dropped; the new one joins
//	                                                  once settled; the old one's packages wait
//	                                                  for fencing or TakeoverAfter
//	X froze, resumes                                  X's first Step finds every lease expired:
//	                                                  it stops at once and acts on nothing
//
// Typical outcomes by partition sizes (n nodes, one vote each):
//
//	split           larger side           smaller side
//	k | n-k, k<n/2  keeps quorum          loses quorum, self-fences
//	n/2 | n/2       lock winner keeps it  lock loser self-fences
//	1|1|...|1 (n>2) nobody has quorum     everybody self-fences
//
// # Guarantees
//
//   - Two nodes that hold quorum at the same instant (by Status.Quorate and
//     QuorateUntil) include each other in their member sets, provided the
//     clocks' rates differ by at most config.MaxClockDrift and disk I/O
//     that completes within IOTimeout lands within it.
//   - A node without quorum requests no fencing and no takeover.
//   - A node that lost quorum, or its own disk writes, stops its packages
//     by its StopDeadline, and its watchdog resets it WatchdogTimeout later.
//   - A takeover without fencing is allowed only after TakeoverAfter, when
//     the node taken over has certainly been reset.
//   - In a two-node cluster with the fence as arbiter, at most one of two
//     racing incarnations wins a tie by a verified fence, and it is never
//     quorate while the other is (above: Fence as arbiter).
//   - A node whose key a fence removed registers again only if it never
//     held quorum in this incarnation, its predecessors' leftovers are
//     confirmed stopped, no member set it computed held a peer, and it
//     asked fewer than MaxRejoins times; it is not quorate until the
//     re-registration is done (above: Re-registration after a fence).
//   - With Config.CheckRegistration, a node that holds quorum while its
//     key is gone from a fenced LUN stops (or, never armed and counting no
//     peer in, registers again) within RegistrationTimeouts' period plus
//     one check's deadline after the removal, one period more per check
//     the storage fails meanwhile; an unreadable LUN is never taken for a
//     removed key (above: Registration checks).
//
// # Non-guarantees
//
//   - The quorum is not a fence. A process paused or a VM frozen past its
//     deadline runs on until its watchdog fires or, for a frozen VM whose
//     watchdog froze too, until its first step after resuming, which stops
//     its packages at once; only SCSI fencing cuts off its I/O in between.
//   - A daemon that restarts (new incarnation) without a reboot must stop
//     every package left from its previous incarnation before it feeds the
//     watchdog: the peers count on that incarnation's watchdog reset. The
//     machine withholds the feed while Config.LeftoversRunning, until
//     LeftoversStopped; the driver must say so.
//   - Liveness: under heavy packet loss a membership change may take longer
//     than SelfFenceAfter to agree, and the partition self-fences (safe).
//   - Votes and timing must be the same on every node (the quorum disk's
//     header enforces the timing).
package quorum
