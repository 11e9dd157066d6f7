package main

import (
	"fmt"
	"strings"
	"time"
)

type diskReport struct {
	cmd     string
	when    time.Time
	machine machine
	results []*diskResult
	hang    *hangResult
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

func (r *diskReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Quorum disk I/O\n\n")
	p("Reproduce (as root; `make bench` runs it with the defaults):\n\n    %s\n\n", r.cmd)
	p("Measured %s on %d CPUs (%s), %s, %s", r.when.Format("2006-01-02 15:04 UTC"), r.machine.cpus, r.machine.cpu, r.machine.kernel, r.machine.goVersion)
	if r.machine.loadavg != "" {
		p("; load average at the start %s (other work on the machine widens the tails)", r.machine.loadavg)
	}
	p(".\n\n")
	for _, res := range r.results {
		p("Device: %s.\n\n", res.what)
	}

	p("### One-sector I/O: diskhb.Device against dd\n\n")
	p("Each round runs `dd bs=SECTOR count=N oflag=direct` (reads: `iflag=direct`) over N consecutive sectors, timed as a whole process (start included); then the same N one-sector I/Os on the bare `BlockDevice` from `diskhb.OpenBlock` (pread/pwrite with O_DIRECT from the calling goroutine), each timed; then the same through a `diskhb.Device` (a deadline per I/O, a copy into an aligned buffer, and on a block device Linux AIO: io_submit then io_getevents bounded by the deadline), each timed. Rounds alternate. Each mean is the median over the rounds of the round's mean per I/O, so one round disturbed by other work moves it little; p50 and p99 are over all I/Os of all rounds. The ratio is Device mean / dd mean (the goal is under 1.5); Device minus bare is the cost of the deadline machinery. The Device's deadline is 10 s here, so slow I/Os are measured rather than failed. The last three columns repeat the Device run with GOMAXPROCS=1 (set by the benchmark for that run only), which shows how much scheduling on a second processor costs.\n\n")
	p("| sector | op | dd mean | bare mean | bare p50 | Device mean | Device p50 | Device p99 | ratio | 1 CPU: Device mean | p50 | ratio |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		for _, c := range res.compare {
			p("| %d | %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s | %.2f |\n", res.sectorSize, c.op, us(c.ddMean), us(c.rawMean), us(c.raw.p50),
				us(c.devMean), us(c.dev.p50), us(c.dev.p99), float64(c.devMean)/float64(c.ddMean),
				us(c.dev1Mean), us(c.dev1.p50), float64(c.dev1Mean)/float64(c.ddMean))
		}
	}

	p("\n### Slot I/O through the on-disk format\n\n")
	p("`Disk.WriteSlot` (encode with CRC32C, one-sector write of the node's own slot) and `Disk.ReadSlots` (one read of the whole slot area, decode every slot), timed by the caller, on a freshly formatted disk.\n\n")
	p("| sector | call | I/O size | calls | mean | p50 | p99 |\n|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		p("| %d | WriteSlot | %d B | %d | %s | %s | %s |\n", res.sectorSize, res.sectorSize, res.writeSlot.n, us(res.writeSlot.mean), us(res.writeSlot.p50), us(res.writeSlot.p99))
		p("| %d | ReadSlots | %d × %d B | %d | %s | %s | %s |\n", res.sectorSize, res.slots, res.sectorSize, res.readSlots.n, us(res.readSlots.mean), us(res.readSlots.p50), us(res.readSlots.p99))
	}

	p("\n### Disk heartbeat I/O per node\n\n")
	p("The daemon's own disk rounds (`diskhb.Rounds`, asked for by a real membership machine through `diskhb.Member`: node 2 of a three-node cluster, no network) at the default timing, run for --duration: per round the own-slot read-back when the last round was fast, the slot write, the slot-area read and the tie-break lock read. The I/Os are counted by the Device's statistics between the ends of the first and the last round completed in that time, not computed.\n\n")
	p("| sector | interval | measured | rounds | writes/s | reads/s | written/s | read/s | timeouts | failed I/Os |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.results {
		h := res.hb
		sec := h.elapsed.Seconds()
		p("| %d | %v | %.2f s | %d | %.2f | %.2f | %.1f KiB | %.1f KiB | %d | %d |\n", res.sectorSize, h.interval, sec, h.rounds,
			float64(h.writes)/sec, float64(h.reads)/sec, float64(h.wbytes)/sec/1024, float64(h.rbytes)/sec/1024, h.timeouts, h.errs)
	}
	for _, res := range r.results {
		if res.hb.roundErrs > 0 {
			p("\n%d of the %d-byte heartbeat rounds had an I/O error; the last: %s\n", res.hb.roundErrs, res.sectorSize, strings.ReplaceAll(res.hb.lastErr.Error(), "\n", "; "))
		}
	}
	if h := r.hang; h != nil {
		p("\n### A hung device\n\n")
		p("A 512-byte loop device whose backing file sits on its own ext4 filesystem; `fsfreeze --freeze` on that filesystem makes the device's writes block in the kernel, as on a hung LUN. Each sample writes one sector through a Device with the default %v deadline and times the caller's return (ErrTimeout each time), then times a read issued while that write is stuck, which waits for it until its own deadline and then fails with ErrBusy (each time), then thaws the filesystem and waits for the stuck write to return.\n\n", h.deadline)
		p("| deadline | samples | ErrTimeout after the deadline: p50 | max | ErrBusy after the read's deadline: p50 | max |\n|---|---|---|---|---|---|\n")
		p("| %v | %d | %s | %s | %s | %s |\n", h.deadline, h.samples, us(h.late.p50), us(h.late.max), us(h.busy.p50), us(h.busy.max))
	}
	return b.String()
}
