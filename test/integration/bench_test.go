package integration

import (
	"github.com/mtcluster/mtc/internal/benchdoc"

	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/daemon"
)

// benchRounds is how many crash-and-rejoin rounds each timing profile runs.
const benchRounds = 3

// idleWindow is how long the idle CPU use of a quorate 3-node cluster is
// sampled.
const idleWindow = 10 * time.Second

// clockTick is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

type failover struct {
	membership time.Duration // kill -> the last survivor drops the node
	takeover   time.Duration // kill -> the first survivor allows takeover
}

type profileResult struct {
	p          Profile
	rounds     []failover
	cpu        []float64 // per daemon, percent of one CPU
	supCPU     []float64 // per watchdog supervisor
	rssKiB     []int     // per daemon
	supRSSKiB  []int
	anonKiB    []int // RssAnon: RSS without the binary's file pages
	supAnonKiB []int
}

// BenchmarkNetnsDaemon measures, with the default and the aggressive timing
// profile, the time from SIGKILL of one of three daemons to the survivors'
// membership decision and to the takeover decision, and the daemons' idle
// CPU and memory. Nothing is asserted. With MTC_BENCH_OUT=FILE it replaces
// the daemon section of that markdown file:
//
//	MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsDaemon -benchtime 1x ./test/integration
func BenchmarkNetnsDaemon(b *testing.B) {
	requireTools(b)
	var results []profileResult
	for range b.N {
		results = results[:0]
		noRT := defaultProfile
		noRT.Name, noRT.NoRealtime = "default, --no-realtime", true
		for _, p := range []Profile{defaultProfile, aggressiveProfile, noRT} {
			results = append(results, measureProfile(b, p))
		}
	}
	for _, r := range results {
		b.ReportMetric(float64(median(membershipTimes(r)).Milliseconds()), strings.ReplaceAll(strings.ReplaceAll(r.p.Name, ",", ""), " ", "")+"-detect-ms")
	}
	body := report(results)
	fmt.Print(body)
	if out := os.Getenv("MTC_BENCH_OUT"); out != "" {
		if err := benchdoc.ReplaceSection(out, "daemon", body); err != nil {
			b.Fatal(err)
		}
	}
}

func measureProfile(b *testing.B, p Profile) profileResult {
	c := NewCluster(b, 3, p)
	defer c.stopAll()
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.WaitAllQuorate(n1, n2, n3)
	r := profileResult{p: p}
	r.cpu, r.supCPU, r.rssKiB, r.supRSSKiB, r.anonKiB, r.supAnonKiB = idleUsage(b, c)
	for round := 0; round < benchRounds; round++ {
		if round > 0 {
			n3.Start()
			c.WaitAllQuorate(n1, n2, n3)
		}
		r.rounds = append(r.rounds, measureFailover(b, c, n3, n1, n2))
	}
	return r
}

// measureFailover kills victim and times the survivors' decisions. Each
// decision's time comes from the daemon's own record (its local monotonic
// time, set against its uptime in the same answer), so the polling period
// does not add to the measurement.
func measureFailover(b *testing.B, c *Cluster, victim *Node, survivors ...*Node) failover {
	b.Helper()
	kill := time.Now()
	victim.Kill()
	decided := make(map[string]time.Time)
	var takeover time.Time
	c.WaitFor(victim.Name+" dropped by every survivor and its takeover allowed", func() bool {
		for _, s := range survivors {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			before := time.Now()
			st, err := daemon.QueryStatus(ctx, s.Socket)
			after := time.Now()
			cancel()
			if err != nil {
				continue
			}
			at := before.Add(after.Sub(before) / 2)
			for _, d := range st.Decisions {
				when := at.Add(-(st.Uptime - d.At))
				if !when.After(kill) {
					continue
				}
				if d.Kind == "members" && !slices.Contains(d.Members, victim.Name) {
					if _, ok := decided[s.Name]; !ok {
						decided[s.Name] = when
					}
				}
				if d.Kind == "takeover" && d.Peer == victim.Name && (takeover.IsZero() || when.Before(takeover)) {
					takeover = when
				}
			}
		}
		return len(decided) == len(survivors) && !takeover.IsZero()
	})
	var f failover
	for _, t := range decided {
		f.membership = max(f.membership, t.Sub(kill))
	}
	f.takeover = takeover.Sub(kill)
	return f
}

// idleUsage samples the CPU time and resident memory of every daemon and
// its watchdog supervisor over idleWindow.
func idleUsage(b *testing.B, c *Cluster) (cpu, supCPU []float64, rss, supRSS, anon, supAnon []int) {
	b.Helper()
	type proc struct{ daemon, sup int }
	var procs []proc
	for _, nd := range c.Nodes {
		procs = append(procs, proc{nd.PID(), supervisorOf(nd.PID())})
	}
	start := time.Now()
	var t0 []time.Duration
	for _, p := range procs {
		t0 = append(t0, cpuTime(p.daemon), cpuTime(p.sup))
	}
	time.Sleep(idleWindow)
	elapsed := time.Since(start)
	for i, p := range procs {
		cpu = append(cpu, 100*float64(cpuTime(p.daemon)-t0[2*i])/float64(elapsed))
		supCPU = append(supCPU, 100*float64(cpuTime(p.sup)-t0[2*i+1])/float64(elapsed))
		rss = append(rss, rssKiB(p.daemon))
		supRSS = append(supRSS, rssKiB(p.sup))
		anon = append(anon, statusKiB(p.daemon, "RssAnon"))
		supAnon = append(supAnon, statusKiB(p.sup, "RssAnon"))
	}
	return
}

// supervisorOf finds the watchdog supervisor among pid's children.
func supervisorOf(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			child, _ := strconv.Atoi(f)
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
			if strings.Contains(string(cmdline), "watchdog-supervise") {
				return child
			}
		}
	}
	return 0
}

// cpuTime is utime+stime of pid (0 if it is gone).
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// rssKiB is VmRSS of pid in KiB (0 if it is gone).
func rssKiB(pid int) int { return statusKiB(pid, "VmRSS") }

// statusKiB is the field of /proc/PID/status given in kB (0 if pid is
// gone).
func statusKiB(pid int, field string) int {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func membershipTimes(r profileResult) []time.Duration {
	var out []time.Duration
	for _, f := range r.rounds {
		out = append(out, f.membership)
	}
	return out
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func report(results []profileResult) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	p("## Daemon: failure detection, idle CPU and memory\n\n")
	p("Three `mtc daemon` processes, each in its own network namespace on one machine (%s, %d CPUs), one heartbeat network over veth pairs and a bridge, a loop-device quorum disk, process watchdog. One daemon is killed with SIGKILL; the times are from the kill to each decision as the survivors recorded it on their own monotonic clocks. Measured %s with:\n\n",
		host, numCPU(), time.Now().UTC().Format("2006-01-02"))
	p("    MTC_BENCH_OUT=$PWD/docs/BENCHMARKS.md go test -run '^$' -bench NetnsDaemon -benchtime 1x ./test/integration\n\n")
	p("| timing profile | heartbeat / failure / watchdog | kill → both survivors drop it (median, min-max of %d) | kill → takeover allowed (median) |\n", benchRounds)
	p("|---|---|---|---|\n")
	for _, r := range results {
		m := membershipTimes(r)
		var tk []time.Duration
		for _, f := range r.rounds {
			tk = append(tk, f.takeover)
		}
		t := r.p.Timing
		p("| %s | %v / %v / %v | %s (%s-%s) | %s |\n", r.p.Name, t.HeartbeatInterval, t.FailureTimeout, t.WatchdogTimeout,
			ms(median(m)), ms(slices.Min(m)), ms(slices.Max(m)), ms(median(tk)))
	}
	p("\nThe `--no-realtime` row runs the daemons without mlockall and without SCHED_RR threads, to show what memory locking (MCL_ONFAULT) and real-time threads cost.\n")
	p("\nTakeover without fencing waits for the lost node's watchdog: failure_timeout + watchdog_timeout + margin after it is declared dead (see `mtc check`).\n\n")
	p("Idle, quorate, %v sample per daemon (CPU in percent of one CPU; the daemon's RSS is all locked in memory except in the `--no-realtime` row; RSS counts the pages of the mtc binary mapped from its file, which daemon and supervisor share with the page cache, and the anonymous part, heap and stacks, follows in parentheses):\n\n", idleWindow)
	p("| timing profile | daemon CPU | daemon RSS (anonymous) | supervisor CPU | supervisor RSS (anonymous) |\n|---|---|---|---|---|\n")
	for _, r := range results {
		p("| %s | %s | %s | %s | %s |\n", r.p.Name, floats(r.cpu), kibsAnon(r.rssKiB, r.anonKiB), floats(r.supCPU), kibsAnon(r.supRSSKiB, r.supAnonKiB))
	}
	return b.String()
}

func floats(v []float64) string {
	var s []string
	for _, f := range v {
		s = append(s, fmt.Sprintf("%.2f%%", f))
	}
	return strings.Join(s, ", ")
}

// kibsAnon lists each RSS in MiB with its anonymous part.
func kibsAnon(rss, anon []int) string {
	var s []string
	for i, k := range rss {
		s = append(s, fmt.Sprintf("%.1f MiB (%.1f)", float64(k)/1024, float64(anon[i])/1024))
	}
	return strings.Join(s, ", ")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "\nprocessor")+boolInt(strings.HasPrefix(string(b), "processor")))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
