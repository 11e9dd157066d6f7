package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/nethb"
	"github.com/mtcluster/mtc/pkgrun"
)

func sampleStatus() daemon.Status {
	return daemon.Status{
		Cluster: "payments", Node: "alpha", NodeID: 1, State: daemon.StateStopped, Stopped: true, Armed: true,
		Members: []string{"alpha"}, Epoch: 4, Uptime: 90 * time.Second,
		Watchdog: daemon.WatchdogStatus{Mode: "process", Feeds: 12, SinceFeed: 2 * time.Second},
		Disk:     daemon.DiskStatus{Path: "/dev/loop0", Writes: 40, SinceWrite: 100 * time.Millisecond, LastWriteError: "write slot 1: disk I/O deadline exceeded"},
		Peers: []daemon.PeerStatus{
			{Name: "beta", ID: 2, State: "dead", SinceHeard: 3 * time.Second, Disk: "dead", DiskSinceChange: 3 * time.Second,
				Fence: "failing", FenceError: "fence node 2: LUN data: preempt and abort: path failure", FencePending: "fence node 2: LUN data: preempt and abort: path failure"},
			{Name: "gamma", ID: 3, State: "alive", Member: false, NetAlive: true, SinceHeard: 50 * time.Millisecond, Disk: "live", DiskSinceChange: -1},
		},
		Network: daemon.NetworkStatus{
			Send: nethb.SendStats{Sent: map[string]uint64{"lan": 99}, Errors: map[string]uint64{}},
			Receive: nethb.Stats{Accepted: map[string]uint64{"gamma": 7}, Dropped: map[string]map[string]uint64{"beta": {"forged": 2}},
				OtherSources: nethb.OtherSources{Packets: 12300, Addresses: 9811}},
		},
		PackageStops: []daemon.StopRecord{{At: 80 * time.Second, Reason: "quorum lost"}},
		Fencing:      daemon.FenceStatus{LUNs: []daemon.FenceLUNStatus{{Name: "/dev/sdb", Backend: "sg_io", Paths: 2}, {Name: "/dev/nvme0n1", Backend: "none", NoPR: "no PR read ioctls"}}},
		Decisions:    []daemon.DecisionRecord{{At: 79 * time.Second, Kind: "quorum-lost", Text: "quorum-lost (no majority)"}},
	}
}

func TestPrintStatus(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, sampleStatus(), painter{})
	got := out.String()
	for _, want := range []string{
		"dropped from about 9811 other addresses: 12300 packets",
		"node alpha (id 1)", "state: stopped", "members: alpha",
		"watchdog: process, 12 feeds, last 2s ago",
		"last write error: write slot 1: disk I/O deadline exceeded",
		"dropped from beta: 2 forged", "network lan: 99 sent",
		"(1m20s): quorum lost", "quorum-lost (no majority)",
		"beta: fence pending: fence node 2: LUN data: preempt and abort: path failure",
		"fencing /dev/sdb: sg_io, 2 path(s), registered",
		"fencing /dev/nvme0n1: none (no PR read ioctls): takeovers wait for the watchdog deadline",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
	var beta, gamma string
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "beta ") {
			beta = l
		}
		if strings.HasPrefix(l, "gamma ") {
			gamma = l
		}
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if want := "beta 2 dead false silent 3s ago dead 3s ago 0 2 0"; norm(beta) != want {
		t.Errorf("beta row %q, want %q", norm(beta), want)
	}
	if want := "gamma 3 alive false alive 50ms ago live never 7 0 0"; norm(gamma) != want {
		t.Errorf("gamma row %q, want %q", norm(gamma), want)
	}
}

func TestStatusCmdReadsSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_ = json.NewEncoder(c).Encode(sampleStatus())
		c.Close()
	}()
	var out bytes.Buffer
	if err := (&StatusCmd{Socket: path, JSON: true}).Run(&out); err != nil {
		t.Fatal(err)
	}
	var s daemon.Status
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Node != "alpha" || !s.Stopped {
		t.Fatalf("JSON status: %v %+v", err, s)
	}
	_, err = daemon.QueryStatus(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "is the daemon running") {
		t.Fatalf("missing socket: %v", err)
	}
}

// With colour, each state word is coloured by what it means, an alert line
// stands out, and the peer table stays aligned: the columns start where
// they start without colour.
func TestPrintStatusColour(t *testing.T) {
	var plain, col bytes.Buffer
	printStatus(&plain, sampleStatus(), painter{})
	printStatus(&col, sampleStatus(), painter{on: true})
	c := col.String()
	for _, want := range []string{"state: \x1b[31mstopped\x1b[0m", "\x1b[31mdead\x1b[0m", "\x1b[32malive\x1b[0m", "\x1b[1;31mbeta: fence pending"} {
		if !strings.Contains(c, want) {
			t.Errorf("coloured status lacks %q:\n%s", want, c)
		}
	}
	strip := regexp.MustCompile("\x1b\\[[0-9;]*m")
	if got := strip.ReplaceAllString(c, ""); got != plain.String() {
		t.Fatalf("colour changed the layout:\n%s\nwant:\n%s", got, plain.String())
	}
}

func statusWithPackages() daemon.Status {
	s := sampleStatus()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.Local)
	s.Time = at.Add(10 * time.Minute)
	s.State, s.Stopped, s.Coordinator, s.LastIntent, s.Drained = daemon.StateQuorate, false, "alpha", 17, []string{"gamma"}
	s.Packages = []daemon.PackageView{
		{Name: "db", Owner: "alpha", State: "running", Since: at, Target: "alpha", Switching: true,
			Failover: &daemon.FailoverView{From: "beta", To: "alpha", Lost: at.Add(-3 * time.Second), TakenOver: 2100 * time.Millisecond, Reason: "fenced",
				Claimed: 2200 * time.Millisecond, Started: 2300 * time.Millisecond, Running: 4 * time.Second}},
		{Name: "orders", State: "halted", Target: "beta", Switching: false, Maintenance: true, Waiting: "in maintenance"},
		{Name: "web", Owner: "gamma", State: "halting", Target: "beta", Switching: true, Pending: "move to beta", Marked: []string{"beta"},
			Nodes:   []daemon.PackageNodeState{{Node: "gamma", State: "halting"}, {Node: "beta", State: "failed", Reason: "service nginx exited 1"}},
			Waiting: "waiting for the halt on gamma",
			LastStart: &pkgrun.Timeline{Kind: "start", Start: at, End: at.Add(time.Second), Outcome: pkgrun.Error,
				Steps: []pkgrun.StepRecord{{Phase: "start", Name: "vip", Outcome: pkgrun.OK}, {Phase: "start", Name: "fs", Outcome: pkgrun.Timeout, Err: "mount: 30s"}}}},
		{Name: "batch", Owner: "beta", State: "starting", Target: "beta", Switching: true,
			Failover: &daemon.FailoverView{From: "gamma", To: "beta", Lost: at, TakenOver: time.Second, Reason: "watchdog", Claimed: 1100 * time.Millisecond}},
	}
	return s
}

// The packages section: one line per package with its flags and what it
// waits for, then the failures and failovers worth telling.
func TestPrintStatusPackages(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, statusWithPackages(), painter{})
	got := out.String()
	norm := strings.Join(strings.Fields(got), " ")
	for _, want := range []string{
		"coordinator: alpha last intent: 17 drained: gamma",
		"PACKAGE STATE OWNER SINCE TARGET FLAGS WAITING",
		"db running alpha 10:00:00 - - ",
		"orders halted - - beta maintenance, switching off in maintenance",
		"web halting gamma - beta pending move to beta, failed on beta waiting for the halt on gamma",
		"batch starting beta - - - ",
		"web failed on beta: service nginx exited 1",
		"web is marked failed on beta: once the cause is fixed, `mtc clear web` lets it run there again",
		"web: last start here at 10:00:00.000 failed: start step fs timed out: mount: 30s",
		"db: failover beta -> alpha, lost at 09:59:57.000, taken over +2.1s (fenced), claimed +2.2s, started +2.3s, running +4s",
		"batch: failover gamma -> beta, lost at 10:00:00.000, taken over +1s (watchdog), claimed +1.1s, started: not yet",
	} {
		if !strings.Contains(norm, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "halting on gamma") || strings.Contains(got, "running +0s") {
		t.Errorf("the owner's own state or a phase not reached is told as an event:\n%s", got)
	}
	// Colour keeps the package table aligned.
	var col bytes.Buffer
	printStatus(&col, statusWithPackages(), painter{on: true})
	strip := regexp.MustCompile("\x1b\\[[0-9;]*m")
	if c := col.String(); !strings.Contains(c, "\x1b[32mrunning\x1b[0m") || !strings.Contains(c, "\x1b[1;31mweb failed on beta") || strip.ReplaceAllString(c, "") != got {
		t.Fatalf("coloured packages:\n%s", c)
	}
	// Without packages, no section and no coordinator line.
	out.Reset()
	printStatus(&out, sampleStatus(), painter{})
	if strings.Contains(out.String(), "PACKAGE") || strings.Contains(out.String(), "coordinator") {
		t.Fatalf("empty packages section:\n%s", out.String())
	}
}

// mtc status --node asks the node over the control channel; --steps adds
// each package's last start step by step.
func TestStatusRemotePackagesSteps(t *testing.T) {
	f := newFakeCluster(t, map[string]control.Handler{"beta": func(_ context.Context, req control.Request) (any, error) {
		if req.Command != daemon.CommandStatus {
			return nil, errors.New("not status")
		}
		return statusWithPackages(), nil
	}})
	code, out, errOut := f.mtc(t, "status", "--node", "beta", "--steps")
	norm := strings.Join(strings.Fields(out), " ")
	for _, w := range []string{"coordinator: alpha", "web halting gamma", "package web: start at", "ok start vip", "timed out start fs: mount: 30s"} {
		if !strings.Contains(norm, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
