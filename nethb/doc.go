// Package nethb sends and receives MT-Cluster's network heartbeats: one
// authenticated UDP datagram per heartbeat interval from every node to every
// peer over every configured heartbeat network.
//
// # Wire format (version 1)
//
// All integers are big-endian. A packet is a fixed 60-byte header, an
// opaque payload of PayloadLen bytes, and a 32-byte HMAC-SHA256 tag computed
// under the cluster key over every byte before it.
//
//	offset  size  field
//	     0     4  magic "MTHB" (0x4d 0x54 0x48 0x42)
//	     4     1  version (1)
//	     5     1  network index: position of the heartbeat network in the
//	              configuration; a packet is only accepted on that network
//	     6     2  payload length in bytes (at most MaxPayload)
//	     8    16  cluster UUID
//	    24     4  sender node id
//	    28     8  incarnation: random, chosen once per daemon start
//	    36     8  sequence number: +1 per packet on this network, from 1
//	    44     8  configuration generation of the sender: a fingerprint
//	              of its cluster file (config.Cluster.Generation); a
//	              receiver drops packets of another generation
//	    52     8  view: bit i set when the sender hears node id i (ids 0-63)
//	    60     n  payload: the membership/quorum state the sender publishes
//	              (member set, epoch, flags) and its placement envelope
//	              (package hbwire), opaque to this package
//	  60+n    32  HMAC-SHA256(cluster key, bytes 0 .. 60+n-1)
//
// # Size and fragmentation
//
// The payload is at most MaxPayload (11,313) bytes: a membership heartbeat
// of 16 nodes (265 bytes) and the largest placement envelope
// (hbwire.MaxEnvelope). A packet fits one Ethernet frame (MTU 1500: at most
// 1,472 bytes of UDP data over IPv4, 1,452 over IPv6) while the envelope
// is small: at 16 nodes a node running 19 packages sends 726-byte packets.
// A report of many packages makes the datagram larger than one frame, and
// IP fragments it: a node of 16 running 300 packages sends 1,569-byte
// packets (two fragments), the largest possible packet is 11,405 bytes
// (eight fragments). A fragmented heartbeat is lost when any of its
// fragments is, so such a node's heartbeats are a little likelier to be
// lost; the heartbeat network must pass IP fragments (a firewall that
// drops them drops these heartbeats), or use jumbo frames.
//
// # Cluster key
//
// The key is a file of at least MinKeyLen random bytes, readable only by its
// owner (root, or the user running the daemon). Create it once and copy it
// to every node:
//
//	head -c 32 /dev/urandom > /etc/mtc/cluster.key
//	chmod 600 /etc/mtc/cluster.key
//
// LoadKey refuses a key file that others can read or write, naming the file
// and the chmod that fixes it.
//
// # Receive side
//
// A Receiver checks every datagram in this order and drops it when it is:
// malformed or truncated; from a foreign cluster (another UUID); forged
// (bad MAC); carrying our own id; of another configuration generation;
// from an unknown sender id; on the wrong network; replayed or old (same
// incarnation and a sequence number not above the highest accepted from that
// sender on that network, or an incarnation the sender has since replaced).
// A packet with a new incarnation is accepted and flagged so the caller can
// log the peer's restart.
//
// The checks run from the cheapest to the dearest: length, magic, version
// and cluster UUID are compared before the MAC is computed, and the MAC
// state is reused, so refusing a datagram allocates nothing.
//
// # Floods
//
// Whatever arrives, the receiver's memory and log stay bounded, and the
// peers' heartbeats keep their way in:
//
//   - ListenUDP binds, beside the socket that sends and receives from any
//     source, one socket per peer connected to that peer's address. The
//     kernel queues each peer's datagrams on its own socket, so a flood
//     from other addresses overflows only the shared queue. Recv serves
//     the peers first and takes at most 32 datagrams from the shared
//     socket between two looks at them, on the receiving thread itself
//     (poll and recvfrom, no allocation), and at most 20,000 a second
//     from it: no peer's heartbeat arrives there, so a flood costs the
//     receiving thread a bounded share of a CPU whatever its rate, and the
//     kernel drops the rest (Stats.QueueDrops, and in the drop log). A
//     flood that spoofs a peer's own address and port shares that peer's
//     queue: only the MAC tells them apart.
//   - Drops are counted per reason in fixed arrays, per configured peer,
//     and for at most MaxDropSources other source addresses (those with the
//     most drops); the rest are aggregated in Stats.OtherSources with an
//     estimate (a 4 KiB HyperLogLog sketch, within a few percent) of how many
//     distinct addresses they came from. Stats is therefore bounded by the
//     configuration: at most about 4 KiB of JSON plus a few hundred bytes
//     per peer.
//   - The drop log (ReceiverConfig.Log) writes the first drop of a reason
//     at once, with its cause, when that reason had no drops in the
//     previous interval, and otherwise one summary per interval
//     (DefaultDropLogInterval) such as "12,304 heartbeat packets dropped in
//     the last 10s: 12,300 with a bad MAC from about 9,811 sources (first
//     from 10.0.0.7), ...": at most one line per reason and one summary per
//     interval, whatever the rate.
//
// # Guarantees and non-guarantees
//
//   - An accepted packet was built by a holder of the cluster key, for this
//     cluster, and is newer than every packet accepted before from the same
//     sender incarnation on the same network.
//   - Packets are not encrypted: anyone on the heartbeat network can read
//     the membership state.
//   - The key authenticates the cluster, not the node: any node holding the
//     key can claim any node id. The key must be as well protected as root
//     on every node.
//   - Replay protection here is per receiver lifetime: a receiver refuses
//     what it has already seen (an old sequence number, or one of the last
//     RememberedIncarnations incarnations a sender replaced), and it knows
//     nothing from before its own start. A stream recorded earlier and
//     replayed to a receiver that started since, at its original pace,
//     passes every check of this package: it is authentic, its sequence
//     numbers rise, its incarnation is new to the receiver. Counters that
//     change over time do not tell it from the live sender. What stops such
//     a replay is the quorum core: a peer counts as alive on the network
//     only once its heartbeats echo this node's current incarnation and a
//     recent counter of ours, which no recording made before this
//     incarnation started can contain (see package quorum).
//   - Delivery is best effort: UDP may lose, duplicate or reorder packets;
//     duplicates and reordered packets are dropped as old.
package nethb
