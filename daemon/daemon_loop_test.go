package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/test/testutil"
	"github.com/mtcluster/mtc/watchdog"
)

// Two daemons started with the same node id (a copied configuration) on
// one quorum disk, a loop device written with O_DIRECT as on a LUN: the
// first runs, the second refuses to join before it writes anything and
// names the node id; the first never sees a conflict.
func TestLoopSameNodeIDRefused(t *testing.T) {
	testutil.RequireRoot(t, "creates a loop device")
	loop := testutil.NewLoopDevice(t, 512, 4<<20)
	cl := clusterConfig(t, 2)
	tm := cl.Timing
	open := func() *diskhb.Disk {
		bd, err := diskhb.OpenBlock(loop.Path)
		if err != nil {
			t.Fatal(err)
		}
		dev := diskhb.NewDevice(bd, tm.IOTimeout, nil)
		d, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: cl.UUID, MaxNodeID: 2})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	{
		bd, err := diskhb.OpenBlock(loop.Path)
		if err != nil {
			t.Fatal(err)
		}
		dev := diskhb.NewDevice(bd, time.Second, nil)
		h := diskhb.Header{ClusterUUID: cl.UUID, ClusterName: cl.Name, Slots: 16,
			HeartbeatInterval: tm.HeartbeatInterval, IOTimeout: tm.IOTimeout, FailureTimeout: tm.FailureTimeout, WatchdogTimeout: tm.WatchdogTimeout}
		if err := diskhb.Format(context.Background(), dev, h, false); err != nil {
			t.Fatal(err)
		}
		dev.Close()
	}
	start := func(network *nethb.MemNetwork) (*Daemon, *testutil.SyncBuffer, *watchdog.Fake) {
		tr, err := network.Listen(netip.MustParseAddrPort("10.213.0.1:5405"))
		if err != nil {
			t.Fatal(err)
		}
		logs := &testutil.SyncBuffer{}
		wd := &watchdog.Fake{}
		d, err := New(Options{Cluster: cl, Node: "n1", Log: slog.New(slog.NewTextHandler(logs, nil)), Watchdog: wd, Key: testKey,
			Transports: map[string]nethb.Transport{"lan": tr}, Disk: open(), DiskPath: loop.Path})
		if err != nil {
			t.Fatal(err)
		}
		return d, logs, wd
	}
	first, firstLogs, _ := start(nethb.NewMemNetwork(1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(waitBound)
	for first.Status().Disk.Writes < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the first daemon does not write its slot:\n%s", firstLogs)
		}
		time.Sleep(10 * time.Millisecond)
	}

	second, logs, wd := start(nethb.NewMemNetwork(1))
	err := second.Run(context.Background())
	if !errors.Is(err, diskhb.ErrNodeIDInUse) || !strings.Contains(err.Error(), "node id 1") {
		t.Fatalf("second daemon with node id 1: %v\n%s", err, logs)
	}
	t.Logf("refused: %v", err)
	if wd.Feeds() != 0 {
		t.Fatal("the refused daemon fed its watchdog")
	}
	if s := first.Status(); s.Disk.Conflicts != 0 || s.Disk.WriteFailures != 0 {
		t.Fatalf("the running daemon was disturbed: %+v", s.Disk)
	}
}
