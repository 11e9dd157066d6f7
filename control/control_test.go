package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

var (
	cluster = uuid.MustParse("3f1b6c7e-2a44-4d1e-9a53-0c2f6f0a9b01")
	key     = bytes.Repeat([]byte{7}, 32)
)

func serve(t *testing.T, h Handler) string {
	t.Helper()
	s, err := NewServer(ServerConfig{Cluster: cluster, Node: "beta", Key: key, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return l.Addr().String()
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var client = ClientConfig{Cluster: cluster, Key: key, Node: "beta"}

func echo(_ context.Context, r Request) (any, error) {
	switch r.Command {
	case "echo":
		return map[string]any{"from": r.From, "args": r.Args}, nil
	case "fail":
		return nil, &CodedError{Code: "maintenance", Err: errors.New("package orders is in maintenance: run `mtc maintenance orders off` first")}
	}
	return nil, errors.New("unknown command " + r.Command)
}

func TestCallRoundTrip(t *testing.T) {
	addr := serve(t, echo)
	res, err := Call(callCtx(t), addr, client, Request{From: "alpha", Command: "echo", Args: json.RawMessage(`{"pkg":"orders"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		From string
		Args map[string]string
	}
	if err := json.Unmarshal(res, &got); err != nil || got.From != "alpha" || got.Args["pkg"] != "orders" {
		t.Fatalf("result %s (%v)", res, err)
	}
	_, err = Call(callCtx(t), addr, client, Request{Command: "fail"})
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "maintenance" || re.Node != "beta" || !strings.Contains(err.Error(), "run `mtc maintenance orders off` first") {
		t.Fatalf("remote failure: %v", err)
	}
}

// Another key: the server refuses without running the handler, and the
// caller is told the keys differ.
func TestWrongKeyRefused(t *testing.T) {
	var mu sync.Mutex
	ran := 0
	addr := serve(t, func(ctx context.Context, r Request) (any, error) {
		mu.Lock()
		ran++
		mu.Unlock()
		return "ran", nil
	})
	bad := client
	bad.Key = bytes.Repeat([]byte{8}, 32)
	if _, err := Call(callCtx(t), addr, bad, Request{Command: "drain"}); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ran != 0 {
		t.Fatal("the handler ran for an unauthenticated request")
	}
}

// A recorded request (its bytes and tag) does not pass on a new
// connection: the nonce differs.
func TestReplayRefused(t *testing.T) {
	var mu sync.Mutex
	ran := 0
	addr := serve(t, func(ctx context.Context, r Request) (any, error) { mu.Lock(); ran++; mu.Unlock(); return nil, nil })
	// Record one exchange by hand.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := readFrame(c)
	var h hello
	json.Unmarshal(hb, &h)
	body, _ := json.Marshal(Request{ID: "x", Command: "move"})
	tg := tag(subKey(key), "request", cluster, "beta", h.Nonce, body)
	writeFrame(c, body)
	writeFrame(c, tg)
	if _, err := readFrame(c); err != nil {
		t.Fatalf("the genuine request: %v", err)
	}
	c.Close()
	// Replay it.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readFrame(c)
	writeFrame(c, body)
	writeFrame(c, tg)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := readFrame(c); err == nil {
		t.Fatalf("replayed request answered: %s", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if ran != 1 {
		t.Fatalf("handler ran %d times, want once (not for the replay)", ran)
	}
}

// A response altered on the way is not believed.
func TestTamperedResponseRefused(t *testing.T) {
	addr := serve(t, func(ctx context.Context, r Request) (any, error) { return "halted", nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		in, err := l.Accept()
		if err != nil {
			return
		}
		defer in.Close()
		out, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer out.Close()
		go func() {
			b := make([]byte, 1<<16)
			for {
				n, err := in.Read(b)
				if err != nil {
					return
				}
				out.Write(b[:n])
			}
		}()
		// Pass the hello, then flip a byte of the response.
		for i := 0; ; i++ {
			f, err := readFrame(out)
			if err != nil {
				return
			}
			if i == 1 {
				f = bytes.Replace(f, []byte("halted"), []byte("hälted"), 1)
			}
			writeFrame(in, f)
		}
	}()
	if _, err := Call(callCtx(t), l.Addr().String(), client, Request{Command: "halt"}); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered response: %v, want ErrAuth", err)
	}
}

// A node that answers as another name, or for another cluster, is refused
// before anything is sent.
func TestWrongNodeOrCluster(t *testing.T) {
	addr := serve(t, echo)
	other := client
	other.Node = "gamma"
	if _, err := Call(callCtx(t), addr, other, Request{Command: "echo"}); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), `answers as node "beta"`) {
		t.Fatalf("wrong node: %v", err)
	}
	other = client
	other.Cluster = uuid.New()
	if _, err := Call(callCtx(t), addr, other, Request{Command: "echo"}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("wrong cluster: %v", err)
	}
}

// The caller's deadline bounds a handler that takes too long.
func TestCallerDeadline(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(ctx context.Context, r Request) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Call(ctx, addr, client, Request{Command: "slow", Timeout: time.Minute}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow handler: %v, want the caller's deadline", err)
	}
}

// More than MaxConns connections at once: the extra ones are closed at
// once and the callers told the node is busy; the node serves again when
// the others end.
func TestConnectionBound(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(ctx context.Context, r Request) (any, error) { <-release; return nil, nil })
	var held []net.Conn
	for range MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		readFrame(c) // the hello: the connection is being served
		held = append(held, c)
	}
	if _, err := Call(callCtx(t), addr, client, Request{Command: "x"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("connection %d: %v, want ErrBusy", MaxConns+1, err)
	}
	close(release)
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := Call(callCtx(t), addr, client, Request{Command: "x"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the others ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOversizedFrame(t *testing.T) {
	if err := writeFrame(&bytes.Buffer{}, make([]byte, MaxFrame+1)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized write: %v", err)
	}
	b := []byte{0x7f, 0xff, 0xff, 0xff}
	if _, err := readFrame(bytes.NewReader(b)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized read: %v", err)
	}
}
