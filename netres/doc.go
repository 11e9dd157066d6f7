// Package netres manages a package's network resources on one node: its
// addresses (virtual IPs), its routes, and the neighbour announcements that
// move traffic to this node when an address arrives.
//
// Every kernel operation goes through the narrow OS interface. Linux (see
// NewLinux) implements it with a vishvananda/netlink handle bound to one
// network namespace, and with mdlayher/arp, ndp and packet sockets opened in
// that namespace; Fake keeps the same state in memory and renders it as the
// `ip` commands that would rebuild it, for golden tests.
//
// What Manager guarantees:
//
//   - AddAddress and RemoveAddress, AddRoute and RemoveRoute are idempotent:
//     repeating one after a crash or a partial run does nothing more.
//   - An IPv4 address is added only after an ARP probe (RFC 5227, section
//     2.1.1) that nobody answered; a reply, or another host's probe for the
//     same address, is a *ConflictError naming the hardware address that
//     claimed it, and the address is not added.
//   - After adding an IPv4 address, Announce sends gratuitous ARP requests
//     (RFC 5227 announcements: sender and target are the address), Count of
//     them Interval apart (5 x 200 ms by default, as IPaddr2's send_arp);
//     the first before Announce returns, the others in the background,
//     stopped when the address is removed.
//   - An IPv6 address is added with duplicate address detection: AddAddress
//     waits until the kernel clears its tentative flag and fails, removing
//     it, when the kernel marks it dadfailed. Announce sends unsolicited
//     neighbour advertisements to all-nodes with the override flag set (RFC
//     4861, section 7.2.6), so neighbours replace a cached link-layer
//     address.
//
// What it does not guarantee: the probe cannot see a holder that does not
// answer ARP (a host that is down, or filtered); it proves only that nobody
// on the segment claimed the address while we listened. The probe timings are
// shorter than RFC 5227's (PROBE_NUM 3, 1-2 s apart) because a failover is
// measured in seconds; they are configurable (ProbeConfig).
//
// Watcher reports a lost link (carrier down, link removed) on the
// interfaces a package uses, from a netlink subscription in the same
// namespace.
package netres
