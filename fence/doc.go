// Package fence cuts a failed node off the shared storage with SCSI-3
// persistent reservations, so that nothing of it can write before its
// packages start elsewhere, and proves it did.
//
// # Model
//
// Every node registers its Key on every path (I_T nexus) to every shared
// LUN, and one registrant holds a reservation of type Write Exclusive,
// Registrants Only (DefaultType): registered nexuses write, others only
// read. Fencing a node is a PERSISTENT RESERVE OUT, PREEMPT AND ABORT with
// the victim's key: the target removes every registration with that key
// (on every path of the victim at once), aborts the victim's queued
// commands, and from then on refuses its writes with RESERVATION CONFLICT,
// which reaches the victim's writers as EBADE.
//
// # Keys
//
// Key layout (see Key): 6 bytes of SHA-256 over the cluster UUID, a
// format byte (01), the node id. Stable across restarts, distinct between
// clusters, never zero. KeyOwner maps a key back to its node.
//
// # Algorithm
//
// Fencer.Unfence (on join, before any package starts, after every new
// session): TEST UNIT READY and REGISTER AND IGNORE EXISTING KEY on every
// path, RESERVE if nothing is held, read back and verify.
//
// Fencer.Rejoin is Unfence for a node that is joining and does no I/O yet:
// it first removes registrations of its key left by earlier sessions (a
// PREEMPT of its own key) and then requires the key exactly once per path.
//
// Fencer.Fence(victim): our key must still be registered (if not, this
// node was fenced itself: ErrSelfFenced, and it must stop, never
// re-register), PREEMPT AND ABORT the victim's key on a path device, RESERVE
// if nothing is held, then verify on each LUN that the victim's key is gone
// and a reservation of the configured type is held by a registered key of
// this cluster. Only then does it return a Proof. Two survivors fencing
// each other are serialized by the storage: the second preempt comes from a
// nexus that is no longer registered and meets RESERVATION CONFLICT.
//
// Fencer.CheckRegistration: READ KEYS on every LUN (PR IN only, through
// the first path that answers) and, per LUN, how many registrations hold
// our key. A fence removes every registration of the victim's key at
// once, so a count of 0 on a LUN that answered means a peer fenced this
// node there; a LUN no path can read is unknown (Registration.Err), never
// gone. The daemon runs it as the membership machine asks (package
// quorum, "Registration checks"): a node whose key a late fence removed
// from a LUN it does not write itself (a data LUN) would otherwise go on
// as a member whose packages the storage refuses.
//
// Unfence, Rejoin and Fence fail closed: every error is an *Error naming
// the operation, LUN, path and step and wrapping a sentinel
// (ErrSelfFenced, ErrVerify, ErrForeignReservation, ErrBadRequest, or a
// command error: ErrReservationConflict, ErrUnitAttention,
// ErrNotSupported, ErrPath, ErrTimeout). Every command has a deadline
// from the context. A starting daemon tries its Rejoin again after a
// failure that may pass (a path failure, a timeout, a unit attention, a
// state that did not verify) as StartupRetry says, and refuses to join
// after the last try or any other failure.
//
// # Backends and paths
//
// Path is the narrow interface the algorithm runs over. SCSIPath issues
// commands over SG_IO (fence/scsi), blockPath over the block layer's PR
// ioctls (fence/blkpr, for NVMe namespaces; without the kernel's PR read
// ioctls a LUN cannot be verified and fencing it fails closed), and
// fence/prfake's ports are an in-memory target for tests and the
// simulation. OpenPath chooses per device; OpenLUN expands a device-mapper
// device into its path devices (PathDevices, via /sys/block/dm-N/slaves),
// because SG_IO on a dm device reaches one path only and PREEMPT AND ABORT
// through dm is not reliably passed on with its abort.
//
// # Not guaranteed
//
// A command that failed with ErrPath or ErrTimeout may still have taken
// effect at the target; the algorithm reads state back rather than trusting
// replies. Fencing protects only LUNs it was given and only against nodes
// that are registered through the same target; a host outside the cluster
// with access to the LUN can still read it (type 5 allows reads). Retrying
// with backoff and reporting a pending fence belong to the caller.
package fence
