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
// completed quorum-disk requests (one disk goroutine running diskhb.Rounds,
// the disk heartbeat that `mtc bench disk` and the lab also run: at most
// one I/O in flight, each with its own io_timeout deadline), status
// requests, and timer ticks at the time the machine asked for. The loop
// steps the machine with the local monotonic time and performs its
// actions at once: send heartbeats, start the next disk request, feed the
// watchdog, stop packages, log decisions.
//
// A status request is answered by the loop after it has stepped the
// machine to that moment, so an answer is true when it is given (a node
// resumed after a freeze longer than its timeouts does not report its old
// quorum). Per-peer liveness, the reason for not holding quorum and the
// reason for a self-fence are the machine's (quorum.Status), never
// recomputed here. Every decision, stop, fencing request and takeover in
// the log and the status carries the local monotonic time since the
// daemon started ("mono" in the log, at_ns in the status) and the
// wall-clock time (the log line's time, "time" in the status), so the
// histories of several nodes can be merged by wall clock while each
// node's decisions stay ordered by its own monotonic clock. The status
// answer is bounded: every list is a ring of at most 64 entries and the
// network's per-source drop counters show the 31 busiest sources and the
// rest summed.
//
// Before its first slot write the daemon watches its slot for the disk
// header's failure_timeout plus a heartbeat interval and refuses to start
// (diskhb.ErrNodeIDInUse, naming the node id) when another daemon writes
// it; while running, a foreign write found over its slot is a conflict:
// logged at error level, counted and shown in the status, and its own
// writes stop counting, so it self-fences (see package diskhb).
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
// initialised with `mtc disk init`, and a watchdog, armed at the machine's
// first FeedWatchdog: right after the slot watch and the confirmation that
// nothing an earlier incarnation of this node started still runs (the
// start-up StopAll), not at first quorum: a node that cannot write its slot for
// failure_timeout stops feeding it and is reset even before it first
// holds quorum, so a node cut off its disk comes back with a new
// incarnation. [watchdog] mode "device" opens /dev/watchdog at that first
// feed; "process" starts `mtc
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
// Under systemd (dist/systemd/mtc.service, Type=notify) the daemon speaks
// sd_notify through Options.Notify: READY=1 once, when the node first holds
// quorum or has waited DeadAfter since its event loop began (it has then
// heard every live peer, so it has joined or knows it cannot yet);
// STATUS= with a one-line state whenever it changes ("quorate, members
// ..."; "not quorate: why"; "self-fenced: why"); WATCHDOG=1 from the event
// loop every Options.NotifyWatchdog (a third of WatchdogSec), so a hung
// loop stops the pings; STOPPING=1 when an orderly shutdown begins.
//
// Metrics (`mtc daemon --metrics-listen ADDR`, ServeMetrics): Prometheus
// series under mtc_: quorum, membership and epoch, each peer's state,
// membership and path ages, heartbeat and quorum-disk counters, the
// watchdog's feeds, fenced LUNs by method, decisions by kind; histograms of
// quorum-disk request time, heartbeat gaps per peer and network (buckets in
// multiples of heartbeat_interval, and SuspectAfter and DeadAfter), and
// fence attempts by outcome. The state is read from one Status at scrape
// time, so a scrape agrees with `mtc status`.
//
// # Guarantees and non-guarantees
//
//   - Every decision is the quorum machine's; this package adds none.
//   - A node that must self-fence stops its packages first and then stops
//     feeding the watchdog; the watchdog then fires at watchdog_timeout
//     whether or not the packages stopped in time.
//   - An orderly shutdown (Run's context ends) asks the packages to stop
//     and keeps the node running — heartbeats, disk rounds, watchdog feeds
//     — until PackageStopper confirms every package stopped; only then is
//     the watchdog disarmed. A stop that fails, a self-fence meanwhile, or
//     a node already self-fencing leaves the watchdog armed, and it fires;
//     so does an error return.
//   - Fencing (package fence): after the slot watch and the start-up stop
//     of whatever an earlier incarnation left running (registering opens
//     the host's storage to those leftovers too, and a peer may have
//     fenced their incarnation and taken its packages over), and before
//     its first slot write, the node registers its key on every fenced LUN (the
//     quorum disk and [fence] luns, or the node's fence_luns). A LUN with
//     PR support that cannot be registered stops the start; a node whose
//     LUNs have no PR at all runs without fencing. A fence the machine
//     asks for runs on a worker, one at a time, every PR command with its
//     own deadline (the longer of 2 io_timeout and failure_timeout, one
//     attempt at most TakeoverAfter); quorum.Fenced is fed only with a
//     proof verified on every fenced LUN, and only when every fenced LUN
//     has PR, else the takeover waits for TakeoverAfter, when the lost
//     node's watchdog has certainly fired. A failure is quorum.FenceFailed
//     (no takeover; the machine retries with backoff; the status shows
//     "fence pending: why"). A fence that finds our own key gone, and a
//     slot write refused with EBADE, mean a peer fenced this node: it
//     stops at once with the watchdog armed, except when the machine asks
//     to register again (quorum.Ready.Rejoin: the node never held quorum
//     in this incarnation, the start-up StopAll confirmed that nothing of
//     an earlier incarnation runs, and no member set it computed held a
//     peer; see the quorum package, Re-registration after a fence): then
//     the fence worker runs fence.Fencer.Rejoin on every LUN, as at start,
//     and the node goes on, at most quorum.MaxRejoins times per
//     incarnation. The registration checks the machine asks for
//     (quorum.Ready.CheckRegistration, every quorum.RegistrationTimeouts
//     period and that long after a re-registration: a late fence may
//     remove the key from a data LUN, which no slot write shows) run on a
//     worker of their own beside the fence worker: READ KEYS on every LUN
//     with PR (fence.Fencer.CheckRegistration), within the check's
//     deadline, and a check still stuck in the kernel one command deadline
//     past it is reported failed rather than waited for. The outcome is
//     fed back as quorum.RegistrationChecked: a LUN that answered without
//     our key is gone (the machine stops the node as fenced by a peer, or
//     has it register again), a LUN no path could read is unknown, never
//     gone; the status shows the last check (fencing.registration). In a
//     two-node cluster the
//     higher-id node starts its first fence of a peer one command
//     deadline late, so that the two survivors of a split never send
//     PREEMPT AND ABORT to a LUN at the same instant (which has soft-locked
//     a real target); the storage decides who wins.
//   - Packages (placement.go, intents.go): with Options.Packages, the
//     placement machine (package placement) runs on the same event loop,
//     fed the view after every membership step, the takeovers the
//     coordinator's membership machine allowed, this node's runner states
//     and the peers' reports. Its starts and halts go to the
//     PackageManager, which runs this node's packages (pkgrun) one
//     operation at a time per package on a goroutine of its own (a halt
//     cancels a start in progress; StopAll halts those that need others
//     first). It is the node's PackageStopper, so the self-fence and
//     shutdown paths halt real packages. A start carries the fencing
//     proofs this node made for the takeovers it relies on (a volume
//     group is taken over only with one). Every decision this package
//     adds to placement's is a refusal: it never places a package itself.
//   - Reports: each node's latest placement report, the ID of the last
//     operator intent it applied and (on the coordinator) the committed
//     intents a member still lacks travel in an envelope
//     (hbwire.Envelope) inside every network heartbeat; each node also
//     writes it to its report area on the quorum disk when it changed.
//   - Intents (control command "intent", `mtc run|halt|move|...`): the
//     node that receives one checks its names, then forwards it over the
//     control channel to the coordinator, the lowest-id member of the
//     quorate view. The coordinator refuses it, committing nothing, when
//     the package is in maintenance or placement would reject it now
//     (a clone of its machine is stepped with it: placement's reason is
//     the answer); otherwise it gives it the next ID and commits it by
//     writing the cluster state area (diskhb.Disk.WriteState: the
//     placement.Durable operator state and the newest 64 intents, as
//     JSON {"v":1,...}) before it applies it, relays it or answers. An
//     acknowledged intent therefore survives the loss of any node and a
//     restart of the whole cluster: every daemon reads the state area at
//     start (Durable into placement.Config, the intents after it applied
//     in order), and a node that becomes the coordinator reads it again
//     before it commits anything. The answer waits, up to the caller's
//     wait, for the goal: run and move, the package runs where asked;
//     halt, it is halted everywhere; drain, nothing runs on the node.
//     Without quorum nothing is committed (CodeNotQuorate). A quorum disk
//     of the earlier format, without a state area, refuses intents with
//     diskhb.ErrNoStateArea's advice.
//   - An orderly shutdown halts this node's packages and then sends two
//     more heartbeats, so that its peers read its report (nothing up)
//     and start the packages without waiting for its takeover.
//   - Nothing here keeps a hung kernel from writing: that is the hardware
//     watchdog's and fencing's job.
package daemon
