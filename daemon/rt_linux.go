package daemon

import (
	"fmt"
	"log/slog"
	"runtime"

	"golang.org/x/sys/unix"
)

// RealtimePriority is the SCHED_RR priority of the heartbeat threads: above
// every normal process and the default of most kernel threads (50), below
// the watchdog and migration threads (99), like corosync's default.
const RealtimePriority = 60

// lockMemory locks the process's memory, so a heartbeat never waits for a
// page to be read back from swap under memory pressure. It asks for
// MCL_ONFAULT too (Linux 4.4): pages are locked as they are first touched,
// so the address space the Go runtime reserves but never uses is not made
// resident: measured with BenchmarkNetnsDaemon, an idle daemon holds about
// 9 MiB resident this way and about 82 MiB with plain MCL_FUTURE. Kernels
// without MCL_ONFAULT get plain MCL_CURRENT|MCL_FUTURE.
func lockMemory(log *slog.Logger) {
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if err == nil {
		log.Info("memory locked (mlockall MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT)")
		return
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		log.Warn("cannot lock memory (mlockall): heartbeats may stall under memory pressure; run as root or raise RLIMIT_MEMLOCK (LimitMEMLOCK=infinity)", "err", err)
		return
	}
	log.Info("memory locked (mlockall MCL_CURRENT|MCL_FUTURE)", "onfault_err", err)
}

// realtimeThread pins the calling goroutine to its OS thread and gives that
// thread SCHED_RR priority RealtimePriority. The goroutine keeps the thread
// until it exits. It logs, once per role, when the system refuses.
func realtimeThread(log *slog.Logger, role string) {
	runtime.LockOSThread()
	attr := &unix.SchedAttr{Policy: unix.SCHED_RR, Priority: RealtimePriority}
	if err := unix.SchedSetAttr(0, attr, 0); err != nil {
		log.Warn(fmt.Sprintf("cannot give the %s thread real-time priority (SCHED_RR %d); it competes with every other process for the CPU and may miss heartbeats on a loaded node; run as root with CAP_SYS_NICE, or give the cgroup a real-time budget (cpu.rt_runtime_us)", role, RealtimePriority), "err", err)
		return
	}
	log.Debug("real-time thread", "role", role, "tid", unix.Gettid(), "policy", "SCHED_RR", "priority", RealtimePriority)
}
