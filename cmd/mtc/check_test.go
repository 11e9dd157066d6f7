package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
)

// checkCLI runs `mtc check args...` in-process and returns its output.
func checkCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, append([]string{"check"}, args...)...)
}

// checkConfig writes the example configuration with its key file moved
// into a temporary directory, edited by the replacer pairs, and returns
// the config path and the key file path.
func checkConfig(t *testing.T, edits ...string) (string, string) {
	t.Helper()
	ex, err := os.ReadFile("../../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	doc := strings.Replace(string(ex), `key_file = "/etc/mtc/cluster.key"`, fmt.Sprintf("key_file = %q", key), 1)
	if len(edits) > 0 {
		doc = strings.NewReplacer(edits...).Replace(doc)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, key
}

func writeKey(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{0x5a}, 32), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCheckExampleSummary(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	d := config.DefaultTiming().Derive()
	for _, want := range []string{
		cfg + ": valid",
		"Cluster payments (uuid 0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90)",
		"0  lan      UDP port 5405",
		"1  storage  UDP port 5406",
		"NAME   ID  VOTES  LAN       STORAGE       QUORUM DISK",
		"gamma  3   1      10.0.0.3  192.168.50.3  /dev/mapper/mtc-quorum",
		"alpha  1   1      10.0.0.1  192.168.50.1  /dev/disk/by-id/wwn-0x600a0b800026b2820000a1b2c3d4e5f6",
		"3 votes; quorum is 2 votes",
		fmt.Sprintf("a peer silent for %v is suspected", d.SuspectAfter),
		fmt.Sprintf("a peer silent for %v on both the network and the quorum disk is declared dead", d.DeadAfter),
		fmt.Sprintf("a node that cannot write its quorum-disk slot or loses quorum for %v stops its packages and its watchdog resets it within %v", d.SelfFenceAfter, d.WatchdogTimeout),
		fmt.Sprintf("takeover of a dead node's packages without fencing is allowed %v after it is declared dead", roundMs(d.TakeoverAfter)),
		fmt.Sprintf("claimed once it has been unchanged for %v", roundMs(d.TieClaimAfter)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Warnings") {
		t.Errorf("unexpected warnings:\n%s", out)
	}
}

func TestCheckKeyFileWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode // 0: no key file
		want string
	}{
		{"missing", 0, "does not exist"},
		{"group readable", 0o640, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, key := checkConfig(t)
			if tc.mode != 0 {
				writeKey(t, key, tc.mode)
			}
			out, err := checkCLI(t, "--config", cfg)
			if err != nil {
				t.Fatalf("a key file problem must warn, not fail: %v", err)
			}
			want := fmt.Sprintf("%s:20:1: cluster.key_file: cluster key file %s", cfg, key)
			if !strings.Contains(out, "Warnings (1)") || !strings.Contains(out, want) || !strings.Contains(out, tc.want) {
				t.Errorf("want one warning %q ... %q:\n%s", want, tc.want, out)
			}
		})
	}
}

func TestCheckKeyFileFIFO(t *testing.T) {
	cfg, key := checkConfig(t)
	if err := syscall.Mkfifo(key, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v", err)
	}
	if !strings.Contains(out, "is not a regular file (p---------)") {
		t.Errorf("no warning about the FIFO:\n%s", out)
	}
}

func TestCheckWarnings(t *testing.T) {
	cfg, key := checkConfig(t,
		"[[network]]\nname = \"storage\"\nport = 5406\n", "",
		"storage = \"192.168.50.1\"\n", "", "storage = \"192.168.50.2\"\n", "", "storage = \"192.168.50.3\"\n", "",
		`mode = "device"`, "mode = \"none\"\nallow_none = true")
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v", err)
	}
	for _, want := range []string{"Warnings (2)", `network: only one heartbeat network ("lan")`, `watchdog.mode: watchdog mode "none"`, "watchdog mode none"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckInvalid(t *testing.T) {
	cfg, _ := checkConfig(t, "id = 3", "id = 2", `name = "payments"`, `nmae = "payments"`)
	out, err := checkCLI(t, "--config", cfg)
	if err == nil {
		t.Fatalf("invalid configuration accepted:\n%s", out)
	}
	if exitCode(err) == 0 {
		t.Errorf("exit code 0 for an invalid configuration")
	}
	msg := err.Error()
	for _, want := range []string{
		cfg + ": 3 problems:\n",
		cfg + ":10:2: cluster.name: the cluster has no name",
		cfg + `:13:1: cluster.nmae: unknown key "nmae" (did you mean "name"?)`,
		cfg + `:69:1: node[2].id: 2 is already used by node "beta" (line 62)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, config.ErrDuplicate) || !errors.Is(err, config.ErrUnknownKey) {
		t.Errorf("error does not wrap the config sentinels")
	}
}

func TestCheckJSON(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("check --json: %v", err)
	}
	var r checkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	d := config.DefaultTiming().Derive()
	if !r.Valid || r.Cluster == nil || len(r.Cluster.Nodes) != 3 || r.Cluster.Quorum != 2 ||
		r.Cluster.Derived["takeover_after"] != d.TakeoverAfter.String() || r.Cluster.Nodes[2].QuorumDisk != "/dev/mapper/mtc-quorum" ||
		r.Cluster.Derived["disk_latency_tolerance"] != d.DiskLatencyTolerance().String() ||
		r.Cluster.Derived["disk_stall_tolerance"] != d.DiskStallTolerance().String() ||
		!strings.HasPrefix(r.Cluster.DiskTolerance, "this timing rides out quorum-disk latency up to 200ms per I/O") || r.Probe != nil {
		t.Errorf("unexpected report: %+v", r)
	}

	bad, _ := checkConfig(t, "id = 3", "id = 17")
	out, err = checkCLI(t, "--json", "--config", bad)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("invalid file with --json: error %v, want exit code 1", err)
	}
	r = checkReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if r.Valid || len(r.Errors) != 1 || r.Errors[0].Line != 69 || r.Errors[0].Field != "node[2].id" {
		t.Errorf("unexpected report: %+v", r)
	}
}

func TestQuorumText(t *testing.T) {
	for total, want := range map[int]string{
		1: "1 vote; quorum is 1 vote; an exact split cannot happen",
		2: "2 votes; quorum is 2 votes; an exact split (1 and 1) is decided on the quorum disk",
		3: "3 votes; quorum is 2 votes; an exact split cannot happen",
		4: "4 votes; quorum is 3 votes; an exact split (2 and 2) is decided on the quorum disk",
	} {
		if got := quorumText(total); !strings.HasPrefix(got, want) {
			t.Errorf("quorumText(%d) = %q, want prefix %q", total, got, want)
		}
	}
}

func TestCheckStatesDiskTolerance(t *testing.T) {
	for name, tm := range map[string]config.Timing{"default": config.DefaultTiming(), "aggressive": config.AggressiveTiming()} {
		cfg, key := checkConfig(t, `heartbeat_interval = "200ms"`, fmt.Sprintf("heartbeat_interval = %q", tm.HeartbeatInterval),
			`io_timeout = "400ms"`, fmt.Sprintf("io_timeout = %q", tm.IOTimeout),
			`failure_timeout = "1s"`, fmt.Sprintf("failure_timeout = %q", tm.FailureTimeout),
			`watchdog_timeout = "3s"`, fmt.Sprintf("watchdog_timeout = %q", tm.WatchdogTimeout))
		writeKey(t, key, 0o600)
		out, err := checkCLI(t, "--config", cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d := tm.Derive()
		want := fmt.Sprintf("this timing rides out quorum-disk latency up to %v per I/O for as long as it lasts (a heartbeat round's 4 I/Os then take up to %v, and the write of a node's own slot still succeeds within %v), and a complete stall of the quorum disk of up to %v",
			d.DiskLatencyTolerance(), 4*d.DiskLatencyTolerance(), d.SelfFenceAfter, d.DiskStallTolerance())
		if !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", name, want, out)
		}
	}
}

// slowDisk is a quorum disk whose every read takes at least delay and
// which records writes (a probe must make none).
type slowDisk struct {
	delay  time.Duration
	writes atomic.Int64
	reads  atomic.Int64
}

func (d *slowDisk) SectorSize() int { return 512 }
func (d *slowDisk) Size() int64     { return 1 << 20 }
func (d *slowDisk) ReadAt(p []byte, off int64) (int, error) {
	d.reads.Add(1)
	time.Sleep(d.delay)
	clear(p)
	return len(p), nil
}
func (d *slowDisk) WriteAt(p []byte, off int64) (int, error) {
	d.writes.Add(1)
	return len(p), nil
}
func (d *slowDisk) Close() error { return nil }

// withProbeDisk makes --probe-disk measure disk instead of opening a path.
func withProbeDisk(t *testing.T, disk *slowDisk) {
	old := openProbeDevice
	openProbeDevice = func(path string, _ int, timeout time.Duration, log *slog.Logger) (*diskhb.Device, error) {
		return diskhb.NewDevice(disk, timeout, log), nil
	}
	t.Cleanup(func() { openProbeDevice = old })
}

// aggressiveConfig is the example configuration with the aggressive
// timing profile.
func aggressiveConfig(t *testing.T) string {
	tm := config.AggressiveTiming()
	cfg, key := checkConfig(t, `heartbeat_interval = "200ms"`, fmt.Sprintf("heartbeat_interval = %q", tm.HeartbeatInterval),
		`io_timeout = "400ms"`, fmt.Sprintf("io_timeout = %q", tm.IOTimeout),
		`failure_timeout = "1s"`, fmt.Sprintf("failure_timeout = %q", tm.FailureTimeout),
		`watchdog_timeout = "3s"`, fmt.Sprintf("watchdog_timeout = %q", tm.WatchdogTimeout))
	writeKey(t, key, 0o600)
	return cfg
}

// TestCheckProbeRefusesSlowDisk: a disk whose reads take 80ms (the
// latency seen after a memory-reclaim stall) cannot hold the aggressive
// profile, which rides out 60ms: the check says so and fails. The probe
// makes no write.
func TestCheckProbeRefusesSlowDisk(t *testing.T) {
	disk := &slowDisk{delay: 80 * time.Millisecond}
	withProbeDisk(t, disk)
	cfg := aggressiveConfig(t)
	out, err := checkCLI(t, "--config", cfg, "--probe-disk", "--device", "/dev/fake", "--probe-time", "1s")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != checkDiskTooSlow {
		t.Fatalf("want exit status %d, got %v\n%s", checkDiskTooSlow, err, out)
	}
	for _, want := range []string{
		"Quorum disk /dev/fake (measured for",
		"REFUSED: the quorum disk's 99th percentile read latency",
		"is not below the 60ms per I/O this timing rides out",
		"such as the default timing (rides out 200ms)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(err.Error(), "is not below the 60ms per I/O this timing rides out") {
		t.Errorf("error does not say why: %v", err)
	}
	if disk.writes.Load() != 0 || disk.reads.Load() == 0 {
		t.Errorf("the probe made %d writes and %d reads; want reads only", disk.writes.Load(), disk.reads.Load())
	}

	// The same disk holds the default timing (200ms).
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	out, err = checkCLI(t, "--config", cfg, "--probe-disk", "--device", "/dev/fake", "--probe-time", "1s", "--json")
	if err != nil {
		t.Fatalf("default timing on an 80ms disk: %v\n%s", err, out)
	}
	var r checkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Probe == nil || !r.Probe.Holds || r.Probe.Reads < 3 || r.Probe.LatencyTolerance != "200ms" {
		t.Errorf("unexpected probe report %+v", r.Probe)
	}
}

// TestCheckProbeFile measures a real file through the daemon's I/O path.
// Nothing about its latency is asserted: the default timing rides out
// 200ms, and the test only checks the report's shape and that the file is
// not written.
func TestCheckProbeFile(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	img := filepath.Join(t.TempDir(), "quorum.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(img)
	out, err := checkCLI(t, "--config", cfg, "--probe-disk", "--device", img, "--probe-time", "1s")
	if err != nil && !strings.Contains(err.Error(), "is not below the 200ms per I/O this timing rides out") {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Quorum disk "+img+" (measured for") || !strings.Contains(out, "direct-I/O reads: p50 ") {
		t.Errorf("no probe report:\n%s", out)
	}
	after, _ := os.Stat(img)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the probe modified %s", img)
	}
	data, _ := os.ReadFile(img)
	if !bytes.Equal(data, make([]byte, 1<<20)) {
		t.Errorf("the probe wrote to %s", img)
	}
}

// failingDisk fails every read.
type failingDisk struct{ slowDisk }

func (d *failingDisk) ReadAt(p []byte, off int64) (int, error) { return 0, syscall.EIO }

// TestCheckProbeFailingDisk: a disk that fails reads holds no timing.
func TestCheckProbeFailingDisk(t *testing.T) {
	old := openProbeDevice
	openProbeDevice = func(path string, _ int, timeout time.Duration, log *slog.Logger) (*diskhb.Device, error) {
		return diskhb.NewDevice(&failingDisk{}, timeout, log), nil
	}
	t.Cleanup(func() { openProbeDevice = old })
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	_, err := checkCLI(t, "--config", cfg, "--probe-disk", "--device", "/dev/fake", "--probe-time", "1s")
	if exitCode(err) != checkDiskTooSlow || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "no timing holds on a disk that fails reads") {
		t.Errorf("want exit status %d wrapping EIO, got %d: %v", checkDiskTooSlow, exitCode(err), err)
	}
}

func TestCheckProbeFlags(t *testing.T) {
	cfg, _ := checkConfig(t)
	if _, err := checkCLI(t, "--config", cfg, "--device", "/dev/sdb"); err == nil || !strings.Contains(err.Error(), "add --probe-disk") {
		t.Errorf("--device without --probe-disk: %v", err)
	}
	if _, err := checkCLI(t, "--config", cfg, "--probe-disk", "--probe-time", "100ms"); err == nil || !strings.Contains(err.Error(), "at least 1s") {
		t.Errorf("--probe-time 100ms: %v", err)
	}
	if _, err := checkCLI(t, "--config", cfg, "--probe-disk", "--node", "delta"); err == nil || !strings.Contains(err.Error(), `--node "delta": no such node`) {
		t.Errorf("--node delta: %v", err)
	}
}

// TestJudgeProbe plants latencies around the aggressive profile's 60ms.
func TestJudgeProbe(t *testing.T) {
	d := config.AggressiveTiming().Derive()
	ms := time.Millisecond
	fill := func(n int, v time.Duration, tail ...time.Duration) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = v
		}
		return append(s, tail...)
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		holds   bool
		stall   bool
	}{
		{"fast", fill(1000, ms), true, false},
		{"just below", fill(1000, 59*ms), true, false},
		{"at the tolerance", fill(1000, 60*ms), false, false},
		{"2% slow reads", fill(980, ms, fill(20, 80*ms)...), false, false},
		{"0.5% slow reads", fill(995, ms, fill(5, 80*ms)...), true, false},
		{"one long stall", fill(999, ms, 300*ms), true, true},
	} {
		p := judgeProbe(d, tc.samples)
		if p.holds != tc.holds || (p.stallWarning != "") != tc.stall {
			t.Errorf("%s: holds %v (%s), stall warning %q; want holds %v, warning %v", tc.name, p.holds, p.verdict, p.stallWarning, tc.holds, tc.stall)
		}
		if !p.holds && !strings.Contains(p.verdict, "failure_timeout >= ") {
			t.Errorf("%s: the verdict suggests no timing: %s", tc.name, p.verdict)
		}
	}
}

// TestCheckRefusesFIFOConfig: a FIFO given as --config is refused at once
// by check and by the disk commands (they share config.Load).
func TestCheckRefusesFIFOConfig(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "cluster.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	for _, args := range [][]string{{"check", "--config", fifo}, {"disk", "dump", "--config", fifo, "--device", "/dev/null"}} {
		done := make(chan error, 1)
		go func() { _, err := runCLI(t, args...); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, config.ErrNotRegular) || !strings.Contains(err.Error(), "is not a regular file (a FIFO)") {
				t.Errorf("%v: %v", args, err)
			}
		case <-time.After(10 * time.Second):
			// Not a timing assertion: a blocked open never returns.
			t.Fatalf("%v blocked on the FIFO", args)
		}
	}
}

// The check names the control port and the journal, and warns when the
// [events] notify program is missing or not executable here.
func TestCheckEventsAndControl(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--config", cfg)
	if err != nil || !strings.Contains(out, "control channel TCP port 5410") || !strings.Contains(out, "event journal /var/lib/mtc/") {
		t.Fatalf("%v\n%s", err, out)
	}
	dir := filepath.Dir(cfg)
	notExec := filepath.Join(dir, "page")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for prog, want := range map[string]string{
		filepath.Join(dir, "absent"): "no such file or directory on this machine",
		notExec:                      "is not an executable file",
	} {
		doc, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, append(doc, fmt.Sprintf("\n[events]\nnotify = [%q]\n", prog)...), 0o644)
		out, err := checkCLI(t, "--config", cfg)
		if err != nil || !strings.Contains(out, "events.notify: notify program "+prog) || !strings.Contains(out, want) {
			t.Errorf("notify %s: %v\n%s", prog, err, out)
		}
		os.WriteFile(cfg, doc, 0o644)
	}
}
