// Package daemon runs one MT-Cluster node: it ties the membership and
// quorum state machine (package quorum) to its operating-system edges —
// the network heartbeat (nethb), the quorum disk (diskhb), the watchdog
// (watchdog) and the package manager (PackageStopper) — and answers a
// JSON status on a local unix socket.
//
// # Structure
//
// One event loop owns the machine. Events reach it on channels: accepted
// network heartbeats (one receive goroutine per heartbeat network),
// completed quorum-disk I/O (one disk goroutine, at most one I/O in flight,
// each bounded by io_timeout) and timer ticks at the time the machine asked
// for. The loop steps the machine with the local monotonic time and
// performs its actions at once: send heartbeats, start the next disk I/O,
// feed the watchdog, stop packages, log decisions.
//
// With Options.Realtime the process locks its memory (mlockall) and the
// loop, disk and receive goroutines run on their own OS threads with
// SCHED_RR priority, as corosync and sbd do; when the system refuses, the
// daemon logs why and runs on. The diskhb.Device's own I/O goroutine is not
// raised: its I/O is bounded by deadlines, not by scheduling.
//
// # Running
//
//	mtc daemon --config /etc/mtc/cluster.toml --node alpha
//	mtc status                      # the only daemon's socket in /run/mtc
//	mtc status --config FILE --json # by cluster name, raw JSON
//
// The daemon needs the cluster key (see package nethb), its quorum disk
// initialised with `mtc disk init`, and a watchdog: [watchdog] mode
// "device" opens /dev/watchdog when the node first holds quorum (a node
// that never joins is never reset); "process" starts `mtc
// watchdog-supervise`, which kills the daemon's process group (the daemon
// makes itself a group leader first) and survives the daemon being frozen;
// "none" needs allow_none and warns at start and every minute. Run it as
// root, or with CAP_SYS_NICE, CAP_IPC_LOCK and an unlimited RLIMIT_MEMLOCK
// (systemd: LimitMEMLOCK=infinity), so that memory locking and real-time
// threads work. SIGTERM or SIGINT shut it down in order.
//
// The status socket (default /run/mtc/<cluster>.sock, --socket to change)
// answers every connection with one JSON Status and closes it.
//
// # Guarantees and non-guarantees
//
//   - Every decision is the quorum machine's; this package adds none.
//   - A node that must self-fence stops its packages first and then stops
//     feeding the watchdog; the watchdog then fires at watchdog_timeout
//     whether or not the packages stopped in time.
//   - An orderly shutdown (Run's context ends) stops packages and disarms
//     the watchdog, except on a node already self-fencing, whose watchdog
//     stays armed and fires; an error return leaves the watchdog armed.
//     Disarming right after PackageStopper.StopAll relies on StopAll having
//     stopped the packages (the recording stopper has none to stop).
//   - Fencing and placement are separate components: a fencing request or
//     an allowed takeover is logged and shown in the status; until a
//     fencing agent reports success, peers' packages wait for
//     TakeoverAfter, when the lost node's watchdog has certainly fired.
//   - Nothing here keeps a hung kernel from writing: that is the hardware
//     watchdog's and fencing's job.
package daemon
