package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/test/lab/labkit"
	"github.com/mtcluster/mtc/watchdog"
)

// daemonLabConfig is a three-node cluster with the lab timing; each node
// reaches the quorum LUN through its own dm map (set per node) and fences
// data1 and data2 through its own iSCSI paths (fence_luns).
func daemonLabConfig(t *testing.T, san *labkit.SAN, quorumDev map[string]string) *config.Cluster {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `[cluster]
name = "lab"
uuid = %q
key_file = "/etc/mtc/cluster.key"

[timing]
heartbeat_interval = %q
io_timeout = %q
failure_timeout = %q
watchdog_timeout = %q

[watchdog]
mode = "none"
allow_none = true

[[network]]
name = "lan"
port = 5405
`, labCluster, labTiming.HeartbeatInterval, labTiming.IOTimeout, labTiming.FailureTimeout, labTiming.WatchdogTimeout)
	for i := 1; i <= 3; i++ {
		n := nodeName(quorum.NodeID(i))
		fmt.Fprintf(&b, "\n[[node]]\nname = %q\nid = %d\nquorum_disk = %q\nfence_luns = [%q, %q]\n[node.addresses]\nlan = \"10.213.0.%d\"\n",
			n, i, quorumDev[n], dev(t, san, n, "data1"), dev(t, san, n, "data2"), i)
	}
	cl, err := config.Parse("lab.toml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// labDaemon is one node's daemon in the guest.
type labDaemon struct {
	name   string
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error
}

func (n *labDaemon) stop() error {
	if n.cancel == nil {
		return nil
	}
	n.cancel()
	n.cancel = nil
	return <-n.done
}

// TestDaemonFencesCrashedNode: three daemons in the guest (one process,
// heartbeats on an in-memory network), each with its own dm map to the
// quorum LUN and its own paths to data1 and data2, register on every LUN
// before they join. node3 crashes while its writer on data2 is in flight:
// its daemon stops, the writer goes on. node1, the lowest-id survivor,
// fences it; the takeover is allowed because it was fenced, node3's key is
// gone from every LUN (read with our commands and sg_persist), and its
// in-flight writer gets EBADE. The crash-to-takeover time is logged against
// the watchdog fallback, detection + TakeoverAfter.
func TestDaemonFencesCrashedNode(t *testing.T) {
	labkit.Require(t)
	var rows []string
	for _, pr := range []bool{true, false} {
		name := map[bool]string{true: "pr", false: "watchdog"}[pr]
		t.Run(name, func(t *testing.T) {
			r := crashScenario(t, pr)
			how := "PR fencing (PREEMPT AND ABORT on quorum, data1, data2)"
			if !pr {
				how = "no PR (watchdog fallback: TakeoverAfter)"
			}
			rows = append(rows, fmt.Sprintf("| %s | %v | %v | %v | %s |", how,
				r.detect.Round(time.Millisecond), r.fence.Round(time.Millisecond), r.takeover.Round(time.Millisecond), r.reason))
		})
	}
	if len(rows) != 2 {
		return
	}
	d := labTiming.Derive()
	body := fmt.Sprintf(`## Fencing: crash to takeover allowed, in the QEMU lab

Three daemons in the lab guest (one process, heartbeats on an in-memory network, each node on its own dm map to the quorum LUN and its own iSCSI paths to data1 and data2 of the LIO target), lab timing heartbeat %v / io_timeout %v / failure %v / watchdog %v (TakeoverAfter %v). node3's daemon stops (a crash, as the survivors see it) while its O_DIRECT writer on data2 is in flight; the times are from that moment, on the guest's clock. Measured %s with:

    LAB_RUN=TestDaemonFencesCrashedNode make lab-test

| fencing | crash → fence requested (detection) | fence requested → takeover allowed | crash → takeover allowed | reason |
|---|---|---|---|---|
%s

With PR fencing the takeover follows the verified fence at once; without, it waits TakeoverAfter after detection, when the lost node's watchdog has certainly fired.
`, labTiming.HeartbeatInterval, labTiming.IOTimeout, labTiming.FailureTimeout, labTiming.WatchdogTimeout, d.TakeoverAfter,
		time.Now().Format("2006-01-02"), strings.Join(rows, "\n"))
	t.Log("\n" + body)
	// The guest's results share, copied back to the host.
	if _, err := os.Stat("/host/results"); err == nil {
		if err := benchdoc.ReplaceSection("/host/results/BENCHMARKS.md", "fence-takeover", body); err != nil {
			t.Error(err)
		}
	}
}

// crashResult is what one crash scenario measured.
type crashResult struct {
	detect, fence, takeover time.Duration
	reason                  string
}

// crashScenario runs the three daemons, crashes node3 and returns the
// times; pr false gives the daemons LUNs without PR (watchdog fallback).
func crashScenario(t *testing.T, pr bool) crashResult {
	san, ctx := lab(t)
	luns := append([]string{"quorum"}, fenceLUNs...)
	cleanLUNs(t, ctx, luns...)
	if errs := labTiming.Validate(); len(errs) > 0 {
		t.Fatalf("lab timing is invalid: %v", errors.Join(errs...))
	}
	derived := labTiming.Derive()
	nodes, _ := startLabDaemons(t, ctx, san, pr, nil)
	n1, n3 := nodes["node1"], nodes["node3"]

	for _, l := range luns {
		k, r := agree(t, ctx, "after the daemons joined", dev(t, san, "node2", l))
		want := []uint64{labKey(1), labKey(2), labKey(3)}
		if !pr {
			want = nil
		}
		if got := slices.Sorted(slices.Values(k.Keys)); !slices.Equal(got, want) {
			t.Fatalf("%s keys after the daemons joined: %#x, want %#x", l, got, want)
		}
		if r.Held != pr {
			t.Fatalf("%s: reservation %+v after the daemons joined (PR used: %v)", l, r, pr)
		}
	}

	w, err := labkit.StartDirectWriter(ctx, dev(t, san, "node3", "data2"), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if !waitFor(ctx, func() bool { return w.Writes() >= 3 }) {
		t.Fatalf("node3's writer made %d writes: %v", w.Writes(), w.Stop())
	}

	// node3 crashes: its daemon is gone, its writer is not.
	crash := time.Now()
	if err := n3.stop(); err != nil {
		t.Fatalf("node3's daemon: %v", err)
	}
	var take daemon.EventRecord
	if !waitFor(ctx, func() bool {
		for _, r := range n1.d.Status().Takeovers {
			if r.Peer == "node3" {
				take = r
				return true
			}
		}
		return false
	}) {
		t.Fatalf("node1 allowed no takeover of node3: %+v", n1.d.Status())
	}
	toTakeover := time.Since(crash)
	wantReason := quorum.TakeoverFenced
	if !pr {
		wantReason = quorum.TakeoverWatchdog
	}
	if take.Reason != wantReason.String() {
		t.Fatalf("node3's takeover was allowed for %q, want %q", take.Reason, wantReason)
	}
	var asked time.Time
	for _, f := range n1.d.Status().FenceRequests {
		if f.Peer == "node3" {
			asked = f.Time
		}
	}
	detect := asked.Sub(crash)
	t.Logf("crash to takeover allowed (PR %v): %v (crash to fence requested %v, then %v); the watchdog fallback allows it TakeoverAfter %v after detection, about %v after the crash",
		pr, toTakeover.Round(time.Millisecond), detect.Round(time.Millisecond), take.Time.Sub(asked).Round(time.Millisecond),
		derived.TakeoverAfter, (detect + derived.TakeoverAfter).Round(time.Millisecond))

	res := crashResult{detect: detect, fence: take.Time.Sub(asked), takeover: toTakeover, reason: take.Reason}
	if !pr {
		if err := w.Stop(); err != nil {
			t.Errorf("node3's writer on an unfenced LUN: %v", err)
		}
		return res
	}
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Fatalf("node3's writer still running after the takeover (%d writes)", w.Writes())
	}
	if werr := w.Stop(); !errors.Is(werr, syscall.EBADE) {
		t.Fatalf("node3's in-flight writer ended with %v; want EBADE", werr)
	}
	clearUA(t, ctx, dev(t, san, "node2", "data1"), dev(t, san, "node2", "data2"), dev(t, san, "node2", "quorum"))
	for _, l := range luns {
		k, r := agree(t, ctx, "after node1 fenced node3", dev(t, san, "node2", l))
		if got, want := slices.Sorted(slices.Values(k.Keys)), []uint64{labKey(1), labKey(2)}; !slices.Equal(got, want) {
			t.Errorf("%s keys after the fence: %#x, want %#x", l, got, want)
		}
		if !r.Held || r.Key == labKey(3) {
			t.Errorf("%s reservation after the fence: %+v", l, r)
		}
	}
	for _, n := range []string{"node1", "node2"} {
		if s := nodes[n].d.Status(); !s.Quorate || s.Stopped {
			t.Errorf("%s after the fence: %+v", n, s)
		}
	}
	return res
}

// startLabDaemons starts the three nodes' daemons of daemonLabConfig (each
// on its own dm map to the quorum LUN, restored to linear first; the
// quorum disk formatted afresh) and waits until they are quorate
// together. pr false gives them their LUNs as without PR. Each node has a
// fake watchdog unless watchdogs gives it one, made from the cluster
// configuration. The daemons stop when t ends.
func startLabDaemons(t *testing.T, ctx context.Context, san *labkit.SAN, pr bool, watchdogs map[string]func(*config.Cluster) watchdog.Watchdog) (map[string]*labDaemon, map[string]*labkit.DMPath) {
	t.Helper()

	quorumDev := map[string]string{}
	dms := map[string]*labkit.DMPath{}
	var names []string
	for i := 1; i <= 3; i++ {
		name := nodeName(quorum.NodeID(i))
		names = append(names, name)
		p, err := labkit.OpenDMPath(ctx, labkit.DMName(name, "quorum"), dev(t, san, name, "quorum"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		quorumDev[name] = p.Dev()
		dms[name] = p
	}
	cl := daemonLabConfig(t, san, quorumDev)

	// Format the quorum disk through node1's map.
	bd, err := diskhb.OpenBlock(quorumDev["node1"])
	if err != nil {
		t.Fatal(err)
	}
	fdev := diskhb.NewDevice(bd, labTiming.IOTimeout, nil)
	err = diskhb.Format(ctx, fdev, diskhb.Header{
		ClusterUUID: cl.UUID, ClusterName: cl.Name, Slots: 3,
		HeartbeatInterval: labTiming.HeartbeatInterval, IOTimeout: labTiming.IOTimeout,
		FailureTimeout: labTiming.FailureTimeout, WatchdogTimeout: labTiming.WatchdogTimeout, FormattedAt: time.Now(),
	}, true)
	fdev.Close()
	if err != nil {
		t.Fatal(err)
	}

	network := nethb.NewMemNetwork(1)
	key := bytes.Repeat([]byte{9}, 32)
	nodes := map[string]*labDaemon{}
	for _, name := range names {
		cn, _ := cl.NodeByName(name)
		tr, err := network.Listen(netip.AddrPortFrom(cn.Addresses["lan"], 5405))
		if err != nil {
			t.Fatal(err)
		}
		bd, err := diskhb.OpenBlock(quorumDev[name])
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("lab_node", name)
		disk, err := diskhb.Open(ctx, diskhb.NewDevice(bd, labTiming.IOTimeout, log), diskhb.Expect{ClusterUUID: cl.UUID, MaxNodeID: 3})
		if err != nil {
			t.Fatal(err)
		}
		var fl []daemon.FenceLUN
		for _, l := range cl.FenceLUNs(name) {
			if !pr {
				fl = append(fl, daemon.FenceLUN{Name: l, NoPR: "PR not used in this run"})
				continue
			}
			lun, err := fence.OpenLUN(l, "")
			if err != nil {
				t.Fatal(err)
			}
			fl = append(fl, daemon.FenceLUN{Name: l, LUN: lun})
		}
		var wd watchdog.Watchdog = &watchdog.Fake{}
		wdMode := "fake"
		if watchdogs[name] != nil {
			wd, wdMode = watchdogs[name](cl), "device"
		}
		d, err := daemon.New(daemon.Options{Cluster: cl, Node: name, Log: log, Watchdog: wd, WatchdogMode: wdMode, Key: key,
			Transports: map[string]nethb.Transport{"lan": tr}, Disk: disk, DiskPath: quorumDev[name], FenceLUNs: fl})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(context.Background())
		n := &labDaemon{name: name, d: d, cancel: cancel, done: make(chan error, 1)}
		go func() { n.done <- d.Run(runCtx) }()
		nodes[name] = n
	}
	// Cleanups run last first: the daemons stop before the LUNs are
	// cleaned (registered earlier).
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = n.stop()
		}
	})

	quorate := func() bool {
		for _, n := range nodes {
			s := n.d.Status()
			if !s.Quorate || !slices.Equal(s.Members, names) {
				return false
			}
		}
		return true
	}
	if !waitFor(ctx, quorate) {
		t.Fatalf("the three daemons are not quorate together: %+v", nodes["node1"].d.Status())
	}
	return nodes, dms
}
