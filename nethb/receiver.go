package nethb

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Reason is why a received datagram was dropped.
type Reason int

// Drop reasons, in the order the receiver checks them.
const (
	// ReasonMalformed: truncated, bad magic, unknown version, bad length.
	ReasonMalformed Reason = iota
	// ReasonForeignCluster: another cluster's UUID.
	ReasonForeignCluster
	// ReasonForged: the MAC does not verify under our key.
	ReasonForged
	// ReasonUnknownSender: a valid MAC but a node id not in our
	// configuration (a node with a newer or older configuration).
	ReasonUnknownSender
	// ReasonSelf: our own node id (a loop, or a duplicate node id).
	ReasonSelf
	// ReasonWrongNetwork: a packet sent for one heartbeat network and
	// received on another (miswired networks, or a re-routed replay).
	ReasonWrongNetwork
	// ReasonReplayed: not newer than what the sender's incarnation already
	// sent on this network, or from an incarnation it has since replaced.
	ReasonReplayed
	// ReasonConfigMismatch: a valid MAC but another configuration
	// generation: the sender runs a different cluster file.
	ReasonConfigMismatch
	numReasons
)

var reasonNames = [...]string{"malformed", "foreign-cluster", "forged", "unknown-sender", "self", "wrong-network", "replayed", "config-mismatch"}

func (r Reason) String() string {
	if r >= 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// ErrDropped is wrapped by every DropError.
var ErrDropped = errors.New("heartbeat dropped")

// DropError is a datagram the receiver refused, with its reason and source.
type DropError struct {
	Reason Reason
	// Source is the peer name when the source address is a configured
	// peer address, else the source address.
	Source string
	Err    error
}

func (e *DropError) Error() string {
	return fmt.Sprintf("heartbeat from %s dropped (%s): %v", e.Source, e.Reason, e.Err)
}

// Unwrap returns ErrDropped and the underlying decode error, if any.
func (e *DropError) Unwrap() []error { return []error{ErrDropped, e.Err} }

// Peer is a configured cluster node as the receiver knows it.
type Peer struct {
	ID   uint32
	Name string
	// Addrs are the peer's addresses on the heartbeat networks; they only
	// serve to name the source of dropped datagrams in the statistics.
	Addrs []netip.Addr
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Cluster uuid.UUID
	Key     []byte
	// Self is our node id: packets carrying it are dropped.
	Self  uint32
	Peers []Peer
	// Generation is our configuration generation; packets carrying
	// another are dropped (ReasonConfigMismatch). Zero accepts any.
	Generation uint64
	// Networks are the heartbeat networks' names by index, for the logs.
	Networks []string
	// Log receives the drop log: the first drop of each reason at once,
	// then at most one summary per DropLogInterval. Nil logs nothing.
	Log *slog.Logger
	// DropLogInterval is the drop summary period; zero means
	// DefaultDropLogInterval.
	DropLogInterval time.Duration
}

// Heartbeat is an accepted packet.
type Heartbeat struct {
	Packet
	// Peer is the sender's configured name.
	Peer string
	// NewIncarnation is set on the first packet of a sender incarnation
	// other than the one accepted before on any network: the peer
	// restarted (or this is the first packet heard from it).
	NewIncarnation bool
	// PrevIncarnation is the incarnation it replaces (0 if none).
	PrevIncarnation uint64
}

// RememberedIncarnations is how many replaced incarnations of each sender
// the receiver remembers to refuse replays of their packets.
const RememberedIncarnations = 8

type senderState struct {
	incarnation uint64
	highest     map[uint8]uint64 // network index -> highest seq accepted
	old         []uint64         // replaced incarnations, newest last
}

// Stats are the receiver's counters. Their size is bounded by the
// configuration, never by what arrives on the network: Accepted and
// Restarts hold configured peers only, Dropped at most len(peers) +
// MaxDropSources sources of at most one counter per reason each.
type Stats struct {
	// Accepted counts accepted packets per peer name.
	Accepted map[string]uint64 `json:"accepted"`
	// Dropped counts drops per source and reason: configured peers by
	// name (every drop from their addresses), and the MaxDropSources
	// other addresses with the most drops since they were last itemised.
	Dropped map[string]map[string]uint64 `json:"dropped"`
	// DroppedByReason counts every drop, whatever its source.
	DroppedByReason map[string]uint64 `json:"dropped_by_reason"`
	// OtherSources aggregates the drops from addresses not in Dropped.
	OtherSources OtherSources `json:"other_sources"`
	// Restarts counts new incarnations seen per peer name, after the first.
	Restarts map[string]uint64 `json:"restarts"`
	// QueueDrops counts the datagrams the kernel dropped, before the
	// receiver saw them, because a heartbeat socket's receive queue was
	// full (see UDP.QueueDrops).
	QueueDrops uint64 `json:"queue_drops"`
}

// queueDropper is a transport that knows how many datagrams the kernel
// dropped for it.
type queueDropper interface{ QueueDrops() uint64 }

// OtherSources aggregates the drops from the unconfigured addresses that
// Stats.Dropped does not itemise.
type OtherSources struct {
	Packets  uint64            `json:"packets"`
	ByReason map[string]uint64 `json:"by_reason,omitempty"`
	// Addresses estimates how many distinct addresses they came from
	// (a standard error of about 1.6%).
	Addresses uint64 `json:"addresses_estimated"`
}

// Receiver authenticates heartbeats and refuses replays. It is safe for
// concurrent use by one goroutine per network.
type Receiver struct {
	cfg      ReceiverConfig
	byID     map[uint32]int     // node id -> index in cfg.Peers
	byAddr   map[netip.Addr]int // address -> index in cfg.Peers
	log      *slog.Logger
	interval time.Duration
	epoch    time.Time
	// now and schedule are the clock and timer of the drop log, replaced
	// by tests.
	now      func() time.Duration
	schedule func(time.Duration, func())

	mu       sync.Mutex
	senders  map[uint32]*senderState
	accepted []uint64 // per index in cfg.Peers
	restarts []uint64
	drops    dropTable
	win      dropWindow
	queues   []queueDropper // the served transports that count kernel drops
	queued   uint64         // their total at the last drop log summary
}

// queueDrops sums the kernel drops of the served transports; r.mu is not
// held.
func (r *Receiver) queueDrops() uint64 {
	r.mu.Lock()
	qs := r.queues
	r.mu.Unlock()
	var n uint64
	for _, q := range qs {
		n += q.QueueDrops()
	}
	return n
}

// NewReceiver validates cfg and returns a Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("cluster key is %d bytes, fewer than the minimum %d", len(cfg.Key), MinKeyLen)
	}
	if cfg.DropLogInterval < 0 {
		return nil, fmt.Errorf("drop log interval %v is negative", cfg.DropLogInterval)
	}
	cfg.Peers = append([]Peer(nil), cfg.Peers...)
	r := &Receiver{
		cfg:      cfg,
		byID:     make(map[uint32]int),
		byAddr:   make(map[netip.Addr]int),
		log:      cfg.Log,
		interval: cfg.DropLogInterval,
		epoch:    time.Now(),
		senders:  make(map[uint32]*senderState),
		accepted: make([]uint64, len(cfg.Peers)),
		restarts: make([]uint64, len(cfg.Peers)),
		drops:    dropTable{seed: maphash.MakeSeed(), peers: make([]reasonCounts, len(cfg.Peers))},
	}
	if r.interval == 0 {
		r.interval = DefaultDropLogInterval
	}
	r.now = func() time.Duration { return time.Since(r.epoch) }
	r.schedule = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	for i := range cfg.Peers {
		p := &cfg.Peers[i]
		if p.ID == cfg.Self {
			return nil, fmt.Errorf("peer %q has our own node id %d", p.Name, p.ID)
		}
		if j, dup := r.byID[p.ID]; dup {
			return nil, fmt.Errorf("peers %q and %q share node id %d", cfg.Peers[j].Name, p.Name, p.ID)
		}
		r.byID[p.ID] = i
		for _, a := range p.Addrs {
			r.byAddr[a.Unmap()] = i
		}
	}
	return r, nil
}

// peerIndex is the index of the configured peer owning addr, or -1.
func (r *Receiver) peerIndex(addr netip.Addr) int {
	if i, ok := r.byAddr[addr]; ok {
		return i
	}
	return -1
}

// dropped counts one refused datagram; r.mu is held. It allocates nothing.
// It returns the example to log at once when this drop opens its reason
// in the drop log (see dropWindow), and whether the drop log's flush must
// be scheduled.
func (r *Receiver) dropped(from netip.AddrPort, f fault) (ex dropExample, logNow, opened bool) {
	addr := from.Addr().Unmap()
	pi := r.peerIndex(addr)
	r.drops.record(pi, addr, f.reason())
	ex = dropExample{from: from, f: f}
	if pi >= 0 {
		ex.source = r.cfg.Peers[pi].Name
	}
	if r.log == nil {
		return ex, false, false
	}
	opened, logNow = r.win.record(r.now(), ex, addrHash(r.drops.seed, addr))
	return ex, logNow, opened
}

// afterDrop logs and schedules what dropped asked for; r.mu is not held.
func (r *Receiver) afterDrop(network uint8, ex dropExample, logNow, opened bool) {
	if opened {
		r.schedule(r.interval, r.flushDropLog)
	}
	if logNow {
		r.log.Warn(fmt.Sprintf("heartbeat from %s dropped (%s): %v; further drops are summarised every %v and counted in `mtc status`",
			ex.sourceName(), ex.f.reason(), ex.f.err(), r.interval),
			"network", r.networkName(network), "source", ex.sourceName(), "address", ex.from.String(), "reason", ex.f.reason().String())
	}
}

func (r *Receiver) networkName(i uint8) string {
	if int(i) < len(r.cfg.Networks) {
		return r.cfg.Networks[i]
	}
	return strconv.Itoa(int(i))
}

// flushDropLog ends a drop log interval: it logs its summary and schedules
// the next one while drops keep arriving.
func (r *Receiver) flushDropLog() {
	queued := r.queueDrops()
	r.mu.Lock()
	s, ok, again := r.win.flush(r.now())
	s.QueueDrops, r.queued = queued-min(r.queued, queued), queued
	r.mu.Unlock()
	if again {
		r.schedule(r.interval, r.flushDropLog)
	}
	if !ok {
		return
	}
	attrs := []any{"dropped", s.Packets, "interval", s.Interval.Round(time.Millisecond), "queue_drops", s.QueueDrops}
	for _, rs := range s.Reasons {
		attrs = append(attrs, rs.Reason.String(), rs.Packets, rs.Reason.String()+"_sources", rs.Sources)
	}
	r.log.Warn(s.String(), attrs...)
}

// Accept checks one datagram received on heartbeat network index network
// from the address from. It returns the heartbeat, or a *DropError. The
// returned payload is a copy: b may be reused.
func (r *Receiver) Accept(network uint8, from netip.AddrPort, b []byte) (Heartbeat, error) {
	hb, f := r.accept(newVerifier(r.cfg.Key), network, from, b)
	if f.kind != faultNone {
		src := from.Addr().String()
		if i := r.peerIndex(from.Addr().Unmap()); i >= 0 {
			src = r.cfg.Peers[i].Name
		}
		return Heartbeat{}, &DropError{Reason: f.reason(), Source: src, Err: f.err()}
	}
	return hb, nil
}

// accept is Accept with the caller's verifier; a drop allocates nothing.
func (r *Receiver) accept(v *verifier, network uint8, from netip.AddrPort, b []byte) (Heartbeat, fault) {
	var p Packet
	f := decode(b, r.cfg.Cluster, v, &p)
	r.mu.Lock()
	var hb Heartbeat
	if f.kind == faultNone {
		hb, f = r.check(network, p)
	}
	if f.kind == faultNone {
		r.mu.Unlock()
		hb.Payload = append([]byte(nil), p.Payload...)
		return hb, f
	}
	ex, logNow, opened := r.dropped(from, f)
	r.mu.Unlock()
	if logNow || opened {
		r.afterDrop(network, ex, logNow, opened)
	}
	return Heartbeat{}, f
}

// check applies the checks that need the receiver's state to an
// authenticated packet, and updates that state when it is accepted;
// r.mu is held.
func (r *Receiver) check(network uint8, p Packet) (Heartbeat, fault) {
	if p.From == r.cfg.Self {
		return Heartbeat{}, fault{kind: faultSelf, a: uint64(p.From)}
	}
	if r.cfg.Generation != 0 && p.Generation != r.cfg.Generation {
		return Heartbeat{}, fault{kind: faultConfigMismatch, a: uint64(p.From), b: p.Generation, c: r.cfg.Generation}
	}
	pi, ok := r.byID[p.From]
	if !ok {
		return Heartbeat{}, fault{kind: faultUnknownSender, a: uint64(p.From), b: p.Generation}
	}
	if p.Network != network {
		return Heartbeat{}, fault{kind: faultWrongNetwork, a: uint64(p.Network), b: uint64(network)}
	}
	st := r.senders[p.From]
	hb := Heartbeat{Packet: p, Peer: r.cfg.Peers[pi].Name}
	switch {
	case st == nil:
		st = &senderState{incarnation: p.Incarnation, highest: make(map[uint8]uint64)}
		r.senders[p.From] = st
		hb.NewIncarnation = true
	case st.incarnation == p.Incarnation:
		if h := st.highest[network]; p.Seq <= h {
			return Heartbeat{}, fault{kind: faultOldSeq, a: p.Seq, b: h, c: p.Incarnation}
		}
	default:
		for _, o := range st.old {
			if o == p.Incarnation {
				return Heartbeat{}, fault{kind: faultOldIncarnation, a: p.Incarnation, b: st.incarnation}
			}
		}
		st.old = append(st.old, st.incarnation)
		if len(st.old) > RememberedIncarnations {
			st.old = append(st.old[:0], st.old[1:]...)
		}
		hb.PrevIncarnation = st.incarnation
		hb.NewIncarnation = true
		st.incarnation = p.Incarnation
		clear(st.highest)
		r.restarts[pi]++
	}
	st.highest[network] = p.Seq
	r.accepted[pi]++
	return hb, fault{}
}

// Stats returns a copy of the counters, bounded in size (see Stats).
func (r *Receiver) Stats() Stats {
	queued := r.queueDrops()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{
		Accepted:        make(map[string]uint64),
		Dropped:         make(map[string]map[string]uint64),
		DroppedByReason: r.drops.byReason.named(),
		Restarts:        make(map[string]uint64),
		QueueDrops:      queued,
		OtherSources: OtherSources{Packets: r.drops.other.total(), ByReason: r.drops.other.named(),
			Addresses: r.drops.otherSrc.estimate()},
	}
	for i, p := range r.cfg.Peers {
		if r.accepted[i] != 0 {
			s.Accepted[p.Name] = r.accepted[i]
		}
		if r.restarts[i] != 0 {
			s.Restarts[p.Name] = r.restarts[i]
		}
		if r.drops.peers[i].total() != 0 {
			s.Dropped[p.Name] = r.drops.peers[i].named()
		}
	}
	for _, e := range r.drops.sources[:r.drops.used] {
		s.Dropped[e.addr.String()] = e.n.named()
	}
	if s.OtherSources.Packets > 0 {
		s.OtherSources.Addresses = max(s.OtherSources.Addresses, 1)
	}
	return s
}

// Serve reads datagrams from t until it is closed, passes each to the
// receiver's checks as received on network, and calls deliver with every
// accepted heartbeat. Refused datagrams are counted and logged (see
// ReceiverConfig.Log); refusing one allocates nothing. It returns nil when
// t is closed, or the transport's error.
func (r *Receiver) Serve(network uint8, t Transport, deliver func(Heartbeat)) error {
	if q, ok := t.(queueDropper); ok {
		n := q.QueueDrops() // the summaries count from here
		r.mu.Lock()
		r.queues = append(r.queues, q)
		r.queued += n
		r.mu.Unlock()
	}
	buf := make([]byte, MaxPacket+1)
	v := newVerifier(r.cfg.Key)
	for {
		n, from, err := t.Recv(buf)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive heartbeats on %s: %w", t.LocalAddr(), err)
		}
		if hb, f := r.accept(v, network, from, buf[:n]); f.kind == faultNone {
			deliver(hb)
		}
	}
}
