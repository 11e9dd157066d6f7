// Package control carries operator commands between nodes: a command
// typed on one node that another must carry out (a move to it, its
// status, a drain) reaches that node's daemon over TCP, authenticated with
// the cluster key, and the caller waits for the outcome within a deadline.
//
// # Protocol
//
// One request per connection, every message a frame: a 4-byte big-endian
// length and that many bytes (at most MaxFrame).
//
//	server -> client  hello: {"v":1,"cluster":UUID,"node":NAME,"nonce":32 random bytes}
//	client -> server  request (JSON Request), then its tag
//	server -> client  response (JSON Response), then its tag
//
// A tag is HMAC-SHA256 over a label ("request" or "response"), the
// cluster UUID, the serving node's name, the connection's nonce and the
// message, keyed with a key derived from the cluster key for this protocol
// alone (so no heartbeat can be passed off as a command, nor the reverse).
// The server answers only a request whose tag verifies, and the client
// believes only a response whose tag does: a recorded request cannot be
// replayed (the nonce is fresh per connection), and a forged "done" is
// refused. Requests are not encrypted: they carry commands and states, no
// secrets.
//
// # Bounds
//
// The server serves at most MaxConns connections at once and closes the
// rest at once; every connection has a deadline for the handshake and the
// request (HandshakeTimeout) and the handler's own (the request's Timeout,
// at most MaxTimeout). A flood of connections costs the control port, not
// the heartbeats, which have their own sockets and threads.
package control

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Limits.
const (
	// MaxFrame bounds one message.
	MaxFrame = 1 << 20
	// MaxConns bounds the connections served at once.
	MaxConns = 16
	// HandshakeTimeout bounds the hello, the request and its tag.
	HandshakeTimeout = 5 * time.Second
	// MaxTimeout bounds the time a handler may be given.
	MaxTimeout = 10 * time.Minute
	// DefaultTimeout is a handler's time when the request gives none.
	DefaultTimeout = 30 * time.Second
)

// Errors.
var (
	// ErrAuth: a tag did not verify (another cluster key, or tampering).
	ErrAuth = errors.New("control: authentication failed (is the cluster key the same on both nodes?)")
	// ErrProtocol: a malformed or oversized message, or another version.
	ErrProtocol = errors.New("control: protocol error")
	// ErrUnreachable: the node could not be reached.
	ErrUnreachable = errors.New("control: node unreachable")
	// ErrBusy: the node is serving MaxConns connections already.
	ErrBusy = errors.New("control: node busy")
)

// Request is one command.
type Request struct {
	// ID names the request in both nodes' logs.
	ID string `json:"id"`
	// From is the calling node's name, or "" for an operator's tool.
	From    string          `json:"from,omitempty"`
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
	// Timeout is how long the handler may take (0: DefaultTimeout).
	Timeout time.Duration `json:"timeout_ns,omitempty"`
}

// Response is a command's outcome.
type Response struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	// Error is the handler's error, Code its class for callers (see
	// RemoteError).
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// RemoteError is a command that reached the node and failed there.
type RemoteError struct {
	Node, Command, Code, Msg string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("node %s: %s: %s", e.Node, e.Command, e.Msg)
}

// CodedError lets a handler give its error a class the caller can test
// (RemoteError.Code).
type CodedError struct {
	Code string
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// Handler carries out a request; its result is marshalled as JSON.
type Handler func(ctx context.Context, req Request) (any, error)

type hello struct {
	V       int       `json:"v"`
	Cluster uuid.UUID `json:"cluster"`
	Node    string    `json:"node"`
	Nonce   []byte    `json:"nonce"`
}

// Version is the protocol version in every hello.
const Version = 1

// subKey derives this protocol's key from the cluster key.
func subKey(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mtc control v1"))
	return m.Sum(nil)
}

func tag(k []byte, label string, cluster uuid.UUID, node string, nonce, msg []byte) []byte {
	m := hmac.New(sha256.New, k)
	var n [4]byte
	for _, part := range [][]byte{[]byte(label), cluster[:], []byte(node), nonce, msg} {
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		m.Write(n[:])
		m.Write(part)
	}
	return m.Sum(nil)
}

func writeFrame(w io.Writer, b []byte) error {
	if len(b) > MaxFrame {
		return fmt.Errorf("%w: message of %d bytes, at most %d", ErrProtocol, len(b), MaxFrame)
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(append(n[:], b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint32(n[:])
	if l > MaxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes, at most %d", ErrProtocol, l, MaxFrame)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ServerConfig configures a Server.
type ServerConfig struct {
	Cluster uuid.UUID
	// Node is the serving node's name.
	Node    string
	Key     []byte
	Handler Handler
	Log     *slog.Logger
}

// Server serves requests on a listener.
type Server struct {
	cfg  ServerConfig
	key  []byte
	log  *slog.Logger
	sem  chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	last string // the last refusal logged
}

// NewServer returns a server; Serve starts it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Handler == nil || len(cfg.Key) == 0 || cfg.Node == "" {
		return nil, errors.New("control: Handler, Key and Node are required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, key: subKey(cfg.Key), log: log, sem: make(chan struct{}, MaxConns)}, nil
}

// Serve serves until l is closed, then waits for the connections in
// progress to end.
func (s *Server) Serve(l net.Listener) error {
	defer s.wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("control: accept: %w", err)
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.refused(c.RemoteAddr(), ErrBusy)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			defer c.Close()
			if err := s.serve(c); err != nil {
				s.refused(c.RemoteAddr(), err)
			}
		}()
	}
}

// refused logs a refused connection when the reason differs from the last
// one logged (a flood logs once).
func (s *Server) refused(from net.Addr, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := err.Error(); e != s.last {
		s.last = e
		s.log.Warn("control connection refused (repeats of the same reason are not logged)", "from", from.String(), "err", err)
	}
}

func (s *Server) serve(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	h, _ := json.Marshal(hello{V: Version, Cluster: s.cfg.Cluster, Node: s.cfg.Node, Nonce: nonce})
	if err := writeFrame(c, h); err != nil {
		return err
	}
	body, err := readFrame(c)
	if err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	t, err := readFrame(c)
	if err != nil {
		return fmt.Errorf("reading the request's tag: %w", err)
	}
	if !hmac.Equal(t, tag(s.key, "request", s.cfg.Cluster, s.cfg.Node, nonce, body)) {
		return ErrAuth
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: request: %v", ErrProtocol, err)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timeout = min(timeout, MaxTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = c.SetDeadline(time.Now().Add(timeout + HandshakeTimeout))
	s.log.Info("control request", "id", req.ID, "from", req.From, "command", req.Command, "remote", c.RemoteAddr().String())
	resp := Response{ID: req.ID}
	res, herr := s.cfg.Handler(ctx, req)
	if herr != nil {
		resp.Error = herr.Error()
		var ce *CodedError
		if errors.As(herr, &ce) {
			resp.Code = ce.Code
		}
	} else if res != nil {
		b, err := json.Marshal(res)
		if err != nil {
			resp.Error = fmt.Sprintf("encoding the result: %v", err)
		} else {
			resp.Result = b
		}
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	if len(out) > MaxFrame {
		out, _ = json.Marshal(Response{ID: req.ID, Error: fmt.Sprintf("result of %d bytes exceeds the protocol's %d", len(out), MaxFrame), Code: "too-large"})
	}
	if err := writeFrame(c, out); err != nil {
		return err
	}
	return writeFrame(c, tag(s.key, "response", s.cfg.Cluster, s.cfg.Node, nonce, out))
}

// ClientConfig says whom a Call is for.
type ClientConfig struct {
	Cluster uuid.UUID
	Key     []byte
	// Node is the name of the node called: its hello must say so.
	Node string
}

// Call sends req to the node at addr and returns its response. The whole
// exchange is bounded by ctx; give it a deadline past req.Timeout. A
// command that failed on the node is a *RemoteError.
func Call(ctx context.Context, addr string, cfg ClientConfig, req Request) (json.RawMessage, error) {
	if req.ID == "" {
		req.ID = uuid.NewString()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %s: %w", ErrUnreachable, cfg.Node, addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	k := subKey(cfg.Key)
	hb, err := readFrame(c)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s at %s closed the connection (busy?)", ErrBusy, cfg.Node, addr)
		}
		return nil, fmt.Errorf("%w: %s at %s: hello: %w", ErrUnreachable, cfg.Node, addr, ctxErr(ctx, err))
	}
	var h hello
	if err := json.Unmarshal(hb, &h); err != nil || h.V != Version || len(h.Nonce) != 32 {
		return nil, fmt.Errorf("%w: %s at %s: not an MT-Cluster control hello of version %d", ErrProtocol, cfg.Node, addr, Version)
	}
	if h.Cluster != cfg.Cluster {
		return nil, fmt.Errorf("%w: %s at %s serves cluster %s, not %s", ErrProtocol, cfg.Node, addr, h.Cluster, cfg.Cluster)
	}
	if h.Node != cfg.Node {
		return nil, fmt.Errorf("%w: %s answers as node %q (is the address right?)", ErrProtocol, addr, h.Node)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(c, body); err != nil {
		return nil, fmt.Errorf("%w: sending to %s: %w", ErrUnreachable, cfg.Node, ctxErr(ctx, err))
	}
	if err := writeFrame(c, tag(k, "request", cfg.Cluster, cfg.Node, h.Nonce, body)); err != nil {
		return nil, fmt.Errorf("%w: sending to %s: %w", ErrUnreachable, cfg.Node, ctxErr(ctx, err))
	}
	out, err := readFrame(c)
	if err != nil {
		if errors.Is(err, io.EOF) {
			// The server closes without an answer only when the tag
			// did not verify.
			return nil, fmt.Errorf("%s refused the request: %w", cfg.Node, ErrAuth)
		}
		return nil, fmt.Errorf("waiting for %s: %w", cfg.Node, ctxErr(ctx, err))
	}
	t, err := readFrame(c)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", cfg.Node, ctxErr(ctx, err))
	}
	if !hmac.Equal(t, tag(k, "response", cfg.Cluster, cfg.Node, h.Nonce, out)) {
		return nil, fmt.Errorf("the response from %s: %w", cfg.Node, ErrAuth)
	}
	var resp Response
	if err := json.Unmarshal(out, &resp); err != nil || resp.ID != req.ID {
		return nil, fmt.Errorf("%w: response from %s", ErrProtocol, cfg.Node)
	}
	if resp.Error != "" {
		return nil, &RemoteError{Node: cfg.Node, Command: req.Command, Code: resp.Code, Msg: resp.Error}
	}
	return resp.Result, nil
}

// ctxErr prefers the context's error (a deadline the caller set) to the
// connection's.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// The connection's deadline is the context's: it may fire a moment
	// before the context notices.
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}
