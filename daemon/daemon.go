package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/internal/sdnotify"
	"github.com/mtcluster/mtc/journal"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/watchdog"
)

// Options configure a Daemon. Cluster, Node, Log and Watchdog are required;
// the rest default to the real operating-system edges.
type Options struct {
	Cluster *config.Cluster
	// Node is this node's name in Cluster.
	Node string
	Log  *slog.Logger
	// Watchdog is fed while the node is healthy (see NewWatchdog).
	Watchdog watchdog.Watchdog
	// WatchdogMode is shown in the status.
	WatchdogMode string
	// Key is the cluster key; nil loads Cluster.KeyFile with nethb.LoadKey.
	Key []byte
	// Transports by network name; nil binds a UDP socket on this node's
	// address and the network's port for every heartbeat network.
	Transports map[string]nethb.Transport
	// Disk is the opened quorum disk; nil opens the node's configured
	// quorum disk path with direct I/O.
	Disk *diskhb.Disk
	// DiskPath is shown in the status (set automatically when Disk is nil).
	DiskPath string
	// Stopper stops the node's packages; nil records stop requests only.
	Stopper PackageStopper
	// Clock is the local monotonic clock as time since an arbitrary
	// origin; nil uses time.Since of the daemon's start.
	Clock func() time.Duration
	// Realtime locks memory and runs the event loop, the disk and the
	// receive goroutines on SCHED_RR threads (logging when not allowed).
	Realtime bool
	// FenceLUNs are the LUNs this node fences. When Disk is nil they are
	// opened from the configuration (config.Cluster.FenceLUNs: the quorum
	// disk and the data LUNs); a caller that passes Disk passes these too
	// (nil: no LUN, so no fencing). The daemon closes them.
	FenceLUNs []FenceLUN
	// Notify receives the service states (READY=1 when the node has
	// joined or knows it is alone, STATUS=, STOPPING=1); nil: none.
	Notify Notifier
	// NotifyWatchdog is how often the event loop sends WATCHDOG=1 to
	// Notify (half the service manager's WatchdogSec); 0: never.
	NotifyWatchdog time.Duration
	// Journal receives the node's events (decisions, fencing, takeovers,
	// start and stop); nil: none. The caller opens and closes it.
	Journal *journal.Journal
	// Packages are the cluster's packages (config.LoadPackages): the
	// daemon places them and runs those placed here. None: the node
	// runs the membership only.
	Packages []*config.Package
	// ControlAddrs returns the control-channel addresses of a node, in
	// the order to try them; nil: its address on every heartbeat
	// network, at the configured control port.
	ControlAddrs func(node string) []string
	// Runners run this node's packages by name; nil builds the real ones
	// (package pkgrun) for every package this node may run. With
	// Packages, the package manager is the node's stopper (Stopper is
	// ignored).
	Runners map[string]PackageRunner
}

// Daemon runs one node: the membership machine and its edges.
type Daemon struct {
	opt     Options
	log     *slog.Logger
	cl      *config.Cluster
	self    *config.Node
	timing  config.Derived
	gen     uint64 // configuration generation, in every packet and slot
	clock   func() time.Duration
	drv     *quorum.Driver
	sender  *nethb.Sender
	recv    *nethb.Receiver
	links   []nethb.Link
	disk    *diskhb.Disk
	rounds  *diskhb.Rounds
	wd      watchdog.Watchdog
	stopper PackageStopper
	fence   *fencing
	names   map[quorum.NodeID]string

	netIn     chan netEvent
	diskReq   chan quorum.DiskRequest
	diskOut   chan diskhb.RoundResult
	statusReq chan chan Status
	local     []quorum.Event // events generated inside a step
	fatal     error          // set inside a step: the loop stops with it
	wakeAt    time.Duration
	started   time.Time     // wall clock at New
	fenceWhy  string        // the machine's reason for its last self-fence
	looping   bool          // the event loop has started (under mu)
	loopDone  chan struct{} // closed when the event loop has ended
	sd        notifier      // service-manager notification (event loop only)
	metrics   *metrics
	key       []byte // the cluster key

	// The package layer (nil without packages), its requests and the
	// cluster-state I/O.
	pl        *placer
	pkgNode   *pkgrun.Node
	onLoop    chan func()
	stateReq  chan stateResult
	stateOut  chan stateResult
	reportReq chan reportIO
	reportOut chan reportIO

	mu sync.Mutex
	st state
}

type netEvent struct {
	hb      quorum.Heartbeat
	env     []byte // the placement envelope, when the heartbeat has one
	peer    string
	network uint8
	newInc  bool
}

// New checks the options, loads the key, binds the sockets, opens the
// quorum disk and builds the membership machine. It does not start
// anything: call Run.
func New(opt Options) (*Daemon, error) {
	if opt.Cluster == nil || opt.Log == nil || opt.Watchdog == nil {
		return nil, errors.New("daemon: Cluster, Log and Watchdog are required")
	}
	cl := opt.Cluster
	self, ok := cl.NodeByName(opt.Node)
	if !ok {
		return nil, fmt.Errorf("node %q is not in the configuration of cluster %q: pass --node with one of its node names", opt.Node, cl.Name)
	}
	if self.ID > quorum.MaxNodes || self.ID > nethb.MaxNodeID {
		return nil, fmt.Errorf("node %q: id %d above %d", self.Name, self.ID, quorum.MaxNodes)
	}
	d := &Daemon{
		opt:       opt,
		log:       opt.Log.With("node", self.Name),
		cl:        cl,
		self:      self,
		timing:    cl.Timing.Derive(),
		wd:        opt.Watchdog,
		names:     make(map[quorum.NodeID]string),
		netIn:     make(chan netEvent, 256),
		diskReq:   make(chan quorum.DiskRequest, 4),
		diskOut:   make(chan diskhb.RoundResult, 4),
		statusReq: make(chan chan Status),
		loopDone:  make(chan struct{}),
	}
	d.metrics = newMetrics(d)
	d.clock = opt.Clock
	d.started = time.Now()
	if d.clock == nil {
		start := d.started
		d.clock = func() time.Duration { return time.Since(start) }
	}
	// Every log line carries the local monotonic time beside the
	// handler's wall-clock time.
	d.log = slog.New(monoHandler{h: opt.Log.Handler(), clock: d.clock}).With("node", self.Name)
	d.stopper = opt.Stopper
	d.onLoop = make(chan func())
	d.stateReq = make(chan stateResult, 1)
	d.stateOut = make(chan stateResult, 1)
	d.reportReq = make(chan reportIO, 1)
	d.reportOut = make(chan reportIO, 1)
	if d.stopper == nil {
		d.stopper = NewRecordingStopper(d.log, d.clock)
	}
	key := opt.Key
	if key == nil {
		k, err := nethb.LoadKey(cl.KeyFile)
		if err != nil {
			return nil, err
		}
		key = k
	}
	d.key = key
	inc, err := nethb.NewIncarnation()
	if err != nil {
		return nil, err
	}

	var members []quorum.Member
	var peers []nethb.Peer
	for _, n := range cl.Nodes {
		d.names[quorum.NodeID(n.ID)] = n.Name
		members = append(members, quorum.Member{ID: quorum.NodeID(n.ID), Votes: n.Votes})
		if n.ID == self.ID {
			continue
		}
		p := nethb.Peer{ID: uint32(n.ID), Name: n.Name}
		for _, a := range n.Addresses {
			p.Addrs = append(p.Addrs, a)
		}
		peers = append(peers, p)
	}
	// LeftoversRunning: until the stopper confirms that nothing an earlier
	// incarnation of this node started still runs, the machine does not
	// feed the watchdog (peers time their takeover on that incarnation's
	// reset).
	qc := quorum.Config{Self: quorum.NodeID(self.ID), Nodes: members, Timing: d.timing, Incarnation: quorum.Incarnation(inc), LeftoversRunning: true}
	if err := qc.Validate(); err != nil {
		return nil, err
	}

	d.gen = cl.Generation()
	var netNames []string
	for _, nw := range cl.Networks {
		netNames = append(netNames, nw.Name)
	}
	d.recv, err = nethb.NewReceiver(nethb.ReceiverConfig{Cluster: cl.UUID, Key: key, Self: uint32(self.ID), Peers: peers, Generation: d.gen,
		Networks: netNames, Log: d.log.With("component", "heartbeat-receive")})
	if err != nil {
		return nil, err
	}
	if err := d.openLinks(); err != nil {
		return nil, err
	}
	d.sender, err = nethb.NewSender(nethb.SenderConfig{Cluster: cl.UUID, Key: key, Self: uint32(self.ID), Generation: d.gen, Links: d.links, Incarnation: inc})
	if err != nil {
		d.closeLinks()
		return nil, err
	}
	d.disk = opt.Disk
	if d.disk == nil {
		if d.disk, err = openDisk(cl, self, d.log); err != nil {
			d.closeLinks()
			return nil, err
		}
		d.opt.DiskPath = cl.QuorumDiskPath(self.Name)
		if d.opt.FenceLUNs, err = openFenceLUNs(cl.FenceLUNs(self.Name)); err != nil {
			d.closeLinks()
			_ = d.disk.Device().Close()
			return nil, err
		}
	}
	d.fence = d.newFencing(d.opt.FenceLUNs)
	var ids []int
	for _, n := range cl.Nodes {
		ids = append(ids, n.ID)
	}
	d.rounds = diskhb.NewRounds(d.disk, diskhb.RoundsConfig{
		NodeID: self.ID, NodeName: self.Name, Incarnation: inc, Generation: d.gen, Peers: ids,
		HeartbeatInterval: d.timing.HeartbeatInterval, FailureTimeout: d.timing.FailureTimeout,
		Clock: d.clock, Log: d.log.With("component", "quorum-disk"),
	})
	// The fence decides a two-node tie when the quorum disk is a LUN
	// with persistent reservations: the machine is told so, never guesses.
	qc.FenceArbiter = d.fence.fencesQuorumDisk(d.opt.DiskPath)
	// Registered for fencing somewhere: the machine has the registration
	// checked (quorum package documentation, Registration checks).
	qc.CheckRegistration = len(d.fence.luns) > 0
	d.drv = &quorum.Driver{Node: quorum.New(qc), FX: (*effects)(d)}
	if len(opt.Packages) > 0 {
		runners := opt.Runners
		if runners == nil {
			if runners, err = d.realRunners(opt.Packages); err != nil {
				d.closeLinks()
				return nil, err
			}
		}
		pl, err := d.newPlacer(opt.Packages, runners)
		if err == nil {
			if l := d.disk.Header().Layout(); l.HasStateAreas() {
				err = checkStateFits(pl.names, l.MaxStatePayload())
			}
		}
		if err != nil {
			d.closePkgNode()
			d.closeLinks()
			return nil, err
		}
		d.pl = pl
		d.stopper = pl.mgr
	}
	d.st.init(d)
	return d, nil
}

func (d *Daemon) openLinks() error {
	for i, nw := range d.cl.Networks {
		var dests []netip.AddrPort
		for _, n := range d.cl.Nodes {
			if n.ID != d.self.ID {
				dests = append(dests, netip.AddrPortFrom(n.Addresses[nw.Name], uint16(nw.Port)))
			}
		}
		t := d.opt.Transports[nw.Name]
		if t == nil {
			u, err := nethb.ListenUDP(netip.AddrPortFrom(d.self.Addresses[nw.Name], uint16(nw.Port)), dests...)
			if err != nil {
				d.closeLinks()
				return fmt.Errorf("network %s: %w", nw.Name, err)
			}
			t = u
		}
		d.links = append(d.links, nethb.Link{Network: uint8(i), Name: nw.Name, Transport: t, Dests: dests})
	}
	return nil
}

func (d *Daemon) closeLinks() {
	for _, l := range d.links {
		_ = l.Transport.Close()
	}
}

// openDisk opens the node's quorum disk with direct I/O and checks its
// header against the configuration.
func openDisk(cl *config.Cluster, self *config.Node, log *slog.Logger) (*diskhb.Disk, error) {
	path := cl.QuorumDiskPath(self.Name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("quorum disk of node %s: %w (check [quorum_disk] path, or the node's quorum_disk override)", self.Name, err)
	}
	var bd diskhb.BlockDevice
	if fi.Mode().IsRegular() {
		bd, err = diskhb.OpenFile(path, diskhb.DefaultFileSectorSize)
	} else {
		bd, err = diskhb.OpenBlock(path)
	}
	if err != nil {
		return nil, fmt.Errorf("quorum disk %s: %w", path, err)
	}
	dev := diskhb.NewDevice(bd, cl.Timing.IOTimeout, log.With("component", "quorum-disk"))
	maxID := 0
	for _, n := range cl.Nodes {
		maxID = max(maxID, n.ID)
	}
	// Opening reads the header once; allow a slow LUN more than one
	// I/O timeout at start, but never wait for ever.
	ctx, cancel := context.WithTimeout(context.Background(), max(5*cl.Timing.IOTimeout, 2*time.Second))
	defer cancel()
	disk, err := diskhb.Open(ctx, dev, diskhb.Expect{
		ClusterUUID: cl.UUID, MaxNodeID: maxID,
		HeartbeatInterval: cl.Timing.HeartbeatInterval, IOTimeout: cl.Timing.IOTimeout,
		FailureTimeout: cl.Timing.FailureTimeout, WatchdogTimeout: cl.Timing.WatchdogTimeout,
	})
	if err != nil {
		_ = dev.Close()
		return nil, fmt.Errorf("quorum disk %s: %w (%s)", path, err, openAdvice(err))
	}
	return disk, nil
}

// Incarnation is this daemon start's incarnation number.
// StartupStopReason is the reason of the stop request every start makes,
// before the watchdog is first fed, for whatever an earlier incarnation of
// this node left running; a status tells it from a self-fence's stop by it.
const StartupStopReason = "starting: stop what an earlier incarnation of this node left running"

// openAdvice says what to do about a quorum disk that does not open. Only a
// disk with no header at all is one to initialise: a damaged header may
// belong to a running cluster, and re-initialising it would wipe the live
// slots of every node.
func openAdvice(err error) string {
	switch {
	case errors.Is(err, diskhb.ErrDamagedHeader):
		return "the header is damaged: do not re-initialise it while any node may run; inspect it with `mtc disk dump`"
	case errors.Is(err, diskhb.ErrNotFormatted):
		return "initialise it with `mtc disk init`, or fix the configuration if this is not the quorum disk"
	case errors.Is(err, diskhb.ErrForeignCluster):
		return "this disk belongs to another cluster: check quorum_disk in the configuration"
	}
	return "check the device and the configuration; `mtc disk dump` shows what the disk holds"
}

func (d *Daemon) Incarnation() uint64 { return d.sender.Incarnation() }

// Run runs the node until ctx ends, then shuts down in order: packages
// stopped, watchdog disarmed, sockets and disk closed. It returns nil on
// that orderly shutdown, or the error that stopped it.
func (d *Daemon) Run(ctx context.Context) error {
	if d.opt.Realtime {
		lockMemory(d.log)
	}
	// Two daemons must never run with one node id: before its first
	// write, watch our slot for as long as the disk's own timing says a
	// live writer needs to show itself.
	w := d.disk.DefaultSlotWatch()
	d.log.Info("watching this node's quorum-disk slot before joining", "slot", d.self.ID, "for", w.For)
	if err := d.disk.WatchSlot(ctx, d.self.ID, w); err != nil {
		d.closeLinks()
		_ = d.disk.Device().Close()
		if errors.Is(err, context.Canceled) {
			return nil
		}
		d.log.Error("refusing to join the cluster", "err", err)
		return fmt.Errorf("node %s (id %d) refuses to join: %w", d.self.Name, d.self.ID, err)
	}
	defer closeFenceLUNs(d.opt.FenceLUNs)
	// Whatever an earlier incarnation of this daemon left running on this
	// machine is stopped before this node registers its key: the
	// registration opens the host's storage again, to the leftovers too,
	// and a peer may already have fenced their incarnation and taken its
	// packages over.
	d.log.Info("stopping whatever an earlier incarnation of this node left running, before registering for fencing")
	select {
	case err := <-d.stopper.StopAll(StartupStopReason):
		if err != nil {
			d.closeLinks()
			_ = d.disk.Device().Close()
			err = fmt.Errorf("packages left running by an earlier incarnation did not stop (the node must be reset before it joins): %w", err)
			d.log.Error("refusing to join the cluster", "err", err)
			return fmt.Errorf("node %s (id %d) refuses to join: %w", d.self.Name, d.self.ID, err)
		}
	case <-ctx.Done():
		d.closeLinks()
		_ = d.disk.Device().Close()
		return nil
	}
	// Registered on every fenced LUN before the first slot write: from
	// then on peers may count this node as a member, so they must be able
	// to fence it, and it must be able to fence them.
	if err := d.unfence(ctx); err != nil {
		d.closeLinks()
		_ = d.disk.Device().Close()
		if ctx.Err() != nil {
			return nil
		}
		d.log.Error("refusing to join the cluster", "err", err)
		return fmt.Errorf("node %s (id %d) refuses to join: %w", d.self.Name, d.self.ID, err)
	}
	defer d.closePkgNode()
	if d.pl != nil {
		if err := d.startPlacement(ctx); err != nil {
			d.closeLinks()
			_ = d.disk.Device().Close()
			return fmt.Errorf("node %s (id %d): packages: %w", d.self.Name, d.self.ID, err)
		}
		d.pl.mgr.Resume()
	}
	edges, stopEdges := context.WithCancel(context.Background())
	defer stopEdges()
	var wg sync.WaitGroup
	if d.pl != nil {
		wg.Add(1)
		go func() { defer wg.Done(); d.stateLoop(edges) }()
		wg.Add(1)
		go func() { defer wg.Done(); d.reportLoop(edges) }()
	}
	errc := make(chan error, len(d.links)+1)
	for _, l := range d.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.receive(edges, l); err != nil {
				errc <- err
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); d.diskLoop(edges) }()
	wg.Add(1)
	go func() { defer wg.Done(); d.fenceLoop(edges) }()

	d.event(journal.Event{Kind: EventDaemonStarted, Severity: SeverityInfo, Reason: "pid " + fmt.Sprint(os.Getpid())})
	d.log.Info("daemon started", "cluster", d.cl.Name, "id", d.self.ID,
		"incarnation", fmt.Sprintf("%016x", d.Incarnation()), "networks", len(d.links),
		"heartbeat_interval", d.timing.HeartbeatInterval, "failure_timeout", d.timing.FailureTimeout,
		"watchdog_timeout", d.timing.WatchdogTimeout, "watchdog", d.opt.WatchdogMode)
	// Arm the watchdog now, not at the loop's first feed (Lazy).
	if o, ok := d.wd.(watchdogOpener); ok {
		if err := o.Open(); err != nil {
			err = fmt.Errorf("node %s %w; it refuses to run without one", d.self.Name, err)
			d.stopOnError(err)
			stopEdges()
			d.closeLinks()
			wg.Wait()
			_ = d.disk.Device().Close()
			return err
		}
	}
	// The loop runs on a goroutine of its own: with Realtime it keeps a
	// SCHED_RR thread, which must end with it rather than go back to the
	// caller.
	loopErr := make(chan error, 1)
	go func() { loopErr <- d.loop(ctx, errc) }()
	err := <-loopErr
	stopEdges()
	d.closeLinks()
	wg.Wait()
	_ = d.disk.Device().Close()
	return err
}

func (d *Daemon) loop(ctx context.Context, errc <-chan error) error {
	if d.opt.Realtime {
		realtimeThread(d.log, "event loop")
	}
	d.mu.Lock()
	d.looping = true
	d.mu.Unlock()
	defer close(d.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	d.sd = notifier{n: d.opt.Notify, every: d.opt.NotifyWatchdog, readyBy: d.clock() + d.timing.DeadAfter}
	// The service manager's watchdog is pinged from this loop, so a loop
	// that hangs stops the pings.
	var sdPing <-chan time.Time
	if d.sd.n != nil && d.sd.every > 0 {
		t := time.NewTicker(d.sd.every)
		defer t.Stop()
		sdPing = t.C
		d.notify(sdnotify.Watchdog)
	}
	// Run stopped whatever an earlier incarnation of this daemon left
	// running before the node registered for fencing; the machine, which
	// feeds no watchdog until it knows, learns it at once.
	d.step(quorum.Tick{})
	d.step(quorum.LeftoversStopped{})
	var pkgReports <-chan PackageReport
	if d.pl != nil {
		pkgReports = d.pl.mgr.Reports()
		d.placeStep(placement.LeftoversStopped{})
	}
	var stopping <-chan error  // set once an orderly shutdown has asked the packages to stop
	var leave <-chan time.Time // set once they are stopped: the last heartbeats are sent
	shutdown := ctx.Done()
	for {
		if d.fatal != nil {
			d.stopOnError(d.fatal)
			return d.fatal
		}
		d.mu.Lock()
		wake := d.wakeAt
		d.mu.Unlock()
		timer.Reset(max(0, wake-d.clock()))
		select {
		case <-shutdown:
			shutdown = nil
			stopping = d.beginShutdown()
		case err := <-stopping:
			if d.pl == nil || err != nil {
				d.finishShutdown(err)
				return nil
			}
			// Let the peers hear that every package here is halted
			// (the next heartbeats carry the report), so they start
			// them without waiting for this node's takeover.
			stopping = nil
			leave = time.After(2*d.timing.HeartbeatInterval + time.Millisecond)
		case <-leave:
			d.finishShutdown(nil)
			return nil
		case err := <-errc:
			d.stopOnError(err)
			return err
		case <-timer.C:
			d.step(quorum.Tick{})
		case <-sdPing:
			d.notify(sdnotify.Watchdog)
		case ev := <-d.netIn:
			d.metrics.observeHeartbeat(d.clock(), ev.peer, ev.hb.From, ev.network, d.networkName(ev.network))
			d.noteNet(ev)
			d.step(quorum.NetReceived{Heartbeat: ev.hb})
			if ev.env != nil {
				d.received(ev.hb.From, ev.env)
			}
		case r := <-pkgReports:
			d.packageReport(r)
		case r := <-d.stateOut:
			d.stateDone(r)
		case r := <-d.reportOut:
			d.reportDone(r)
			d.placeReady(d.clock())
		case f := <-d.onLoop:
			f()
		case r := <-d.diskOut:
			d.noteDisk(r)
			d.step(r.Done)
		case r := <-d.fence.out:
			if !r.rejoin && !r.check {
				// A re-registration and a registration check are
				// journaled by the machine's decisions (rejoin,
				// rejoined, rejoin-failed, registration-lost, ...).
				d.metrics.observeFence(d.names[r.t.Node], r.err, r.took)
				d.journalFence(r)
			}
			d.fenceDone(r)
		case reply := <-d.statusReq:
			// A status must be true when it is given: let the machine
			// judge at this moment first (after a freeze its quorum may
			// have expired).
			d.step(quorum.Tick{})
			s := d.status()
			if d.pl != nil && d.pl.m != nil {
				d.packageStatus(&s)
			}
			reply <- s
		}
	}
}

// step feeds one event and then any events its effects generated.
func (d *Daemon) step(ev quorum.Event) {
	for {
		now := d.clock()
		rd := d.drv.Step(now, ev)
		d.noteReady(rd)
		d.placeAfterQuorum(now, rd.Status)
		d.notifyState(now, rd.Status)
		if len(d.local) == 0 {
			return
		}
		ev = d.local[0]
		d.local = d.local[1:]
	}
}

// stopOnError stops the packages and leaves the watchdog armed: it fires.
func (d *Daemon) stopOnError(cause error) {
	d.log.Error("daemon stopping on error; the watchdog stays armed", "err", cause)
	d.event(journal.Event{Kind: EventDaemonError, Severity: SeverityError, Error: cause.Error(), Reason: "the watchdog stays armed"})
	d.stopper.StopAll("daemon stopping on error: " + cause.Error())
	_ = d.wd.Close()
}

// beginShutdown starts an orderly shutdown: the packages are asked to
// stop while the node keeps running (heartbeats, watchdog) until they
// are confirmed stopped. A node already self-fencing lets its watchdog
// fire: peers time their takeover on its reset.
func (d *Daemon) beginShutdown() <-chan error {
	d.notify(sdnotify.Stopping, sdnotify.Status("shutting down: stopping packages"))
	d.event(journal.Event{Kind: EventDaemonStopping, Severity: SeverityInfo, Reason: "orderly shutdown: stopping packages"})
	if d.drv.Node.Status().Stopped {
		d.log.Warn("daemon shutting down while self-fencing: the watchdog stays armed and resets this node")
		done := make(chan error, 1)
		done <- errSelfFencing
		return done
	}
	d.log.Info("daemon shutting down: stopping packages; the watchdog is disarmed once every package is confirmed stopped")
	return d.stopper.StopAll("daemon shutting down")
}

// errSelfFencing ends the shutdown of a node that is self-fencing.
var errSelfFencing = errors.New("self-fencing")

// finishShutdown disarms the watchdog when every package is confirmed
// stopped and the node is not self-fencing; otherwise it stays armed.
func (d *Daemon) finishShutdown(stopErr error) {
	switch {
	case errors.Is(stopErr, errSelfFencing):
		_ = d.wd.Close()
	case stopErr != nil:
		d.log.Error("packages could not be confirmed stopped: the watchdog stays armed and resets this node", "err", stopErr)
		_ = d.wd.Close()
	case d.drv.Node.Status().Stopped:
		d.log.Warn("the node self-fenced while its packages stopped: the watchdog stays armed and resets this node")
		_ = d.wd.Close()
	default:
		d.log.Info("every package stopped: disarming the watchdog")
		if err := d.wd.Disarm(); err != nil {
			d.log.Error("watchdog disarm failed: it stays armed and will fire", "err", err)
		}
	}
}

// receive serves one heartbeat network.
func (d *Daemon) receive(ctx context.Context, l nethb.Link) error {
	if d.opt.Realtime {
		realtimeThread(d.log, "heartbeat receive "+l.Name)
	}
	unreadable := make(map[string]string) // by configured peer name
	return d.recv.Serve(l.Network, l.Transport, func(hb nethb.Heartbeat) {
		qhb, env, err := hbwire.DecodeNetWith(hb.From, hb.Incarnation, hb.View, hb.Payload)
		if err != nil {
			// Authenticated, so from a configured peer: logged when its
			// error changes (a peer of another release would repeat it).
			if e := err.Error(); unreadable[hb.Peer] != e {
				unreadable[hb.Peer] = e
				d.log.Warn("heartbeat with an unreadable membership payload ignored (repeats are not logged)", "peer", hb.Peer, "network", l.Name, "err", err)
			}
			return
		}
		delete(unreadable, hb.Peer)
		select {
		case d.netIn <- netEvent{hb: qhb, env: bytes.Clone(env), peer: hb.Peer, network: l.Network, newInc: hb.NewIncarnation}:
		case <-ctx.Done():
		}
	})
}

// diskLoop performs the machine's quorum-disk requests one at a time with
// diskhb.Rounds, each I/O bounded by its own I/O timeout.
func (d *Daemon) diskLoop(ctx context.Context) {
	if d.opt.Realtime {
		realtimeThread(d.log, "quorum disk")
	}
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-d.diskReq:
			t0 := d.clock()
			r := d.rounds.Do(ctx, req)
			d.metrics.observeDisk(r.Done.Kind, r.Err, d.clock()-t0)
			select {
			case d.diskOut <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// effects implements quorum.Effects. Every method runs on the event loop.
type effects Daemon

var _ quorum.Effects = (*effects)(nil)

func (e *effects) Broadcast(hb quorum.Heartbeat) {
	d := (*Daemon)(e)
	err := d.sender.Send(uint64(hb.View), hbwire.AppendNetWith(nil, &hb, d.envelope()))
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if msg != d.st.lastSendErr {
			d.log.Warn("heartbeat send failed (repeats are counted in `mtc status`)", "err", err)
		}
		d.st.lastSendErr = msg
		return
	}
	d.st.lastSendErr = ""
}

func (e *effects) StartDisk(req quorum.DiskRequest) {
	d := (*Daemon)(e)
	select {
	case d.diskReq <- req:
	default:
		// The machine keeps at most one request outstanding, so a full
		// queue means the disk goroutine is stuck: fail the request.
		d.local = append(d.local, quorum.DiskDone{Op: req.Op, Kind: req.Kind, Result: quorum.IOFailed})
	}
}

func (e *effects) FeedWatchdog() {
	d := (*Daemon)(e)
	err := d.wd.Feed()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if errors.Is(err, errWatchdogOpen) {
			d.fatal = fmt.Errorf("this node holds quorum but %w; it refuses to run packages without self-fencing", err)
		} else if err.Error() != d.st.wdErr {
			d.log.Error("watchdog feed failed: the node will be reset at the watchdog timeout", "err", err)
		}
		d.st.wdErr = err.Error()
		return
	}
	d.st.wdErr = ""
	d.st.feeds++
	d.st.lastFeed = d.clock()
}

func (e *effects) StopPackages() {
	d := (*Daemon)(e)
	// The machine records why in its SelfFence decision, which the driver
	// reports before it asks for the stop.
	reason := d.fenceWhy
	if reason == "" {
		reason = d.drv.Node.Status().Reason.String()
	}
	d.log.Error("SELF-FENCE: stopping every package and no longer feeding the watchdog; it resets this node at its timeout",
		"reason", reason, "watchdog_timeout", d.timing.WatchdogTimeout)
	d.stopper.StopAll(reason)
}

func (e *effects) Fence(t quorum.Target) {
	d := (*Daemon)(e)
	name := d.names[t.Node]
	now := d.clock()
	d.mu.Lock()
	d.st.fenceRequests = appendRing(d.st.fenceRequests, EventRecord{At: now, Time: d.wall(now), Peer: name, Incarnation: fmt.Sprintf("%016x", uint64(t.Inc))})
	d.mu.Unlock()
	d.requestFence(t)
}

func (e *effects) Takeover(t quorum.Takeover) {
	d := (*Daemon)(e)
	name := d.names[t.Node]
	now := d.clock()
	if d.pl != nil {
		d.pl.takeovers = append(d.pl.takeovers, t)
	}
	d.log.Warn("takeover allowed: placement may start the peer's packages on the survivors", "peer", name, "incarnation", fmt.Sprintf("%016x", uint64(t.Inc)), "reason", t.Reason.String())
	d.mu.Lock()
	d.st.takeovers = appendRing(d.st.takeovers, EventRecord{At: now, Time: d.wall(now), Peer: name, Incarnation: fmt.Sprintf("%016x", uint64(t.Inc)), Reason: t.Reason.String()})
	d.mu.Unlock()
}

func (e *effects) Decided(dec quorum.Decision) {
	d := (*Daemon)(e)
	d.metrics.observeDecision(dec.Kind)
	d.event(d.decisionEvent(dec))
	attrs := []any{"kind", dec.Kind.String(), "decided_at", dec.At}
	if dec.Peer != 0 {
		attrs = append(attrs, "peer", d.names[dec.Peer])
	}
	switch dec.Kind {
	case quorum.PeerStateChanged:
		attrs = append(attrs, "state", dec.State.String())
	case quorum.MembershipChanged, quorum.QuorumGained:
		attrs = append(attrs, "members", d.memberNames(dec.Members))
	case quorum.PeerRestarted:
		attrs = append(attrs, "incarnation", fmt.Sprintf("%016x", uint64(dec.Inc)))
	case quorum.SelfFence:
		d.fenceWhy = dec.Reason
	}
	if dec.Reason != "" {
		attrs = append(attrs, "reason", dec.Reason)
	}
	lvl := slog.LevelInfo
	switch dec.Severity() {
	case quorum.SeverityWarn:
		lvl = slog.LevelWarn
	case quorum.SeverityError:
		lvl = slog.LevelError
	}
	d.log.Log(context.Background(), lvl, "decision: "+dec.String(), attrs...)
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := DecisionRecord{At: dec.At, Time: d.wall(dec.At), Kind: dec.Kind.String(), Text: dec.String(), Reason: dec.Reason}
	if dec.Peer != 0 {
		rec.Peer = d.names[dec.Peer]
	}
	if dec.Kind == quorum.MembershipChanged || dec.Kind == quorum.QuorumGained {
		rec.Members = d.memberNames(dec.Members)
	}
	d.st.decisions = appendRing(d.st.decisions, rec)
}

// monoHandler adds the local monotonic time ("mono", since the daemon
// started) to every record: the handler writes the wall-clock time, and
// the two together let the logs of several nodes be merged.
type monoHandler struct {
	h     slog.Handler
	clock func() time.Duration
}

func (m monoHandler) Enabled(ctx context.Context, l slog.Level) bool { return m.h.Enabled(ctx, l) }

func (m monoHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.Duration("mono", m.clock()))
	return m.h.Handle(ctx, r)
}

func (m monoHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return monoHandler{h: m.h.WithAttrs(as), clock: m.clock}
}

func (m monoHandler) WithGroup(name string) slog.Handler {
	return monoHandler{h: m.h.WithGroup(name), clock: m.clock}
}

// wall is the wall-clock time of local monotonic time at (display and
// merging of histories only; never compared across nodes for decisions).
func (d *Daemon) wall(at time.Duration) time.Time {
	return time.Now().Add(at - d.clock()).Round(time.Microsecond)
}

func (e *effects) WakeAt(t time.Duration) {
	d := (*Daemon)(e)
	d.mu.Lock()
	d.wakeAt = t
	d.mu.Unlock()
}

// networkName is the configured name of heartbeat network i.
func (d *Daemon) networkName(i uint8) string {
	if int(i) < len(d.cl.Networks) {
		return d.cl.Networks[i].Name
	}
	return fmt.Sprint(i)
}

func (d *Daemon) memberNames(s quorum.Set) []string {
	var out []string
	for _, id := range s.IDs() {
		if n, ok := d.names[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("#%d", id))
		}
	}
	return out
}

// ringLen bounds every list the status keeps.
const ringLen = 64

func appendRing[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > ringLen {
		s = s[len(s)-ringLen:]
	}
	return s
}
