package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/internal/benchdoc"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// EnvFenceTrials sets the trials per setting and case of
// TestFenceLatency (the guest's init passes LAB_FENCE_TRIALS).
const EnvFenceTrials = "MTC_LAB_FENCE_TRIALS"

// noopParam is the open-iscsi setting under test: after this many seconds
// without receiving anything on a connection the initiator sends a
// NOP-Out, which also acknowledges every status it has received.
const noopParam = "node.conn[0].timeo.noop_out_interval"

// latencyCase is what the victim does while it is fenced.
type latencyCase struct {
	name    string
	writers int // O_DIRECT writers on the victim's path, each stopping at its first error
	// slow delays every I/O of the storage behind the target (dm-delay
	// under LIO's backstore), so the victim's writes are in flight
	// inside the target when the preempt arrives.
	slow time.Duration
}

var latencyCases = []latencyCase{
	{"idle", 0, 0},
	{"1 writer", 1, 0},
	{"8 writers", 8, 0},
	{"1 writer, storage behind the target +200ms", 1, 200 * time.Millisecond},
	{"8 writers, storage behind the target +200ms", 8, 200 * time.Millisecond},
}

// silentCase is the victim's I/O in the silent-victim trial: a write
// surely in flight inside the target when the preempt arrives.
var silentCase = latencyCase{"1 writer, storage behind the target +200ms", 1, 200 * time.Millisecond}

// TestFenceLatency measures one PREEMPT AND ABORT on one LUN (data2):
// node2 preempts node3, which holds the type-5 reservation, while node3
// is idle or has one or eight O_DIRECT writers in flight, with the
// storage behind the target as it is or slowed by 200 ms (so the writes
// are in flight inside the target). Each in-flight writer must fail with
// EBADE. An ordinary lab run tries each case once; a measurement run
// (LAB_FENCE_TRIALS=N) repeats each N times for several
// noop_out_interval settings of node3's initiator (applied by logging it
// out and in again), and once more with node3's connection silent (its
// packets to the target dropped: a node that hangs with a write in
// flight, or loses its network to the storage), then writes
// a fence-latency section of BENCHMARKS.md to the results share. Times
// are logged, never asserted.
//
// LIO completes a PREEMPT AND ABORT only after every aborted command of
// the victim has finished in the backstore and been released, and its
// iSCSI target releases a command once the initiator acknowledges the
// command's status. A live Linux initiator retries a TASK ABORTED command
// at once, which acknowledges it; a silent one never does (see
// test/lab/README.md, "Fence latency").
func TestFenceLatency(t *testing.T) {
	san, _ := lab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	trials := 1
	measure := os.Getenv(EnvFenceTrials) != ""
	if s := os.Getenv(EnvFenceTrials); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a whole number of trials, at least 1", EnvFenceTrials, s)
		}
		trials = n
	}
	const victim, fencer, lun = "node3", "node2", "data2"
	cleanLUNs(t, ctx, lun)

	orig, err := labkit.ISCSINodeParam(ctx, victim, noopParam)
	if err != nil {
		t.Fatal(err)
	}
	// relogin applies node3's record: a new session, new SCSI devices;
	// node3's dm path to the quorum LUN follows it.
	relogin := func(ctx context.Context) (*labkit.SAN, error) {
		if err := labkit.ISCSILogout(ctx, victim); err != nil {
			return nil, err
		}
		if _, err := labkit.WaitPaths(ctx, "/sys", victim, 0); err != nil {
			return nil, err
		}
		s, err := labkit.ISCSILogin(ctx, "/sys", victim)
		if err != nil {
			return nil, err
		}
		under, err := s.Dev(victim, "quorum")
		if err != nil {
			return nil, err
		}
		p, err := labkit.OpenDMPath(ctx, labkit.DMName(victim, "quorum"), under)
		if err == nil {
			err = p.Restore(ctx)
		}
		return s, err
	}
	changed := false
	t.Cleanup(func() {
		if !changed {
			return
		}
		ctx := context.Background()
		if err := labkit.ISCSISetNodeParam(ctx, victim, noopParam, orig); err != nil {
			t.Errorf("restore %s's %s = %s: %v", victim, noopParam, orig, err)
			return
		}
		if _, err := relogin(ctx); err != nil {
			t.Errorf("log %s in again with %s = %s: %v", victim, noopParam, orig, err)
		}
	})

	// An ordinary lab run tries every case once with the initiator as
	// configured; a measurement run (LAB_FENCE_TRIALS set) sweeps the
	// settings and writes the benchmark section.
	settings := []string{orig}
	for _, s := range []string{"2", "10"} {
		if measure && s != orig {
			settings = append(settings, s)
		}
	}
	var rows []string
	silentNote := ""
	for _, setting := range settings {
		if setting != orig || changed {
			if err := labkit.ISCSISetNodeParam(ctx, victim, noopParam, setting); err != nil {
				t.Fatal(err)
			}
			changed = true
			s, err := relogin(ctx)
			if err != nil {
				t.Fatalf("log %s in again with %s = %s: %v", victim, noopParam, setting, err)
			}
			san = s
		}
		recv, err := labkit.ISCSIConnAttr("/sys", victim, "recv_tmo")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s logged in with %s = %s (its connection's recv_tmo: %s)", victim, noopParam, setting, recv)
		for _, c := range latencyCases {
			var took, failed []time.Duration
			for i := 0; i < trials; i++ {
				p, w := fenceTrial(t, ctx, dev(t, san, victim, lun), dev(t, san, fencer, lun), c)
				t.Logf("%s = %s, %s, trial %d: PREEMPT AND ABORT took %v; writers failed %v after it began", noopParam, setting, c.name, i, p.Round(time.Millisecond), w)
				took = append(took, p)
				failed = append(failed, w...)
			}
			wf := "–"
			if len(failed) > 0 {
				wf = stats(failed)
			}
			rows = append(rows, fmt.Sprintf("| %s s | %s | %d | %s | %s |", setting, c.name, trials, stats(took), wf))
		}
		if measure && setting == orig {
			_, _, r := preemptTrial(t, ctx, dev(t, san, victim, lun), dev(t, san, fencer, lun), silentCase, true)
			silentNote = fmt.Sprintf("With node3's connection silent (its packets to the target dropped from just before the preempt, as from a node that hangs with a write in flight or loses its network to the storage; new connections pass; %s, all initiators at %s = %s), one trial: the PREEMPT AND ABORT returned after %v (%s); node2's READ KEYS first showed node3's key gone %v after the preempt began%s.",
				silentCase.name, noopParam, orig, r.preempt.Round(time.Millisecond), errText(r.preemptErr), r.verified.Round(time.Millisecond), errSuffix(r.verifyErr))
		}
	}

	body := fmt.Sprintf(`## Fencing: PREEMPT AND ABORT latency per LUN, in the QEMU lab

One PREEMPT AND ABORT on one LUN of the lab's LIO iSCSI target (Debian 6.1 kernel, fileio backstore, target and initiators in one software-emulated guest): node2 preempts node3, which holds the type-5 reservation, while node3 is idle or has O_DIRECT writers in flight, each of which stops at its first error (as a service does when its storage refuses it). node3's initiator (the victim's) is logged in with each noop_out_interval in turn. Times are min / median / max over the trials, on the guest's clock. Measured %s with:

    LAB_RUN=TestFenceLatency LAB_FENCE_TRIALS=%d make lab-test

| victim's %s | victim's I/O | trials | PREEMPT AND ABORT took | writers' EBADE after the preempt began |
|---|---|---|---|---|
%s

%s

See test/lab/README.md ("Fence latency") for what this depends on.
`, time.Now().Format("2006-01-02"), trials, noopParam, strings.Join(rows, "\n"), silentNote)
	t.Log("\n" + body)
	if _, err := os.Stat("/host/results"); err == nil && measure {
		if err := benchdoc.ReplaceSection("/host/results/BENCHMARKS.md", "fence-latency", body); err != nil {
			t.Error(err)
		}
	}
}

// fenceTrial: on a clean LUN victimDev's nexus (key 0x3) registers and
// reserves type 5, fencerDev's (key 0x2) registers; c's O_DIRECT writers
// start on victimDev (with the storage behind the target slowed by
// c.slow); the fencer preempts and aborts the victim.
// It returns how long the PREEMPT AND ABORT took and when each writer
// failed (from the moment the preempt was sent); each must fail with
// EBADE.
func fenceTrial(t *testing.T, ctx context.Context, victimDev, fencerDev string, c latencyCase) (time.Duration, []time.Duration) {
	t.Helper()
	took, failed, _ := preemptTrial(t, ctx, victimDev, fencerDev, c, false)
	return took, failed
}

// silentResult is what a trial with a silent victim saw.
type silentResult struct {
	preempt    time.Duration // until the PREEMPT AND ABORT returned
	preemptErr error         // how it returned
	verified   time.Duration // until the fencer's READ KEYS showed the victim's key gone
	verifyErr  error         // why that never happened, if it did not
}

// preemptTrial is fenceTrial; with silent, the packets of the victim's
// connection to the target are dropped (labkit.ISCSISilence) from just
// before the preempt until the fencer's READ KEYS shows the victim's key
// gone (or 3 minutes passed), as from a node that hangs with its writes
// in flight, or whose network to the storage is cut. The PREEMPT AND
// ABORT may then fail: its outcome and the time to a verified fence are
// returned, and the writers are not waited for.
func preemptTrial(t *testing.T, ctx context.Context, victimDev, fencerDev string, c latencyCase, silent bool) (time.Duration, []time.Duration, silentResult) {
	t.Helper()
	const kv, kf = 0x3, 0x2
	cleanLUN(t, ctx, "data2")
	open := func(d string) *scsi.Device {
		sg, err := scsi.OpenSG(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sg.Close() })
		// Longer than a preempt can block on a silent victim: the
		// fencer's own connection is reset first.
		return &scsi.Device{T: sg, Timeout: 2 * time.Minute}
	}
	v, f := open(victimDev), open(fencerDev)
	for _, step := range []struct {
		d    *scsi.Device
		what string
		a    scsi.OutAction
		p    scsi.OutParams
	}{
		{v, "victim registers", scsi.RegisterAndIgnoreExisting, scsi.OutParams{ServiceKey: kv}},
		{f, "fencer registers", scsi.RegisterAndIgnoreExisting, scsi.OutParams{ServiceKey: kf}},
		{v, "victim reserves", scsi.Reserve, scsi.OutParams{Key: kv}},
	} {
		if err := step.d.Out(ctx, step.a, scsi.WriteExclusiveRegistrantsOnly, step.p); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
	}
	if err := f.TestUnitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if c.slow > 0 {
		back, err := labkit.TargetDM(ctx, "/sys", "data2")
		if err != nil {
			t.Fatal(err)
		}
		if err := back.Delay(ctx, c.slow); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := back.Restore(context.Background()); err != nil {
				t.Errorf("restore the storage behind the target: %v", err)
			}
		}()
	}
	var ws []*labkit.DirectWriter
	defer func() {
		for _, w := range ws {
			w.Stop()
		}
	}()
	for i := 0; i < c.writers; i++ {
		w, err := labkit.StartDirectWriter(ctx, victimDev, int64(16+i))
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		if !waitFor(ctx, func() bool { return w.Writes() >= 3 }) {
			t.Fatalf("victim's writer made %d writes: %v", w.Writes(), w.Stop())
		}
	}
	if silent {
		for _, n := range []string{"node1", "node2", "node3"} {
			p, err := labkit.ISCSIConnAttr("/sys", n, "local_port")
			t.Logf("%s's connection to the target: local port %s %v", n, p, err)
		}
		undo, err := labkit.ISCSISilence(ctx, "/sys", "node3")
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctx := context.Background()
			if err := undo(ctx); err != nil {
				t.Errorf("end node3's silence: %v", err)
			}
			t0 := time.Now()
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			if err := labkit.ISCSIWaitLoggedIn(wctx, "/sys", "node3"); err != nil {
				t.Errorf("node3's session after its silence: %v", err)
			}
			t.Logf("node3's session logged in again %v after its silence ended", time.Since(t0).Round(time.Millisecond))
		}()
	}
	t0 := time.Now()
	err := f.Out(ctx, scsi.PreemptAndAbort, scsi.WriteExclusiveRegistrantsOnly, scsi.OutParams{Key: kf, ServiceKey: kv})
	took := time.Since(t0)
	if silent {
		r := silentResult{preempt: took, preemptErr: err}
		t.Logf("victim silent: PREEMPT AND ABORT returned after %v: %v", took.Round(time.Millisecond), err)
		// What a fencer does next: read the keys until it can verify.
		vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		for {
			rd := &scsi.Device{T: f.T, Timeout: 5 * time.Second}
			k, err := rd.ReadKeys(vctx)
			if err == nil && !slices.Contains(k.Keys, kv) {
				r.verified = time.Since(t0)
				break
			}
			if vctx.Err() != nil {
				r.verifyErr = fmt.Errorf("no READ KEYS without the victim's key in 3m (last: keys %#x, %v)", k.Keys, err)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("victim silent: fence verified %v after the preempt began (%v)", r.verified.Round(time.Millisecond), r.verifyErr)
		return took, nil, r
	}
	if err != nil {
		t.Fatalf("PREEMPT AND ABORT after %v: %v", took, err)
	}
	var failed []time.Duration
	for _, w := range ws {
		select {
		case <-w.Done():
		case <-ctx.Done():
			t.Fatalf("victim's writer still running after the preempt (%d writes)", w.Writes())
		}
		failed = append(failed, w.Ended().Sub(t0))
		if err := w.Stop(); !errors.Is(err, syscall.EBADE) {
			t.Errorf("victim's in-flight writer ended with %v; want EBADE", err)
		}
	}
	return took, failed, silentResult{}
}

func errText(err error) string {
	if err == nil {
		return "good status"
	}
	return err.Error()
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; " + err.Error()
}

// stats is "min / median / max" of ds.
func stats(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("%s / %s / %s", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
