package netres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory OS: links, their addresses, routing tables, and the
// other hosts on each segment that answer ARP or hold an IPv6 address. It
// behaves as the kernel does where the manager can tell (EEXIST on a
// duplicate address or route, EADDRNOTAVAIL on removing a missing address,
// ESRCH on removing a missing route, ENETUNREACH on a gateway outside every
// connected subnet) and renders its state with Render.
type Fake struct {
	mu     sync.Mutex
	links  map[string]*fakeLink
	routes map[string]Route // by key
	// Others maps an address to the MAC of another host on the segment
	// that holds it: it answers ARP probes (IPv4) or makes DAD fail (IPv6).
	others map[netip.Addr]net.HardwareAddr
	// Announced counts the announcements sent per address.
	announced map[netip.Addr]int
	watchers  []*fakeWatcher
	// Fail, when set, is called before every change with the `ip` command
	// it would run; a non-nil result is returned instead of doing it.
	Fail func(op string) error
}

type fakeLink struct {
	Link
	addrs []netip.Prefix
}

var _ OS = (*Fake)(nil)

// NewFake returns a Fake without links.
func NewFake() *Fake {
	return &Fake{links: map[string]*fakeLink{}, routes: map[string]Route{}, others: map[netip.Addr]net.HardwareAddr{}, announced: map[netip.Addr]int{}}
}

// AddLink adds an up link with the given MAC and fixed addresses.
func (f *Fake) AddLink(name, mac string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	l := &fakeLink{Link: Link{Name: name, Index: len(f.links) + 1, HardwareAddr: hw, Up: true}}
	for _, a := range addrs {
		l.addrs = append(l.addrs, netip.MustParsePrefix(a))
	}
	f.links[name] = l
}

// SetLinkUp sets a link's carrier, and tells the watchers when it changes.
func (f *Fake) SetLinkUp(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.links[name].Up == up {
		return
	}
	f.links[name].Up = up
	f.notifyLocked(LinkEvent{Interface: name, Up: up})
}

// RemoveLink removes a link with its addresses, as when a device goes away.
func (f *Fake) RemoveLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, name)
	f.notifyLocked(LinkEvent{Interface: name, Removed: true})
}

type fakeWatcher struct {
	ctx   context.Context
	names []string
	ch    chan LinkEvent
}

func (f *Fake) notifyLocked(ev LinkEvent) {
	for _, w := range f.watchers {
		if w.ctx.Err() == nil && slices.Contains(w.names, ev.Interface) {
			select {
			case w.ch <- ev:
			default: // a watcher that does not read loses events, as with netlink's ENOBUFS
			}
		}
	}
}

// WatchLinks implements LinkWatcher: the current state of each named link
// first, then every change.
func (f *Fake) WatchLinks(ctx context.Context, names []string) (<-chan LinkEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWatcher{ctx: ctx, names: names, ch: make(chan LinkEvent, 64)}
	for _, n := range names {
		if l, ok := f.links[n]; ok {
			w.ch <- LinkEvent{Interface: n, Up: l.Up}
		}
	}
	f.watchers = append(f.watchers, w)
	return w.ch, nil
}

// SetOther makes another host on the segment hold ip (mac "" removes it).
func (f *Fake) SetOther(ip, mac string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := netip.MustParseAddr(ip)
	if mac == "" {
		delete(f.others, a)
		return
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	f.others[a] = hw
}

// Announced returns how many announcements were sent for ip.
func (f *Fake) Announced(ip string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.announced[netip.MustParseAddr(ip)]
}

func (f *Fake) fail(format string, args ...any) error {
	if f.Fail == nil {
		return nil
	}
	return f.Fail(fmt.Sprintf(format, args...))
}

func (f *Fake) Link(name string) (Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	if !ok {
		return Link{}, fmt.Errorf("%s: %w", name, ErrNoSuchLink)
	}
	return l.Link, nil
}

func (f *Fake) Links() ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ls []Link
	for _, l := range f.links {
		ls = append(ls, l.Link)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Index < ls[j].Index })
	return ls, nil
}

func (f *Fake) Addrs(link string) ([]AddrState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[link]
	if !ok {
		return nil, fmt.Errorf("%s: %w", link, ErrNoSuchLink)
	}
	var out []AddrState
	for _, p := range l.addrs {
		s := AddrState{Prefix: p}
		if p.Addr().Is6() {
			_, s.DADFailed = f.others[p.Addr()]
		}
		out = append(out, s)
	}
	return out, nil
}

func (f *Fake) AddAddr(link string, p netip.Prefix) error {
	if err := f.fail("ip addr add %s dev %s", p, link); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[link]
	if !ok {
		return fmt.Errorf("%s: %w", link, ErrNoSuchLink)
	}
	if slices.ContainsFunc(l.addrs, func(x netip.Prefix) bool { return x.Addr() == p.Addr() }) {
		return syscall.EEXIST
	}
	l.addrs = append(l.addrs, p)
	return nil
}

func (f *Fake) DelAddr(link string, p netip.Prefix) error {
	if err := f.fail("ip addr del %s dev %s", p, link); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[link]
	if !ok {
		return fmt.Errorf("%s: %w", link, ErrNoSuchLink)
	}
	i := slices.Index(l.addrs, p)
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	l.addrs = slices.Delete(l.addrs, i, i+1)
	return nil
}

func (f *Fake) reachableLocked(gw netip.Addr) bool {
	for _, l := range f.links {
		for _, p := range l.addrs {
			if p.Masked().Contains(gw) {
				return true
			}
		}
	}
	return false
}

func (f *Fake) Routes(table int) ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Route
	for _, r := range f.routes {
		if r.table() == table {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *Fake) AddRoute(r Route) error {
	if err := f.fail("ip route add %s", r); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.routes[r.key()]; ok {
		return syscall.EEXIST
	}
	if r.Gateway.IsValid() && !f.reachableLocked(r.Gateway) {
		return syscall.ENETUNREACH
	}
	if r.Interface == "" && !r.Gateway.IsValid() {
		return syscall.EINVAL
	}
	f.routes[r.key()] = r
	return nil
}

func (f *Fake) DelRoute(r Route) error {
	if err := f.fail("ip route del %s", r); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.routes[r.key()]; !ok {
		return syscall.ESRCH
	}
	delete(f.routes, r.key())
	return nil
}

func (f *Fake) ProbeARP(ctx context.Context, link Link, ip netip.Addr, cfg ProbeConfig) error {
	if err := f.fail("arping -D %s dev %s", ip, link.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if mac, ok := f.others[ip]; ok {
		return &ConflictError{Addr: ip, Interface: link.Name, HardwareAddr: mac}
	}
	return ctx.Err()
}

func (f *Fake) GratuitousARP(link Link, ip netip.Addr) error {
	return f.announce("arping -U %s dev %s", link, ip)
}

func (f *Fake) UnsolicitedNA(link Link, ip netip.Addr) error {
	return f.announce("ndisc6 -A %s dev %s", link, ip)
}

func (f *Fake) announce(op string, link Link, ip netip.Addr) error {
	if err := f.fail(op, ip, link.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.links[link.Name].Up {
		return syscall.ENETDOWN
	}
	f.announced[ip]++
	return nil
}

// Render returns the state as the `ip` commands that would rebuild it,
// one per line, sorted: the addresses, then the routes.
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var addrs, routes []string
	for _, l := range f.links {
		for _, p := range l.addrs {
			addrs = append(addrs, fmt.Sprintf("ip addr add %s dev %s", p, l.Name))
		}
	}
	for _, r := range f.routes {
		routes = append(routes, "ip route add "+r.String())
	}
	sort.Strings(addrs)
	sort.Strings(routes)
	return strings.Join(append(addrs, routes...), "\n")
}

// ErrInjected is a convenient error for Fail hooks.
var ErrInjected = errors.New("injected failure")
