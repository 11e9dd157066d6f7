package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/internal/loopdev"
)

// BenchCmd groups the benchmarks. Each measures on this machine and writes
// a section of a markdown report; nothing in them is asserted.
type BenchCmd struct {
	Disk BenchDiskCmd `cmd:"" help:"Measure quorum-disk I/O latency against dd, slot I/O through the on-disk format, and the I/O rate of one node's disk heartbeat."`
	Sim  BenchSimCmd  `cmd:"" help:"Measure, in the simulation, the time from a node's death to the survivors' decision."`
}

// BenchDiskCmd measures the quorum-disk I/O path.
type BenchDiskCmd struct {
	Out      string        `help:"Markdown file whose disk section (between <!-- bench:disk --> and <!-- /bench:disk -->) is replaced; created if missing. The section is printed either way." placeholder:"FILE"`
	Device   string        `help:"Block device to measure instead of temporary loop devices (which need root). Its first MiBs are OVERWRITTEN; refused unless they are all zeros or an earlier run's, unless --force." placeholder:"DEV"`
	Force    bool          `help:"With --device: overwrite it whatever it holds."`
	Count    int           `default:"2000" help:"One-sector I/Os per measurement and round."`
	Rounds   int           `default:"5" help:"Alternating rounds of dd and mtc for the one-sector comparison; the means reported are the medians of the rounds' means."`
	Duration time.Duration `default:"5s" help:"How long to run a real disk heartbeat to count its I/O rate."`
	// HangSamples is not offered with --device: it needs a device whose
	// filesystem the benchmark can freeze.
	HangSamples int `default:"10" name:"hang-samples" help:"Times to hang a loop device (by freezing the filesystem under it) to time the caller's ErrTimeout and ErrBusy; 0 skips. Ignored with --device."`
}

// benchIOTimeout is the I/O deadline of the latency measurements: 10s, so
// that on a loaded machine a slow I/O is measured rather than failed. The
// heartbeat run uses the cluster's default io_timeout.
const benchIOTimeout = 10 * time.Second

// benchLoopSize is the size of each temporary loop device: 64 MiB, room
// for the default quorum-disk layout plus a separate region for the
// one-sector comparison at 4096-byte sectors.
const benchLoopSize = 64 << 20

// Run measures every target and writes the report.
func (c *BenchDiskCmd) Run(out io.Writer, log *slog.Logger) error {
	if c.Count < 100 {
		return fmt.Errorf("--count %d: at least 100 I/Os are needed for a 99th percentile", c.Count)
	}
	if c.Rounds < 1 {
		return fmt.Errorf("--rounds %d: must be at least 1", c.Rounds)
	}
	if c.HangSamples < 0 {
		return fmt.Errorf("--hang-samples %d: must be 0 (skip) or more", c.HangSamples)
	}
	if c.Duration < time.Second {
		return fmt.Errorf("--duration %v: must be at least 1s to count a per-second rate", c.Duration)
	}
	dd, err := exec.LookPath("dd")
	if err != nil {
		return fmt.Errorf("bench disk compares with dd, which is not installed: %w", err)
	}

	type target struct {
		path, what string
	}
	var targets []target
	if c.Device != "" {
		targets = append(targets, target{c.Device, "the block device " + c.Device})
	} else {
		if os.Geteuid() != 0 {
			return errors.New("bench disk creates loop devices, which needs root: run it as root, or pass --device DEV to measure an existing block device")
		}
		dir, err := os.MkdirTemp("", "mtc-bench-disk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		for _, ss := range []int{512, 4096} {
			dev, err := loopdev.Attach(filepath.Join(dir, fmt.Sprintf("disk-%d.img", ss)), ss, benchLoopSize)
			if err != nil {
				return err
			}
			defer func() {
				if err := loopdev.Detach(dev); err != nil {
					log.Warn("detaching the benchmark's loop device failed; detach it by hand", "device", dev, "err", err)
				}
			}()
			targets = append(targets, target{dev, fmt.Sprintf("a %d MiB loop device (losetup --sector-size %d --direct-io=on) on a file in %s", benchLoopSize>>20, ss, os.TempDir())})
		}
	}

	rep := &diskReport{cmd: c.command(), when: time.Now().UTC(), machine: machineInfo()}
	if c.Device == "" && c.HangSamples > 0 {
		dir, err := os.MkdirTemp("", "mtc-bench-hang-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		log.Info("measuring a hung device", "samples", c.HangSamples)
		rep.hang, err = measureHang(dir, c.HangSamples, log)
		if err != nil {
			return err
		}
	}
	for _, t := range targets {
		log.Info("measuring", "device", t.path)
		r, err := c.measure(dd, t.path, log)
		if err != nil {
			return fmt.Errorf("%s: %w", t.path, err)
		}
		r.what = t.what
		rep.results = append(rep.results, r)
	}
	section := rep.markdown()
	if _, err := io.WriteString(out, section); err != nil {
		return err
	}
	if c.Out != "" {
		if err := benchdoc.ReplaceSection(c.Out, "disk", section); err != nil {
			return err
		}
		log.Info("report written", "file", c.Out)
	}
	return nil
}

// command is the exact command line that reproduces the run.
func (c *BenchDiskCmd) command() string {
	args := []string{"mtc", "bench", "disk", fmt.Sprintf("--count=%d", c.Count), fmt.Sprintf("--rounds=%d", c.Rounds), fmt.Sprintf("--duration=%v", c.Duration)}
	if c.Device != "" {
		args = append(args, "--device="+c.Device)
	} else {
		args = append(args, fmt.Sprintf("--hang-samples=%d", c.HangSamples))
	}
	if c.Out != "" {
		args = append(args, "--out="+c.Out)
	}
	return strings.Join(args, " ")
}

// latencies summarises a set of I/O latencies.
type latencies struct {
	n                   int
	mean, p50, p99, max time.Duration
}

func summarise(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	rank := func(p int) time.Duration { return s[max((p*len(s)+99)/100-1, 0)] }
	return latencies{n: len(s), mean: sum / time.Duration(len(s)), p50: rank(50), p99: rank(99), max: s[len(s)-1]}
}

type ddCompare struct {
	op string
	// Per-I/O means, each the median over the rounds of that round's mean:
	// a round disturbed by other work on the machine moves them little.
	ddMean, rawMean, devMean, dev1Mean time.Duration
	raw                                latencies // the BlockDevice alone, no Device
	dev                                latencies
	dev1                               latencies // the Device with GOMAXPROCS=1
}

// median returns the median of d (the upper one of an even count).
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

type diskResult struct {
	path, what string
	sectorSize int
	slots      int
	compare    []ddCompare
	writeSlot  latencies
	readSlots  latencies
	hb         hbRate
}

type hbRate struct {
	interval       time.Duration
	elapsed        time.Duration
	rounds         int
	writes, reads  uint64
	wbytes, rbytes uint64
	timeouts, errs uint64
	roundErrs      int
	lastErr        error
}

func (c *BenchDiskCmd) measure(dd, path string, log *slog.Logger) (*diskResult, error) {
	bd, err := diskhb.OpenBlock(path)
	if err != nil {
		return nil, err
	}
	timing := config.DefaultTiming()
	dev := diskhb.NewDevice(bd, benchIOTimeout, log.With("device", path))
	defer dev.Close()
	ctx := context.Background()
	ss := dev.SectorSize()

	hdr := diskhb.Header{
		ClusterUUID:       uuid.New(),
		ClusterName:       benchClusterName,
		SectorSize:        ss,
		Slots:             diskhb.DefaultSlots,
		HeartbeatInterval: timing.HeartbeatInterval,
		IOTimeout:         timing.IOTimeout,
		FailureTimeout:    timing.FailureTimeout,
		WatchdogTimeout:   timing.WatchdogTimeout,
		FormattedAt:       time.Now(),
	}
	// The one-sector comparison uses a region after the quorum-disk
	// layout, aligned to 1 MiB.
	base := (hdr.Layout().MinSize() + (1<<20 - 1)) &^ (1<<20 - 1)
	if need := base + int64(c.Count*ss); dev.Size() < need {
		return nil, fmt.Errorf("device is %d bytes; the benchmark needs %d (lower --count or use a larger device)", dev.Size(), need)
	}
	if c.Device != "" && !c.Force {
		if err := checkOverwrite(ctx, dev, base+int64(c.Count*ss)); err != nil {
			return nil, err
		}
	}
	res := &diskResult{path: path, sectorSize: ss, slots: hdr.Slots}

	// One-sector I/O at consecutive sectors: dd, the bare BlockDevice and
	// the Device, alternating.
	raw, err := diskhb.OpenBlock(path)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	for _, op := range []string{"write", "read"} {
		var rawLat, devLat, dev1Lat, ddMeans, rawMeans, devMeans, dev1Means []time.Duration
		for range c.Rounds {
			t, err := runDD(dd, path, op, ss, c.Count, base/int64(ss))
			if err != nil {
				return nil, err
			}
			ddMeans = append(ddMeans, t/time.Duration(c.Count))
			l, err := rawRun(raw, op, base, c.Count)
			if err != nil {
				return nil, err
			}
			rawLat = append(rawLat, l...)
			rawMeans = append(rawMeans, summarise(l).mean)
			l, err = deviceRun(ctx, dev, op, base, c.Count)
			if err != nil {
				return nil, err
			}
			devLat = append(devLat, l...)
			devMeans = append(devMeans, summarise(l).mean)
			// The same with one processor: no idle processor to wake when
			// the I/O goroutine and its caller hand over to each other.
			procs := runtime.GOMAXPROCS(1)
			l, err = deviceRun(ctx, dev, op, base, c.Count)
			runtime.GOMAXPROCS(procs)
			if err != nil {
				return nil, err
			}
			dev1Lat = append(dev1Lat, l...)
			dev1Means = append(dev1Means, summarise(l).mean)
		}
		res.compare = append(res.compare, ddCompare{
			op: op, ddMean: median(ddMeans), rawMean: median(rawMeans), devMean: median(devMeans), dev1Mean: median(dev1Means),
			raw: summarise(rawLat), dev: summarise(devLat), dev1: summarise(dev1Lat),
		})
	}

	// Slot I/O through the on-disk format.
	if err := diskhb.Format(ctx, dev, hdr, true); err != nil {
		return nil, err
	}
	disk, err := diskhb.Open(ctx, dev, diskhb.Expect{ClusterUUID: hdr.ClusterUUID, MaxNodeID: 1})
	if err != nil {
		return nil, err
	}
	var wl, rl []time.Duration
	inc := diskhb.RandomIncarnation()
	for i := range c.Count {
		s := diskhb.Slot{NodeID: 1, NodeName: "bench", Flags: diskhb.FlagRunning, Incarnation: inc, Seq: uint64(i + 1), WrittenAt: time.Now()}
		t0 := time.Now()
		if err := disk.WriteSlot(ctx, s); err != nil {
			return nil, err
		}
		wl = append(wl, time.Since(t0))
	}
	for range c.Count {
		t0 := time.Now()
		if _, err := disk.ReadSlots(ctx); err != nil {
			return nil, err
		}
		rl = append(rl, time.Since(t0))
	}
	res.writeSlot, res.readSlots = summarise(wl), summarise(rl)

	// The daemon's own disk rounds at the default timing, on a Device of
	// their own: a membership machine (node 2 of a 3-node cluster, with
	// no network) asks for them and diskhb.Rounds performs them, as in
	// the daemon; their I/O is counted by that Device.
	hbd, err := diskhb.OpenBlock(path)
	if err != nil {
		return nil, err
	}
	hdev := diskhb.NewDevice(hbd, timing.IOTimeout, log.With("device", path))
	defer hdev.Close()
	disk, err = diskhb.Open(ctx, hdev, diskhb.Expect{ClusterUUID: hdr.ClusterUUID, MaxNodeID: 3})
	if err != nil {
		return nil, err
	}
	// The rate is taken between the ends of the first and the last round
	// that completed within --duration (Stats snapshots in the round
	// callback), so no round is cut short by the end of the run.
	hctx, cancel := context.WithTimeout(ctx, 2*c.Duration+10*time.Second)
	defer cancel()
	var (
		first, last       diskhb.DeviceStats
		t0, t1            time.Time
		rounds, roundErrs int
		lastErr           error
	)
	m, err := diskhb.NewMember(disk, 2, "bench", []int{1, 2, 3}, timing.Derive(), log)
	if err != nil {
		return nil, err
	}
	m.OnRound = func(r diskhb.MemberRound) {
		now, st := time.Now(), hdev.Stats()
		switch {
		case t0.IsZero():
			t0, first = now, st
			return
		case now.Sub(t0) > c.Duration:
			cancel()
			return
		}
		t1, last = now, st
		rounds++
		if err := errors.Join(r.Write.Err, r.Read.Err, r.Read.LockErr); err != nil {
			roundErrs++
			lastErr = err
		}
	}
	_ = m.Run(hctx) // returns the context's error once cancelled
	if rounds == 0 {
		return nil, fmt.Errorf("the disk rounds completed none in %v", c.Duration)
	}
	res.hb = hbRate{
		interval: timing.HeartbeatInterval, elapsed: t1.Sub(t0), rounds: rounds,
		writes: last.Writes - first.Writes, reads: last.Reads - first.Reads,
		wbytes: last.WrittenBytes - first.WrittenBytes, rbytes: last.ReadBytes - first.ReadBytes,
		timeouts: last.Timeouts - first.Timeouts, errs: last.Errors - first.Errors,
		roundErrs: roundErrs, lastErr: lastErr,
	}
	return res, nil
}

// benchClusterName names the cluster of the quorum disk the benchmark
// formats, so a later run recognises the disk as its own.
const benchClusterName = "mtc-bench"

// checkOverwrite refuses a device that holds anything but zeros or an
// earlier benchmark's quorum disk in its first end bytes, the bytes the
// benchmark writes: a quorum disk of a real cluster or a filesystem must
// not be destroyed by a mistyped --device.
func checkOverwrite(ctx context.Context, dev *diskhb.Device, end int64) error {
	h, err := diskhb.ReadHeader(ctx, dev, uuid.Nil)
	switch {
	case err == nil && h.ClusterName == benchClusterName:
		return nil
	case err == nil:
		return fmt.Errorf("holds the quorum disk of cluster %q (%s), which the benchmark would overwrite; pass --force if that is intended", h.ClusterName, h.ClusterUUID)
	case !errors.Is(err, diskhb.ErrNotFormatted):
		return fmt.Errorf("holds what may be a damaged MT-Cluster quorum disk (%v), which the benchmark would overwrite; pass --force if that is intended", err)
	}
	const chunk = 1 << 20
	for off := int64(0); off < end; off += chunk {
		b, err := dev.Read(ctx, off, int(min(chunk, end-off)))
		if err != nil {
			return err
		}
		for i, v := range b {
			if v != 0 {
				return fmt.Errorf("holds data (a non-zero byte at offset %d) in the first %d bytes, which the benchmark overwrites; pass --force if that is intended", off+int64(i), end)
			}
		}
	}
	return nil
}

// runDD runs dd for count one-sector direct I/Os at consecutive sectors
// from sector first and returns its wall time (process start included).
func runDD(dd, dev, op string, ss, count int, first int64) (time.Duration, error) {
	args := []string{"bs=" + fmt.Sprint(ss), "count=" + fmt.Sprint(count), "status=none"}
	if op == "write" {
		args = append(args, "if=/dev/zero", "of="+dev, "oflag=direct", "conv=notrunc", fmt.Sprintf("seek=%d", first))
	} else {
		args = append(args, "if="+dev, "of=/dev/null", "iflag=direct", fmt.Sprintf("skip=%d", first))
	}
	cmd := exec.Command(dd, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	t := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("dd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return t, nil
}

// timedRun does count one-sector I/Os with io at consecutive sectors from
// off and returns each one's latency.
func timedRun(ss int, off int64, count int, io func(o int64, buf []byte) error) ([]time.Duration, error) {
	buf := diskhb.AlignedBuffer(ss)
	lat := make([]time.Duration, 0, count)
	for i := range count {
		o := off + int64(i*ss)
		t0 := time.Now()
		if err := io(o, buf); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// deviceRun does count one-sector I/Os through dev at consecutive sectors
// from off, as runDD does, and returns each one's latency.
func deviceRun(ctx context.Context, dev *diskhb.Device, op string, off int64, count int) ([]time.Duration, error) {
	ss := dev.SectorSize()
	return timedRun(ss, off, count, func(o int64, buf []byte) error {
		if op == "write" {
			return dev.Write(ctx, o, buf)
		}
		_, err := dev.Read(ctx, o, ss)
		return err
	})
}

// rawRun is deviceRun on the bare BlockDevice: pread or pwrite from the
// calling goroutine, no deadline.
func rawRun(bd diskhb.BlockDevice, op string, off int64, count int) ([]time.Duration, error) {
	return timedRun(bd.SectorSize(), off, count, func(o int64, buf []byte) error {
		var err error
		if op == "write" {
			_, err = bd.WriteAt(buf, o)
		} else {
			_, err = bd.ReadAt(buf, o)
		}
		return err
	})
}

type machine struct {
	cpus                            int
	cpu, kernel, goVersion, loadavg string
}

func machineInfo() machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), cpu: "unknown CPU", kernel: "unknown kernel"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
