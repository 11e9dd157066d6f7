// Package lvm activates and deactivates a package's LVM volume groups on
// one node, and moves their ownership between nodes safely.
//
// lvm2 is driven with argument vectors through the Runner interface, with
// LC_ALL=C, and read only through its JSON report format (`vgs
// --reportformat json`, `lvs --reportformat json`) or `lvmconfig
// --valuesonly`: never by scraping its human-readable output. Exec is the
// real Runner; Fake interprets the same argument vectors over an in-memory
// model of lvm2 (volume groups, their system IDs and tags, their logical
// volumes' activation) and renders it as text for golden tests.
//
// # Ownership
//
// Every package VG has at most one owner node. With Activation SystemID
// (the default) the owner is the VG's LVM system ID (lvmsystemid(7)): lvm2
// itself refuses to activate a VG whose system ID is another host's. With
// Activation Tags the owner is the VG tag naming a cluster node, and
// lvm.conf's activation/volume_list must admit only "@<this node>" (classic
// HA-LVM tagging); lvm2 enforces it only through that setting.
//
// Activate decides from the owner it reads:
//
//   - owned by this node: activate (idempotent);
//   - no owner: a clean halt released it; claim it and activate;
//   - owned by another cluster node that is live: refused
//     (ErrOwnedByLiveMember), whatever the caller holds;
//   - owned by another cluster node that is not live: taken over only with a
//     TakeoverProof for that node's last incarnation this node saw
//     (ErrNoProof otherwise, and always when it saw none);
//   - owned by a system ID no cluster node has: refused (ErrForeignOwner),
//     because nothing this cluster knows can prove that host is stopped.
//
// Deactivate deactivates the VG's logical volumes and releases ownership
// (clears the system ID, or removes this node's tag), so the next node
// claims it without a proof. A VG left owned by a node that crashed can be
// taken over only with the proof.
//
// Activate also disables the VG's autoactivation (`vgchange
// --setautoactivation n`, lvm2 2.03.12 and later), so that no boot-time or
// udev-triggered activation on any node can race the cluster.
//
// CheckConfig reports what lvm.conf must contain for this to hold, with the
// change that fixes each problem.
//
// What this package does not do: fence. A TakeoverProof is produced by the
// fencing layer after it has made sure the old owner can no longer write.
package lvm
