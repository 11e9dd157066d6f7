package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/diskhb"
)

// probePace is the pause between two probe rounds: about 100 rounds a
// second of three small reads, enough samples for a 99th percentile in a
// few seconds and a negligible load on any shared LUN.
const probePace = 10 * time.Millisecond

// openProbeDevice opens the device to probe; tests replace it with a disk
// of known latency.
var openProbeDevice = openQuorumDevice

// diskProbe is what `mtc check --probe-disk` measured and concluded.
type diskProbe struct {
	path    string
	elapsed time.Duration
	lat     latencies
	d       config.Derived
	// holds is false when the measured p99 latency is not below the
	// timing's DiskLatencyTolerance; verdict then says why and what to do.
	holds   bool
	verdict string
	// stallWarning is set when the slowest read exceeded the stall
	// tolerance.
	stallWarning string
}

// probe resolves the quorum disk path as the disk commands do, opens it,
// measures it and judges the result.
func (cmd *CheckCmd) probe(c *config.Cluster, log *slog.Logger) (*diskProbe, error) {
	_, path, err := (&diskTarget{Config: cmd.Config, Device: cmd.Device, Node: cmd.Node}).load()
	if err != nil {
		return nil, err
	}
	dev, err := openProbeDevice(path, 0, adminTimeout(c), log.With("component", "quorum-disk", "device", path))
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	log.Info("probing the quorum disk (reads only)", "device", path, "for", cmd.ProbeTime)
	samples, elapsed, err := probeReads(context.Background(), dev, cmd.ProbeTime, maxNodeID(c))
	var re *probeReadError
	if errors.As(err, &re) {
		// A disk that fails a read, or does not answer within the tools'
		// I/O timeout, holds no timing.
		return nil, &ExitError{Code: checkDiskTooSlow, Err: fmt.Errorf("probing quorum disk %s: %w; no timing holds on a disk that fails reads", path, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("probing quorum disk %s: %w", path, err)
	}
	p := judgeProbe(c.Derived(), samples)
	p.path, p.elapsed = path, elapsed
	return p, nil
}

func maxNodeID(c *config.Cluster) int {
	id := 0
	for _, n := range c.Nodes {
		id = max(id, n.ID)
	}
	return id
}

// probeReads measures, for about d, rounds of the reads a node's
// heartbeat round makes: the read-back of a slot, the read of the whole
// slot area in one I/O, and the read of the tie-break lock, each with
// O_DIRECT through dev (the daemon's I/O path). It never writes. It
// returns every read's latency. A read that fails ends the probe with its
// error: a disk that cannot answer within the tools' I/O timeout cannot
// hold any timing.
func probeReads(ctx context.Context, dev *diskhb.Device, d time.Duration, maxID int) ([]time.Duration, time.Duration, error) {
	ss := int64(dev.SectorSize())
	slots := max(diskhb.DefaultSlots, maxID)
	if need := (diskhb.SlotLBA + int64(slots)) * ss; dev.Size() < need {
		return nil, 0, fmt.Errorf("the device is %d bytes, smaller than the %d bytes a quorum disk of %d slots needs", dev.Size(), need, slots)
	}
	reads := []struct{ off, n int64 }{
		{diskhb.SlotLBA * ss, ss},                // one slot: the read-back
		{diskhb.SlotLBA * ss, int64(slots) * ss}, // the slot area
		{diskhb.LockLBA * ss, ss},                // the tie-break lock
	}
	var lat []time.Duration
	start := time.Now()
	for round := 0; time.Since(start) < d; round++ {
		for _, r := range reads {
			t0 := time.Now()
			if _, err := dev.Read(ctx, r.off, int(r.n)); err != nil {
				return nil, 0, &probeReadError{fmt.Errorf("read of %d bytes at offset %d failed after %v: %w", r.n, r.off, time.Since(t0).Round(time.Millisecond), err)}
			}
			lat = append(lat, time.Since(t0))
		}
		time.Sleep(probePace)
	}
	if len(lat) == 0 {
		return nil, 0, errors.New("no read completed")
	}
	return lat, time.Since(start), nil
}

// probeReadError is a read of the probe that failed.
type probeReadError struct{ err error }

func (e *probeReadError) Error() string { return e.err.Error() }
func (e *probeReadError) Unwrap() error { return e.err }

// judgeProbe compares measured read latencies with what the timing d
// rides out: the 99th percentile must be below DiskLatencyTolerance (a
// round of DiskIOsPerRound I/Os at that latency still completes the
// node's own slot write within SelfFenceAfter). The slowest read above
// DiskStallTolerance is a warning: one stall that long would self-fence.
func judgeProbe(d config.Derived, samples []time.Duration) *diskProbe {
	p := &diskProbe{lat: summarise(samples), d: d, holds: true}
	tol, stall := d.DiskLatencyTolerance(), d.DiskStallTolerance()
	if p.lat.p99 >= tol {
		p.holds = false
		// What would hold: SelfFenceAfter (failure_timeout) at least
		// (DiskIOsPerRound+1) x p99, io_timeout above p99, with margin
		// for what was not measured: twice the p99.
		need := 2 * p.lat.p99
		p.verdict = fmt.Sprintf("the quorum disk's 99th percentile read latency, %v over %d reads, is not below the %v per I/O this timing rides out: under such latency a node self-fences; use a timing with failure_timeout >= %v and io_timeout >= %v (rides out %v, twice the measured p99), such as the default timing (rides out %v), or find what slows the disk",
			roundMs(p.lat.p99), p.lat.n, roundMs(tol),
			roundUpMs(time.Duration(config.DiskIOsPerRound+1)*need), roundUpMs(need), roundMs(need),
			roundMs(config.DefaultTiming().Derive().DiskLatencyTolerance()))
	}
	if p.lat.max > stall {
		p.stallWarning = fmt.Sprintf("the slowest read took %v, more than the %v stall this timing rides out: one such stall at the wrong moment self-fences a node", roundMs(p.lat.max), roundMs(stall))
	}
	return p
}

// roundUpMs rounds up to a whole millisecond.
func roundUpMs(d time.Duration) time.Duration {
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return d
}

// lines explains the measurement for the text output.
func (p *diskProbe) lines() []string {
	l := p.lat
	out := []string{fmt.Sprintf("%d direct-I/O reads: p50 %v, p99 %v, max %v", l.n, roundMs(l.p50), roundMs(l.p99), roundMs(l.max))}
	if p.holds {
		out = append(out, fmt.Sprintf("the timing holds: p99 %v is below the %v per I/O it rides out", roundMs(l.p99), roundMs(p.d.DiskLatencyTolerance())))
	} else {
		out = append(out, "REFUSED: "+p.verdict)
	}
	if p.stallWarning != "" {
		out = append(out, "warning: "+p.stallWarning)
	}
	return out
}

// probeReport is the --json form of a probe.
type probeReport struct {
	Device           string `json:"device"`
	Elapsed          string `json:"elapsed"`
	Reads            int    `json:"reads"`
	P50              string `json:"p50"`
	P99              string `json:"p99"`
	Max              string `json:"max"`
	LatencyTolerance string `json:"latency_tolerance"`
	StallTolerance   string `json:"stall_tolerance"`
	Holds            bool   `json:"holds"`
	Verdict          string `json:"verdict,omitempty"`
	StallWarning     string `json:"stall_warning,omitempty"`
}

func (p *diskProbe) report() *probeReport {
	if p == nil {
		return nil
	}
	return &probeReport{
		Device: p.path, Elapsed: p.elapsed.String(), Reads: p.lat.n,
		P50: p.lat.p50.String(), P99: p.lat.p99.String(), Max: p.lat.max.String(),
		LatencyTolerance: p.d.DiskLatencyTolerance().String(), StallTolerance: p.d.DiskStallTolerance().String(),
		Holds: p.holds, Verdict: p.verdict, StallWarning: p.stallWarning,
	}
}
