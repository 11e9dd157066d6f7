package netres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Linux is the OS of one network namespace, through a netlink handle bound
// to it; ARP and NDP sockets are opened inside it.
type Linux struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

var _ OS = (*Linux)(nil)

// NewLinux binds to the network namespace at path (e.g.
// /run/netns/NAME, or /proc/PID/ns/net); "" is the caller's own namespace.
// Close releases it.
func NewLinux(path string) (*Linux, error) {
	var ns netns.NsHandle
	var err error
	if path == "" {
		ns, err = netns.Get()
	} else {
		ns, err = netns.GetFromPath(path)
	}
	if err != nil {
		return nil, fmt.Errorf("network namespace %q: %w", path, err)
	}
	// Routing netlink only: addresses, links, routes and neighbours are
	// all it needs, and asking for every family fails where the XFRM or
	// netfilter modules cannot be loaded.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink handle in namespace %q: %w", path, err)
	}
	return &Linux{ns: ns, h: h}, nil
}

// Close releases the namespace and the netlink handle.
func (o *Linux) Close() error {
	o.h.Close()
	return o.ns.Close()
}

// inNS runs f on an OS thread switched into the namespace, so that the
// sockets it opens belong to it (a socket keeps the namespace it was created
// in). If the thread cannot be switched back it stays locked, and Go
// discards it when the goroutine ends.
func (o *Linux) inNS(f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(o.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("return to the original network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func toLink(l netlink.Link) Link {
	a := l.Attrs()
	up := a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
	return Link{Name: a.Name, Index: a.Index, HardwareAddr: a.HardwareAddr, Up: up}
}

func (o *Linux) link(name string) (netlink.Link, error) {
	l, err := o.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%s: %w", name, ErrNoSuchLink)
		}
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

// Link is `ip link show NAME`.
func (o *Linux) Link(name string) (Link, error) {
	l, err := o.link(name)
	if err != nil {
		return Link{}, err
	}
	return toLink(l), nil
}

// Links is `ip link show`.
func (o *Linux) Links() ([]Link, error) {
	ls, err := o.h.LinkList()
	if err != nil {
		return nil, err
	}
	out := make([]Link, len(ls))
	for i, l := range ls {
		out[i] = toLink(l)
	}
	return out, nil
}

func prefixOf(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Addrs is `ip addr show dev LINK`.
func (o *Linux) Addrs(link string) ([]AddrState, error) {
	l, err := o.link(link)
	if err != nil {
		return nil, err
	}
	as, err := o.h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", link, err)
	}
	out := make([]AddrState, 0, len(as))
	for _, a := range as {
		out = append(out, AddrState{
			Prefix:    prefixOf(a.IPNet),
			Tentative: a.Flags&unix.IFA_F_TENTATIVE != 0,
			DADFailed: a.Flags&unix.IFA_F_DADFAILED != 0,
		})
	}
	return out, nil
}

// AddAddr is `ip addr add P dev LINK`.
func (o *Linux) AddAddr(link string, p netip.Prefix) error {
	l, err := o.link(link)
	if err != nil {
		return err
	}
	return o.h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)})
}

// DelAddr is `ip addr del P dev LINK`.
func (o *Linux) DelAddr(link string, p netip.Prefix) error {
	l, err := o.link(link)
	if err != nil {
		return err
	}
	return o.h.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)})
}

// Routes is `ip route show table T` for both families.
func (o *Linux) Routes(table int) ([]Route, error) {
	rs, err := o.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("routes of table %d: %w", table, err)
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		x := Route{Table: r.Table, Metric: r.Priority}
		if r.Dst != nil {
			x.Dst = prefixOf(r.Dst)
		} else if r.Family == unix.AF_INET6 {
			x.Dst = netip.MustParsePrefix("::/0")
		} else {
			x.Dst = netip.MustParsePrefix("0.0.0.0/0")
		}
		if r.Gw != nil {
			x.Gateway, _ = netip.AddrFromSlice(r.Gw)
			x.Gateway = x.Gateway.Unmap()
		}
		if r.LinkIndex > 0 {
			if l, err := o.h.LinkByIndex(r.LinkIndex); err == nil {
				x.Interface = l.Attrs().Name
			}
		}
		out = append(out, x)
	}
	return out, nil
}

func (o *Linux) nlRoute(r Route) (*netlink.Route, error) {
	nr := &netlink.Route{Dst: ipNet(r.Dst), Table: r.table(), Priority: r.Metric}
	if r.Gateway.IsValid() {
		nr.Gw = r.Gateway.AsSlice()
	}
	if r.Interface != "" {
		l, err := o.link(r.Interface)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	return nr, nil
}

// AddRoute is `ip route add ...`.
func (o *Linux) AddRoute(r Route) error {
	nr, err := o.nlRoute(r)
	if err != nil {
		return err
	}
	return o.h.RouteAdd(nr)
}

// DelRoute is `ip route del ...`.
func (o *Linux) DelRoute(r Route) error {
	nr, err := o.nlRoute(r)
	if err != nil {
		return err
	}
	return o.h.RouteDel(nr)
}

func ifi(l Link) *net.Interface {
	return &net.Interface{Index: l.Index, Name: l.Name, HardwareAddr: l.HardwareAddr}
}

// arpConn opens an ARP packet socket on link inside the namespace; the
// kernel adds and strips the Ethernet header (SOCK_DGRAM).
func (o *Linux) arpConn(l Link) (*packet.Conn, error) {
	var c *packet.Conn
	err := o.inNS(func() error {
		var err error
		c, err = packet.Listen(ifi(l), packet.Datagram, unix.ETH_P_ARP, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ARP socket on %s: %w", l.Name, err)
	}
	return c, nil
}

var (
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC   = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

func sendARP(c *packet.Conn, p *arp.Packet) error {
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = c.WriteTo(b, &packet.Addr{HardwareAddr: broadcast})
	return err
}

// ProbeARP implements RFC 5227's probe: requests with a zero sender
// address, listening for any other host that uses ip as its sender address
// (a reply or an announcement) or probes for it too.
func (o *Linux) ProbeARP(ctx context.Context, l Link, ip netip.Addr, cfg ProbeConfig) error {
	c, err := o.arpConn(l)
	if err != nil {
		return err
	}
	defer c.Close()
	probe, err := arp.NewPacket(arp.OperationRequest, l.HardwareAddr, netip.IPv4Unspecified(), zeroMAC, ip)
	if err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for i := 0; i < cfg.Count; i++ {
		if err := sendARP(c, probe); err != nil {
			return fmt.Errorf("ARP probe on %s: %w", l.Name, err)
		}
		wait := cfg.Interval
		if i == cfg.Count-1 {
			wait = cfg.Wait
		}
		until := time.Now().Add(wait)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := c.SetReadDeadline(until); err != nil {
				return err
			}
			n, _, err := c.ReadFrom(buf)
			if err != nil && isTimeout(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("ARP probe on %s: %w", l.Name, err)
			}
			var p arp.Packet
			if p.UnmarshalBinary(buf[:n]) != nil || p.SenderHardwareAddr.String() == l.HardwareAddr.String() {
				continue
			}
			claims := p.SenderIP == ip ||
				(p.Operation == arp.OperationRequest && p.SenderIP == netip.IPv4Unspecified() && p.TargetIP == ip)
			if claims {
				return &ConflictError{Addr: ip, Interface: l.Name, HardwareAddr: append(net.HardwareAddr(nil), p.SenderHardwareAddr...)}
			}
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// GratuitousARP sends an RFC 5227 announcement: a broadcast request whose
// sender and target addresses are both ip.
func (o *Linux) GratuitousARP(l Link, ip netip.Addr) error {
	c, err := o.arpConn(l)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := arp.NewPacket(arp.OperationRequest, l.HardwareAddr, ip, zeroMAC, ip)
	if err != nil {
		return err
	}
	return sendARP(c, p)
}

var allNodes = netip.MustParseAddr("ff02::1")

// UnsolicitedNA sends a neighbour advertisement for ip, from ip, to
// all-nodes, with the override flag and our link-layer address.
func (o *Linux) UnsolicitedNA(l Link, ip netip.Addr) error {
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: l.HardwareAddr}},
	}
	// Inside the namespace throughout: the destination's zone is the
	// interface's name, resolved in the namespace of the calling thread.
	return o.inNS(func() error {
		i, err := net.InterfaceByIndex(l.Index)
		if err != nil {
			return err
		}
		c, _, err := ndp.Listen(i, ndp.Addr(ip.String()))
		if err != nil {
			return fmt.Errorf("NDP socket on %s: %w", l.Name, err)
		}
		defer c.Close()
		return c.WriteTo(na, nil, allNodes)
	})
}
