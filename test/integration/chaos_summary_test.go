package integration

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// chaosIntro starts docs/CHAOS.md when it does not exist yet.
const chaosIntro = `# Chaos suite results

The host batch below is written by ` + "`make chaos`" + ` between its two
bench:chaos comment markers and replaced as a whole by the next run;
everything outside them (the QEMU lab's cases) is kept.
`

// chaosSummary is the chaos section of docs/CHAOS.md: the machine, the
// command, and per fault kind the trials, passes, failures with their
// seeds and what failed, and the longest outage the observer saw after the
// fault (p50, max).
func chaosSummary(results []trialResult, base int64, kinds, budget string, took time.Duration) string {
	n := len(results)
	var b strings.Builder
	fmt.Fprintf(&b, "## On the host: a seeded batch of every fault kind\n\n")
	fmt.Fprintf(&b, "Written by `make chaos` (test/integration/chaos_test.go) on %s, in %v.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	fmt.Fprintf(&b, "Each trial is a fresh three-node cluster (network namespaces on one host, aggressive timing profile, process watchdog) running package `web`: a VIP, an ext4 filesystem on a shared loop device, and a TCP service that appends a synced line per connection to a data file on that filesystem. One fault kind per trial, every choice (target, direction, times, durations) from the seed; then everything is healed and every node must be a member again with `web` answering. The history checker merges the observer's probes of the VIP (every 15 ms), the sampler's reads of every node's VIP and mounts (every 25 ms), the data witness's acknowledged writes (every 20 ms, each tagged with the node that served it and the start serving it: the daemon's incarnation and the node's epoch, which the service gets from the start's MTC_INCARNATION and MTC_EPOCH), the data file, and the daemons' event journals, and fails a trial on: the VIP or the filesystem on two nodes at once, two journals claiming the package at once, a change of the answering node without an unanswered request between (the old owner answering after the new one's first answer), lines of a node in the data file after its successor's, an acknowledged write missing (or in the file from another node or another start), or a write sent after a daemon's journal said the incarnation that acknowledged it was fenced or taken over. On the host there is no SCSI PR: every takeover waits for the watchdog deadline.\n\n")
	fmt.Fprintf(&b, "### Machine and command\n\n")
	fmt.Fprintf(&b, "- %s\n", machine())
	fmt.Fprintf(&b, "- %s, GOMAXPROCS %d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	cmd := fmt.Sprintf("make chaos CHAOS_TRIALS=%d CHAOS_SEED=%d", n, base)
	if kinds != "" {
		cmd += " CHAOS_KINDS=" + kinds
	}
	if budget != "" {
		cmd += " CHAOS_FOR=" + budget
	}
	fmt.Fprintf(&b, "- `%s` (seeds %d to %d; trial i runs kind i modulo the kinds with seed %d+i)\n\n", cmd, base, base+int64(n)-1, base)
	fmt.Fprintf(&b, "Replay one trial: `MTC_CHAOS_KINDS=KIND MTC_CHAOS_SEED=SEED MTC_CHAOS_TRIALS=1 go test -count=1 -run '^TestNetnsChaosBatch$' -v ./test/integration` (as root).\n\n")
	fmt.Fprintf(&b, "### Per fault kind\n\n")
	if n == 0 {
		fmt.Fprintf(&b, "No trial ran.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "| fault | trials | passed | failed (seeds) | longest outage p50 | max |\n|---|---|---|---|---|---|\n")
	var order []string
	by := map[string][]trialResult{}
	for _, r := range results {
		if _, ok := by[r.Kind]; !ok {
			order = append(order, r.Kind)
		}
		by[r.Kind] = append(by[r.Kind], r)
	}
	total, passed := 0, 0
	for _, k := range order {
		rs := by[k]
		var seeds []string
		var outs []time.Duration
		p := 0
		for _, r := range rs {
			if r.Passed {
				p++
			} else {
				seeds = append(seeds, fmt.Sprint(r.Seed))
			}
			outs = append(outs, r.Downtime)
		}
		slices.Sort(outs)
		total += len(rs)
		passed += p
		failed := "0"
		if len(seeds) > 0 {
			failed = fmt.Sprintf("%d (%s)", len(seeds), strings.Join(seeds, ", "))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %v | %v |\n", k, len(rs), p, failed, outs[len(outs)/2].Round(10*time.Millisecond), outs[len(outs)-1].Round(10*time.Millisecond))
	}
	fmt.Fprintf(&b, "| all | %d | %d | %d | | |\n\n", total, passed, total-passed)
	fmt.Fprintf(&b, "The outage is the longest time after the fault without an answer from the VIP, as the observer saw it (faults that need no failover show the probes' jitter).\n\n")
	var fails []trialResult
	for _, r := range results {
		if !r.Passed {
			fails = append(fails, r)
		}
	}
	if len(fails) > 0 {
		fmt.Fprintf(&b, "### Failures\n\n")
		for _, r := range fails {
			fmt.Fprintf(&b, "- %s seed %d:", r.Kind, r.Seed)
			for _, v := range r.Violations {
				fmt.Fprintf(&b, " %s;", strings.ReplaceAll(v.String(), "|", "/"))
			}
			for _, p := range r.Problems {
				fmt.Fprintf(&b, " %s;", strings.ReplaceAll(p, "\n", " "))
			}
			fmt.Fprintln(&b)
		}
		fmt.Fprintln(&b)
	}
	return b.String()
}

// machine describes this machine: kernel, CPU model and count, memory.
func machine() string {
	kernel, _ := exec.Command("uname", "-sr").Output()
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			mem = ", " + strings.Join(strings.Fields(l)[1:], " ") + " memory"
		}
	}
	return fmt.Sprintf("%s, %d x %s%s", strings.TrimSpace(string(kernel)), runtime.NumCPU(), model, mem)
}
