package nethb

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/uuid"
)

// Link is one heartbeat network as the sender uses it: the transport bound
// to our address on it and every peer address to send to.
type Link struct {
	// Network is the index of the network in the configuration.
	Network uint8
	// Name is the network's configured name (for errors and statistics).
	Name      string
	Transport Transport
	Dests     []netip.AddrPort
}

// SenderConfig configures a Sender.
type SenderConfig struct {
	Cluster    uuid.UUID
	Key        []byte
	Self       uint32
	Generation uint64
	Links      []Link
	// Incarnation identifies this daemon start; zero picks a random one.
	Incarnation uint64
}

// SendStats counts datagrams sent and send errors per network name.
type SendStats struct {
	Sent   map[string]uint64 `json:"sent"`
	Errors map[string]uint64 `json:"errors"`
}

// Sender builds and sends this node's heartbeats. Safe for concurrent use.
type Sender struct {
	cfg   SenderConfig
	mu    sync.Mutex
	seq   []uint64
	buf   []byte
	stats SendStats
}

// NewIncarnation returns a random non-zero incarnation number.
func NewIncarnation() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("random incarnation: %w", err)
		}
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v, nil
		}
	}
}

// NewSender validates cfg and returns a Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("cluster key is %d bytes, fewer than the minimum %d", len(cfg.Key), MinKeyLen)
	}
	if cfg.Incarnation == 0 {
		inc, err := NewIncarnation()
		if err != nil {
			return nil, err
		}
		cfg.Incarnation = inc
	}
	return &Sender{
		cfg:   cfg,
		seq:   make([]uint64, len(cfg.Links)),
		buf:   make([]byte, 0, MaxPacket),
		stats: SendStats{Sent: make(map[string]uint64), Errors: make(map[string]uint64)},
	}, nil
}

// Incarnation is this sender's incarnation number.
func (s *Sender) Incarnation() uint64 { return s.cfg.Incarnation }

// Send sends one heartbeat carrying view and payload to every peer on
// every network, with the next sequence number of each network. It sends
// to every destination even when some fail, and returns the failures
// joined.
func (s *Sender) Send(view uint64, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i, l := range s.cfg.Links {
		s.seq[i]++
		p := Packet{
			Network:     l.Network,
			Cluster:     s.cfg.Cluster,
			From:        s.cfg.Self,
			Incarnation: s.cfg.Incarnation,
			Seq:         s.seq[i],
			Generation:  s.cfg.Generation,
			View:        view,
			Payload:     payload,
		}
		b, err := p.AppendEncode(s.buf[:0], s.cfg.Key)
		if err != nil {
			return err
		}
		s.buf = b[:0]
		for _, d := range l.Dests {
			if err := l.Transport.Send(d, b); err != nil {
				s.stats.Errors[l.Name]++
				errs = append(errs, fmt.Errorf("send heartbeat on network %s to %s: %w", l.Name, d, err))
				continue
			}
			s.stats.Sent[l.Name]++
		}
	}
	return errors.Join(errs...)
}

// Stats returns a copy of the send counters.
func (s *Sender) Stats() SendStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := SendStats{Sent: make(map[string]uint64), Errors: make(map[string]uint64)}
	for k, v := range s.stats.Sent {
		c.Sent[k] = v
	}
	for k, v := range s.stats.Errors {
		c.Errors[k] = v
	}
	return c
}
