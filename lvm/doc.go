// Package lvm activates and deactivates a package's LVM volume groups on
// one node, and moves their ownership between nodes safely.
//
// lvm2 is driven with argument vectors through the Runner interface, with
// LC_ALL=C, and read only through its JSON report format (`vgs
// --reportformat json`, `lvs --reportformat json`) or `lvmconfig
// KEY` (lvm.conf's own NAME=VALUE syntax): never by scraping its
// human-readable output. Exec is the
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
//     fence.Proof for that node (by its node id, Members.NodeID) and its
//     last incarnation this node saw (ErrNoProof otherwise, and always when
//     it saw none), whose LUNs cover every physical volume of the VG
//     (ErrProofDoesNotCover otherwise);
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
// # Fencing proofs
//
// Activate and CheckTakeover take []fence.Proof. A Proof with content is
// made only by fence.Fencer.Fence, after it has verified on every LUN that
// the victim's registration is gone; the zero Proof is not Valid and never
// counts. So code that has not fenced cannot take a VG over: there is no
// other value to pass.
//
// Coverage is decided by device number (Devices; SysDevices reads stat(2)
// and sysfs): lvm2 reports the VG's PVs (`pvs --reportformat json
// --foreign`), and each must be a LUN of a counting proof or a device
// under one (a path of a multipath map), or be built only on covered
// devices (a partition of a fenced LUN, a linear map over one). Proofs
// about the same node and incarnation add up, so a VG spanning LUNs fenced
// in two calls is covered. A PV lvm2 reports as "[unknown]", a device that
// cannot be identified, or a LUN fenced through one of its paths while the
// PV is a multipath map over that path and others (device numbers cannot
// show that those paths reach one logical unit) is not covered: the
// takeover fails closed. Give Fence the same device names the PVs are on
// (the multipath maps), as fence.OpenLUN expects.
//
// What this package does not do: fence.
package lvm
