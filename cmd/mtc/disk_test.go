package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fmt"
	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/test/testutil"
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
			// Beta writes its slot with the daemon's rounds.
			hb := diskhb.NewRounds(d, diskhb.RoundsConfig{NodeID: 2, NodeName: "beta", Incarnation: 7, Generation: c.Generation(),
				Peers: []int{1, 2, 3}, HeartbeatInterval: 50 * time.Millisecond, FailureTimeout: 300 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			// Beta writes far more often than its interval, so that a
			// loaded machine cannot make it look stale to the tools.
			go func() {
				defer close(done)
				beat := quorum.Heartbeat{From: 2, Inc: 7}
				for ctx.Err() == nil {
					beat.Seq++
					hb.Do(ctx, quorum.DiskRequest{Kind: quorum.DiskWriteSlot, Heartbeat: beat})
					hb.Do(ctx, quorum.DiskRequest{Kind: quorum.DiskRead})
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
			if !strings.HasPrefix(res.State, "generation 1 in copy 1, 0 bytes, written by mtc disk init") || res.Reports["alpha"] != "none yet" {
				t.Fatalf("state area of a new disk: %q, reports %v", res.State, res.Reports)
			}
			text, err := runCLI(t, "disk", "dump", "--config", cfg, "--sample", "200ms")
			if err != nil || !strings.Contains(text, "checksum mismatch") || !strings.Contains(text, "payments") {
				t.Fatalf("text dump: %v\n%s", err, text)
			}

			// Clearing a live node's slot is refused; a stale one is cleared.
			if _, err := runCLI(t, "disk", "clear-slot", "--config", cfg, "beta"); err == nil || !strings.Contains(err.Error(), "its node is running") {
				t.Fatalf("clear live slot: %v; beta: %+v", err, hb.Stats())
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

// requireTool skips (or, in CI, fails) a test that needs a system tool.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testutil.InCI() {
			t.Fatalf("needs %s (e2fsprogs) and CI=true", name)
		}
		t.Skipf("needs %s (apt-get install e2fsprogs)", name)
	}
	return p
}

// An ext4 filesystem made with mkfs.ext4 is refused by name, and left as
// it was; --force erases it (the operator said so).
func TestDiskInitRefusesExt4File(t *testing.T) {
	mkfs := requireTool(t, "mkfs.ext4")
	cfg, disk := testCluster(t, 8<<20)
	if out, err := exec.Command(mkfs, "-q", "-F", disk).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	before, _ := os.ReadFile(disk)
	_, err := runCLI(t, "disk", "init", "--config", cfg)
	if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "an ext4 filesystem") {
		t.Fatalf("init over ext4: %v", err)
	}
	if after, _ := os.ReadFile(disk); !bytes.Equal(before, after) {
		t.Fatal("refused init changed the device")
	}
	if _, err := runCLI(t, "disk", "dump", "--config", cfg); !errors.Is(err, diskhb.ErrNotFormatted) || !strings.Contains(err.Error(), "the device holds an ext4 filesystem") {
		t.Fatalf("dump of ext4: %v", err)
	}
	out, err := runCLI(t, "disk", "init", "--config", cfg, "--force")
	if err != nil || !strings.Contains(out, "erased an ext4 filesystem") {
		t.Fatalf("forced init over ext4: %v\n%s", err, out)
	}
}

// The same on a loop device, as the reproduction did.
func TestDiskInitRefusesExt4Loop(t *testing.T) {
	mkfs := requireTool(t, "mkfs.ext4")
	ld := testutil.NewLoopDevice(t, 512, 8<<20)
	cfg, _ := testCluster(t, 1<<20)
	if out, err := exec.Command(mkfs, "-q", "-F", ld.Path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	_, err := runCLI(t, "disk", "init", "--config", cfg, "--device", ld.Path)
	if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "an ext4 filesystem") {
		t.Fatalf("init over ext4 on %s: %v", ld.Path, err)
	}
	if blkid, err := exec.LookPath("blkid"); err == nil {
		if out, err := exec.Command(blkid, "-o", "value", "-s", "TYPE", ld.Path).Output(); err != nil || strings.TrimSpace(string(out)) != "ext4" {
			t.Fatalf("blkid after refused init: %q %v", out, err)
		}
	}
}

// writeSlotLoop writes node id's slot every few milliseconds until stopped
// (the returned function), as a running daemon does.
func writeSlotLoop(t *testing.T, cfg, disk string, id int, every time.Duration) (stop func()) {
	t.Helper()
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := openQuorumDevice(disk, 0, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: c.UUID})
	if err != nil {
		t.Fatal(err)
	}
	write := func(seq uint64) {
		if err := d.WriteSlot(context.Background(), diskhb.Slot{NodeID: id, Incarnation: 5, Seq: seq, Flags: diskhb.FlagRunning}); err != nil {
			t.Error(err)
		}
	}
	write(1)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(2); ; seq++ {
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
			write(seq)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done; dev.Close() }) }
	t.Cleanup(stop)
	return stop
}

// The reproductions: a zeroed header sector over live slots, and a
// running cluster's disk with one bit of the magic flipped. init refuses
// without --force and names what it found, refuses with --force while a
// slot changes, and dump calls the flipped header damaged.
func TestDiskInitRefusesLiveDisk(t *testing.T) {
	for _, damage := range []string{"zeroed header", "flipped magic bit"} {
		t.Run(damage, func(t *testing.T) {
			cfg, disk := testCluster(t, 4<<20)
			if _, err := runCLI(t, "disk", "init", "--config", cfg); err != nil {
				t.Fatal(err)
			}
			stop := writeSlotLoop(t, cfg, disk, 2, 5*time.Millisecond)
			if damage == "zeroed header" {
				f, _ := os.OpenFile(disk, os.O_RDWR, 0)
				f.WriteAt(make([]byte, 512), 0)
				f.Close()
			} else {
				corruptByte(t, disk, 3) // 'Q' -> 'q': one bit
			}
			_, err := runCLI(t, "disk", "init", "--config", cfg)
			if !errors.Is(err, diskhb.ErrInUse) || !strings.Contains(err.Error(), "slots of node ids [2] changed") {
				t.Fatalf("init: %v", err)
			}
			_, err = runCLI(t, "disk", "init", "--config", cfg, "--force")
			if !errors.Is(err, diskhb.ErrInUse) || !strings.Contains(err.Error(), "--force does not override") {
				t.Fatalf("forced init: %v", err)
			}
			if damage == "flipped magic bit" {
				_, err := runCLI(t, "disk", "dump", "--config", cfg, "--sample", "10ms")
				if !errors.Is(err, diskhb.ErrDamagedHeader) || errors.Is(err, diskhb.ErrNotFormatted) ||
					strings.Contains(err.Error(), "not an MT-Cluster") || strings.Contains(err.Error(), "formats it") {
					t.Fatalf("dump of a damaged header: %v", err)
				}
			}
			// Once the node is stopped, --force may erase it.
			stop()
			_, err = runCLI(t, "disk", "init", "--config", cfg)
			if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "slots of node ids [2] hold heartbeat records") {
				t.Fatalf("init of a stopped disk without --force: %v", err)
			}
			if out, err := runCLI(t, "disk", "init", "--config", cfg, "--force"); err != nil || !strings.Contains(out, "erased") {
				t.Fatalf("forced init of a stopped disk: %v\n%s", err, out)
			}
		})
	}
}

// clear-slot watches by the disk header's timing, not the local file's: a
// node that heartbeats every 1.8 s on a disk formatted for a 2 s failure
// timeout is live, although the local file's timing (300 ms) would have
// given up on it after 1.5 s.
func TestDiskClearSlotWatchesByDiskTiming(t *testing.T) {
	cfg, disk := testCluster(t, 4<<20)
	c, _ := config.Load(cfg)
	dev, err := openQuorumDevice(disk, 0, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := diskhb.Header{ClusterUUID: c.UUID, ClusterName: c.Name, Slots: 16,
		HeartbeatInterval: 200 * time.Millisecond, IOTimeout: 400 * time.Millisecond, FailureTimeout: 2 * time.Second, WatchdogTimeout: time.Second}
	if err := diskhb.Format(context.Background(), dev, h, false); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	writeSlotLoop(t, cfg, disk, 2, 1800*time.Millisecond)
	out, err := runCLI(t, "disk", "clear-slot", "--config", cfg, "beta")
	if err == nil || !strings.Contains(err.Error(), "its node is running") {
		t.Fatalf("clear-slot of a slowly heartbeating node: %v\n%s", err, out)
	}
	if want := h.WriterGoneAfter().Round(time.Millisecond).String(); !strings.Contains(out, "for "+want+" (the disk's failure_timeout 2s") {
		t.Fatalf("watch not by the disk's timing (want %s): %s", want, out)
	}
}

// reseal fixes up the CRC32C of a sector, to plant records that checksum.
func reseal(b []byte) {
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)))
}

// The smaller findings: a slot with every flag bit set, a lock held by a
// node the disk has no slot for, a configured node without a slot, control
// characters in names on disk, a header with impossible timings.
func TestDiskDumpSmallerFindings(t *testing.T) {
	cfg, disk := testCluster(t, 4<<20)
	c, _ := config.Load(cfg)
	dev, err := openQuorumDevice(disk, 0, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tm := c.Timing
	h := diskhb.Header{ClusterUUID: c.UUID, ClusterName: "pay\x1b[2Jments", Slots: 2,
		HeartbeatInterval: tm.HeartbeatInterval, IOTimeout: tm.IOTimeout, FailureTimeout: tm.FailureTimeout, WatchdogTimeout: tm.WatchdogTimeout}
	ctx := context.Background()
	if err := diskhb.Format(ctx, dev, h, false); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: c.UUID})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteSlot(ctx, diskhb.Slot{NodeID: 1, Flags: ^uint32(0), Seq: 3, NodeName: "alpha"}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteSlot(ctx, diskhb.Slot{NodeID: 2, Flags: diskhb.FlagRunning, Seq: 3, NodeName: "be\x1b]0;owned\x07ta"}); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteLock(ctx, diskhb.Lock{Index: diskhb.TieBreakLock, Owner: 40, OwnerIncarnation: 1, Generation: 2}); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "disk", "dump", "--config", cfg, "--sample", "20ms")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"undefined:0xffffffe0", "not a record this format writes",
		"warning: the tie-break lock names node 40 as its holder, but the disk has 2 slots",
		"warning: node gamma has id 3, but the disk has only 2 slots",
		`pay\x1b[2Jments`, `name on disk: "be\x1b]0;owned\ata"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("control characters reached the output:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "1 ") && !strings.Contains(line, "invalid") {
			t.Errorf("slot 1 with every flag set: %q", line)
		}
	}
	// clear-slot does not take the all-flags slot for an empty one.
	out, err = runCLI(t, "disk", "clear-slot", "--config", cfg, "alpha")
	if err != nil || strings.Contains(out, "already empty") || !strings.Contains(out, "cleared slot 1") {
		t.Fatalf("clear-slot of a slot with every flag set: %v\n%s", err, out)
	}

	// A header that checksums but holds io_timeout = -1ns is damaged.
	b, err := dev.Read(ctx, 0, 512)
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[48:], ^uint64(0)) // -1 as an int64
	reseal(b)
	if err := dev.Write(ctx, 0, b); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, "disk", "dump", "--config", cfg, "--sample", "10ms")
	if !errors.Is(err, diskhb.ErrDamagedHeader) || !strings.Contains(err.Error(), "io_timeout is -1 ns") {
		t.Fatalf("dump of a header with io_timeout -1ns: %v", err)
	}
}

// Wrong device paths say what is wrong and what to do.
func TestDiskBadPaths(t *testing.T) {
	cfg, disk := testCluster(t, 1<<20)
	empty := filepath.Join(t.TempDir(), "empty.img")
	os.WriteFile(empty, nil, 0o600)
	for _, c := range []struct {
		device string
		want   []string
	}{
		{disk + ".missing", []string{"does not exist", "truncate -s", "check --device"}},
		{"/dev/null", []string{"is a character device, not a block device", "check --device"}},
		{empty, []string{"file of 0 bytes, too small for a quorum disk"}},
		{t.TempDir(), []string{"is a directory"}},
	} {
		_, err := runCLI(t, "disk", "dump", "--config", cfg, "--device", c.device)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("dump --device %s: %v, want %q", c.device, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), "geometry mismatch") {
			t.Errorf("dump --device %s: %v", c.device, err)
		}
	}
	// The configured path, missing: the message points at the file.
	os.Remove(disk)
	if _, err := runCLI(t, "disk", "dump", "--config", cfg); err == nil || !strings.Contains(err.Error(), "the quorum disk path in "+cfg) {
		t.Errorf("missing configured disk: %v", err)
	}
	// A blank device: dump says so and how to format it.
	os.WriteFile(disk, make([]byte, 1<<20), 0o600)
	if _, err := runCLI(t, "disk", "dump", "--config", cfg); !errors.Is(err, diskhb.ErrNotFormatted) || !strings.Contains(err.Error(), "the device is blank; `mtc disk init --config") {
		t.Errorf("blank disk: %v", err)
	}
	// A FIFO as --config is refused at once instead of blocking.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "disk", "dump", "--config", fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO config: %v", err)
	}
}

// mtc disk dump reads the operator state and every node's report with
// the package files beside the cluster file.
func TestDiskDumpShowsOperatorStateAndReports(t *testing.T) {
	cfg, disk := testCluster(t, 4<<20)
	if _, err := runCLI(t, "disk", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(cfg), "packages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"api", "web"} {
		body := fmt.Sprintf("name = %q\nnodes = [\"alpha\", \"beta\"]\n", p)
		if err := os.WriteFile(filepath.Join(dir, p+".toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := config.Load(cfg)
	dev, err := openQuorumDevice(disk, 0, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(context.Background(), dev, diskhb.Expect{ClusterUUID: c.UUID, MaxNodeID: 3})
	if err != nil {
		t.Fatal(err)
	}
	state := `{"v":1,"pkgs":[{"n":"api","f":3},{"n":"web","f":2,"m":4}],"drained":4,"last":7,"intents":[{"i":7,"k":8,"n":2}]}`
	if err := d.WriteState(context.Background(), diskhb.Record{Generation: 2, Writer: 1, Incarnation: 5, Payload: []byte(state)}); err != nil {
		t.Fatal(err)
	}
	pkgs, err := config.LoadPackages(c, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := daemon.PackageIndex(c, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	env, err := hbwire.AppendEnvelope(nil, &hbwire.Envelope{LastIntent: 7, Report: placement.Report{Node: 1, Inc: 5, Seq: 3,
		Packages: []placement.PackageReport{{Name: "web", State: placement.Running}}}}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteReport(context.Background(), diskhb.Record{Generation: 1, Writer: 1, Incarnation: 5, Payload: env}); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	out, err := runCLI(t, "disk", "dump", "--config", cfg, "--sample", "10ms")
	if err != nil {
		t.Fatalf("dump: %v\n%s", err, out)
	}
	for _, want := range []string{"last intent 7", "drained beta", "api: halted", "web: failed on beta", "intents 7-7 kept",
		"report of alpha: generation 1", "web running (report 3, last intent 7)", "report of beta: none yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
}
