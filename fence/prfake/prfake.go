// Package prfake is an in-memory SCSI target with SCSI-3 persistent
// reservations, faithful enough to test fencing against and to drive the
// cluster simulation: LUNs with registrations and a reservation kept per
// I_T nexus, PR IN and PR OUT executed from their CDBs and parameter data
// as SPC-4 5.12 describes, unit attentions queued per nexus (2A/03, 2A/04,
// 2A/05 after a preempt, release or clear), data writes refused with
// RESERVATION CONFLICT when the reservation says so, and injected faults:
// commands that are slow, fail on the path, lose their reply after taking
// effect, meet a unit attention, or race with another nexus's command.
//
// A Port (one initiator's nexus to one LUN) implements scsi.Transport, so
// the real command builders, decoders and error mapping of fence/scsi run
// over it.
//
// Simplifications: one target port (ALL_TG_PT and SPEC_I_PT are refused
// with ILLEGAL REQUEST), LU scope only, no READ FULL STATUS, no REGISTER
// AND MOVE. APTPL is recorded and reported, and Restart drops
// registrations unless it is set.
package prfake

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mtcluster/mtc/fence/scsi"
)

// Target is a SCSI target with LUNs.
type Target struct {
	mu   sync.Mutex
	luns map[string]*LU
	// Caps is what REPORT CAPABILITIES says (and which types RESERVE and
	// PREEMPT accept); New sets what LIO reports.
	Caps [2]byte
	// Log, when set, receives one line per executed command.
	Log func(format string, args ...any)
}

// LU is one logical unit's PR state.
type LU struct {
	name  string
	gen   uint32
	regs  []reg // in registration order, as READ KEYS reports them
	res   *reservation
	aptpl bool
	ua    map[string][][2]byte // pending unit attentions (ASC, ASCQ) per nexus
	// tasks counts in-flight data commands per nexus; aborted marks
	// nexuses whose in-flight commands a PREEMPT AND ABORT aborted.
	aborted map[string]uint64
	epoch   uint64
	// resetSeen is non-nil after Restart: the nexuses that have seen its
	// unit attention 29/00.
	resetSeen map[string]bool
}

type reg struct {
	nexus string
	key   uint64
}

type reservation struct {
	nexus string
	key   uint64
	typ   scsi.Type
}

// New returns a target with the named LUNs, all without registrations.
func New(luns ...string) *Target {
	t := &Target{luns: map[string]*LU{}, Caps: [2]byte{0xea, 0x01}}
	for _, n := range luns {
		t.luns[n] = &LU{name: n, ua: map[string][][2]byte{}, aborted: map[string]uint64{}}
	}
	return t
}

// Port returns initiator nexus's port to lun. It panics for an unknown LUN.
func (t *Target) Port(lun, nexus string) *Port {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.luns[lun] == nil {
		panic("prfake: no LUN " + lun)
	}
	return &Port{t: t, lun: lun, nexus: nexus}
}

// Restart models a power cycle of the target: reservations are lost, and
// registrations too unless APTPL was activated; every nexus gets a unit
// attention 29/00 (power on, reset, or bus device reset occurred).
func (t *Target) Restart() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, lu := range t.luns {
		if !lu.aptpl {
			lu.regs = nil
			lu.res = nil
		}
		lu.resetSeen = map[string]bool{}
	}
}

// State is a LUN's PR state, for tests and the simulation's checker.
type State struct {
	Generation uint32
	Keys       []uint64          // registrations' keys in order
	Nexus      map[string]uint64 // nexus -> key
	Held       bool
	Holder     string // nexus
	Key        uint64
	Type       scsi.Type
	APTPL      bool
}

// State returns lun's current state.
func (t *Target) State(lun string) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	lu := t.luns[lun]
	s := State{Generation: lu.gen, Nexus: map[string]uint64{}, APTPL: lu.aptpl}
	for _, r := range lu.regs {
		s.Keys = append(s.Keys, r.key)
		s.Nexus[r.nexus] = r.key
	}
	if lu.res != nil {
		s.Held, s.Holder, s.Key, s.Type = true, lu.res.nexus, lu.res.key, lu.res.typ
	}
	return s
}

// Fault changes how a port's next command behaves.
type Fault struct {
	// Match selects the command (nil: the next one). It sees the CDB.
	Match func(cdb []byte) bool
	// Delay holds the command before it executes; a context that ends
	// first returns a timeout and the command is dropped (not executed),
	// unless Late is set, when it executes after the delay anyway.
	Delay time.Duration
	Late  bool
	// PathFail fails the command on the transport (host status
	// DID_TRANSPORT_DISRUPTED) without reaching the target.
	PathFail bool
	// LostReply executes the command, then reports a transport failure:
	// the target's state changed but the initiator does not know it.
	LostReply bool
	// UnitAttention queues this ASC/ASCQ for the nexus before the command.
	UnitAttention *[2]byte
	// Before runs just before the command executes, outside the target's
	// lock: a test issues a racing command of another nexus there.
	Before func()
}

// Port is one initiator's I_T nexus to one LUN. It implements
// scsi.Transport.
type Port struct {
	t     *Target
	lun   string
	nexus string

	mu     sync.Mutex
	faults []Fault
	cmds   int
}

var _ scsi.Transport = (*Port)(nil)

// Nexus is the initiator's name.
func (p *Port) Nexus() string { return p.nexus }

// Inject queues f for the next command it matches.
func (p *Port) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, f)
}

// Commands is how many commands the port has seen.
func (p *Port) Commands() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmds
}

func (p *Port) fault(cdb []byte) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds++
	for i, f := range p.faults {
		if f.Match == nil || f.Match(cdb) {
			p.faults = slices.Delete(p.faults, i, i+1)
			return f, true
		}
	}
	return Fault{}, false
}

// Do executes r at the target.
func (p *Port) Do(ctx context.Context, r *scsi.Request) (scsi.Result, error) {
	if err := ctx.Err(); err != nil {
		return scsi.Result{}, fmt.Errorf("%s: %w: %w", r.Op, scsi.ErrTimeout, err)
	}
	f, _ := p.fault(r.CDB)
	if f.PathFail {
		return scsi.Result{Host: scsi.HostTransportDisrupted}, nil
	}
	if f.UnitAttention != nil {
		p.t.mu.Lock()
		lu := p.t.luns[p.lun]
		lu.ua[p.nexus] = append(lu.ua[p.nexus], *f.UnitAttention)
		p.t.mu.Unlock()
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-ctx.Done():
			if f.Late {
				go func() {
					time.Sleep(f.Delay)
					p.exec(r)
				}()
			}
			return scsi.Result{}, fmt.Errorf("%s: %w: %w", r.Op, scsi.ErrTimeout, ctx.Err())
		}
	}
	if f.Before != nil {
		f.Before()
	}
	res := p.exec(r)
	if f.LostReply {
		return scsi.Result{Host: scsi.HostTransportDisrupted}, nil
	}
	return res, nil
}

func (p *Port) exec(r *scsi.Request) scsi.Result {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	lu := p.t.luns[p.lun]
	res := p.t.execLocked(lu, p.nexus, r)
	if p.t.Log != nil {
		p.t.Log("%s %s % x -> status 0x%02x", p.lun, p.nexus, r.CDB, res.Status)
	}
	return res
}

func sense(r *scsi.Request, key scsi.SenseKey, asc, ascq byte) scsi.Result {
	b := make([]byte, 18)
	b[0], b[2], b[7], b[12], b[13] = 0x70, byte(key), 10, asc, ascq
	n := copy(r.Sense, b)
	return scsi.Result{Status: scsi.StatusCheckCondition, Driver: scsi.DriverSense, SenseLen: n}
}

var conflict = scsi.Result{Status: scsi.StatusReservationConflict}

// popUA takes the nexus's oldest unit attention, if any.
func (lu *LU) popUA(nexus string) (ua [2]byte, ok bool) {
	if lu.resetSeen != nil && !lu.resetSeen[nexus] {
		// A target reset reaches every nexus once, before anything else.
		lu.resetSeen[nexus] = true
		return [2]byte{0x29, 0x00}, true
	}
	q := lu.ua[nexus]
	if len(q) == 0 {
		return ua, false
	}
	lu.ua[nexus] = q[1:]
	return q[0], true
}

func (lu *LU) queueUA(nexus string, asc, ascq byte) {
	lu.ua[nexus] = append(lu.ua[nexus], [2]byte{asc, ascq})
}

func (lu *LU) keyOf(nexus string) (uint64, bool) {
	for _, r := range lu.regs {
		if r.nexus == nexus {
			return r.key, true
		}
	}
	return 0, false
}

func (lu *LU) setKey(nexus string, key uint64) {
	for i, r := range lu.regs {
		if r.nexus == nexus {
			if key == 0 {
				lu.regs = slices.Delete(lu.regs, i, i+1)
			} else {
				lu.regs[i].key = key
			}
			return
		}
	}
	if key != 0 {
		lu.regs = append(lu.regs, reg{nexus: nexus, key: key})
	}
}

func allRegistrants(t scsi.Type) bool {
	return t == scsi.WriteExclusiveAllRegistrants || t == scsi.ExclusiveAccessAllRegistrants
}

func registrantsType(t scsi.Type) bool {
	return t == scsi.WriteExclusiveRegistrantsOnly || t == scsi.ExclusiveAccessRegistrantsOnly || allRegistrants(t)
}

// unregister removes nexus's registration; a registrants-only reservation
// it held is released and the other registrants told (2A/04).
func (lu *LU) unregister(nexus string) {
	lu.setKey(nexus, 0)
	if lu.res != nil && lu.res.nexus == nexus && !allRegistrants(lu.res.typ) {
		lu.release(nexus)
	}
	if lu.res != nil && allRegistrants(lu.res.typ) && len(lu.regs) == 0 {
		lu.res = nil
	}
}

func (lu *LU) release(by string) {
	t := lu.res.typ
	lu.res = nil
	if registrantsType(t) {
		for _, r := range lu.regs {
			if r.nexus != by {
				lu.queueUA(r.nexus, 0x2a, 0x04)
			}
		}
	}
}

func (t *Target) supports(typ scsi.Type) bool {
	c, err := scsi.ParseCapabilities([]byte{0, 8, 0, 0x80, t.Caps[0], t.Caps[1], 0, 0})
	return err == nil && typ.Valid() && c.Supports(typ)
}

func (t *Target) execLocked(lu *LU, nexus string, r *scsi.Request) scsi.Result {
	if len(r.CDB) == 0 {
		return sense(r, scsi.KeyIllegalRequest, 0x20, 0)
	}
	if ua, ok := lu.popUA(nexus); ok {
		return sense(r, scsi.KeyUnitAttention, ua[0], ua[1])
	}
	switch r.CDB[0] {
	case scsi.OpTestUnitReady:
		return scsi.Result{}
	case scsi.OpPersistentReserveIn:
		return t.prIn(lu, r)
	case scsi.OpPersistentReserveOut:
		return t.prOut(lu, nexus, r)
	}
	return sense(r, scsi.KeyIllegalRequest, 0x20, 0)
}

func (t *Target) prIn(lu *LU, r *scsi.Request) scsi.Result {
	if len(r.CDB) < 10 || r.Dir != scsi.DirFromDevice {
		return sense(r, scsi.KeyIllegalRequest, 0x24, 0)
	}
	alloc := int(binary.BigEndian.Uint16(r.CDB[7:]))
	var out []byte
	switch scsi.InAction(r.CDB[1] & 0x1f) {
	case scsi.ReadKeys:
		out = binary.BigEndian.AppendUint32(out, lu.gen)
		out = binary.BigEndian.AppendUint32(out, uint32(8*len(lu.regs)))
		for _, g := range lu.regs {
			out = binary.BigEndian.AppendUint64(out, g.key)
		}
	case scsi.ReadReservation:
		out = binary.BigEndian.AppendUint32(out, lu.gen)
		if lu.res == nil {
			out = binary.BigEndian.AppendUint32(out, 0)
			break
		}
		out = binary.BigEndian.AppendUint32(out, 16)
		key := lu.res.key
		if allRegistrants(lu.res.typ) {
			key = 0
		}
		out = binary.BigEndian.AppendUint64(out, key)
		out = append(out, 0, 0, 0, 0, 0, byte(lu.res.typ), 0, 0)
	case scsi.ReportCapabilities:
		ptpla := byte(0)
		if lu.aptpl {
			ptpla = 1
		}
		out = []byte{0, 8, 0x1d, 0x90 | ptpla, t.Caps[0], t.Caps[1], 0, 0} // as LIO: ALLOW COMMANDS 1
	default:
		return sense(r, scsi.KeyIllegalRequest, 0x24, 0)
	}
	n := min(alloc, len(out), len(r.Data))
	copy(r.Data, out[:n])
	return scsi.Result{Resid: len(r.Data) - n}
}

func (t *Target) prOut(lu *LU, nexus string, r *scsi.Request) scsi.Result {
	if len(r.CDB) < 10 || r.Dir != scsi.DirToDevice {
		return sense(r, scsi.KeyIllegalRequest, 0x24, 0)
	}
	if binary.BigEndian.Uint32(r.CDB[5:]) != 24 || len(r.Data) < 24 {
		return sense(r, scsi.KeyIllegalRequest, 0x1a, 0) // parameter list length error
	}
	a := scsi.OutAction(r.CDB[1] & 0x1f)
	typ := scsi.Type(r.CDB[2] & 0x0f)
	if r.CDB[2]>>4 != 0 {
		return sense(r, scsi.KeyIllegalRequest, 0x24, 0) // only LU_SCOPE
	}
	rk := binary.BigEndian.Uint64(r.Data[0:])
	sark := binary.BigEndian.Uint64(r.Data[8:])
	flags := r.Data[20]
	if flags&0x0c != 0 {
		return sense(r, scsi.KeyIllegalRequest, 0x26, 0) // SPEC_I_PT, ALL_TG_PT
	}
	cur, registered := lu.keyOf(nexus)
	switch a {
	case scsi.Register, scsi.RegisterAndIgnoreExisting:
		if a == scsi.Register {
			if !registered && rk != 0 {
				return conflict
			}
			if registered && rk != cur {
				return conflict
			}
		}
		if !registered && sark == 0 {
			return scsi.Result{}
		}
		if sark == 0 {
			lu.unregister(nexus)
		} else {
			lu.setKey(nexus, sark)
			if lu.res != nil && lu.res.nexus == nexus {
				lu.res.key = sark
			}
		}
		lu.aptpl = flags&0x01 != 0
		lu.gen++
		return scsi.Result{}
	}
	if !registered || rk != cur {
		return conflict
	}
	switch a {
	case scsi.Reserve:
		if !t.supports(typ) {
			return sense(r, scsi.KeyIllegalRequest, 0x24, 0)
		}
		switch {
		case lu.res == nil:
			lu.res = &reservation{nexus: nexus, key: cur, typ: typ}
		case lu.res.typ != typ:
			return conflict
		case lu.res.nexus == nexus || allRegistrants(lu.res.typ):
		default:
			return conflict
		}
		return scsi.Result{}
	case scsi.Release:
		if lu.res == nil || (lu.res.nexus != nexus && !allRegistrants(lu.res.typ)) {
			return scsi.Result{}
		}
		if lu.res.typ != typ {
			return sense(r, scsi.KeyIllegalRequest, 0x26, 0x04) // invalid release of persistent reservation
		}
		lu.release(nexus)
		return scsi.Result{}
	case scsi.Clear:
		for _, g := range lu.regs {
			if g.nexus != nexus {
				lu.queueUA(g.nexus, 0x2a, 0x03)
			}
		}
		lu.regs, lu.res = nil, nil
		lu.gen++
		return scsi.Result{}
	case scsi.Preempt, scsi.PreemptAndAbort:
		return t.preempt(lu, nexus, cur, sark, typ, a == scsi.PreemptAndAbort, r)
	}
	return sense(r, scsi.KeyIllegalRequest, 0x24, 0)
}

// preempt is SPC-4 5.12.11.4: registrations with the victim key are
// removed (never the preempting nexus's own), and when the victim holds
// the reservation it moves to the preempting nexus with the new type.
func (t *Target) preempt(lu *LU, nexus string, own, victim uint64, typ scsi.Type, abort bool, r *scsi.Request) scsi.Result {
	holderPreempted := lu.res != nil && (lu.res.key == victim || (allRegistrants(lu.res.typ) && victim == 0))
	if holderPreempted && !t.supports(typ) {
		return sense(r, scsi.KeyIllegalRequest, 0x24, 0)
	}
	if victim == 0 && !holderPreempted {
		return sense(r, scsi.KeyIllegalRequest, 0x26, 0)
	}
	var removed []string
	for _, g := range lu.regs {
		if g.nexus != nexus && (g.key == victim || (victim == 0 && holderPreempted)) {
			removed = append(removed, g.nexus)
		}
	}
	if len(removed) == 0 && !holderPreempted {
		return conflict
	}
	for _, n := range removed {
		lu.setKey(n, 0)
		lu.queueUA(n, 0x2a, 0x05)
		if abort {
			lu.epoch++
			lu.aborted[n] = lu.epoch
		}
	}
	if holderPreempted {
		old := lu.res.typ
		lu.res = &reservation{nexus: nexus, key: own, typ: typ}
		if old != typ {
			for _, g := range lu.regs {
				if g.nexus != nexus {
					lu.queueUA(g.nexus, 0x2a, 0x03)
				}
			}
		}
	}
	lu.gen++
	return scsi.Result{}
}

// mayWrite reports whether nexus may write under the LUN's reservation.
func (lu *LU) mayWrite(nexus string) bool {
	if lu.res == nil || lu.res.nexus == nexus {
		return true
	}
	_, registered := lu.keyOf(nexus)
	if registrantsType(lu.res.typ) {
		return registered
	}
	return false
}

// ErrConflict is what Write returns for a write the reservation refuses
// (the kernel gives the writer EBADE).
var ErrConflict = fmt.Errorf("write: %w", scsi.ErrReservationConflict)

// Write models one data write through the port, taking d from admission
// to completion. The target admits it if the nexus may write; a PREEMPT AND
// ABORT of this nexus while it is in flight aborts it (ErrConflict), a
// plain PREEMPT does not (the admitted write completes: the reason fencing
// aborts). It returns nil when the write reached the medium.
func (p *Port) Write(ctx context.Context, d time.Duration) error {
	w, err := p.StartWrite()
	if err != nil {
		return err
	}
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("write: %w: %w", scsi.ErrTimeout, ctx.Err())
		}
	}
	return w.Finish()
}

// InFlight is a data write the target has admitted and not yet completed
// (StartWrite). A caller with its own clock, such as the simulation, which
// never sleeps, admits a write at one instant and finishes it at another.
type InFlight struct {
	p     *Port
	epoch uint64
}

// StartWrite admits a data write through the port now: ErrConflict when the
// reservation refuses this nexus's writes.
func (p *Port) StartWrite() (InFlight, error) {
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	lu := p.t.luns[p.lun]
	if !lu.mayWrite(p.nexus) {
		return InFlight{}, ErrConflict
	}
	return InFlight{p: p, epoch: lu.aborted[p.nexus]}, nil
}

// Finish completes an admitted write now: ErrConflict when a PREEMPT AND
// ABORT of its nexus aborted it in flight, nil when it reached the medium.
func (w InFlight) Finish() error {
	p := w.p
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	if p.t.luns[p.lun].aborted[p.nexus] != w.epoch {
		return ErrConflict
	}
	return nil
}
