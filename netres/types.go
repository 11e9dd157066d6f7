package netres

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Address is one address a package owns: a virtual IP with its prefix
// length, put on Interface, or on the interface that already carries an
// address inside Subnet when Interface is empty.
type Address struct {
	// Prefix is the address and its prefix length, e.g. 10.0.0.50/24 or
	// fd00::50/64.
	Prefix netip.Prefix
	// Interface names the link to put the address on (e.g. "eth0").
	Interface string
	// Subnet, when Interface is empty, selects the link that carries
	// another address inside this subnet (as Serviceguard's ip_subnet).
	Subnet netip.Prefix
}

func (a Address) String() string {
	if a.Interface != "" {
		return a.Prefix.String() + " dev " + a.Interface
	}
	return a.Prefix.String() + " subnet " + a.Subnet.String()
}

// MainTable is the kernel's main routing table (RT_TABLE_MAIN), used when
// Route.Table is zero.
const MainTable = 254

// Route is one route a package owns.
type Route struct {
	// Dst is the destination prefix; 0.0.0.0/0 or ::/0 is a default route.
	Dst netip.Prefix
	// Gateway is the next hop; invalid (the zero Addr) for a route that is
	// directly connected through Interface.
	Gateway netip.Addr
	// Interface is the output link; may be empty when Gateway is given.
	Interface string
	// Table is the routing table; 0 means MainTable.
	Table int
	// Metric is the route's priority (lower is preferred); 0 is the
	// kernel's default.
	Metric int
}

// table returns the effective table number.
func (r Route) table() int {
	if r.Table == 0 {
		return MainTable
	}
	return r.Table
}

// key identifies a route the way the kernel does: two routes with the same
// key cannot both exist.
func (r Route) key() string {
	return fmt.Sprintf("%s table %d metric %d", r.Dst, r.table(), r.Metric)
}

// String renders r as the arguments of `ip route add`.
func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst.String())
	if r.Gateway.IsValid() {
		b.WriteString(" via " + r.Gateway.String())
	}
	if r.Interface != "" {
		b.WriteString(" dev " + r.Interface)
	}
	if r.table() != MainTable {
		b.WriteString(" table " + strconv.Itoa(r.table()))
	}
	if r.Metric != 0 {
		b.WriteString(" metric " + strconv.Itoa(r.Metric))
	}
	return b.String()
}

// Link is what the manager needs to know about a network interface.
type Link struct {
	Name         string
	Index        int
	HardwareAddr net.HardwareAddr
	// Up is true when the link is administratively up and has carrier
	// (IFF_UP and IFF_RUNNING / operstate up or unknown).
	Up bool
}

// AddrState is one address as the kernel reports it.
type AddrState struct {
	Prefix netip.Prefix
	// Tentative: IPv6 duplicate address detection has not finished.
	Tentative bool
	// DADFailed: duplicate address detection found another holder.
	DADFailed bool
}

// ProbeConfig sets how an IPv4 address is probed before it is added.
type ProbeConfig struct {
	// Count is the number of ARP probes sent.
	Count int
	// Interval is the time between probes.
	Interval time.Duration
	// Wait is how long to listen for answers after the last probe.
	Wait time.Duration
}

// AnnounceConfig sets how an address is announced once it is added.
type AnnounceConfig struct {
	// Count is the number of gratuitous ARP requests (IPv4) or unsolicited
	// neighbour advertisements (IPv6) sent.
	Count int
	// Interval is the time between two of them.
	Interval time.Duration
}

// Defaults.
const (
	// DefaultProbeCount probes, DefaultProbeInterval apart, then
	// DefaultProbeWait of listening: 2 x 50 ms + 100 ms = 150 ms in which a
	// holder of the address must answer. A Linux host answers an ARP probe
	// within a millisecond on a LAN; the second probe covers one lost
	// frame. RFC 5227's own timings (3 probes 1-2 s apart) would cost
	// several seconds on every failover.
	DefaultProbeCount    = 2
	DefaultProbeInterval = 50 * time.Millisecond
	DefaultProbeWait     = 100 * time.Millisecond
	// DefaultAnnounceCount announcements DefaultAnnounceInterval apart
	// (IPaddr2's send_arp default of 5 x 200 ms): the first one moves the
	// traffic; the others cover a lost frame or a switch that was still
	// learning.
	DefaultAnnounceCount    = 5
	DefaultAnnounceInterval = 200 * time.Millisecond
	// DefaultDADTimeout bounds the wait for IPv6 duplicate address
	// detection: the kernel's default is one solicitation and 1 s of
	// listening (dad_transmits 1, retrans_time 1000 ms); 5 s leaves room for
	// a larger dad_transmits.
	DefaultDADTimeout = 5 * time.Second
	// dadPoll is how often the address flags are read while DAD runs.
	dadPoll = 20 * time.Millisecond
)

// ConflictError is returned when another host claims an address: it
// answered our ARP probe, probed for the same address itself, or (IPv6) made
// the kernel's duplicate address detection fail.
type ConflictError struct {
	Addr netip.Addr
	// Interface is where the conflict was seen.
	Interface string
	// HardwareAddr is the MAC that answered; nil when the kernel's DAD
	// reported the conflict without naming the holder.
	HardwareAddr net.HardwareAddr
}

func (e *ConflictError) Error() string {
	if e.HardwareAddr == nil {
		return fmt.Sprintf("address %s is already in use on %s (IPv6 duplicate address detection failed): find the other holder with `ip -6 neigh` on the segment and remove it there", e.Addr, e.Interface)
	}
	return fmt.Sprintf("address %s is already in use on %s by %s: remove it from that host, or give the package another address", e.Addr, e.Interface, e.HardwareAddr)
}

// ErrNoSuchLink is returned when a named interface does not exist.
var ErrNoSuchLink = errors.New("no such network interface")

// ErrLinkDown is returned when an address is to be added to a link without
// carrier.
var ErrLinkDown = errors.New("network interface is down")

// ErrNoSubnetLink is returned when no interface carries an address in an
// Address's Subnet.
var ErrNoSubnetLink = errors.New("no interface has an address in the subnet")
