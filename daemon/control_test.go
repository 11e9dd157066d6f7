package daemon

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mtcluster/mtc/control"
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
