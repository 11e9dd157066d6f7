// Package diskhb is MT-Cluster's quorum disk: the on-disk format of the
// shared LUN, deadline-bounded direct I/O to it, and the disk heartbeat
// rounds with which every node proves it is alive independently of the
// network.
//
// # Layout
//
// All positions are in logical sectors (LBAs) of the device's logical sector
// size S, 512 or 4096 bytes (read with BLKSSZGET). Every sector the format
// owns starts with a magic and ends with a CRC32C (Castagnoli) of the rest,
// and has exactly one writer, so no two nodes ever write the same sector —
// except the lock area, whose protocol tolerates several writers.
//
//	LBA                      sectors   area
//	0                        1         header (written by `mtc disk init` only)
//	1-7                      7         zero, reserved for the header
//	8-15                     8         lock area: index 0 is the tie-break lock,
//	                                   the rest reserved for disk-based fencing
//	16-63                    48        config area, reserved for distributing
//	                                   the cluster configuration
//	64 .. 64+N-1             N         slots: node id k owns LBA 64+k-1
//	64+N .. M-1              -         zero (up to the next multiple of 64)
//	M = 64+roundup(N,64)     N*N       messages: sector M+(to-1)*N+(from-1)
//	                                   is written only by node `from`, for `to`
//	T = roundup(M+N*N,64)    2*64KiB   cluster state, two copies (state.go)
//	T+2*64KiB/S              N*16KiB   node reports: node k's at
//	                                   T+2*64KiB/S+(k-1)*16KiB/S, written by k
//
// N is the slot count (16 by default, at most 64). A 16-slot disk needs
// 1152 sectors: 576 KiB with 512-byte sectors, 1.9 MiB with 4096-byte ones.
// Disks formatted before the cluster state and report areas existed end
// after the messages (384 sectors at 16 slots) and still work for
// heartbeats; ReadState says what they lack (ErrNoStateArea). The state
// and report areas hold multi-sector records: see Record and ReadState.
//
// Every record begins with the same 32-byte prelude:
//
//	off len field
//	0   8   magic: "MTCQHDR1" header, "MTCQSLT1" slot, "MTCQLCK1" lock,
//	        "MTCQMSG1" message, "MTCQSTA1" cluster state, "MTCQRPT1" report
//	8   4   format version (1), little endian like every integer here
//	12  4   sector size the record was written for
//	16  16  cluster UUID
//	...     record fields (see Header, Slot, Lock and Message)
//	S-4 4   CRC32C of bytes [0, S-4)
//
// The header stores the cluster UUID, the geometry and the four timing
// bases; a node whose configuration disagrees refuses to join (Open).
//
// # Reading rules
//
// A record that fails any check — no magic, bad checksum (a torn or
// corrupted write), another format version, another cluster, a record of
// another node in this node's slot — decodes as an error that says which.
// Its contents are unknown: never a free lock, never an empty slot, never a
// sign of life. A peer's slot written under another configuration
// generation (config.Cluster.Generation), or whose heartbeat payload
// (package hbwire) does not decode, is unknown too; the reader counts it
// and logs it, as the network path drops packets of another generation.
//
// # The disk heartbeat
//
// Rounds performs the membership machine's disk requests (package quorum
// decides; this package does the I/O): the daemon, `mtc bench disk` and
// the lab run this one implementation (Member drives the machine with it
// when there is no network). A round is:
//
//	I/O                          when                       deadline
//	write own slot               every heartbeat interval   io_timeout
//	read every slot (one I/O)    right after the write      io_timeout
//	read the tie-break lock      right after                io_timeout
//	write the tie-break lock     only while claiming or     io_timeout
//	                             renewing it
//	read own slot back           before a write, only after io_timeout
//	                             a round shorter than a
//	                             quarter heartbeat, at most
//	                             once per heartbeat
//
// Each I/O has a deadline of its own (time spent waiting for a stuck
// earlier I/O counts against it), so a round takes at most 3 x io_timeout,
// one more with a lock write and one more with the read-back; the
// read-back is only done after a round shorter than a quarter heartbeat,
// so it never lengthens a round on a disk that is already slow. The
// machine issues the next write at the first heartbeat after the round
// ends and times its own liveness (SelfFenceAfter) from the issue of its
// last successful write: with every I/O taking L, writes are issued about
// max(heartbeat_interval, 3L rounded up to a heartbeat) apart, and the
// next one must complete within failure_timeout of the last one's issue.
// A lock read that fails leaves the lock unknown; the slots read just
// before still count.
//
// Our own slot is checked in every slot-area read and by the read-back
// before a write, which sees whatever was written over it during the
// whole interval since our last write: a write the device acknowledged
// but that did not land (ErrWriteVerify) makes the next write count as
// failed; a record of another incarnation (ErrSlotConflict: a second
// daemon with this node id) is logged at error level and counted, and for
// failure_timeout after the last one seen our writes count as failed, so
// both writers self-fence rather than share a slot. Before its first
// write a daemon watches its slot for the header's failure_timeout plus a
// heartbeat interval (WatchSlot) and refuses to join, with ErrNodeIDInUse,
// when it changes.
//
// # Liveness
//
// A peer is alive on the disk path only while its (incarnation, sequence)
// pair changes, judged on the reader's own monotonic clock (package
// quorum/liveness, run by the membership machine); the writer's
// wall-clock timestamp is for display only and is never compared.
//
// # I/O
//
// Device gives each I/O a deadline with at most one I/O in flight per
// device: on a block device the caller submits it with Linux AIO and waits
// in io_getevents until its deadline (as sanlock does); elsewhere one
// goroutine per device issues the I/Os. A hung LUN becomes ErrTimeout at the
// deadline; the next I/O waits for the stuck one within its own deadline
// and fails with ErrBusy if it has not returned by then, so a stall a
// little longer than io_timeout fails one I/O, not the round after it;
// callers never block past their deadline. Writes are one sector each,
// with O_DIRECT and aligned buffers. EBADE from the kernel (a SCSI
// reservation removed our key) is ErrFenced, distinct from ErrIO.
//
// Not guaranteed: a write that timed out may still land later; a timeout is
// not a fence. This package decides nothing: membership, quorum,
// liveness and fencing are package quorum's.
package diskhb
