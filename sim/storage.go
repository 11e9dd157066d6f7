package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum"
)

// The shared storage of a history with persistent-reservation fencing: one
// fence/prfake target holding the quorum LUN and a data LUN, reached by
// every node over one or two paths (I_T nexuses) per LUN, and each node's
// fencing component running fence.Fencer, the daemon's own code, over it.
//
// Virtual time. fence.Fencer is sequential Go code that blocks on every
// command. It runs on a goroutine of its own per operation (a Rejoin at a
// node's start, one Fence), and the simulation drives it like a coroutine:
// the event loop never runs while the goroutine does, and the goroutine
// runs only between the loop handing it a reply and its next command, so a
// seed still replays exactly. Each command leaves the initiator at an
// instant, executes at the target at a later instant (a drawn delay: the
// target runs racing commands of several nodes in the order they arrive,
// as a real one serializes them), and its reply reaches the fencer after
// another drawn delay; a reply later than the per-command deadline is a
// timeout (the command may still execute: a slow command takes effect
// after its initiator gave up).

const (
	lunQuorum = "quorum"
	lunData   = "data"
)

var simLUNs = []string{lunQuorum, lunData}

// storage is the target and the fencing model of one history.
type storage struct {
	w   *World
	rng *rand.Rand // the storage's own stream: the other draws stay as they were
	tgt *prfake.Target
	// paths per node per LUN.
	paths int
	// Per-command fault probabilities of this history: slow (past its
	// deadline), failing on the path, meeting a unit attention, losing its
	// reply after taking effect; race: a PREEMPT AND ABORT meets another
	// node's racing preempt of the same key just before it executes.
	slow, pathFail, ua, lost, race float64
	// cmdTimeout bounds one command, attempt one Fence (the daemon's
	// deadlines, quorum.FenceTimeouts), checkDeadline one registration
	// check (quorum.RegistrationTimeouts).
	cmdTimeout, attempt, checkDeadline time.Duration
	// crng draws the faults of the registration checks' commands: a
	// stream of their own, so that the checks leave the fence commands'
	// draws as they were.
	crng *rand.Rand
	// dataEvery is the interval of the package writers' data writes.
	dataEvery time.Duration
}

func newStorage(w *World) *storage {
	s := &storage{w: w, rng: rand.New(rand.NewSource(w.opt.Seed*7919 + 0x5707a6e)), tgt: prfake.New(simLUNs...), paths: 1}
	s.crng = rand.New(rand.NewSource(w.opt.Seed*7919 + 0xc4ec6))
	s.cmdTimeout, s.attempt = quorum.FenceTimeouts(w.t)
	_, s.checkDeadline = quorum.RegistrationTimeouts(w.t)
	s.dataEvery = w.t.HeartbeatInterval / 2
	if !w.opt.Exact {
		s.paths = 1 + s.rng.Intn(2)
		if s.rng.Intn(2) == 0 {
			// Rare, as on a healthy SAN: a join runs some twenty to
			// forty commands, and any failure but a unit attention
			// fails it (the daemon tries again, fence.StartupRetry).
			s.slow = s.rng.Float64() * 0.002
			s.pathFail = s.rng.Float64() * 0.002
			s.ua = s.rng.Float64() * 0.05
			s.lost = s.rng.Float64() * 0.002
			s.race = s.rng.Float64() * 0.5
		}
	}
	return s
}

func (s *storage) String() string {
	return fmt.Sprintf("paths=%d slow=%.3f path-fail=%.3f unit-attention=%.3f lost-reply=%.3f racing-preempt=%.2f", s.paths, s.slow, s.pathFail, s.ua, s.lost, s.race)
}

// nexus names the I_T nexus of one incarnation's path: every start of a
// node logs in new sessions.
func nexus(id quorum.NodeID, inc quorum.Incarnation, path int) string {
	return fmt.Sprintf("n%d.%016x.p%d", id, uint64(inc), path)
}

func (s *storage) port(lun string, id quorum.NodeID, inc quorum.Incarnation, path int) *prfake.Port {
	return s.tgt.Port(lun, nexus(id, inc, path))
}

// registered: some path of the incarnation is registered on lun.
func (s *storage) registered(lun string, id quorum.NodeID, inc quorum.Incarnation) bool {
	return s.registeredIn(s.tgt.State(lun), id, inc)
}

// registeredIn: some path of the incarnation is registered in st.
func (s *storage) registeredIn(st prfake.State, id quorum.NodeID, inc quorum.Incarnation) bool {
	for p := 0; p < s.paths; p++ {
		if _, ok := st.Nexus[nexus(id, inc, p)]; ok {
			return true
		}
	}
	return false
}

// cutOff: no path of the incarnation is registered on any LUN, so the
// target refuses every write of it.
func (s *storage) cutOff(id quorum.NodeID, inc quorum.Incarnation) bool {
	for _, l := range simLUNs {
		if s.registered(l, id, inc) {
			return false
		}
	}
	return true
}

// write lands one write of an incarnation on lun at this instant: nil
// when the target accepted it, prfake.ErrConflict (EBADE at the writer)
// when the reservation refused it.
func (s *storage) write(lun string, id quorum.NodeID, inc quorum.Incarnation) error {
	w, err := s.port(lun, id, inc, 0).StartWrite()
	if err != nil {
		return err
	}
	return w.Finish()
}

func (s *storage) latency() time.Duration { return s.latencyWith(s.rng) }

func (s *storage) latencyWith(rng *rand.Rand) time.Duration {
	if s.w.opt.Exact {
		return 500 * time.Microsecond
	}
	return s.w.uniformWith(rng, 200*time.Microsecond, 2*time.Millisecond)
}

// fenceOp is one run of fence code by one incarnation of a node.
type fenceOp struct {
	s   *storage
	n   *simNode
	inc quorum.Incarnation
	// yield carries the goroutine's next command (nil: it has returned).
	yield chan *simCmd
	reply chan struct{}
	// deadline (absolute): commands after it time out at once.
	deadline time.Duration
	// rng draws the faults of the operation's commands.
	rng *rand.Rand
	// abandoned: the node crashed; the goroutine runs to its end without
	// reaching the target again, and nothing is reported.
	abandoned bool
	finished  bool
	done      func()
}

type simCmd struct {
	lun  string
	port *prfake.Port
	req  *scsi.Request
	res  scsi.Result
}

// transport is one path of a fenceOp: a scsi.Transport whose Do hands the
// command to the event loop and waits for its reply.
type transport struct {
	op   *fenceOp
	lun  string
	port *prfake.Port
}

func (t *transport) Do(_ context.Context, r *scsi.Request) (scsi.Result, error) {
	op := t.op
	if op.abandoned || op.s.w.now >= op.deadline {
		return scsi.Result{Host: scsi.HostTimeOut}, nil
	}
	c := &simCmd{lun: t.lun, port: t.port, req: r}
	op.yield <- c
	<-op.reply
	return c.res, nil
}

// luns are the incarnation's LUNs as the fencer sees them, every path a
// transport of op.
func (op *fenceOp) luns() []*fence.LUN {
	var out []*fence.LUN
	for _, name := range simLUNs {
		l := &fence.LUN{Name: name}
		for p := 0; p < op.s.paths; p++ {
			port := op.s.port(name, op.n.id, op.inc, p)
			l.Paths = append(l.Paths, fence.NewSCSIPath(port.Nexus(), fence.BackendFake, &transport{op: op, lun: name, port: port}, nil))
		}
		out = append(out, l)
	}
	return out
}

func (s *storage) fencer(n *simNode) *fence.Fencer {
	w := s.w
	return &fence.Fencer{Cluster: w.cluster, Self: n.id, Now: func() time.Time { return time.Unix(0, 0).Add(w.now) }}
}

// run starts body on its goroutine and drives it to its first command;
// done runs on the event loop when body has returned (not after a crash).
func (s *storage) run(n *simNode, timeout time.Duration, body func(op *fenceOp), done func()) *fenceOp {
	return s.runWith(n, timeout, s.rng, body, done)
}

// runWith is run with the commands' faults drawn from rng.
func (s *storage) runWith(n *simNode, timeout time.Duration, rng *rand.Rand, body func(op *fenceOp), done func()) *fenceOp {
	op := &fenceOp{s: s, n: n, inc: n.inc, yield: make(chan *simCmd), reply: make(chan struct{}), deadline: s.w.now + timeout, rng: rng, done: done}
	go func() {
		body(op)
		op.yield <- nil
	}()
	op.next()
	return op
}

// next waits for the goroutine's next command and schedules it.
func (op *fenceOp) next() {
	c := <-op.yield
	if c == nil {
		op.finished = true
		if !op.abandoned {
			// Reported as an event of its own: never inside the step
			// that started the operation.
			op.s.w.at(op.s.w.now, op.done)
		}
		return
	}
	op.schedule(c)
}

// abandon ends the operation of a crashed node or a stopped daemon: the
// goroutine runs to its end at once, every further command failing
// without reaching the target; a command already sent still executes.
func (op *fenceOp) abandon() {
	if op.abandoned {
		return
	}
	op.abandoned = true
	if !op.finished {
		op.reply <- struct{}{}
		op.next()
	}
}

// resume hands the goroutine its reply, unless the node's daemon is
// frozen (then when it resumes).
func (op *fenceOp) resume() {
	n := op.n
	if op.abandoned || op.finished {
		return
	}
	if n.frozen {
		n.thaw = append(n.thaw, op.resume)
		return
	}
	op.reply <- struct{}{}
	op.next()
}

// schedule runs one command: its execution at the target and its reply,
// with the history's faults.
func (op *fenceOp) schedule(c *simCmd) {
	s, w, rng := op.s, op.s.w, op.rng
	f := func() float64 {
		if w.opt.Exact {
			return 1
		}
		return rng.Float64()
	}
	if f() < s.pathFail {
		// The path fails the command; it never reaches the target.
		c.res = scsi.Result{Host: scsi.HostTransportDisrupted}
		w.chk.prFault(op.inc)
		w.at(w.now+s.latencyWith(rng), op.faulted())
		return
	}
	out, back := s.latencyWith(rng), s.latencyWith(rng)
	if f() < s.slow {
		out = w.uniformWith(rng, s.cmdTimeout/2, 2*s.cmdTimeout)
	}
	ua := f() < s.ua
	lost := f() < s.lost
	race := f() < s.race
	timedOut := out+back > s.cmdTimeout
	resume := op.resume
	if timedOut || lost {
		w.chk.prFault(op.inc)
		resume = op.faulted()
	}
	w.at(w.now+out, func() {
		if ua {
			asc := [][2]byte{{0x2a, 0x03}, {0x2a, 0x04}, {0x2a, 0x05}, {0x29, 0x00}}[rng.Intn(4)]
			c.port.Inject(prfake.Fault{UnitAttention: &asc})
		}
		if race {
			s.racePreempt(op.n.id, c.lun, c.req)
		}
		res, _ := c.port.Do(context.Background(), c.req)
		w.chk.storageChanged()
		if timedOut {
			return // the reply went out already: a timeout
		}
		if lost {
			res = scsi.Result{Host: scsi.HostTransportDisrupted}
		}
		c.res = res
		w.at(w.now+back, resume)
	})
	if timedOut {
		c.res = scsi.Result{Host: scsi.HostTimeOut}
		w.at(w.now+s.cmdTimeout, resume)
	}
}

// faulted marks the node's storage path faulty for the liveness checker
// (pathOK) until the returned function, which resumes op, runs: a command
// the storage failed, timed out or lost the reply of, from its issue
// until the node learns its outcome.
func (op *fenceOp) faulted() func() {
	n, w := op.n, op.s.w
	n.prFaults++
	w.patternChanged()
	return func() {
		n.prFaults--
		w.patternChanged()
		op.resume()
	}
}

// racePreempt: when r is a PREEMPT AND ABORT, another registered node
// preempts the same key first, through its own first path.
func (s *storage) racePreempt(self quorum.NodeID, lun string, r *scsi.Request) {
	if len(r.CDB) < 2 || r.CDB[0] != scsi.OpPersistentReserveOut || scsi.OutAction(r.CDB[1]&0x1f) != scsi.PreemptAndAbort || len(r.Data) < 16 {
		return
	}
	victim := fence.Key(binary.BigEndian.Uint64(r.Data[8:16]))
	w := s.w
	for _, m := range w.nodes[1:] {
		if m.id == self || !m.up || m.exited || fence.NodeKey(w.cluster, m.id) == victim {
			continue
		}
		port := s.port(lun, m.id, m.inc, 0)
		p := fence.NewSCSIPath(port.Nexus(), fence.BackendFake, port, nil)
		err := p.Out(context.Background(), scsi.PreemptAndAbort, fence.DefaultType, scsi.OutParams{Key: uint64(fence.NodeKey(w.cluster, m.id)), ServiceKey: uint64(victim)})
		w.chk.storageChanged()
		w.trace("n%d's preempt of key %v on %s races n%d's: %v", m.id, victim, lun, self, errString(err))
		return
	}
}

// preemption is a registration the world removed (World.Preempt): a
// fault of that incarnation's until it is registered on lun again.
type preemption struct {
	inc quorum.Incarnation
	lun string
}

// Preempt removes node id's key from lun at once, with a PREEMPT AND
// ABORT from the first path of the lowest-id other node that is up and
// registered there: the preempt of a fence requested earlier that lands
// late on that LUN, after the victim registered again. Without persistent
// reservations it is refused.
func (w *World) Preempt(id quorum.NodeID, lun string) error {
	s := w.st
	if s == nil {
		return errors.New("the history has no persistent reservations (fencing off)")
	}
	if lun != lunQuorum && lun != lunData {
		return fmt.Errorf("no LUN %q (the LUNs are %s and %s)", lun, lunQuorum, lunData)
	}
	victim := fence.NodeKey(w.cluster, id)
	for _, m := range w.nodes[1:] {
		if m.id == id || !m.up || !s.registered(lun, m.id, m.inc) {
			continue
		}
		port := s.port(lun, m.id, m.inc, 0)
		p := fence.NewSCSIPath(port.Nexus(), fence.BackendFake, port, nil)
		err := p.Out(context.Background(), scsi.PreemptAndAbort, fence.DefaultType, scsi.OutParams{Key: uint64(fence.NodeKey(w.cluster, m.id)), ServiceKey: uint64(victim)})
		if w.preempted == nil {
			w.preempted = map[quorum.NodeID]preemption{}
		}
		w.preempted[id] = preemption{inc: w.node(id).inc, lun: lun}
		w.chk.storageChanged()
		w.trace("n%d's late preempt of n%d's key on LUN %s: %v", m.id, id, lun, errString(err))
		w.patternChanged()
		return err
	}
	return fmt.Errorf("no other node is up and registered on LUN %s", lun)
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// serviceRestart is the delay after which the service manager starts a
// daemon that exited on an error again (RestartSec in
// dist/systemd/mtc.service).
const serviceRestart = 10 * time.Second

// register runs Rejoin for a starting node: it joins once every LUN is
// registered and verified, as the daemon does. A failure that may pass is
// tried again after the delay fence.StartupRetry gives, as the daemon
// does; a final one makes the daemon exit, and its service manager starts
// it again serviceRestart later.
func (s *storage) register(n *simNode) {
	w := s.w
	var err error
	f := s.fencer(n)
	n.fop = s.run(n, farFuture, func(op *fenceOp) { err = f.Rejoin(context.Background(), op.luns()) }, func() {
		n.fop = nil
		if err != nil {
			n.regTries++
			d, again := fence.StartupRetry(err, n.regTries, w.t.HeartbeatInterval)
			if again {
				w.trace("n%d cannot register for fencing: %v; trying again in %v", n.id, err, d)
			} else {
				n.regTries, d = 0, serviceRestart
				w.trace("n%d cannot register for fencing: %v; the daemon exits and starts again in %v", n.id, err, d)
			}
			tok := n.regToken
			w.at(w.now+d, func() {
				if tok == n.regToken && n.registering {
					s.register(n)
				}
			})
			return
		}
		n.start()
	})
}

// Rejoin runs the re-registration the machine asks for (quorum.Ready.
// Rejoin: a peer's fence removed this node's key before its incarnation
// held quorum) on the node's fencing component, after the operation under
// way if any, as the daemon's fence worker does: fence.Fencer.Rejoin over
// the incarnation's own paths (its stale registrations removed, every path
// registered, verified), within one fence attempt's deadline, fed back as
// quorum.Rejoined.
func (e *effects) Rejoin() {
	n := (*simNode)(e)
	w := n.w
	if w.st == nil {
		inc := n.inc
		w.at(w.now, func() {
			if n.up && n.inc == inc {
				n.step(quorum.Rejoined{Err: "no persistent reservations"})
			}
		})
		return
	}
	w.st.fence(n, quorum.Target{Node: n.id})
}

// CheckRegistration runs the registration check the machine asks for
// (quorum.Ready.CheckRegistration) as the daemon's check worker does:
// fence.Fencer.CheckRegistration over the incarnation's own paths, beside
// the fence worker (its own operation, never queued behind a fence),
// within the check's deadline, fed back as quorum.RegistrationChecked:
// the LUNs that answered without the key as gone, a LUN no path could
// read as an error. With the planted bug registration-check-skipped the
// driver answers "registered" without reading.
func (e *effects) CheckRegistration(c quorum.RegistrationCheck) {
	n := (*simNode)(e)
	w := n.w
	inc := n.inc
	answer := func(ev quorum.RegistrationChecked) {
		if n.up && !n.exited && n.inc == inc {
			n.step(ev)
		}
	}
	if w.st == nil || w.opt.Bug.SkipRegistrationCheck {
		w.at(w.now, func() { answer(quorum.RegistrationChecked{Op: c.Op}) })
		return
	}
	if n.cop != nil {
		w.at(w.now, func() {
			answer(quorum.RegistrationChecked{Op: c.Op, Err: "the previous registration check is still under way"})
		})
		return
	}
	s := w.st
	f := s.fencer(n)
	var regs fence.Registrations
	var err error
	n.cop = s.runWith(n, s.checkDeadline, s.crng, func(op *fenceOp) {
		regs, err = f.CheckRegistration(context.Background(), op.luns())
	}, func() {
		n.cop = nil
		ev := quorum.RegistrationChecked{Op: c.Op}
		switch {
		case err != nil:
			ev.Err = err.Error()
		default:
			ev.Gone = regs.Gone()
			if rerr := regs.Err(); rerr != nil {
				ev.Err = rerr.Error()
			}
		}
		if len(ev.Gone) > 0 || ev.Err != "" {
			w.trace("n%d registration check: %v", n.id, regs)
		}
		answer(ev)
	})
}

// fence queues a fence of t on n's fencing component, which runs one at
// a time (the daemon's fence worker). A target naming n itself is its
// re-registration (effects.Rejoin): a node never fences itself.
func (s *storage) fence(n *simNode, t quorum.Target) {
	n.fenceQ = append(n.fenceQ, t)
	if n.fop == nil {
		s.nextFence(n)
	}
}

// withdraw drops the queued fences of t that have not begun, as the
// daemon's fence worker does (effects.WithdrawFence); one under way runs
// to its end.
func (s *storage) withdraw(n *simNode, t quorum.Target) {
	n.fenceQ = slices.DeleteFunc(n.fenceQ, func(q quorum.Target) bool { return q == t })
}

func (s *storage) nextFence(n *simNode) {
	w := s.w
	if len(n.fenceQ) == 0 || !n.up {
		return
	}
	t := n.fenceQ[0]
	n.fenceQ = n.fenceQ[1:]
	var proof fence.Proof
	var err error
	f := s.fencer(n)
	start := w.now
	if t.Node == n.id {
		n.fop = s.run(n, s.attempt, func(op *fenceOp) { err = f.Rejoin(context.Background(), op.luns()) }, func() {
			n.fop = nil
			s.rejoinDone(n, err, w.now-start)
			s.nextFence(n)
		})
		return
	}
	n.fop = s.run(n, s.attempt, func(op *fenceOp) {
		proof, err = f.Fence(context.Background(), t.Node, t.Inc, op.luns())
	}, func() {
		n.fop = nil
		s.fenceDone(n, t, proof, err, w.now-start)
		s.nextFence(n)
	})
}

// fenceDone feeds the outcome to the machine as the daemon does: Fenced
// for a verified proof, FenceFailed otherwise (the machine retries with
// backoff), and a daemon that finds its own key preempted stops at once.
func (s *storage) fenceDone(n *simNode, t quorum.Target, proof fence.Proof, err error, took time.Duration) {
	w := s.w
	if !n.up || n.exited {
		return
	}
	switch {
	case err == nil && proof.Valid():
		w.trace("n%d fenced n%d on %v in %v", n.id, t.Node, proof.LUNs(), took)
		n.step(quorum.Fenced{Node: t.Node, Inc: t.Inc})
	case errors.Is(err, fence.ErrSelfFenced):
		n.exit(fmt.Sprintf("fenced by a peer while fencing n%d: %v", t.Node, err))
	default:
		if err == nil {
			err = errors.New("fence returned no proof")
		}
		w.trace("n%d fence of n%d failed after %v: %v", n.id, t.Node, took, err)
		n.step(quorum.FenceFailed{Node: t.Node, Inc: t.Inc, Err: err.Error()})
	}
}

// rejoinDone feeds a re-registration's outcome to the machine, as the
// daemon does.
func (s *storage) rejoinDone(n *simNode, err error, took time.Duration) {
	w := s.w
	if !n.up || n.exited {
		return
	}
	if err != nil {
		w.trace("n%d re-registration for fencing failed after %v: %v", n.id, took, err)
		n.step(quorum.Rejoined{Err: err.Error()})
		return
	}
	w.trace("n%d registered for fencing again in %v", n.id, took)
	n.step(quorum.Rejoined{})
}

// writeData is one data write of the package writer of n's current
// incarnation: admitted at the target after a drawn delay, finished after
// another (a PREEMPT AND ABORT in between aborts it).
func (s *storage) writeData(n *simNode) {
	w := s.w
	id, inc, issue := n.id, n.inc, w.now
	w.at(w.now+s.latency(), func() {
		port := s.port(lunData, id, inc, 0)
		fl, err := port.StartWrite()
		if err != nil {
			return // EBADE at the writer
		}
		w.at(w.now+s.latency(), func() {
			if fl.Finish() == nil {
				w.chk.accepted(id, inc, "data", issue)
			}
		})
	})
}

// dataWriter keeps n's package writer going while the incarnation runs
// packages (also while its daemon is paused: the packages run on).
func (s *storage) dataWriter(n *simNode) {
	w := s.w
	inc := n.inc
	var tick func()
	tick = func() {
		if !n.up || n.inc != inc {
			return
		}
		if n.running != 0 && !n.vmFrozen && !n.pathDown && !n.pathHang {
			s.writeData(n)
		}
		w.at(w.now+s.dataEvery, tick)
	}
	w.at(w.now+s.dataEvery, tick)
}
