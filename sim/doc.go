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
//     failure exits the daemon, which starts again a second later), and
//     Fence for every request, one at a time, fed back as the daemon does
//     (Fenced for a proof, FenceFailed, retried by the machine with
//     backoff, or a stop of the daemon on fence.ErrSelfFenced), and the
//     re-registration the machine asks for when a fence removed the key of
//     an incarnation that never held quorum (quorum.Ready.Rejoin: Rejoin
//     again, on the same worker, fed back as quorum.Rejoined; the rule is
//     the machine's, the simulation only runs the fencer). The
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
//   - packages: node i's package starts on i when it first holds quorum,
//     stops when the node stops its packages (at once, or slowly or never
//     under the slow-stop fault: it runs on until the stop ends or the
//     watchdog resets the node), moves on takeover.
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
// configuration implies; the cluster re-forms after the faults heal; and,
// observed at the target, no write of a node is accepted after a survivor
// took over its packages (a re-registration that gave an incarnation
// which had held quorum its storage back would break it: the planted bug
// rejoin-when-armed). The
// liveness checker
// (liveness.go): in every fault window that leaves a connected majority,
// that majority holds quorum within R and keeps it, R derived from the
// configured timing, but for one transition of at most G (package
// quorum, "Transitions") per member outside it that leaves; a node whose
// disk path healed belongs to it from its first own write after the heal
// that completed.
//
// Non-guarantees: the fakes model outcomes and orders, not the timing of
// real queues; a frozen VM's packages are taken as not running while it
// is frozen, and a package stop under way when it froze ends as it
// resumes (its first step after resuming must stop them, which the
// checker verifies); a takeover of a VM frozen since its last watchdog
// feed is not held to the watchdog's timing (the watchdog stood still
// with it: the documented non-guarantee of package quorum).
package sim
