// Fencing: this node's registration on every shared LUN at start, the
// fencing of departed peers the membership machine asks for, and the
// checks of this node's own registration it asks for.

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
)

// FenceLUN is one LUN the daemon fences, as given in Options.FenceLUNs:
// an opened LUN, or the reason it has no persistent reservations.
type FenceLUN struct {
	Name string
	// LUN is the opened LUN; nil when it cannot fence (NoPR says why).
	LUN  *fence.LUN
	NoPR string
}

// fencing is the daemon's fencing state. Everything but the worker's
// channels belongs to the event loop.
type fencing struct {
	f *fence.Fencer
	// luns are the LUNs this node is registered on (PR works);
	// none are those without PR support, with the reason.
	luns []*fence.LUN
	none []FenceLUN
	// cmdTimeout bounds every PR command; attempt one fence of one victim.
	cmdTimeout, attempt time.Duration
	req                 chan fenceJob
	out                 chan fenceResult
	// creq carries the registration checks the machine asks for to their
	// worker (checkLoop), one at a time; checkDeadline bounds one.
	creq          chan quorum.RegistrationCheck
	checkDeadline time.Duration
	// partialLogged: a LUN on which a check found fewer registrations of
	// our key than paths was logged (until a check finds them all).
	partialLogged map[string]bool
	// checked, checkedAt: the last check's outcome, for the status
	// (under Daemon.mu).
	checked   string
	checkedAt time.Time
	// noneLogged: the watchdog fallback was logged for this victim's
	// incarnation.
	noneLogged map[quorum.Target]bool
	// seq numbers the machine's fence jobs (event loop). The worker skips
	// a job of a target whose withdrawal came after it was queued:
	// withdrawn[t] is the last seq queued for t when the machine
	// withdrew it (quorum.Ready.WithdrawFence). Under wmu: the worker
	// reads and prunes it.
	seq       uint64
	wmu       sync.Mutex
	withdrawn map[quorum.Target]uint64
}

// skipWithdrawn reports whether the worker must drop j, withdrawn since it
// was queued, and forgets withdrawals no queued job can match any more.
func (fz *fencing) skipWithdrawn(j fenceJob) bool {
	if j.rejoin || j.forRunner || j.seq == 0 {
		return false
	}
	fz.wmu.Lock()
	defer fz.wmu.Unlock()
	skip := j.seq <= fz.withdrawn[j.t]
	for t, upTo := range fz.withdrawn {
		// Jobs are dequeued in seq order: none queued before j is left.
		if upTo <= j.seq {
			delete(fz.withdrawn, t)
		}
	}
	return skip
}

// fenceJob is one fence of t, or (rejoin) a re-registration of this node.
type fenceJob struct {
	t      quorum.Target
	seq    uint64 // the machine's fences (fencing.seq); 0 for the others
	rejoin bool
	// forRunner: a fence made for a fencing proof the package runner
	// needs (a takeover the coordinator's fence allowed), not for the
	// machine.
	forRunner bool
}

type fenceResult struct {
	t         quorum.Target
	rejoin    bool
	forRunner bool
	proof     fence.Proof
	err       error
	took      time.Duration
	// check: a registration check (checkLoop): op, and regs per LUN
	// unless err says why the check as a whole failed.
	check bool
	op    uint64
	regs  fence.Registrations
}

// fenceTimeouts are the fencing deadlines (quorum.FenceTimeouts).
func (d *Daemon) fenceTimeouts() (cmd, attempt time.Duration) {
	return quorum.FenceTimeouts(d.timing)
}

// fencesQuorumDisk: the quorum disk is one of the LUNs with persistent
// reservations this node fences, so a verified fence of a peer cut it off
// the tie-break lock as well (quorum.Config.FenceArbiter). A Fenced is fed
// only for a proof covering every fenced LUN, so a quorum disk that turns
// out at registration to have no PR support only means that no Fenced
// comes, and the tie-break lock decides.
func (fz *fencing) fencesQuorumDisk(path string) bool {
	for _, l := range fz.luns {
		if l.Name == path {
			return true
		}
	}
	return false
}

// openFenceLUNs opens every LUN this node fences (config.FenceLUNs: the
// quorum disk first, then the data LUNs). A LUN whose device takes neither
// SCSI commands nor the block layer's PR ioctls (a regular file, a device
// without PR support) is listed as such; any other failure to open is an
// error: a configured LUN must exist.
func openFenceLUNs(names []string) ([]FenceLUN, error) {
	var out []FenceLUN
	for _, name := range names {
		if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() {
			out = append(out, FenceLUN{Name: name, NoPR: "a regular file has no persistent reservations"})
			continue
		}
		l, err := fence.OpenLUN(name, "")
		switch {
		case errors.Is(err, fence.ErrNotSupported):
			out = append(out, FenceLUN{Name: name, NoPR: err.Error()})
		case err != nil:
			closeFenceLUNs(out)
			return nil, fmt.Errorf("fenced LUN %s: %w (check [fence] luns, the node's fence_luns and quorum_disk)", name, err)
		default:
			out = append(out, FenceLUN{Name: name, LUN: l})
		}
	}
	return out, nil
}

func closeFenceLUNs(ls []FenceLUN) {
	for _, l := range ls {
		if l.LUN != nil {
			_ = l.LUN.Close()
		}
	}
}

// newFencing sets up fencing over the given LUNs; it issues no command.
func (d *Daemon) newFencing(luns []FenceLUN) *fencing {
	t := scsi.Type(d.cl.Fence.ReservationType)
	if t == 0 {
		t = fence.DefaultType
	}
	cmd, attempt := d.fenceTimeouts()
	_, checkDeadline := quorum.RegistrationTimeouts(d.timing)
	fz := &fencing{
		f: &fence.Fencer{
			Cluster: d.cl.UUID, Self: quorum.NodeID(d.self.ID), Type: t, APTPL: d.cl.Fence.APTPL,
			Log: d.log.With("component", "fence"),
		},
		cmdTimeout: cmd, attempt: attempt,
		req:        make(chan fenceJob, quorum.MaxNodes),
		out:        make(chan fenceResult, quorum.MaxNodes),
		noneLogged: make(map[quorum.Target]bool),

		creq: make(chan quorum.RegistrationCheck, 1), checkDeadline: checkDeadline,
		partialLogged: make(map[string]bool),
	}
	for _, l := range luns {
		if l.LUN == nil {
			fz.none = append(fz.none, l)
			continue
		}
		fz.luns = append(fz.luns, timedLUN(l.LUN, cmd))
	}
	return fz
}

// unfence registers this node on every LUN that supports persistent
// reservations before it joins: per LUN, TEST UNIT READY, registrations
// of our key left by an earlier session removed, REGISTER AND IGNORE
// EXISTING KEY on every path, RESERVE when nothing is held, read back and
// verified (fence.Fencer.Rejoin). A LUN that turns out to have no PR
// support joins the ones without. If any LUN that supports PR cannot be
// unfenced, the node refuses to start: it could not fence, and a peer's
// fence could not cut it off. Only when no LUN supports PR does it run
// without fencing, and its takeovers wait for the watchdog deadline.
func (d *Daemon) unfence(ctx context.Context) error {
	fz := d.fence
	var ok []*fence.LUN
	var failed []string
	var errs []error
	none := slices.Clone(fz.none)
	for _, l := range fz.luns {
		err := d.rejoinAtStart(ctx, l)
		switch {
		case err == nil:
			ok = append(ok, l)
			d.log.Info("registered on the LUN for fencing", "lun", l.Name, "paths", len(l.Paths),
				"key", fence.NodeKey(d.cl.UUID, quorum.NodeID(d.self.ID)), "reservation", fz.f.Type.String())
		case errors.Is(err, fence.ErrNotSupported):
			none = append(none, FenceLUN{Name: l.Name, LUN: l, NoPR: err.Error()})
		default:
			failed = append(failed, l.Name)
			errs = append(errs, err)
		}
	}
	// The status may read these from another goroutine before the loop runs.
	d.mu.Lock()
	fz.luns, fz.none = ok, none
	d.mu.Unlock()
	if len(failed) > 0 {
		return fmt.Errorf("cannot register for fencing on %s: %w (see `mtc fence status --device %s`; a node that cannot be fenced must not join)",
			strings.Join(failed, ", "), errors.Join(errs...), failed[0])
	}
	for _, l := range fz.none {
		d.log.Warn("LUN without persistent reservations: it cannot be fenced, and a departed peer's packages wait for its watchdog deadline",
			"lun", l.Name, "why", l.NoPR, "takeover_after", d.timing.TakeoverAfter)
	}
	if len(fz.luns) == 0 {
		d.log.Warn("no LUN supports persistent reservations: this node runs without fencing; takeovers wait for the watchdog deadline",
			"takeover_after", d.timing.TakeoverAfter)
	}
	return nil
}

// rejoinAtStart registers on l, trying again after a failure that may
// pass (fence.StartupRetry) instead of exiting for the service manager to
// start the daemon again: a path that blinks at start-up costs seconds,
// not a restart.
func (d *Daemon) rejoinAtStart(ctx context.Context, l *fence.LUN) error {
	for attempt := 1; ; attempt++ {
		err := d.fence.f.Rejoin(ctx, []*fence.LUN{l})
		delay, again := fence.StartupRetry(err, attempt, d.timing.HeartbeatInterval)
		if !again || ctx.Err() != nil {
			return err
		}
		d.log.Warn("registration for fencing failed; trying again", "lun", l.Name, "attempt", attempt,
			"of", fence.StartupAttempts, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// fenceLoop runs fence requests one at a time: two fences from one node
// never overlap on a LUN. The registration checks run beside it
// (checkLoop): PR IN only, they never wait behind a fence.
func (d *Daemon) fenceLoop(ctx context.Context) {
	fz := d.fence
	checks := make(chan struct{})
	go func() { defer close(checks); d.checkLoop(ctx) }()
	defer func() { <-checks }()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-fz.req:
			if fz.skipWithdrawn(j) {
				d.log.Info("withdrawn fence request dropped before it began", "peer", d.names[j.t.Node], "incarnation", fmt.Sprintf("%016x", uint64(j.t.Inc)))
				continue
			}
			actx, cancel := context.WithTimeout(ctx, fz.attempt)
			start := time.Now()
			var proof fence.Proof
			var err error
			if j.rejoin {
				err = fz.f.Rejoin(actx, fz.luns)
			} else {
				proof, err = fz.f.Fence(actx, j.t.Node, j.t.Inc, fz.luns)
			}
			cancel()
			select {
			case fz.out <- fenceResult{t: j.t, rejoin: j.rejoin, forRunner: j.forRunner, proof: proof, err: err, took: time.Since(start)}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// requestFence starts fencing t on the worker, or explains why no Fenced
// will come (no LUN with PR support: the watchdog deadline applies).
func (d *Daemon) requestFence(t quorum.Target) {
	fz := d.fence
	name := d.names[t.Node]
	if len(fz.luns) == 0 {
		if !fz.noneLogged[t] {
			fz.noneLogged[t] = true
			d.log.Warn("fencing requested, but no LUN supports persistent reservations: the peer's packages wait until its watchdog has certainly fired",
				"peer", name, "incarnation", fmt.Sprintf("%016x", uint64(t.Inc)), "takeover_after", d.timing.TakeoverAfter)
		}
		return
	}
	// The machine staggers a two-node cluster's fences
	// (quorum.FenceStagger): a request is run at once.
	d.log.Warn("fencing peer: removing its key from every LUN", "peer", name, "incarnation", fmt.Sprintf("%016x", uint64(t.Inc)),
		"luns", len(fz.luns), "command_timeout", fz.cmdTimeout)
	fz.seq++
	select {
	case fz.req <- fenceJob{t: t, seq: fz.seq}:
	default:
		d.local = append(d.local, quorum.FenceFailed{Node: t.Node, Inc: t.Inc, Err: "fence queue full"})
	}
}

// WithdrawFence takes back the machine's fence requests of t queued so far
// (quorum.Ready.WithdrawFence): the worker drops those it has not begun;
// one under way runs to its end and reports as usual.
func (e *effects) WithdrawFence(t quorum.Target) {
	d := (*Daemon)(e)
	fz := d.fence
	if fz == nil || len(fz.luns) == 0 {
		return
	}
	fz.wmu.Lock()
	if fz.withdrawn == nil {
		fz.withdrawn = map[quorum.Target]uint64{}
	}
	fz.withdrawn[t] = fz.seq
	fz.wmu.Unlock()
	d.log.Info("fence request withdrawn: the peer is a member again, or restarted", "peer", d.names[t.Node], "incarnation", fmt.Sprintf("%016x", uint64(t.Inc)))
}

// Rejoin runs the re-registration the machine asks for (quorum.Ready.Rejoin:
// a peer's fence removed this node's key before this incarnation held
// quorum, after the start-up stop of everything earlier incarnations left
// running; see the quorum package documentation, Re-registration after a
// fence) on the fence worker, so that it never overlaps a fence of this
// node's on a LUN: fence.Fencer.Rejoin on every LUN with persistent
// reservations, as at start, within one fence attempt's deadline. Its
// outcome is fed back as quorum.Rejoined.
func (e *effects) Rejoin() {
	d := (*Daemon)(e)
	fz := d.fence
	if len(fz.luns) == 0 {
		d.local = append(d.local, quorum.Rejoined{Err: "no LUN with persistent reservations to register on"})
		return
	}
	d.log.Warn("fenced before this node held quorum: registering its key again on every LUN",
		"luns", len(fz.luns), "attempt", d.drv.Node.Status().Rejoins, "of", quorum.MaxRejoins)
	select {
	case fz.req <- fenceJob{t: quorum.Target{Node: quorum.NodeID(d.self.ID)}, rejoin: true}:
	default:
		d.local = append(d.local, quorum.Rejoined{Err: "fence queue full"})
	}
}

// rejoinDone feeds a re-registration's outcome to the machine.
func (d *Daemon) rejoinDone(r fenceResult) {
	if r.err != nil {
		d.log.Error("re-registration for fencing failed", "err", r.err, "took", r.took)
		d.step(quorum.Rejoined{Err: r.err.Error()})
		return
	}
	d.log.Warn("registered for fencing again: this node's key is verified on every LUN", "luns", len(d.fence.luns), "took", r.took)
	d.step(quorum.Rejoined{})
}

// fenceDone feeds a fence's outcome to the machine: Fenced only for a
// verified proof covering every fenced LUN, FenceFailed with the error
// otherwise (fail closed: no takeover until a retry succeeds or the
// watchdog deadline passes). A fence that finds our own key gone means a
// peer fenced this node first: it stops at once.
func (d *Daemon) fenceDone(r fenceResult) {
	if r.check {
		d.checkDone(r)
		return
	}
	if r.rejoin {
		d.rejoinDone(r)
		return
	}
	if r.forRunner {
		d.runnerProofDone(r)
		return
	}
	fz := d.fence
	name := d.names[r.t.Node]
	inc := fmt.Sprintf("%016x", uint64(r.t.Inc))
	switch {
	case r.err == nil && r.proof.Valid():
		if d.pl != nil {
			// For the package runner: a volume group is taken over
			// only with a proof covering its PVs.
			d.pl.proofs[r.t] = r.proof
		}
		d.mu.Lock()
		d.st.fenced = appendRing(d.st.fenced, EventRecord{At: d.clock(), Time: time.Now().Round(time.Microsecond), Peer: name, Incarnation: inc, Reason: strings.Join(r.proof.LUNs(), ", ")})
		d.mu.Unlock()
		if len(fz.none) > 0 {
			if !fz.noneLogged[r.t] {
				fz.noneLogged[r.t] = true
				d.log.Warn("peer fenced on every LUN with persistent reservations, but not on the LUNs without: its packages wait until its watchdog has certainly fired",
					"peer", name, "incarnation", inc, "fenced", r.proof.LUNs(), "not_fenced", fenceNames(fz.none), "took", r.took)
			}
			return
		}
		d.log.Warn("peer fenced: its key is verified gone from every LUN", "peer", name, "incarnation", inc, "luns", r.proof.LUNs(), "took", r.took)

		d.step(quorum.Fenced{Node: r.t.Node, Inc: r.t.Inc})
	case errors.Is(r.err, fence.ErrSelfFenced):
		d.log.Error("SELF-FENCE: our own key was preempted while fencing a peer: this node lost the fence race and stops at once",
			"peer", name, "incarnation", inc, "err", r.err)
		d.step(quorum.FenceFailed{Node: r.t.Node, Inc: r.t.Inc, Err: r.err.Error(), SelfFenced: true})
		d.fatal = fmt.Errorf("fenced by a peer while fencing %s: %w", name, r.err)
	default:
		if r.err == nil {
			r.err = errors.New("fence returned no proof")
		}
		d.log.Error("fencing failed: no takeover of the peer's packages until it succeeds or its watchdog has certainly fired; retried with backoff",
			"peer", name, "incarnation", inc, "err", r.err, "took", r.took)
		d.step(quorum.FenceFailed{Node: r.t.Node, Inc: r.t.Inc, Err: r.err.Error()})
	}
}

func fenceNames(ls []FenceLUN) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

// fenceStatus is the fencing part of the status.
func (d *Daemon) fenceStatus() FenceStatus {
	fz := d.fence
	var s FenceStatus
	for _, l := range fz.luns {
		s.LUNs = append(s.LUNs, FenceLUNStatus{Name: l.Name, Backend: string(l.Paths[0].Backend()), Paths: len(l.Paths)})
	}
	for _, l := range fz.none {
		s.LUNs = append(s.LUNs, FenceLUNStatus{Name: l.Name, Backend: "none", NoPR: l.NoPR})
	}
	s.Fenced = append([]EventRecord(nil), d.st.fenced...)
	s.Registration, s.RegistrationChecked = fz.checked, fz.checkedAt
	return s
}

// pendingWhy says why a peer's fence has not completed.
func (d *Daemon) pendingWhy(p quorum.PeerStatus) string {
	switch {
	case p.FenceError != "":
		return p.FenceError
	case len(d.fence.luns) == 0:
		return "no LUN supports persistent reservations: takeover at the watchdog deadline"
	case len(d.fence.none) > 0 && slices.ContainsFunc(d.st.fenced, func(e EventRecord) bool { return e.Peer == d.names[p.Node] }):
		return "fenced on the LUNs with persistent reservations; " + strings.Join(fenceNames(d.fence.none), ", ") + " cannot be fenced: takeover at the watchdog deadline"
	}
	return "in progress"
}

// timedLUN wraps every path of l so that each PR command gets its own
// deadline.
func timedLUN(l *fence.LUN, d time.Duration) *fence.LUN {
	out := &fence.LUN{Name: l.Name}
	for _, p := range l.Paths {
		out.Paths = append(out.Paths, timedPath{Path: p, d: d})
	}
	return out
}

// timedPath bounds each command of a path by its own deadline (within
// any deadline the caller's context has).
type timedPath struct {
	fence.Path
	d time.Duration
}

func (p timedPath) TestUnitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.d)
	defer cancel()
	return p.Path.TestUnitReady(ctx)
}

func (p timedPath) Out(ctx context.Context, a scsi.OutAction, t scsi.Type, o scsi.OutParams) error {
	ctx, cancel := context.WithTimeout(ctx, p.d)
	defer cancel()
	return p.Path.Out(ctx, a, t, o)
}

func (p timedPath) ReadKeys(ctx context.Context) (scsi.Keys, error) {
	ctx, cancel := context.WithTimeout(ctx, p.d)
	defer cancel()
	return p.Path.ReadKeys(ctx)
}

func (p timedPath) ReadReservation(ctx context.Context) (scsi.Reservation, error) {
	ctx, cancel := context.WithTimeout(ctx, p.d)
	defer cancel()
	return p.Path.ReadReservation(ctx)
}

func (p timedPath) Capabilities(ctx context.Context) (scsi.Capabilities, error) {
	ctx, cancel := context.WithTimeout(ctx, p.d)
	defer cancel()
	return p.Path.Capabilities(ctx)
}

// CheckRegistration runs the registration check the machine asks for
// (quorum.Ready.CheckRegistration; the quorum package documentation,
// Registration checks) on its worker: READ KEYS on every LUN with
// persistent reservations (fence.Fencer.CheckRegistration), fed back as
// quorum.RegistrationChecked. Without such a LUN there is nothing to
// check, and the answer comes at once.
func (e *effects) CheckRegistration(c quorum.RegistrationCheck) {
	d := (*Daemon)(e)
	fz := d.fence
	if len(fz.luns) == 0 {
		d.local = append(d.local, quorum.RegistrationChecked{Op: c.Op})
		return
	}
	select {
	case fz.creq <- c:
	default:
		d.local = append(d.local, quorum.RegistrationChecked{Op: c.Op, Err: "the previous registration check is still under way"})
	}
}

// checkLoop runs the registration checks one at a time, each within
// fencing.checkDeadline (every command also within its own deadline).
// An SG_IO stuck in the kernel past its deadline (a hung path under the
// SCSI error handler) cannot block the machine: the check is reported
// failed, not gone, one command deadline past its own, and while it is
// still stuck every further check fails at once the same way.
func (d *Daemon) checkLoop(ctx context.Context) {
	fz := d.fence
	var stuck <-chan struct{} // closed once a check reported failed returns
	for {
		var c quorum.RegistrationCheck
		select {
		case <-ctx.Done():
			return
		case c = <-fz.creq:
		}
		r := fenceResult{check: true, op: c.Op}
		start := time.Now()
		if stuck != nil {
			select {
			case <-stuck:
				stuck = nil
			default:
				r.err = errors.New("the previous registration check is still blocked in the kernel past its deadline: a path to a fenced LUN hangs")
			}
		}
		if r.err == nil {
			var regs fence.Registrations
			var err error
			done := make(chan struct{})
			cctx, cancel := context.WithTimeout(ctx, fz.checkDeadline)
			go func() {
				defer close(done)
				regs, err = fz.f.CheckRegistration(cctx, fz.luns)
			}()
			grace := time.NewTimer(fz.checkDeadline + fz.cmdTimeout)
			select {
			case <-done:
				r.regs, r.err = regs, err
			case <-grace.C:
				stuck = done
				r.err = fmt.Errorf("registration check still under way %v after it started: a path to a fenced LUN hangs", fz.checkDeadline+fz.cmdTimeout)
			case <-ctx.Done():
				grace.Stop()
				cancel()
				return
			}
			grace.Stop()
			cancel()
		}
		r.took = time.Since(start)
		select {
		case fz.out <- r:
		case <-ctx.Done():
			return
		}
	}
}

// checkDone feeds a registration check's outcome to the machine, which
// decides what a key gone from a LUN means (quorum.RegistrationLost: a
// stop as fenced by a peer, or a re-registration) and reports a LUN it
// could not read (quorum.RegistrationUnread). A LUN that answered with
// fewer registrations of our key than this node has paths to it (a
// path's session logged in again) is not a fence; it is logged, for the
// operator: writes through that path are refused until the node
// registers again (`mtc fence register` while the daemon is stopped).
func (d *Daemon) checkDone(r fenceResult) {
	ev := quorum.RegistrationChecked{Op: r.op}
	found := r.regs.String()
	if r.err != nil {
		found = r.err.Error()
	}
	d.mu.Lock()
	d.fence.checked, d.fence.checkedAt = found, time.Now().Round(time.Microsecond)
	d.mu.Unlock()
	if r.err != nil {
		ev.Err = r.err.Error()
		d.step(ev)
		return
	}
	ev.Gone = r.regs.Gone()
	if err := r.regs.Err(); err != nil {
		ev.Err = err.Error()
	}
	for _, x := range r.regs {
		switch {
		case x.Partial() && !d.fence.partialLogged[x.LUN]:
			d.fence.partialLogged[x.LUN] = true
			d.log.Warn("a path of this node to the LUN is not registered: its writes through it are refused (a new session of the path?)",
				"lun", x.LUN, "registered", x.Nexuses, "paths", x.Paths)
		case x.Err == nil && x.Nexuses >= x.Paths:
			delete(d.fence.partialLogged, x.LUN)
		}
	}
	d.log.Debug("registration checked", "luns", r.regs.String(), "took", r.took)
	d.step(ev)
}
