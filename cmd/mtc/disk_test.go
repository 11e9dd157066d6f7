package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
)

const testConfig = `
[cluster]
name = "payments"
uuid = "0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90"
key_file = "/etc/mtc/cluster.key"

[timing]
heartbeat_interval = "50ms"
io_timeout = "100ms"
failure_timeout = "300ms"
watchdog_timeout = "1s"

[watchdog]
mode = "process"

[quorum_disk]
path = "QDISK"

[[network]]
name = "lan"
port = 5405

[[node]]
name = "alpha"
id = 1
[node.addresses]
lan = "10.0.0.1"

[[node]]
name = "beta"
id = 2
[node.addresses]
lan = "10.0.0.2"

[[node]]
name = "gamma"
id = 3
[node.addresses]
lan = "10.0.0.3"
`

// testCluster writes a configuration whose quorum disk is a fresh file of
// size bytes, and returns the config path and the disk path.
func testCluster(t *testing.T, size int64) (string, string) {
	t.Helper()
	dir := t.TempDir()
	disk := filepath.Join(dir, "quorum.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, size); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(testConfig, "QDISK", disk, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, disk
}

func TestDiskInitDumpClear(t *testing.T) {
	for _, ss := range []string{"512", "4096"} {
		t.Run(ss, func(t *testing.T) {
			cfg, disk := testCluster(t, 4<<20)
			out, err := runCLI(t, "disk", "init", "--config", cfg, "--sector-size", ss)
			if err != nil {
				t.Fatalf("init: %v", err)
			}
			if !strings.Contains(out, "initialised "+disk) || !strings.Contains(out, ss+"-byte sectors") {
				t.Fatalf("init said: %s", out)
			}
			// Initialising again must refuse and say what it would erase.
			_, err = runCLI(t, "disk", "init", "--config", cfg)
			if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("second init: %v", err)
			}

			// Node beta heartbeats in the background; alpha wrote once
			// and stopped; gamma's slot gets corrupted.
			c, _ := config.Load(cfg)
			dev, err := openQuorumDevice(disk, 0, time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			d, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: c.UUID, MaxNodeID: 3})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.WriteSlot(context.Background(), diskhb.Slot{NodeID: 1, NodeName: "alpha", Incarnation: 1, Seq: 9, Flags: diskhb.FlagRunning}); err != nil {
				t.Fatal(err)
			}
			if err := d.WriteSlot(context.Background(), diskhb.Slot{NodeID: 3, NodeName: "gamma", Incarnation: 1, Seq: 9}); err != nil {
				t.Fatal(err)
			}
			corruptByte(t, disk, int64(diskhb.SlotLBA+2)*int64(dev.SectorSize())+50)
			hb := diskhb.NewHeartbeater(d, diskhb.HeartbeatConfig{NodeID: 2, NodeName: "beta", Interval: 50 * time.Millisecond,
				SuspectAfter: 150 * time.Millisecond, DeadAfter: 300 * time.Millisecond}, nil, nil, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			// Beta writes far more often than its interval, so that a
			// loaded machine cannot make it look stale to the tools.
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					hb.Round(ctx)
					time.Sleep(5 * time.Millisecond)
				}
			}()
			defer func() { cancel(); <-done }()

			out, err = runCLI(t, "disk", "dump", "--config", cfg, "--json")
			if err != nil {
				t.Fatalf("dump: %v", err)
			}
			var res dumpOut
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("dump json: %v\n%s", err, out)
			}
			status := map[string]string{}
			for _, s := range res.Slots {
				status[s.Node] = s.Status
			}
			if status["alpha"] != "stale" || status["beta"] != "live" || status["gamma"] != "unknown" {
				t.Fatalf("slot states %v\n%s", status, out)
			}
			if !strings.HasPrefix(res.TieBreak, "free") {
				t.Fatalf("tie-break: %s", res.TieBreak)
			}
			text, err := runCLI(t, "disk", "dump", "--config", cfg, "--sample", "200ms")
			if err != nil || !strings.Contains(text, "checksum mismatch") || !strings.Contains(text, "payments") {
				t.Fatalf("text dump: %v\n%s", err, text)
			}

			// Clearing a live node's slot is refused; a stale one is cleared.
			if _, err := runCLI(t, "disk", "clear-slot", "--config", cfg, "beta"); err == nil || !strings.Contains(err.Error(), "is live") {
				t.Fatalf("clear live slot: %v; beta: %+v", err, hb.Snapshot())
			}
			if out, err := runCLI(t, "disk", "clear-slot", "--config", cfg, "alpha"); err != nil || !strings.Contains(out, "cleared slot 1") {
				t.Fatalf("clear stale slot: %v %s", err, out)
			}
			if out, err := runCLI(t, "disk", "clear-slot", "--config", cfg, "3"); err != nil || !strings.Contains(out, "cleared slot 3") {
				t.Fatalf("clear corrupt slot: %v %s", err, out)
			}
			reads, err := d.ReadSlots(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if reads[0].Valid() || reads[2].Valid() || reads[0].Err != nil || reads[2].Err != nil {
				t.Fatalf("after clear: %+v %+v", reads[0], reads[2])
			}
			if _, err := runCLI(t, "disk", "clear-slot", "--config", cfg, "delta"); err == nil || !strings.Contains(err.Error(), "no node") {
				t.Fatalf("unknown node: %v", err)
			}
		})
	}
}

func TestDiskInitForceOtherCluster(t *testing.T) {
	cfg, disk := testCluster(t, 1<<20)
	if _, err := runCLI(t, "disk", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	// Another cluster's configuration pointing at the same disk.
	data, _ := os.ReadFile(cfg)
	other := filepath.Join(t.TempDir(), "other.toml")
	os.WriteFile(other, bytes.Replace(data, []byte("0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90"), []byte("11111111-2222-4333-8444-555555555555"), 1), 0o644)
	if _, err := runCLI(t, "disk", "dump", "--config", other, "--sample", "10ms"); !errors.Is(err, diskhb.ErrForeignCluster) {
		t.Fatalf("dump of another cluster's disk: %v", err)
	}
	_, err := runCLI(t, "disk", "init", "--config", other)
	if err == nil || !strings.Contains(err.Error(), `cluster "payments" (0b6e3a52`) {
		t.Fatalf("init over another cluster: %v", err)
	}
	out, err := runCLI(t, "disk", "init", "--config", other, "--force")
	if err != nil || !strings.Contains(out, "erased the quorum disk of cluster") {
		t.Fatalf("forced init: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "disk", "init", "--config", other, "--device", disk+".missing"); err == nil {
		t.Fatal("missing device accepted")
	}
}

func corruptByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
