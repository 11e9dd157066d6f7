// Package sim is a seeded, deterministic discrete-event simulation of a
// whole MT-Cluster: 2 to 16 nodes, each running the real quorum state
// machine through quorum.Driver, over fakes of everything around it:
//
//   - clocks: one monotonic clock per node, with its own offset and a rate
//     within ±2% of the absolute clock (so two nodes differ by at most 4%,
//     inside config.MaxClockDrift);
//   - network: per-packet delay (occasionally a late, reordered packet),
//     loss, duplication, symmetric and one-way partitions, deaf nodes
//     (receive nothing) and mute ones (send nothing), flapping links, and
//     a babbling node whose view changes with every heartbeat;
//   - quorum disk: one shared slot area and tie-break lock whose sectors are
//     encoded with diskhb's real format and the daemon's own mapping
//     (diskhb.SlotOfHeartbeat with hbwire's payload, diskhb.LockOfRecord);
//     per-node paths that fail (every I/O, or a fraction), hang (the I/O
//     completes late, when the path heals, or never), run slow, or land
//     torn or bit-flipped writes that fail the real CRC32C check and read
//     back as unknown; one I/O in flight per node, with the IOTimeout
//     deadline on the node's own clock and ErrBusy-style failures while an
//     I/O is stuck; a crashed node's in-flight write still lands;
//   - watchdog: resets the node WatchdogTimeout after its last feed on the
//     absolute clock, unless the whole VM is frozen;
//   - crash and restart (new incarnation; a reset node reboots after
//     rebootDelay), process pauses (the watchdog keeps counting) and VM
//     freezes (the watchdog stands still, the clock jumps on resume);
//   - storage with persistent reservations, when the history has fencing
//     (storage.go): a fence/prfake target holds the quorum LUN and a data
//     LUN, every incarnation reaches each over one or two paths of its own
//     (a start logs in new sessions: new I_T nexuses), and each node's
//     fencing component runs fence.Fencer, the daemon's code: Rejoin when
//     a node starts (its machine starts once every LUN is verified; a
//     failure that may pass is tried again as the daemon does,
//     fence.StartupRetry, and a final one exits the daemon, which its
//     service manager starts again 10 s later), and
//     Fence for every request, one at a time, fed back as the daemon does
//     (Fenced for a proof, FenceFailed, retried by the machine with
//     backoff, or a stop of the daemon on fence.ErrSelfFenced), and the
//     re-registration the machine asks for when a fence removed the key of
//     an incarnation that never held quorum (quorum.Ready.Rejoin: Rejoin
//     again, on the same worker, fed back as quorum.Rejoined; the rule is
//     the machine's, the simulation only runs the fencer), and the checks
//     of a node's own registration the machine asks for
//     (quorum.Ready.CheckRegistration: fence.Fencer.CheckRegistration, READ
//     KEYS on both LUNs, on an operation of its own beside the fence
//     worker, within the check's deadline, fed back as
//     quorum.RegistrationChecked; its commands' faults are drawn from a
//     stream of their own, so the fence commands' draws stay as they
//     were). The
//     fencer runs on a goroutine driven as a coroutine of the event loop:
//     each command executes at the target at a drawn instant and its reply
//     arrives after a further drawn delay, so the target serializes racing
//     commands of several nodes in their order of arrival; a reply later
//     than the per-command deadline (quorum.FenceTimeouts) is a timeout,
//     and the command may still execute after it. Faults drawn per history
//     from the storage's own random stream (so the other draws of a seed
//     stay as they were): slow commands, path failures, unit attentions,
//     replies lost after the command took effect, and a racing PREEMPT AND
//     ABORT of the same key by another node. Every slot and lock write
//     lands through the target, which refuses a write of an unregistered
//     nexus (EBADE, fed to the machine as quorum.IOFenced); each
//     incarnation's package writer writes the data LUN every half
//     heartbeat while it runs packages (also while its daemon is paused),
//     admitted at one instant and completed at a later one, so a PREEMPT
//     AND ABORT in between aborts it. Histories without fencing have no
//     persistent reservations: no fence completes and every write lands;
//   - the quorum machine's own packages: node i's package starts on i
//     when it first holds quorum, stops when the node stops its packages
//     (at once, or slowly or never under the slow-stop fault: it runs on
//     until the stop ends or the watchdog resets the node), moves on
//     takeover (the safety checker's rules 2 and 7 follow them);
//   - placement (pkg.go; every history but with HistoryOptions.NoPackages,
//     mtc sim --no-packages): every node runs the real placement.Machine
//     beside its quorum machine, over 1 to 8 package definitions drawn per
//     history from a stream of its own (lists of one to four nodes, both
//     failover policies, failback, priorities, auto_run, needs same_node
//     or any_node and exclusions), driven as placement's package doc asks
//     of the daemon: ViewChanged after every quorum step that changed the
//     status, TakeoversAllowed with every quorum takeover, Local for every
//     runner change, and each node's latest report carried by every
//     network heartbeat the simulation delivers (so reports are lost,
//     late, duplicated and reordered with them); see "Packages" below.
//
// World.RunUntil processes events in time order (ties by insertion), so a
// seed replays exactly. RunHistory draws a history from a seed: the
// cluster forms, one to four random faults of the kinds in FaultKinds
// start and heal, then everything heals and the cluster must re-form.
// Script and RunScript run scenario commands on a noise-free cluster and
// return the decision log (golden tests in testdata/, in the datadriven
// form: each command followed by its expected output). MeasureDetection
// times how fast survivors drop a dead node and how long they go without
// quorum; MeasureTakeover how long until a crashed node's packages may be
// taken over (in two-node clusters: the fence as arbiter against the
// tie-break lock).
//
// Two checkers judge every history, each from the configured timing
// (derived by the simulation itself, never read from the machines) and
// from what the simulation observed; a planted Bug may hand the machines
// a corrupted timing or break their driver, never the checkers' view.
// The safety checker (check.go): at most one partition holds quorum (two
// quorate nodes include each other, and no lease outlives the node's own
// disk); no package runs on two unfenced nodes, and a takeover waits until
// the victim is fenced (no registration of it left at the target) or its
// watchdog has certainly fired; no fencing or takeover without quorum
// (except the arbiter fence a node of a two-node cluster left alone may
// ask for, when the configuration has one); a node stops feeding its
// watchdog and starts stopping its packages by the stop bound the
// configuration implies (from its last quorum, or from the last instant a
// majority still published it as a member, by what it received:
// checkheld.go); the cluster re-forms after the faults heal; and,
// observed at the target, no write of a node is accepted after a survivor
// took over its packages (a re-registration that gave an incarnation
// which had held quorum its storage back would break it: the planted bug
// rejoin-when-armed); and no node holds quorum longer than the
// registration check's bound after the target removed a registration of
// it (rule 8: a driver that answers the checks without reading,
// registration-check-skipped, breaks it in the scenario
// testdata/late-fence-data-lun.txt). The
// liveness checker
// (liveness.go): in every fault window that leaves a connected majority,
// that majority holds quorum within R and keeps it, R derived from the
// configured timing, but for a transition of at most G (package
// quorum, "Transitions") each time a node outside it leaves or joins a
// member set, and a node that leaves twice or more in a row is
// re-admitted no sooner than the damping schedule of the configured
// timing allows (package quorum, "Damping"; a drop of a node still heard
// both ways counts half); a node whose
// disk path healed (a reservation command the storage failed, timed out
// or lost the reply of is a fault of that path) belongs to it from its
// first own write after the heal that completed, and a link the world
// cut delivers again from its first packet after the heal once its
// receiver has gone SuspectAfter without one; a node of the majority
// stays in it across a change of the fault pattern, in a transition or
// not; a node on its way to its reset is asked for nothing, but a clique
// with it as large as the largest connected majority still counts,
// without it, as one, so the contract does not choose between the two
// ends of a missing edge.
//
// # Packages
//
// Runners: one fake runner per package and machine, whose true state
// (down, starting, running, halting, failed, halt-failed; any but down
// has resources up) the package checker watches. A start or halt takes
// a time drawn per operation (up to a per-history maximum of 50ms to 2s);
// in one history in three a start fails (5%), a running service fails
// past its restart limit (5%) and a halt fails (3%, halt-failed: up
// until a reset), until the faults heal. A running package whose
// incarnation the target has cut off the data LUN fails (its I/O does).
// StopPackages (self-fence) halts every package of the node, dependents
// first, each halt taking its time (or the slow-stop fault's; a hung
// stop ends at the reset). A watchdog reset takes every runner down at
// once. A crash is the daemon's: the machine and its runners stay up
// until the crashed incarnation's watchdog deadline resets it, a fence
// cuts it off, or the next daemon's start-up stop halts them. That stop
// (dependents first, in the runners' times; it does not fail here) runs
// before the new daemon's quorum machine starts, and LeftoversStopped is
// fed as the machine starts: as package daemon does, the daemon stops
// leftovers before it first feeds the watchdog, so a stop that does not
// finish in time ends with the old watchdog's reset, which the
// survivors' watchdog-based takeovers count on. (The simulated daemon
// registers for fencing before that stop, the real one after it; every
// simulated incarnation logs in with new I_T nexuses, which give the
// leftovers no storage back, so the order changes the timing only.)
// A VM resumed from a freeze after its packages were taken over
// stops them at once, as the quorum packages (the non-guarantee below).
//
// Operator: from the cluster's formation to the end of the faults, at
// random instants (a quarter to one and a quarter FailureTimeout apart,
// one time in three a second command within a heartbeat), a random intent
// (run, halt, move, enable, disable, maintenance on and off, drain,
// undrain, clear). The quorate coordinator (the lowest-id member of a
// quorate view) commits intents one at a time: the next ID, a write of
// the state area through its disk path (failing with the path, past
// IOTimeout on a slow one, 3% at random, and refused by the target once
// its key is preempted; a generation check refuses a write when another
// coordinator committed meanwhile), acknowledged only once written; then
// sent to every node, again every heartbeat interval until it has it.
// A node feeds the intents in ID order, reading the state area for any
// it missed whenever its quorum status changes; a new incarnation starts
// from the Durable the coordinator wrote last (written whenever the
// coordinator's Ready carries one) and is fed every committed intent
// after it, before its first view. In one history in four the whole
// cluster restarts at the end (every machine reset at once, booting
// rebootDelay later): only the state area carries the operator's state
// across.
//
// The package checker (pkgcheck.go) derives its expectations from the
// true definitions, the acknowledged intents (interpreted by placement's
// documented rules, never by asking a machine), the runners' true states,
// and what the simulation knows of every machine (reset, fenced at the
// target, frozen):
//
//  11. No package is active on two machines at once, unless all but one
//     are fenced (the target holds no data-LUN registration of the
//     incarnation that started it, so its writes are refused), reset
//     (the watchdog's reset takes every runner down with it) or frozen
//     as a whole VM.
//  12. No acknowledged intent is lost: no ID is acknowledged twice, every
//     node is fed the intents in ID order, each the one acknowledged
//     under its ID, and once the faults have healed (and again after a
//     whole-cluster restart) every acknowledged intent is in the state
//     area and every node has had it or started from a Durable covering
//     it.
//  13. Every package that can run runs on exactly one node within B
//     after the cluster re-formed: not halted (auto_run, run, halt), not
//     in maintenance, switching enabled, no runner of it failed in the
//     history (failure marks follow, which only an operator clears), no
//     exclusion either way (priority decides which yields), some node of
//     its list not drained, what it needs not halted by an operator and
//     running (same_node: on a node of its list not drained), and no
//     pending move to a drained node.
//     B = 2 x (4E + L x (halt + start + 2E)), with E = 2 x
//     HeartbeatInterval + 3ms a report exchange (the next heartbeat, and
//     one more for one lost or late), L the levels of needs (1 + the
//     longest chain), halt and start the runners' maximum durations: one
//     exchange for every member's report after the re-form, per level a
//     halt and an exchange (dependents halt first), three exchanges for a
//     claim and its acknowledgements, per level a start and an exchange
//     (a dependent starts once what it needs runs); doubled, as a
//     liveness bound. No takeover is left to wait for once the cluster
//     has re-formed: every node is a member, a restarted one having
//     reported LeftoversStopped.
//  14. Dependency order on a machine: a package that needs Q on the same
//     node starts only while Q runs there, and Q begins to halt only
//     while the package is down there (a reset takes both at once).
//
// Planted bugs (plant.go) show each rule catching what it guards
// against: pkg-skip-clear, pkg-skip-acks (placement.Unsafe) and
// runner-halted-early (a runner that reports halted as its halt begins)
// break rule 11; intent-ack-before-write (a coordinator that acknowledges
// before its write landed) and pkg-skip-intents (a starting node's driver
// that takes the Durable it read for the whole state area) rule 12;
// pkg-drop-starts (a driver that loses
// node 1's starts) rule 13; pkg-ignore-needs (machines given the
// definitions without their needs) rule 14.
//
// Non-guarantees: the fakes model outcomes and orders, not the timing of
// real queues; a frozen VM's packages are taken as not running while it
// is frozen, and a package stop under way when it froze ends as it
// resumes (its first step after resuming must stop them, which the
// checker verifies); a takeover of a VM frozen since its last watchdog
// feed is not held to the watchdog's timing (the watchdog stood still
// with it: the documented non-guarantee of package quorum).
package sim
