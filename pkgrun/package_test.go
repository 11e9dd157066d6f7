package pkgrun

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
)

const initialState = `ip addr add 10.0.0.1/24 dev eth0
ip addr add fd00::1/64 dev eth0
vg vgorders systemid= tags= autoactivation=n data=inactive
vg vgtagged systemid= tags= autoactivation=n log=inactive
`

const runningState = `ip addr add 10.0.0.1/24 dev eth0
ip addr add 10.0.0.50/24 dev eth0
ip addr add fd00::1/64 dev eth0
ip addr add fd00::50/64 dev eth0
ip route add 192.168.7.0/24 via 10.0.0.254 table 100 metric 10
vg vgorders systemid=alpha tags= autoactivation=n data=active
vg vgtagged systemid= tags=alpha autoactivation=n log=active
mount -t ext4 /dev/vgorders/data /srv/orders flags=0x400 data=""
mount -t xfs /dev/vgtagged/log /srv/orders/log
proc ordersd --data /srv/orders
`

var startSteps = []string{
	"proof vgorders", "proof vgtagged", "activate vgorders", "activate vgtagged",
	"mount /srv/orders", "mount /srv/orders/log",
	"address 10.0.0.50/24", "address fd00::50/64", "route 192.168.7.0/24 via 10.0.0.254 table 100 metric 10",
	"announce 10.0.0.50", "announce fd00::50", "pre_start", "service db", "post_start",
}

var haltSteps = []string{
	"pre_stop", "stop service db", "remove route 192.168.7.0/24 via 10.0.0.254 table 100 metric 10",
	"remove address fd00::50/64", "remove address 10.0.0.50/24",
	"unmount /srv/orders/log", "unmount /srv/orders", "deactivate vgtagged", "deactivate vgorders", "post_stop",
}

func names(tl *Timeline, phase string) []string {
	var ns []string
	for _, s := range tl.Steps {
		if s.Phase == phase {
			ns = append(ns, s.Name)
		}
	}
	return ns
}

func TestStartHaltGolden(t *testing.T) {
	w := newWorld(t, testSpec())
	w.lvm.SetAutoActivation("vgorders", true)
	diff(t, "initial", w.render(), strings.Replace(initialState, "vgorders systemid= tags= autoactivation=n", "vgorders systemid= tags= autoactivation=y", 1))
	if err := w.pkg.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	diff(t, "after start", w.render(), runningState)
	if st, _ := w.pkg.State(); st != Running {
		t.Errorf("state %s, want running", st)
	}
	if got := names(w.pkg.LastStart(), "start"); !slices.Equal(got, startSteps) {
		t.Errorf("start timeline\n got %q\nwant %q", got, startSteps)
	}
	if n := w.net.Announced("10.0.0.50"); n != 1 {
		t.Errorf("10.0.0.50 announced %d times, want 1", n)
	}
	if n := w.net.Announced("fd00::50"); n != 1 {
		t.Errorf("fd00::50 announced %d times, want 1", n)
	}
	if err := w.pkg.Halt(context.Background()); err != nil {
		t.Fatal(err)
	}
	diff(t, "after halt", w.render(), initialState)
	if got := names(w.pkg.LastHalt(), "halt"); !slices.Equal(got, haltSteps) {
		t.Errorf("halt timeline\n got %q\nwant %q", got, haltSteps)
	}
	wantScripts := []string{"/etc/mtc/orders/pre_start", "/etc/mtc/orders/post_start", "/etc/mtc/orders/pre_stop", "/etc/mtc/orders/post_stop"}
	if !slices.Equal(w.scripts, wantScripts) {
		t.Errorf("scripts run %q, want %q", w.scripts, wantScripts)
	}
	for _, tl := range []*Timeline{w.pkg.LastStart(), w.pkg.LastHalt()} {
		for _, s := range tl.Steps {
			if s.Outcome != OK || s.End.Before(s.Start) {
				t.Errorf("%s step %s: outcome %s, %v..%v", tl.Kind, s.Name, s.Outcome, s.Start, s.End)
			}
		}
	}
}

// TestFailureAtEveryChange fails the k-th change the plan makes, for every
// k until a start makes no k-th change: each start must fail, roll back to
// the initial state exactly, and leave the package halted and startable.
func TestFailureAtEveryChange(t *testing.T) {
	clean := newWorld(t, testSpec())
	if err := clean.pkg.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	total := clean.nops()
	if total < len(startSteps) {
		t.Fatalf("a start made %d changes, fewer than its %d steps", total, len(startSteps))
	}
	failedSteps := map[string]bool{}
	for k := 1; k <= total; k++ {
		w := newWorld(t, testSpec())
		w.failAt = k
		err := w.pkg.Start(context.Background(), nil)
		if !errors.Is(err, errInjected) {
			t.Fatalf("k=%d: start error %v, want the injected failure", k, err)
		}
		if errors.Is(err, ErrNodeMustReset) {
			t.Fatalf("k=%d: a clean rollback reported %v", k, err)
		}
		tl := w.pkg.LastStart()
		failed := tl.Steps[len(names(tl, "start"))-1]
		failedSteps[failed.Name] = true
		if failed.Outcome != Error {
			t.Errorf("k=%d: failed step %s has outcome %s", k, failed.Name, failed.Outcome)
		}
		diff(t, "k="+itoa(k)+" after rollback of "+failed.Name+" (change "+w.opsSince(k - 1)[0]+")", w.render(), initialState)
		if st, _ := w.pkg.State(); st != Halted {
			t.Errorf("k=%d: state %s after rollback", k, st)
		}
		// The rollback undoes exactly the steps started, in reverse.
		var want []string
		started := names(tl, "start")
		for i := len(started) - 1; i >= 0; i-- {
			if u := undoOf(started[i]); u != "" {
				want = append(want, u)
			}
		}
		if got := names(tl, "rollback"); !slices.Equal(got, want) {
			t.Errorf("k=%d: rollback %q, want %q", k, got, want)
		}
		w.failAt = 0
		if err := w.pkg.Start(context.Background(), nil); err != nil {
			t.Fatalf("k=%d: start after rollback: %v", k, err)
		}
		diff(t, "k="+itoa(k)+" restart", w.render(), runningState)
	}
	// Every step that changes something was made to fail at least once.
	for _, s := range startSteps {
		if s == "proof vgorders" || s == "proof vgtagged" {
			continue // queries only
		}
		if !failedSteps[s] {
			t.Errorf("step %s never failed", s)
		}
	}
}

func undoOf(step string) string {
	for _, p := range []string{"activate ", "mount ", "address ", "route ", "service "} {
		if strings.HasPrefix(step, p) {
			return undoName(step)
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestReplayIsIdempotent starts twice and halts twice: the second run of
// each plan changes nothing (it only announces and runs the scripts again).
func TestReplayIsIdempotent(t *testing.T) {
	w := newWorld(t, testSpec())
	for _, phase := range []string{"start", "halt"} {
		run := w.pkg.Start
		if phase == "halt" {
			run = func(ctx context.Context, _ []fence.Proof, _ ...string) error { return w.pkg.Halt(ctx) }
		}
		if err := run(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		after := w.render()
		n := w.nops()
		vgchanges := len(w.lvm.Calls)
		if err := run(context.Background(), nil); err != nil {
			t.Fatalf("second %s: %v", phase, err)
		}
		diff(t, "second "+phase, w.render(), after)
		for _, op := range w.opsSince(n) {
			if !strings.HasPrefix(op, "arping -U") && !strings.HasPrefix(op, "ndisc6 -A") && !strings.HasPrefix(op, "exec /etc/mtc/") {
				t.Errorf("second %s changed something: %s", phase, op)
			}
		}
		for _, c := range w.lvm.Calls[vgchanges:] {
			if c[0] == "vgchange" {
				t.Errorf("second %s ran %q", phase, c)
			}
		}
	}
}

// TestRollbackFailureMeansReset fails a start late, and one undo step of
// its rollback: the package is HaltFailed, the error says the node must be
// reset, the other undo steps still ran, and a new start is refused.
func TestRollbackFailureMeansReset(t *testing.T) {
	w := newWorld(t, testSpec())
	w.failOp = "ip route del"
	w.procs.Behave = func(argv []string) service.Behavior {
		if argv[0] == "/etc/mtc/orders/post_start" {
			return service.Behavior{Exit: 3}
		}
		return service.Behavior{Run: !strings.HasPrefix(argv[0], "/etc/")}
	}
	err := w.pkg.Start(context.Background(), nil)
	if !errors.Is(err, ErrNodeMustReset) {
		t.Fatalf("start error %v, want ErrNodeMustReset", err)
	}
	var ee *service.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("start error %v does not carry the script's exit status 3", err)
	}
	if st, _ := w.pkg.State(); st != HaltFailed {
		t.Errorf("state %s, want halt failed", st)
	}
	// Everything but the route was released.
	want := `ip addr add 10.0.0.1/24 dev eth0
ip addr add fd00::1/64 dev eth0
ip route add 192.168.7.0/24 via 10.0.0.254 table 100 metric 10
vg vgorders systemid= tags= autoactivation=n data=inactive
vg vgtagged systemid= tags= autoactivation=n log=inactive
`
	diff(t, "after the failed rollback", w.render(), want)
	if err := w.pkg.Start(context.Background(), nil); !errors.Is(err, ErrNodeMustReset) {
		t.Errorf("start of a halt-failed package: %v, want ErrNodeMustReset", err)
	}
}

// TestBusyUnmountHalt: a process holding a file under the mount point is
// signalled and the halt completes; one that cannot be killed makes the
// halt fail with "node must be reset", and nothing is reported halted.
func TestBusyUnmountHalt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		proc      fsres.FakeProc
		wantReset bool
	}{
		{"TERM", fsres.FakeProc{PID: 900, Comm: "backup", Paths: []string{"/srv/orders/dump.sql"}}, false},
		{"KILL", fsres.FakeProc{PID: 901, Comm: "backup", Paths: []string{"/srv/orders/log/x"}, IgnoreTERM: true}, false},
		{"unkillable", fsres.FakeProc{PID: 902, Comm: "backup", Paths: []string{"/srv/orders"}, Unkillable: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, testSpec())
			if err := w.pkg.Start(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			p := tc.proc
			w.fs.AddProc(&p)
			err := w.pkg.Halt(context.Background())
			if !tc.wantReset {
				if err != nil {
					t.Fatal(err)
				}
				diff(t, "after halt", w.render(), initialState)
				if w.fs.Alive(p.PID) {
					t.Error("the holder is still alive")
				}
				return
			}
			if !errors.Is(err, ErrNodeMustReset) || !errors.Is(err, fsres.ErrStillBusy) {
				t.Fatalf("halt error %v, want ErrNodeMustReset and ErrStillBusy", err)
			}
			if !strings.Contains(err.Error(), "halt failed: node must be reset") || !strings.Contains(err.Error(), "902 (backup") {
				t.Errorf("halt error %q does not say what to do and who held it", err)
			}
			if st, _ := w.pkg.State(); st != HaltFailed {
				t.Errorf("state %s, want halt failed", st)
			}
			// The addresses are gone (they come before the unmount), the
			// VG under the busy filesystem could not be released.
			if strings.Contains(w.render(), "10.0.0.50") {
				t.Errorf("address still present:\n%s", w.render())
			}
			if !strings.Contains(w.render(), "mount -t ext4 /dev/vgorders/data /srv/orders") {
				t.Errorf("busy filesystem reported unmounted:\n%s", w.render())
			}
		})
	}
}

// A step that exceeds the package's run timeout is recorded as timed out
// and rolled back.
func TestRunTimeout(t *testing.T) {
	spec := testSpec()
	spec.RunTimeout = 100 * time.Millisecond
	spec.Scripts.PreStart.Timeout = 0 // only the package's bound applies
	w := newWorld(t, spec)
	w.procs.Behave = func(argv []string) service.Behavior {
		return service.Behavior{Run: argv[0] == "/etc/mtc/orders/pre_start"}
	}
	err := w.pkg.Start(context.Background(), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("start error %v, want a deadline", err)
	}
	tl := w.pkg.LastStart()
	last := tl.Steps[len(names(tl, "start"))-1]
	if last.Name != "pre_start" || last.Outcome != Timeout {
		t.Errorf("last start step %s %s, want pre_start timed out", last.Name, last.Outcome)
	}
	diff(t, "after rollback", w.render(), initialState)
	if w.procs.Live("/etc/mtc/orders/pre_start") != 0 {
		t.Error("the timed-out script still runs")
	}
}

// A script with its own timeout is killed at it.
func TestScriptTimeout(t *testing.T) {
	spec := testSpec()
	spec.Scripts.PostStart.Timeout = 20 * time.Millisecond
	w := newWorld(t, spec)
	w.procs.Behave = func(argv []string) service.Behavior {
		return service.Behavior{Run: argv[0] == "/etc/mtc/orders/post_start" || argv[0] == "ordersd"}
	}
	err := w.pkg.Start(context.Background(), nil)
	if !errors.Is(err, service.ErrTimeout) {
		t.Fatalf("start error %v, want the script timeout", err)
	}
	diff(t, "after rollback", w.render(), initialState)
}

// TestTakeover: a VG left owned by a fenced node is taken over only with a
// proof from fence.Fence for that node covering the VG's PV (not the zero
// Proof, not another node's); one owned by a live member is refused even
// with a proof; a foreign system ID is refused.
func TestTakeover(t *testing.T) {
	spec := testSpec()
	spec.VolumeGroups = spec.VolumeGroups[:1]
	spec.Filesystems = spec.Filesystems[:1]
	for _, tc := range []struct {
		owner  string
		proofs []fence.Proof
		want   error
		pv     string // the VG's PV, /dev/mapper/orders when empty
	}{
		{owner: "beta", want: lvm.ErrNoProof},
		{owner: "beta", proofs: []fence.Proof{{}}, want: lvm.ErrNoProof},
		{owner: "beta", proofs: []fence.Proof{proof(t, "gamma")}, want: lvm.ErrNoProof},
		{owner: "beta", proofs: []fence.Proof{proof(t, "beta")}},
		{owner: "beta", proofs: []fence.Proof{proof(t, "beta")}, pv: "/dev/mapper/other", want: lvm.ErrProofDoesNotCover},
		{owner: "gamma", proofs: []fence.Proof{proof(t, "gamma")}, want: lvm.ErrOwnedByLiveMember},
		{owner: "omega", proofs: []fence.Proof{proof(t, "beta")}, want: lvm.ErrForeignOwner},
		{owner: "alpha"},
	} {
		w := newWorld(t, spec)
		w.lvm.AddVG("vgorders", tc.owner, nil, "data")
		if tc.pv == "" {
			tc.pv = "/dev/mapper/orders"
		}
		w.lvm.SetPVs("vgorders", tc.pv)
		err := w.pkg.Start(context.Background(), tc.proofs)
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("owner %s proofs %v: %v, want %v", tc.owner, tc.proofs, err, tc.want)
			continue
		}
		got := w.lvm.Render()
		if tc.want != nil {
			if tl := w.pkg.LastStart(); tl.Steps[0].Name != "proof vgorders" || tl.Steps[0].Outcome != Error {
				t.Errorf("owner %s: refused at %s, want at the proof step", tc.owner, tl.Steps[0].Name)
			}
			if !strings.Contains(got, "systemid="+tc.owner+" ") || strings.Contains(got, "=active") {
				t.Errorf("owner %s: refused takeover changed the VG: %s", tc.owner, got)
			}
			continue
		}
		if !strings.Contains(got, "vg vgorders systemid=alpha tags= autoactivation=n data=active") {
			t.Errorf("owner %s: after takeover %s", tc.owner, got)
		}
	}
}

// A conflicting address is refused with the MAC that answered, and the
// steps before it are rolled back.
func TestAddressConflict(t *testing.T) {
	for _, tc := range []struct{ ip, mac string }{{"10.0.0.50", "02:00:00:00:00:99"}, {"fd00::50", "02:00:00:00:00:98"}} {
		w := newWorld(t, testSpec())
		w.net.SetOther(tc.ip, tc.mac)
		err := w.pkg.Start(context.Background(), nil)
		var ce *netres.ConflictError
		if !errors.As(err, &ce) || ce.Addr.String() != tc.ip {
			t.Fatalf("start error %v, want a conflict on %s", err, tc.ip)
		}
		if ce.Addr.Is4() && ce.HardwareAddr.String() != tc.mac {
			t.Errorf("conflict names %s, want %s", ce.HardwareAddr, tc.mac)
		}
		diff(t, "after conflict on "+tc.ip, w.render(), initialState)
	}
}

// A service that keeps crashing is restarted up to its limit, then the
// package is failed on this node; OnFailed can halt it right away.
func TestServiceRestartLimit(t *testing.T) {
	w := newWorld(t, testSpec())
	type result struct {
		reason  error
		state   State
		svc     service.Status
		haltErr error
	}
	done := make(chan result, 1)
	w.pkg.onFail = func(_ string, reason error) {
		st, _ := w.pkg.State()
		r := result{reason: reason, state: st, svc: w.sup.Status("db")}
		r.haltErr = w.pkg.Halt(context.Background())
		done <- r
	}
	if err := w.pkg.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	crashes := 0
	var r result
wait:
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case r = <-done:
			break wait
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not failed after %d crashes", crashes)
		}
		crashes += w.procs.Crash("ordersd", 1)
		time.Sleep(time.Millisecond)
	}
	if r.state != Failed || !strings.Contains(r.reason.Error(), "service failed after 2 restarts") {
		t.Errorf("state %s, reason %v; want failed after 2 restarts", r.state, r.reason)
	}
	if crashes != 3 {
		t.Errorf("%d crashes before failure, want 3 (the start and 2 restarts)", crashes)
	}
	if r.svc.State != service.Failed || r.svc.Restarts != 2 {
		t.Errorf("service status %+v", r.svc)
	}
	if r.haltErr != nil {
		t.Fatal(r.haltErr)
	}
	diff(t, "after halt", w.render(), initialState)
}

// TestHaltFailureAtEveryChange fails the j-th change of a halt, for every
// j: a failed script is logged and the halt goes on; any other failure
// makes the package HaltFailed with ErrNodeMustReset, and every other undo
// step still ran.
func TestHaltFailureAtEveryChange(t *testing.T) {
	probe := newWorld(t, testSpec())
	if err := probe.pkg.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	n0 := probe.nops()
	if err := probe.pkg.Halt(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := probe.nops() - n0
	for j := 1; j <= total; j++ {
		w := newWorld(t, testSpec())
		if err := w.pkg.Start(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		w.failAt = w.nops() + j
		err := w.pkg.Halt(context.Background())
		op := w.opsSince(w.failAt - 1)[0]
		tl := w.pkg.LastHalt()
		if got := names(tl, "halt"); !slices.Equal(got, haltSteps) {
			t.Errorf("j=%d (%s): halt ran %q, want every step", j, op, got)
		}
		if strings.HasPrefix(op, "exec /etc/mtc/") {
			if err != nil {
				t.Errorf("j=%d: a failed halt script failed the halt: %v", j, err)
			}
			diff(t, "j="+itoa(j), w.render(), initialState)
			continue
		}
		if !errors.Is(err, ErrNodeMustReset) || !errors.Is(err, errInjected) {
			t.Errorf("j=%d (%s): halt error %v, want ErrNodeMustReset", j, op, err)
		}
		if st, _ := w.pkg.State(); st != HaltFailed {
			t.Errorf("j=%d (%s): state %s", j, op, st)
		}
	}
}

// A lost link on a package interface fails the running package, once, and
// tells the layer above; a link lost while halted does nothing.
func TestLinkLossFailsPackage(t *testing.T) {
	spec := testSpec()
	w := newWorld(t, spec)
	reasons := make(chan error, 4)
	w.pkg.onFail = func(_ string, err error) { reasons <- err }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.pkg.WatchLinks(ctx, w.net, []string{"eth0"}); err != nil {
		t.Fatal(err)
	}
	w.net.SetLinkUp("eth0", false) // halted: nothing to fail
	w.net.SetLinkUp("eth0", true)
	if err := w.pkg.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the watcher handle the old events
	if st, why := w.pkg.State(); st != Running {
		t.Fatalf("a link lost and recovered before the start failed the package: %s (%s)", st, why)
	}
	w.net.SetLinkUp("eth0", false)
	select {
	case err := <-reasons:
		if !errors.Is(err, ErrLinkLost) || !strings.Contains(err.Error(), "eth0 down") {
			t.Errorf("reason %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the package was not failed")
	}
	if st, why := w.pkg.State(); st != Failed || !strings.Contains(why, "eth0 down") {
		t.Errorf("state %s (%s)", st, why)
	}
	w.net.RemoveLink("eth0")
	time.Sleep(10 * time.Millisecond)
	select {
	case err := <-reasons:
		t.Errorf("failed twice: %v", err)
	default:
	}
}
