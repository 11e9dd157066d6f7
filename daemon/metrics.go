package daemon

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/quorum"
)

// metrics are the daemon's Prometheus metrics. The distributions are
// observed where they happen (disk rounds on the disk goroutine, heartbeat
// gaps and fence results on the event loop); the state gauges and
// counters are read from one Status at scrape time, so a scrape shows
// what `mtc status` shows at that moment.
type metrics struct {
	d *Daemon

	diskIO       *prometheus.HistogramVec
	hbGap        *prometheus.HistogramVec
	fenceLatency *prometheus.HistogramVec
	fences       *prometheus.CounterVec
	decisions    *prometheus.CounterVec
	failover     prometheus.Histogram

	// lastHeard is the local time of each peer's last heartbeat per
	// network, and gapOf its histogram (event loop only: the labels are
	// looked up once per peer and network, not per heartbeat).
	lastHeard map[hbKey]time.Duration
	gapOf     map[hbKey]prometheus.Observer

	up, quorate, armed, stopped, tie, members, epoch, stopIn   *prometheus.Desc
	peerState, peerMember, peerSinceHeard, peerDiskSince       *prometheus.Desc
	hbSent, hbSendErr, hbAccepted, hbDropped, hbRestarts       *prometheus.Desc
	hbQueueDrops                                               *prometheus.Desc
	diskWrites, diskWriteFail, diskReads, diskReadFail, diskCf *prometheus.Desc
	diskSinceWrite, wdFeeds, wdSinceFeed, fenceLUNs            *prometheus.Desc
	pkgState, pkgHere                                          *prometheus.Desc
}

type hbKey struct {
	peer    quorum.NodeID
	network uint8
}

const metricsNS = "mtc"

// Peer states a peer can be in, each a series of mtc_peer_state.
var peerStates = []string{"unknown", "alive", "suspect", "partitioned", "dead"}

// Fence outcomes as labels of the fence metrics.
const (
	fenceOK          = "fenced"
	fenceSelfFenced  = "self_fenced"
	fenceConflict    = "reservation_conflict"
	fenceUnsupported = "not_supported"
	fencePath        = "path_or_timeout"
	fenceFailed      = "failed"
)

func newMetrics(d *Daemon) *metrics {
	h := d.timing.HeartbeatInterval.Seconds()
	io := d.timing.IOTimeout.Seconds()
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metricsNS+"_"+name, help, labels, nil)
	}
	m := &metrics{
		d: d,
		// Buckets from the timing: a healthy disk round is far below
		// io_timeout, a stalled one reaches it.
		diskIO: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "quorum_disk_round_seconds",
			Help:    "Duration of one quorum-disk request (own slot write with read-back, or slot-area read with the tie-break lock), by kind and result.",
			Buckets: buckets(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, io/4, io/2, io, 2*io),
		}, []string{"kind", "result"}),
		// Gaps in multiples of the heartbeat interval: 1 is on time,
		// SuspectAfter and DeadAfter are the machine's thresholds.
		hbGap: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "heartbeat_gap_seconds",
			Help:    "Time between two heartbeats received from a peer on one network.",
			Buckets: buckets(h/2, h, 1.25*h, 1.5*h, 2*h, 3*h, d.timing.SuspectAfter.Seconds(), d.timing.DeadAfter.Seconds(), 2*d.timing.DeadAfter.Seconds()),
		}, []string{"peer", "network"}),
		fenceLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "fence_seconds",
			Help:    "Duration of one fence attempt of a peer on every fenced LUN, by outcome.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		fences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "fence_attempts_total",
			Help: "Fence attempts by victim and outcome.",
		}, []string{"victim", "outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "decisions_total",
			Help: "Membership and quorum decisions by kind (quorum-lost, quorum-gained, self-fence, ...).",
		}, []string{"kind"}),
		failover: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNS, Name: "failover_seconds",
			Help:    "Time from a package's owner leaving the membership to the package running on this node (failovers this node completed).",
			Buckets: buckets(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, d.timing.TakeoverAfter.Seconds()),
		}),
		lastHeard: make(map[hbKey]time.Duration),
		gapOf:     make(map[hbKey]prometheus.Observer),

		up:             desc("up", "1 while the daemon's event loop answers."),
		quorate:        desc("quorate", "1 while this node holds quorum."),
		armed:          desc("armed", "1 once this node has held quorum in this incarnation (its watchdog is armed)."),
		stopped:        desc("stopped", "1 once this node has stopped its packages and its watchdog feed (self-fencing)."),
		tie:            desc("tie", "1 while the member set holds exactly half of the votes."),
		members:        desc("members", "Number of nodes in this node's member set."),
		epoch:          desc("membership_epoch", "Count of member-set changes in this incarnation."),
		stopIn:         desc("stop_in_seconds", "Time left before this node stops unless it regains quorum or completes a slot write (0 when not pending)."),
		peerState:      desc("peer_state", "1 for the state the membership machine gives the peer.", "peer", "state"),
		peerMember:     desc("peer_member", "1 while the peer is in this node's member set.", "peer"),
		peerSinceHeard: desc("peer_net_since_heard_seconds", "Time since the peer's counter last changed on any network (absent if never heard).", "peer"),
		peerDiskSince:  desc("peer_disk_since_change_seconds", "Time since the peer's quorum-disk slot counter last changed (absent if never seen).", "peer"),
		hbSent:         desc("heartbeats_sent_total", "Heartbeats sent, by network.", "network"),
		hbSendErr:      desc("heartbeat_send_errors_total", "Heartbeat sends that failed, by network.", "network"),
		hbAccepted:     desc("heartbeats_accepted_total", "Authenticated heartbeats accepted, by peer.", "peer"),
		hbDropped:      desc("heartbeats_dropped_total", "Datagrams dropped on the heartbeat ports, by reason.", "reason"),
		hbRestarts:     desc("peer_restarts_total", "New incarnations of a peer seen after its first.", "peer"),
		hbQueueDrops:   desc("heartbeat_queue_drops_total", "Datagrams the kernel dropped because a heartbeat socket's receive queue was full."),
		diskWrites:     desc("quorum_disk_writes_total", "Own-slot writes."),
		diskWriteFail:  desc("quorum_disk_write_failures_total", "Own-slot writes that failed (or counted as failed: a foreign writer on the slot)."),
		diskReads:      desc("quorum_disk_reads_total", "Slot-area reads."),
		diskReadFail:   desc("quorum_disk_read_failures_total", "Slot-area reads that failed."),
		diskCf:         desc("quorum_disk_conflicts_total", "Reads that found this node's slot written by another daemon."),
		diskSinceWrite: desc("quorum_disk_since_write_seconds", "Time since this node's last successful own-slot write (absent before the first)."),
		wdFeeds:        desc("watchdog_feeds_total", "Watchdog feeds."),
		wdSinceFeed:    desc("watchdog_since_feed_seconds", "Time since the last watchdog feed (absent before the first)."),
		pkgState:       desc("package_state", "1 for the state of the package on the node reporting it (halted when no node does), as this node sees the cluster.", "package", "node", "state"),
		pkgHere:        desc("package_placed_here", "1 while placement puts the package on this node.", "package"),
		fenceLUNs:      desc("fence_luns", "Fenced LUNs of this node by fencing method (pr: persistent reservations; watchdog: no PR, takeover waits for the watchdog deadline).", "method"),
	}
	return m
}

// buckets sorts histogram bounds and drops repeats: the ones derived from
// the timing fall among the fixed ones wherever the timing puts them.
func buckets(b ...float64) []float64 {
	slices.Sort(b)
	return slices.Compact(b)
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.diskIO.Describe(ch)
	m.hbGap.Describe(ch)
	m.fenceLatency.Describe(ch)
	m.fences.Describe(ch)
	m.decisions.Describe(ch)
	m.failover.Describe(ch)
	ch <- m.pkgState
	ch <- m.pkgHere
	for _, d := range []*prometheus.Desc{m.up, m.quorate, m.armed, m.stopped, m.tie, m.members, m.epoch, m.stopIn,
		m.peerState, m.peerMember, m.peerSinceHeard, m.peerDiskSince, m.hbSent, m.hbSendErr, m.hbAccepted,
		m.hbDropped, m.hbRestarts, m.hbQueueDrops, m.diskWrites, m.diskWriteFail, m.diskReads, m.diskReadFail,
		m.diskCf, m.diskSinceWrite, m.wdFeeds, m.wdSinceFeed, m.fenceLUNs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the distributions, and the
// state of one Status taken now.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.diskIO.Collect(ch)
	m.hbGap.Collect(ch)
	m.fenceLatency.Collect(ch)
	m.fences.Collect(ch)
	m.decisions.Collect(ch)
	m.failover.Collect(ch)

	d := m.d
	d.mu.Lock()
	looping := d.looping
	d.mu.Unlock()
	s := d.Status()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge(m.up, b(looping))
	for _, p := range s.Packages {
		if len(p.Nodes) == 0 {
			gauge(m.pkgState, 1, p.Name, "", "halted")
		}
		for _, n := range p.Nodes {
			gauge(m.pkgState, 1, p.Name, n.Node, n.State)
		}
		gauge(m.pkgHere, b(p.Target == s.Node), p.Name)
	}
	gauge(m.quorate, b(s.Quorate))
	gauge(m.armed, b(s.Armed))
	gauge(m.stopped, b(s.Stopped))
	gauge(m.tie, b(s.Tie))
	gauge(m.members, float64(len(s.Members)))
	gauge(m.epoch, float64(s.Epoch))
	gauge(m.stopIn, s.StopIn.Seconds())
	for _, p := range s.Peers {
		for _, st := range peerStates {
			gauge(m.peerState, b(p.State == st), p.Name, st)
		}
		gauge(m.peerMember, b(p.Member), p.Name)
		if p.SinceHeard >= 0 {
			gauge(m.peerSinceHeard, p.SinceHeard.Seconds(), p.Name)
		}
		if p.DiskSinceChange >= 0 {
			gauge(m.peerDiskSince, p.DiskSinceChange.Seconds(), p.Name)
		}
	}
	for n, v := range s.Network.Send.Sent {
		counter(m.hbSent, v, n)
	}
	for n, v := range s.Network.Send.Errors {
		counter(m.hbSendErr, v, n)
	}
	for p, v := range s.Network.Receive.Accepted {
		counter(m.hbAccepted, v, p)
	}
	for r, v := range s.Network.Receive.DroppedByReason {
		counter(m.hbDropped, v, r)
	}
	for p, v := range s.Network.Receive.Restarts {
		counter(m.hbRestarts, v, p)
	}
	counter(m.hbQueueDrops, s.Network.Receive.QueueDrops)
	counter(m.diskWrites, s.Disk.Writes)
	counter(m.diskWriteFail, s.Disk.WriteFailures)
	counter(m.diskReads, s.Disk.Reads)
	counter(m.diskReadFail, s.Disk.ReadFailures)
	counter(m.diskCf, s.Disk.Conflicts)
	if s.Disk.SinceWrite >= 0 {
		gauge(m.diskSinceWrite, s.Disk.SinceWrite.Seconds())
	}
	counter(m.wdFeeds, s.Watchdog.Feeds)
	if s.Watchdog.SinceFeed >= 0 {
		gauge(m.wdSinceFeed, s.Watchdog.SinceFeed.Seconds())
	}
	pr, none := 0, 0
	for _, l := range s.Fencing.LUNs {
		if l.NoPR == "" {
			pr++
		} else {
			none++
		}
	}
	gauge(m.fenceLUNs, float64(pr), "pr")
	gauge(m.fenceLUNs, float64(none), "watchdog")
}

// observeDisk records one quorum-disk request's duration.
func (m *metrics) observeDisk(kind quorum.DiskOp, err error, took time.Duration) {
	k := "read"
	if kind == quorum.DiskWriteSlot {
		k = "write"
	}
	r := "ok"
	if err != nil {
		r = "error"
	}
	m.diskIO.WithLabelValues(k, r).Observe(took.Seconds())
}

// observeHeartbeat records the gap since the peer's previous heartbeat on
// the network (event loop).
func (m *metrics) observeHeartbeat(now time.Duration, peer string, from quorum.NodeID, network uint8, networkName string) {
	k := hbKey{from, network}
	if prev, ok := m.lastHeard[k]; ok {
		o := m.gapOf[k]
		if o == nil {
			o = m.hbGap.WithLabelValues(peer, networkName)
			m.gapOf[k] = o
		}
		o.Observe((now - prev).Seconds())
	}
	m.lastHeard[k] = now
}

// observeFence records one fence attempt's outcome and duration.
func (m *metrics) observeFence(victim string, err error, took time.Duration) {
	o := fenceOutcome(err)
	m.fenceLatency.WithLabelValues(o).Observe(took.Seconds())
	m.fences.WithLabelValues(victim, o).Inc()
}

func fenceOutcome(err error) string {
	switch {
	case err == nil:
		return fenceOK
	case errors.Is(err, fence.ErrSelfFenced):
		return fenceSelfFenced
	case errors.Is(err, fence.ErrReservationConflict):
		return fenceConflict
	case errors.Is(err, fence.ErrNotSupported):
		return fenceUnsupported
	case errors.Is(err, fence.ErrPath), errors.Is(err, fence.ErrTimeout):
		return fencePath
	}
	return fenceFailed
}

// observeDecision counts a decision by kind.
func (m *metrics) observeDecision(k quorum.DecisionKind) {
	m.decisions.WithLabelValues(k.String()).Inc()
}

// Collector returns the node's Prometheus metrics: register it with a
// registry (MetricsHandler does).
func (d *Daemon) Collector() prometheus.Collector { return d.metrics }

// MetricsHandler serves the node's metrics, and Go's runtime and process
// metrics, in the Prometheus exposition format.
func (d *Daemon) MetricsHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{d.metrics, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

// ServeMetrics serves MetricsHandler on l at /metrics until l is closed.
func (d *Daemon) ServeMetrics(l net.Listener) error {
	h, err := d.MetricsHandler()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	err = srv.Serve(l)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// observeFailover records a failover this node completed.
func (m *metrics) observeFailover(took time.Duration) { m.failover.Observe(took.Seconds()) }
