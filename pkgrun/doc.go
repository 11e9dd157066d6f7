// Package pkgrun starts and halts one package on this node as an ordered,
// reversible plan of idempotent steps.
//
// The start plan, in order (Plan builds it from a Spec):
//
//	proof VG         for every VG owned by another node: a fencing proof for
//	                 that node covering the VG's PVs must be given (and a
//	                 live owner refuses)
//	activate VG      claim or take over the VG, disable autoactivation, activate
//	mount MP         fsck per policy, mount
//	address A        RFC 5227 probe (IPv4) or DAD (IPv6), add
//	route R          add (after the addresses: a gateway is reached through them)
//	announce A       gratuitous ARP / unsolicited neighbour advertisements
//	                 (the first before the step ends, the rest in the background)
//	pre_start        the script
//	service S        start under supervision
//	post_start       the script
//
// Every step can be repeated: it checks what is there before it changes
// anything, so starting a package that is partly or wholly up (after a crash
// of the daemon, or twice) completes it without disturbing what runs.
// Scripts are run again on a repeated start and must be idempotent, as OCF
// agents must be. A command service is recognised as running only by the
// supervisor that started it: a runner restarted after a crash does not
// adopt the processes of its predecessor (an OCF agent's own start and
// monitor do find them).
//
// Halting runs pre_stop, then the undo of every start step in reverse
// order (services stopped, routes and addresses removed, filesystems
// unmounted, VGs deactivated and released), then post_stop. A start step
// that fails or times out rolls back, in reverse, every step done so far.
// Undo steps are all attempted even when one fails; if any fails the
// package is HaltFailed: its resources cannot be proven released, the error
// wraps ErrNodeMustReset, and the package must not start on another node
// until this one is reset (or fenced).
//
// Start never takes a VG over from another node without a fence.Proof for
// that node's last incarnation covering the VG's physical volumes (see
// package lvm), and only fence.Fencer.Fence makes one: the zero Proof
// counts for nothing. A start run by hand outside the cluster (as
// crm_resource --force-start) passes none, so it can start a package whose
// VGs are unowned or already this node's, and is refused for any other.
//
// Each step is logged when it starts and ends, with its outcome and
// duration; the package keeps the timelines of its last start and last halt
// (LastStart, LastHalt).
//
// Spec is the resolved package definition the runner consumes: the package
// file's decoding and validation (and defaults) belong to the configuration
// layer, which fills a Spec.
package pkgrun
