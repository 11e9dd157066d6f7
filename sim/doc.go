// Package sim is a seeded, deterministic discrete-event simulation of a
// whole MT-Cluster: 2 to 16 nodes, each running the real quorum state
// machine through quorum.Driver, over fakes of everything around it:
//
//   - clocks: one monotonic clock per node, with its own offset and a rate
//     within ±2% of the absolute clock (so two nodes differ by at most 4%,
//     inside config.MaxClockDrift);
//   - network: per-packet delay (occasionally a late, reordered packet),
//     loss, duplication, symmetric and one-way partitions;
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
//   - fencing: a fence request cuts the target's incarnation off the disk
//     after 50-300ms, when the history has fencing at all;
//   - packages: node i's package starts on i when it first holds quorum,
//     stops when the node stops its packages, moves on takeover.
//
// World.RunUntil processes events in time order (ties by insertion), so a
// seed replays exactly. RunHistory draws a history from a seed: the
// cluster forms, one to four random faults start and heal, then everything
// heals and the cluster must re-form. RunScript runs a scenario script on a
// noise-free cluster and returns its decision log (golden tests in
// testdata/). MeasureDetection times how fast survivors drop a dead node.
//
// Invariants, checked on the absolute clock as the history unfolds (see
// check.go): at most one partition holds quorum (two quorate nodes include
// each other); no takeover of a running, unfenced, unreset node's packages
// and no package on two such nodes; no fencing or takeover without quorum,
// packages stopped by the stop deadline; the cluster re-forms after the
// faults heal.
//
// Non-guarantees: the fakes model outcomes and orders, not the timing of
// real queues; a frozen VM's packages are taken as not running while it
// is frozen (its first step after resuming must stop them, which the
// checker verifies).
package sim
