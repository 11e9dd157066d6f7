package daemon

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/journal"
)

// Another node's daemon answers its status over the control channel to a
// caller with the cluster key, and refuses one without it.
func TestRemoteStatusOverControl(t *testing.T) {
	tc := newTestCluster(t, 3)
	b := tc.nodes[1]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.d.ServeControl(l) }()
	defer func() {
		l.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	tc.waitFor("n2 quorate with all", func() bool { return quorateWith(b, "n1", "n2", "n3") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := control.ClientConfig{Cluster: tc.cl.UUID, Key: testKey, Node: "n2"}
	s, err := QueryRemoteStatus(ctx, l.Addr().String(), cfg)
	if err != nil || s.Node != "n2" || !s.Quorate || len(s.Members) != 3 {
		t.Fatalf("remote status: %+v, %v", s.Node, err)
	}
	cfg.Key = append([]byte(nil), testKey...)
	cfg.Key[0] ^= 1
	if _, err := QueryRemoteStatus(ctx, l.Addr().String(), cfg); !errors.Is(err, control.ErrAuth) {
		t.Fatalf("another key: %v, want ErrAuth", err)
	}
	cfg.Key = testKey
	_, err = control.Call(ctx, l.Addr().String(), cfg, control.Request{Command: "self-destruct"})
	var re *control.RemoteError
	if !errors.As(err, &re) || re.Code != "unknown-command" {
		t.Fatalf("unknown command: %v", err)
	}
}

// Another node's journal, over the control channel: the newest events,
// filtered by kind.
func TestRemoteEventsOverControl(t *testing.T) {
	jr, err := journal.Open(filepath.Join(t.TempDir(), "events.jsonl"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Close(5 * time.Second)
	tc := newTestClusterWith(t, 3, func(tc *testCluster) {
		tc.options = func(name string, o *Options) {
			if name == "n2" {
				o.Journal = jr
			}
		}
	})
	b := tc.nodes[1]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go b.d.ServeControl(l)
	tc.waitFor("n2 quorate with all", func() bool { return quorateWith(b, "n1", "n2", "n3") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := control.ClientConfig{Cluster: tc.cl.UUID, Key: testKey, Node: "n2"}
	var evs []journal.Event
	tc.waitFor("n2's journal written", func() bool {
		evs, err = QueryRemoteEvents(ctx, l.Addr().String(), cfg, EventsArgs{Kinds: []string{"quorum-gained", EventDaemonStarted}})
		return err == nil && len(evs) >= 2
	})
	if evs[0].Kind != EventDaemonStarted || evs[0].Node != "n2" {
		t.Fatalf("first event %+v", evs[0])
	}
	for _, e := range evs {
		if e.Kind != "quorum-gained" && e.Kind != EventDaemonStarted {
			t.Fatalf("kind filter let %q through", e.Kind)
		}
	}
	last, err := QueryRemoteEvents(ctx, l.Addr().String(), cfg, EventsArgs{Last: 1})
	if err != nil || len(last) != 1 {
		t.Fatalf("last 1: %v %v", last, err)
	}
}
