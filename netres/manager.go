package netres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// OS is the kernel as the manager sees it: one network namespace. Linux
// implements it; Fake keeps the same state in memory.
type OS interface {
	// Link returns the named link, or an error wrapping ErrNoSuchLink.
	Link(name string) (Link, error)
	// Links lists every link.
	Links() ([]Link, error)
	// Addrs lists the addresses on a link.
	Addrs(link string) ([]AddrState, error)
	// AddAddr adds an address (ip addr add P dev L); IPv6 addresses go
	// through the kernel's duplicate address detection.
	AddAddr(link string, p netip.Prefix) error
	// DelAddr removes an address (ip addr del P dev L).
	DelAddr(link string, p netip.Prefix) error
	// Routes lists the routes of a table.
	Routes(table int) ([]Route, error)
	// AddRoute adds a route (ip route add ...).
	AddRoute(r Route) error
	// DelRoute removes a route (ip route del ...).
	DelRoute(r Route) error
	// ProbeARP sends cfg.Count ARP probes for ip on link and listens until
	// cfg.Wait after the last; it returns the *ConflictError of the first
	// other host that claimed ip, or nil.
	ProbeARP(ctx context.Context, link Link, ip netip.Addr, cfg ProbeConfig) error
	// GratuitousARP sends one gratuitous ARP request for ip on link.
	GratuitousARP(link Link, ip netip.Addr) error
	// UnsolicitedNA sends one unsolicited neighbour advertisement for ip
	// on link, with the override flag, to all-nodes.
	UnsolicitedNA(link Link, ip netip.Addr) error
}

// Config configures a Manager; zero fields take the defaults.
type Config struct {
	Probe      ProbeConfig
	Announce   AnnounceConfig
	DADTimeout time.Duration
	Logger     *slog.Logger
}

func (c *Config) applyDefaults() {
	if c.Probe.Count == 0 {
		c.Probe.Count = DefaultProbeCount
	}
	if c.Probe.Interval == 0 {
		c.Probe.Interval = DefaultProbeInterval
	}
	if c.Probe.Wait == 0 {
		c.Probe.Wait = DefaultProbeWait
	}
	if c.Announce.Count == 0 {
		c.Announce.Count = DefaultAnnounceCount
	}
	if c.Announce.Interval == 0 {
		c.Announce.Interval = DefaultAnnounceInterval
	}
	if c.DADTimeout == 0 {
		c.DADTimeout = DefaultDADTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Manager adds and removes addresses and routes in one namespace.
type Manager struct {
	os  OS
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	announcers map[netip.Addr]*announcer
}

// NewManager returns a Manager over os.
func NewManager(os OS, cfg Config) *Manager {
	cfg.applyDefaults()
	return &Manager{os: os, cfg: cfg, log: cfg.Logger}
}

// ResolveLink returns the link a carries its address on: a.Interface, or
// the link holding another address inside a.Subnet.
func (m *Manager) ResolveLink(a Address) (Link, error) {
	if a.Interface != "" {
		return m.os.Link(a.Interface)
	}
	if !a.Subnet.IsValid() {
		return Link{}, fmt.Errorf("address %s: neither interface nor subnet given", a.Prefix)
	}
	links, err := m.os.Links()
	if err != nil {
		return Link{}, err
	}
	for _, l := range links {
		addrs, err := m.os.Addrs(l.Name)
		if err != nil {
			return Link{}, err
		}
		for _, s := range addrs {
			if s.Prefix.Addr() != a.Prefix.Addr() && a.Subnet.Contains(s.Prefix.Addr()) {
				return l, nil
			}
		}
	}
	return Link{}, fmt.Errorf("address %s: %w %s: give the interface, or put a fixed address of that subnet on one", a.Prefix, ErrNoSubnetLink, a.Subnet)
}

// LinksOf returns the names of the links the addresses are on (each once),
// for a LinkWatcher.
func (m *Manager) LinksOf(addrs []Address) ([]string, error) {
	var names []string
	for _, a := range addrs {
		l, err := m.ResolveLink(a)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(names, l.Name) {
			names = append(names, l.Name)
		}
	}
	return names, nil
}

// find reports the state of prefix's address on link, if present.
func (m *Manager) find(link string, p netip.Prefix) (AddrState, bool, error) {
	addrs, err := m.os.Addrs(link)
	if err != nil {
		return AddrState{}, false, err
	}
	for _, s := range addrs {
		if s.Prefix.Addr() == p.Addr() {
			return s, true, nil
		}
	}
	return AddrState{}, false, nil
}

// HasAddress reports whether a is present on its link.
func (m *Manager) HasAddress(a Address) (bool, error) {
	l, err := m.ResolveLink(a)
	if err != nil {
		return false, err
	}
	s, ok, err := m.find(l.Name, a.Prefix)
	return ok && !s.DADFailed, err
}

// AddAddress puts a on its link unless it is already there. An IPv4
// address is probed first (a *ConflictError if someone answers); an IPv6
// address is added and then waited for until duplicate address detection
// ends (a *ConflictError, and the address removed, if it fails).
func (m *Manager) AddAddress(ctx context.Context, a Address) error {
	l, err := m.ResolveLink(a)
	if err != nil {
		return err
	}
	s, ok, err := m.find(l.Name, a.Prefix)
	if err != nil {
		return err
	}
	if ok && s.Prefix.Bits() != a.Prefix.Bits() {
		return fmt.Errorf("address %s: %s already carries it as %s: remove it (ip addr del %s dev %s) or fix the prefix length", a.Prefix, l.Name, s.Prefix, s.Prefix, l.Name)
	}
	if ok && s.DADFailed {
		// A leftover of an earlier failed attempt: start over.
		if err := m.os.DelAddr(l.Name, s.Prefix); err != nil {
			return err
		}
		ok = false
	}
	if !l.Up {
		return fmt.Errorf("address %s: %s: %w", a.Prefix, l.Name, ErrLinkDown)
	}
	ip := a.Prefix.Addr()
	if !ok {
		if ip.Is4() {
			if err := m.os.ProbeARP(ctx, l, ip, m.cfg.Probe); err != nil {
				return fmt.Errorf("address %s: %w", a.Prefix, err)
			}
		}
		if err := m.os.AddAddr(l.Name, a.Prefix); err != nil {
			return fmt.Errorf("ip addr add %s dev %s: %w", a.Prefix, l.Name, err)
		}
		m.log.Info("address added", "address", a.Prefix.String(), "interface", l.Name)
	}
	if ip.Is6() {
		return m.waitDAD(ctx, l, a.Prefix)
	}
	return nil
}

// waitDAD waits until the kernel's duplicate address detection for p ends.
func (m *Manager) waitDAD(ctx context.Context, l Link, p netip.Prefix) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DADTimeout)
	defer cancel()
	for {
		s, ok, err := m.find(l.Name, p)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			return fmt.Errorf("address %s disappeared from %s during duplicate address detection", p, l.Name)
		case s.DADFailed:
			if err := m.os.DelAddr(l.Name, p); err != nil {
				m.log.Error("cannot remove an address that failed duplicate address detection", "address", p.String(), "interface", l.Name, "err", err)
			}
			return &ConflictError{Addr: p.Addr(), Interface: l.Name}
		case !s.Tentative:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("address %s on %s: duplicate address detection did not end within %s: %w", p, l.Name, m.cfg.DADTimeout, ctx.Err())
		case <-time.After(dadPoll):
		}
	}
}

// RemoveAddress removes a from its link if it is there. A missing link is
// not an error: the address is gone with it.
func (m *Manager) RemoveAddress(ctx context.Context, a Address) error {
	l, err := m.ResolveLink(a)
	if errors.Is(err, ErrNoSuchLink) || errors.Is(err, ErrNoSubnetLink) {
		return nil
	}
	if err != nil {
		return err
	}
	m.stopAnnouncing(a.Prefix.Addr())
	s, ok, err := m.find(l.Name, a.Prefix)
	if err != nil || !ok {
		return err
	}
	if err := m.os.DelAddr(l.Name, s.Prefix); err != nil {
		return fmt.Errorf("ip addr del %s dev %s: %w", s.Prefix, l.Name, err)
	}
	m.log.Info("address removed", "address", a.Prefix.String(), "interface", l.Name)
	return nil
}

// Announce tells the segment that a is here now: Count gratuitous ARP
// requests (IPv4) or unsolicited neighbour advertisements with the
// override flag (IPv6), Interval apart. It returns once the first is sent,
// which is the one that moves the traffic; the others follow in the
// background (so that a start is not held up by Count x Interval) and stop
// when the address is removed (RemoveAddress waits for that) or Close is
// called. Announcing an address again restarts its series.
func (m *Manager) Announce(ctx context.Context, a Address) error {
	l, err := m.ResolveLink(a)
	if err != nil {
		return err
	}
	ip := a.Prefix.Addr()
	m.stopAnnouncing(ip)
	send := func() error {
		var err error
		if ip.Is4() {
			err = m.os.GratuitousARP(l, ip)
		} else {
			err = m.os.UnsolicitedNA(l, ip)
		}
		if err != nil {
			return fmt.Errorf("announce %s on %s: %w", ip, l.Name, err)
		}
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	if m.cfg.Announce.Count <= 1 {
		return nil
	}
	actx, cancel := context.WithCancel(context.Background())
	an := &announcer{cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	if m.announcers == nil {
		m.announcers = map[netip.Addr]*announcer{}
	}
	m.announcers[ip] = an
	m.mu.Unlock()
	go func() {
		defer close(an.done)
		for i := 1; i < m.cfg.Announce.Count; i++ {
			select {
			case <-actx.Done():
				return
			case <-time.After(m.cfg.Announce.Interval):
			}
			if err := send(); err != nil {
				m.log.Warn("announcement failed", "address", ip.String(), "interface", l.Name, "err", err)
			}
		}
	}()
	return nil
}

// announcer is the background series of announcements of one address.
type announcer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stopAnnouncing stops ip's series, if any, and waits for it to end.
func (m *Manager) stopAnnouncing(ip netip.Addr) {
	m.mu.Lock()
	an := m.announcers[ip]
	delete(m.announcers, ip)
	m.mu.Unlock()
	if an != nil {
		an.cancel()
		<-an.done
	}
}

// WaitAnnounced waits until every series of announcements has ended.
func (m *Manager) WaitAnnounced() {
	m.mu.Lock()
	var ans []*announcer
	for _, an := range m.announcers {
		ans = append(ans, an)
	}
	m.mu.Unlock()
	for _, an := range ans {
		<-an.done
	}
}

// Close stops every series of announcements.
func (m *Manager) Close() {
	m.mu.Lock()
	ips := make([]netip.Addr, 0, len(m.announcers))
	for ip := range m.announcers {
		ips = append(ips, ip)
	}
	m.mu.Unlock()
	for _, ip := range ips {
		m.stopAnnouncing(ip)
	}
}

// findRoute returns the installed route with r's key, if any.
func (m *Manager) findRoute(r Route) (Route, bool, error) {
	rs, err := m.os.Routes(r.table())
	if err != nil {
		return Route{}, false, err
	}
	for _, x := range rs {
		if x.key() == r.key() {
			return x, true, nil
		}
	}
	return Route{}, false, nil
}

// AddRoute installs r unless it is already there. A route to the same
// destination, table and metric through another gateway is not replaced:
// it is an error naming both, for the operator to resolve.
func (m *Manager) AddRoute(ctx context.Context, r Route) error {
	x, ok, err := m.findRoute(r)
	if err != nil {
		return err
	}
	if ok {
		if x.Gateway == r.Gateway && (r.Interface == "" || x.Interface == r.Interface) {
			return nil
		}
		return fmt.Errorf("route %s: the table already has %s: remove it (ip route del %s) or change the package's metric", r, x, x)
	}
	if err := m.os.AddRoute(r); err != nil {
		return fmt.Errorf("ip route add %s: %w", r, err)
	}
	m.log.Info("route added", "route", r.String())
	return nil
}

// RemoveRoute removes r if it is there with r's gateway.
func (m *Manager) RemoveRoute(ctx context.Context, r Route) error {
	x, ok, err := m.findRoute(r)
	if err != nil || !ok || x.Gateway != r.Gateway {
		return err
	}
	if err := m.os.DelRoute(x); err != nil {
		return fmt.Errorf("ip route del %s: %w", r, err)
	}
	m.log.Info("route removed", "route", r.String())
	return nil
}
