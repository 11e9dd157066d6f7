package nethb

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

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

// Stats are the receiver's counters.
type Stats struct {
	// Accepted counts accepted packets per peer name.
	Accepted map[string]uint64 `json:"accepted"`
	// Dropped counts drops per source (peer name or address) and reason.
	Dropped map[string]map[string]uint64 `json:"dropped"`
	// Restarts counts new incarnations seen per peer name, after the first.
	Restarts map[string]uint64 `json:"restarts"`
}

// Receiver authenticates heartbeats and refuses replays. It is safe for
// concurrent use by one goroutine per network.
type Receiver struct {
	cfg     ReceiverConfig
	byID    map[uint32]*Peer
	byAddr  map[netip.Addr]string
	mu      sync.Mutex
	senders map[uint32]*senderState
	stats   Stats
}

// NewReceiver validates cfg and returns a Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("cluster key is %d bytes, fewer than the minimum %d", len(cfg.Key), MinKeyLen)
	}
	r := &Receiver{
		cfg:     cfg,
		byID:    make(map[uint32]*Peer),
		byAddr:  make(map[netip.Addr]string),
		senders: make(map[uint32]*senderState),
		stats: Stats{
			Accepted: make(map[string]uint64),
			Dropped:  make(map[string]map[string]uint64),
			Restarts: make(map[string]uint64),
		},
	}
	for i := range cfg.Peers {
		p := &cfg.Peers[i]
		if p.ID == cfg.Self {
			return nil, fmt.Errorf("peer %q has our own node id %d", p.Name, p.ID)
		}
		if _, dup := r.byID[p.ID]; dup {
			return nil, fmt.Errorf("peers %q and %q share node id %d", r.byID[p.ID].Name, p.Name, p.ID)
		}
		r.byID[p.ID] = p
		for _, a := range p.Addrs {
			r.byAddr[a.Unmap()] = p.Name
		}
	}
	return r, nil
}

func (r *Receiver) source(from netip.AddrPort) string {
	if name, ok := r.byAddr[from.Addr().Unmap()]; ok {
		return name
	}
	return from.Addr().String()
}

func (r *Receiver) drop(reason Reason, from netip.AddrPort, err error) error {
	src := r.source(from)
	m := r.stats.Dropped[src]
	if m == nil {
		m = make(map[string]uint64)
		r.stats.Dropped[src] = m
	}
	m[reason.String()]++
	return &DropError{Reason: reason, Source: src, Err: err}
}

// Accept checks one datagram received on heartbeat network index network
// from the address from. It returns the heartbeat, or a *DropError. The
// returned payload is a copy: b may be reused.
func (r *Receiver) Accept(network uint8, from netip.AddrPort, b []byte) (Heartbeat, error) {
	p, err := Decode(b, r.cfg.Cluster, r.cfg.Key)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case errors.Is(err, ErrMalformed):
		return Heartbeat{}, r.drop(ReasonMalformed, from, err)
	case errors.Is(err, ErrForeignCluster):
		return Heartbeat{}, r.drop(ReasonForeignCluster, from, err)
	case errors.Is(err, ErrForged):
		return Heartbeat{}, r.drop(ReasonForged, from, err)
	case err != nil:
		return Heartbeat{}, r.drop(ReasonMalformed, from, err)
	}
	if p.From == r.cfg.Self {
		return Heartbeat{}, r.drop(ReasonSelf, from, fmt.Errorf("packet carries our own node id %d", p.From))
	}
	if r.cfg.Generation != 0 && p.Generation != r.cfg.Generation {
		return Heartbeat{}, r.drop(ReasonConfigMismatch, from, fmt.Errorf(
			"node %d runs configuration generation %016x, this node %016x: install the same cluster file on every node (`mtc check` prints its generation)",
			p.From, p.Generation, r.cfg.Generation))
	}
	peer, ok := r.byID[p.From]
	if !ok {
		return Heartbeat{}, r.drop(ReasonUnknownSender, from, fmt.Errorf("node id %d is not in this node's configuration (generation %d)", p.From, p.Generation))
	}
	if p.Network != network {
		return Heartbeat{}, r.drop(ReasonWrongNetwork, from, fmt.Errorf("packet for network %d received on network %d", p.Network, network))
	}
	st := r.senders[p.From]
	hb := Heartbeat{Packet: p, Peer: peer.Name}
	switch {
	case st == nil:
		st = &senderState{incarnation: p.Incarnation, highest: make(map[uint8]uint64)}
		r.senders[p.From] = st
		hb.NewIncarnation = true
	case st.incarnation == p.Incarnation:
		if h := st.highest[network]; p.Seq <= h {
			return Heartbeat{}, r.drop(ReasonReplayed, from, fmt.Errorf("sequence %d not above %d already seen from incarnation %016x", p.Seq, h, p.Incarnation))
		}
	default:
		for _, o := range st.old {
			if o == p.Incarnation {
				return Heartbeat{}, r.drop(ReasonReplayed, from, fmt.Errorf("incarnation %016x was replaced by %016x", p.Incarnation, st.incarnation))
			}
		}
		st.old = append(st.old, st.incarnation)
		if len(st.old) > RememberedIncarnations {
			st.old = st.old[1:]
		}
		hb.PrevIncarnation = st.incarnation
		hb.NewIncarnation = true
		st.incarnation = p.Incarnation
		clear(st.highest)
		r.stats.Restarts[peer.Name]++
	}
	st.highest[network] = p.Seq
	r.stats.Accepted[peer.Name]++
	hb.Payload = append([]byte(nil), p.Payload...)
	return hb, nil
}

// Stats returns a copy of the counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{
		Accepted: make(map[string]uint64, len(r.stats.Accepted)),
		Dropped:  make(map[string]map[string]uint64, len(r.stats.Dropped)),
		Restarts: make(map[string]uint64, len(r.stats.Restarts)),
	}
	for k, v := range r.stats.Accepted {
		s.Accepted[k] = v
	}
	for k, m := range r.stats.Dropped {
		c := make(map[string]uint64, len(m))
		for rk, v := range m {
			c[rk] = v
		}
		s.Dropped[k] = c
	}
	for k, v := range r.stats.Restarts {
		s.Restarts[k] = v
	}
	return s
}

// Serve reads datagrams from t until it is closed, passes each to Accept
// as received on network, and calls deliver with every accepted heartbeat
// and drop with every refused one (drop may be nil). It returns nil when t
// is closed, or the transport's error.
func (r *Receiver) Serve(network uint8, t Transport, deliver func(Heartbeat), drop func(*DropError)) error {
	buf := make([]byte, MaxPacket+1)
	for {
		n, from, err := t.Recv(buf)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive heartbeats on %s: %w", t.LocalAddr(), err)
		}
		hb, err := r.Accept(network, from, buf[:n])
		if err != nil {
			var de *DropError
			if drop != nil && errors.As(err, &de) {
				drop(de)
			}
			continue
		}
		deliver(hb)
	}
}
