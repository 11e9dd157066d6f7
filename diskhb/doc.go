// Package diskhb is MT-Cluster's quorum disk: the on-disk format of the
// shared LUN, deadline-bounded direct I/O to it, and the disk heartbeat
// with which every node proves it is alive independently of the network.
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
//
// N is the slot count (16 by default, at most 64). A 16-slot disk needs
// 384 sectors: 192 KiB with 512-byte sectors, 1.5 MiB with 4096-byte ones.
//
// Every record begins with the same 32-byte prelude:
//
//	off len field
//	0   8   magic: "MTCQHDR1" header, "MTCQSLT1" slot, "MTCQLCK1" lock,
//	        "MTCQMSG1" message
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
// sign of life. Each writer reads its own slot back every round, so a write
// that the device acknowledged but that was lost or torn counts as failed
// (ErrWriteVerify), and a second daemon writing with the same node id is
// detected (ErrSlotConflict).
//
// # Liveness
//
// A peer is alive on the disk path only while its (incarnation, sequence)
// pair changes, judged on the reader's own monotonic clock (Tracker); the
// writer's wall-clock timestamp is for display only and is never compared.
// States go unknown -> live -> suspect (SuspectAfter) -> dead (DeadAfter
// without a change, covered by the reader's own successful reads: a reader
// whose I/O fails learns nothing and judges nobody dead). A new incarnation
// (the daemon restarted) and a change after death (a node that froze and
// came back) are reported.
//
// # I/O
//
// Device gives each I/O a deadline with at most one I/O in flight per
// device: on a block device the caller submits it with Linux AIO and waits
// in io_getevents until its deadline (as sanlock does); elsewhere one
// goroutine per device issues the I/Os. A hung LUN becomes ErrTimeout at the
// deadline and then ErrBusy until the stuck I/O returns; callers never
// block past their deadline. Writes are one sector each, with O_DIRECT and
// aligned buffers. EBADE from the kernel (a SCSI reservation removed our
// key) is ErrFenced, distinct from ErrIO.
//
// Not guaranteed: a write that timed out may still land later; a timeout is
// not a fence. The heartbeat judges liveness; it does not decide membership,
// quorum or fencing (package quorum does).
package diskhb
