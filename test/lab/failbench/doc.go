// Package failbench holds what the failover benchmarks share: the host's
// (test/integration, BenchmarkNetnsFailover, daemons in network
// namespaces on loop devices) and the QEMU lab's (test/lab/guest,
// TestFailoverPR, the same daemons on an iSCSI SAN with persistent
// reservations). Both crash a node the same way and watch the VIP with
// the same observer, so their figures compare:
//
//   - Prober, the observer: a TCP connection to the VIP from a namespace
//     of its own every few milliseconds, each answer recorded (a refusal or
//     an accept: some node holds the address; a line: the service);
//   - Crash, the crash: the node's link down (the crash instant), its
//     filesystem stopped without flushing its journal (ShutdownFS), every
//     process of its namespace killed (KillNetNS), its VIP removed; LinkUp
//     and HasAddr for its restart and for finding the VIP;
//   - Proc, a node's software (a daemon, keepalived, a Pacemaker node)
//     in a process group of its own: killed as a crash, stopped as an
//     operator stops it;
//   - Settle, the wait before a crash until the cluster is stable with
//     the package on one node (StableOwner, over the daemons' statuses),
//     restarting a daemon that ended meanwhile and recording the incident;
//   - Run and Timeline, one crash measured: the new owner's failover
//     timeline read from its status (ReadTimeline) and the observer's
//     first answer; Trials, the loop of a case (settle, crash, measure,
//     restart, give up after failovers in a row that do not complete);
//   - Section, a case's part of the report: the counts, the tables of
//     times and phases (Row, Col), the start plan's steps, what did not
//     complete and the incidents; Pct, Sec and Quantiles, its cells.
//
// It is test code: it needs root and the namespaces the benchmarks make.
package failbench
