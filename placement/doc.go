// Package placement decides, on every node, which node runs each package,
// and emits the starts and halts this node must perform.
//
// It is a pure deterministic state machine in the style of package quorum:
// the driver feeds events with Step(now, ev) — the quorum machine's view
// (ViewChanged), this node's runner states (Local), the peers' reports
// (Received), the takeovers its quorum machine allowed
// (TakeoversAllowed), operator intents (Commanded), and once the
// daemon has stopped what an earlier incarnation left on this machine,
// LeftoversStopped — and performs what
// Ready holds: Actions (start or halt a package here, halts first), the
// Report to publish when it changed, the Durable operator state to write
// when it changed, and Decisions to log. Then it calls Advance. The
// machine never reads a clock, sleeps or does I/O (deps_test.go enforces
// it: no dependency outside the quorum machine's pure packages and the
// standard library, no os/net/syscall import, no time.Now); now only
// stamps decisions. Nothing in it expires: every deadline that matters
// (fencing, the watchdog) is the quorum machine's, and reaches placement
// as a takeover.
//
// Where things are: types.go the inputs and outputs; config.go the
// configuration, its validation and the placement order; machine.go the
// machine, its events and what it knows of each peer; place.go the
// targets; act.go the halts, the start protocol and the report; intent.go
// the operator intents. placement/fromconfig converts the cluster and
// package files (package config, which has I/O) into Config.
//
// # Model
//
// Every node runs one machine over the same definitions. Its inputs:
//
//   - the View: quorate, agreed (quorum's agreement: every member
//     publishes the same member set), the members, the epoch, and each
//     member's incarnation (ViewOf converts a quorum.Status);
//   - the definitions (Package): the nodes in order, auto_run,
//     failover_policy, failback_policy, priority, dependencies;
//   - the Reports: each node publishes one, listing the packages that are
//     not halted on it (claimed, starting, running, halting, failed,
//     halt-failed), the packages marked failed on it, the latest report it
//     accepted from every other node (Acks), and the takeovers its quorum
//     machine allowed. Seq grows with every change; the daemon republishes
//     the latest report with every heartbeat, and older or repeated ones
//     are ignored. A member's report counts only from the incarnation the
//     view holds for it;
//   - this node's runner (Local): the truth about itself;
//   - the takeovers: quorum.Takeover, (node, incarnation, fenced or
//     watchdog). Only the quorum coordinator (the lowest-id member) is
//     handed them; it publishes them in its report, so every node learns
//     them. A takeover with incarnation 0 covers every incarnation of that
//     node seen before it arrived, not a later one;
//   - the operator intents (Intent), applied once each in ID order.
//
// # Placement
//
// Every node computes a target node for every package, in placement
// order: a package after every package it needs, then by effective
// priority (1 highest; a package inherits the priority of the highest
// package that needs it; no priority comes last), then by name. A node is
// eligible for a package when it is in the package's list, a member whose
// current report has arrived, not drained, not marked failed for the
// package, what the package needs is placed where the dependency says
// (and, for a package that runs, actually runs at that target: when a
// needed package moves, its dependents halt first), and no package it
// excludes is placed (or, if not yet placed, runs) where the exclusion
// says — except that a package of strictly higher effective priority
// ignores a lower one that is not placed yet: the lower one yields.
//
// The target, in order of precedence: maintenance keeps the package where
// it is (the cluster does not act on it); a package that a package in
// maintenance needs, directly or through running packages that need each
// other, stays where it runs, even on a drained node: its halt would wait
// for the package in maintenance, so a move could never complete and what
// needs it elsewhere would wait for it; halted by an operator (or
// auto_run off and never run): nowhere; a pending one-shot run --on or
// move: that node once eligible (while it waits, the package stays where
// it runs if it may stay there, and is otherwise placed as below); running on an eligible node: stay, unless
// failback_policy is automatic, switching is enabled and the first node of
// the list is eligible (then back there); otherwise, with automatic
// switching enabled (or a pending run), by failover_policy: the first
// eligible node of the list (configured_node), or the eligible node with
// the fewest packages placed or still running on it, ties to the earlier
// node of the list (min_package_node). With switching disabled a package
// that cannot stay halts and does not start elsewhere; drain therefore
// halts such packages instead of moving them. Every node computes the
// same targets from the same inputs; ties break by list order, then node
// id. Targets are recomputed only on a quorate node once every member has
// reported, so they never depend on who reported first.
//
// A package reported failed (a service past its restart limit, a start
// that failed) or halt-failed on a node is marked failed there: it is not
// placed there again until `mtc clear`. The node halts a failed package at
// once (dependents first). A halt-failed package blocks the package
// everywhere until its node is reset: that node reports it up, so no
// other node is clear of it, until the quorum machine takes the node over.
//
// # Acting
//
// A node acts only while it is quorate in an agreed view (gate): without
// quorum nothing starts and nothing halts here. The quorum machine keeps
// packages through a membership transition and stops them all when it
// self-fences.
//
// Halts: a package that runs here and is placed elsewhere or nowhere, or
// failed here, is halted once every package that needs it through this
// copy is reported halted (dependents first; the halt order). A package
// still starting is halted once it runs.
//
// Starts are a claim first. When a package is placed here and halted here,
// and every other node is clear of it, the node claims it: the claim is
// its state in the report (Claimed). It tells the runner to start only
// when every other member's current report acknowledges the report that
// first carried the claim (Acks) and still shows the package halted, and
// what the package needs runs where it must, and what it excludes is down.
// A node is clear of the package when:
//
//   - it is a member and its report of the current incarnation shows the
//     package halted (that report, acknowledging the claim, is newer than
//     the claim: "halted in this epoch", made stronger);
//   - or it is not a member and a takeover covers every incarnation of it
//     that may hold the package (its last reported one and the one seen
//     last): it was fenced, or its watchdog deadline passed;
//   - or it is not in the package's list and never reported the package
//     up.
//
// An incarnation replaced by a newer one leaves its last report behind as
// a ghost: what it had up counts until a takeover covers it, or until the
// new incarnation, a member, reports LeftoversStopped (the daemon stopped
// whatever its predecessors left on the machine). Every incarnation of a
// node in the package's list that was ever a member needs the same: its
// reports may never have reached this node. (The quorum coordinator does
// not take over its own earlier incarnations, so for a restarted
// lowest-id node LeftoversStopped is the only way.) A node claims nothing
// before its own LeftoversStopped. No node claims
// a package another member claims or has up. Two claims made at the same
// time are settled by the package's list order (then node id), which every
// node reads alike: the later one withdraws. The start action carries the
// takeovers it relies on, for the runner's fencing proofs (package
// pkgrun takes over a volume group only with one).
//
// # Safety
//
// Claim: no package is started on a node while it is up on another node
// that is not taken over, and never without quorum.
//
// Without quorum the gate is closed. Suppose A and B both start P. Each
// started only after every member's report acknowledged its claim and
// showed P halted, and each keeps publishing P as claimed, then starting
// or running, from its claim until it halts P. Say A's claim came first
// (A published it at sA, B at sB, before the acknowledgements). B's report
// that acknowledges sA was made after B saw A's claim: if B had claimed by
// then, that report shows B's claim, so A saw B's claim, and one of them
// withdrew (list order) before starting: a contradiction; if B had not,
// B could not claim afterwards while A's claim showed in A's report, and
// A's reports show it until A halts P. Reports of one incarnation are
// applied in Seq order and only from the incarnation the view holds, so no
// older report of A can stand for a newer one. If A left the member set,
// B needs a takeover of A's incarnation: A has been fenced, or its
// watchdog has reset it (quorum guarantees that TakeoverAfter covers the
// watchdog deadline), and so has no package up; or A restarted, and its
// new incarnation, a member, reports that it stopped what the old one
// left. A takeover never covers an incarnation first seen after it.
//
// The randomised test (property_test.go) checks this, with an
// independent checker that watches the runners' true states, over random
// definitions, partitions, crashes, reports lost and delivered in any
// order, intents and failures; Unsafe.SkipAcks and Unsafe.SkipClear each
// let it find double starts (TestPlantedBugs).
//
// # Failover, planned move, partition
//
// Failover: A runs P and crashes. The survivors' views drop A; they place
// P on its next node B, which waits ("A left the cluster with it running
// and is not taken over yet"). The quorum coordinator fences A (or waits
// for its watchdog deadline) and allows the takeover; it publishes it in
// its report; B claims, the members acknowledge, B starts P with the
// takeover in the action. Cost on top of quorum's: two report exchanges.
//
// Planned move (`mtc move P --to B`, or failback, or drain): every node
// places P on B. A halts P (after what needs it); its runner reports
// halting, then halted. Only once B holds A's report showing P halted
// does B claim; once every member acknowledged, B starts. P is down from
// A's halt to B's start: the halt, three report exchanges and the start.
// The move is one-shot: it is done when P runs on B and leaves nothing
// behind (failback_policy automatic with switching enabled would move P
// back at once, so a move elsewhere is refused: `mtc disable P` first).
// B lists the intent in its report's Completed, so a node that never saw
// P running on B (P halted there again before its next report) ends the
// move too, and every node places P by the same rules afterwards. A move
// whose node is not a member of the view ends as well (it left the
// cluster, or never joined: the move is refused then), and P is placed by
// its policy: a move never keeps a package down waiting for a dead node.
//
// Partition: the side without quorum acts on nothing (its quorum machine
// stops its packages when it self-fences; its placement neither starts nor
// halts). The quorate side places the other side's packages on its own
// nodes and waits for the takeovers, which its quorum machine allows only
// after fencing or the watchdog deadline. When the partition heals, the
// returning nodes rejoin with new incarnations and run nothing until
// placed; failback_policy automatic brings packages back.
//
// # What the daemon provides (package daemon does all of it)
//
//   - Publish each Ready.Report at once and republish the latest with
//     every heartbeat; feed every peer's report (Received) as it arrives.
//     At 300 packages and 16 nodes a report lists at most 300 packages (a
//     package index and a state: 3 bytes each on the wire), 15 acks (17
//     bytes each), the marks and up to 32 takeovers: under 2 KB, which
//     fits a datagram but not the quorum disk slot's 256-byte payload; each
//     node also writes it to its report area of the quorum disk (16 KiB,
//     package diskhb), which shows what every node last ran. The encoding
//     is hbwire.Envelope (1.2 KB for 300 packages running on one node).
//   - Feed Local for every runner state change, truthfully: Halted only
//     when nothing of the package is up. A start that fails is reported
//     Failed (the machine then halts it, which is idempotent), not Halted,
//     or the node would retry it forever. A new daemon incarnation stops
//     every leftover of its predecessor before its first Local and
//     report, then feeds LeftoversStopped (also when there was nothing to
//     stop), which its report carries to the peers: until then its peers
//     wait for the old incarnation's takeover, and it claims nothing.
//   - Feed ViewChanged after every quorum Step whose status changed, and
//     TakeoversAllowed with every quorum Ready.Takeover.
//   - Keep intents and the Durable state in the quorum disk's state area,
//     written by a quorate node only, and feed every intent to every node
//     in ID order (repeats are ignored); pass the Durable read back at
//     start in Config.
//
// # Non-guarantees
//
//   - Dependencies across nodes (needs different_node or any_node,
//     excludes different_node or any_node) are checked against reports,
//     which may be a report exchange old when the start runs: a needed
//     package that fails at that moment, or two excluding packages started
//     at the same instant on two nodes, are corrected by the next step
//     (the lower-priority one halts), not prevented. On the same node they
//     are exact.
//   - Liveness: a package waits while any member has not reported, while
//     a departed node is not taken over, and while an operator mark or
//     intent keeps it down; the reasons are in the Waiting and Placed
//     decisions, in words an operator acts on.
package placement
