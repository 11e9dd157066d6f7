package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/quorum/ident"
)

// DefaultType is the reservation type fencing takes: Write Exclusive,
// Registrants Only (5), as fence_scsi does. Every registered node may
// write; a node whose key is removed may still read but every write fails
// with RESERVATION CONFLICT (EBADE at the writer).
const DefaultType = scsi.WriteExclusiveRegistrantsOnly

// Errors of the algorithm. Every failure is an *Error wrapping one of
// these or one of the PR command errors (ErrReservationConflict, ErrPath,
// ErrTimeout, ErrNotSupported, ErrUnitAttention).
var (
	// ErrSelfFenced: this node's key is not registered on the LUN: another
	// node preempted it. The node must stop all I/O to shared storage and
	// self-fence at once; it must not register again by itself.
	ErrSelfFenced = errors.New("this node's key is not registered: this node has been fenced")
	// ErrVerify: the LUN's state read back is not what the step should
	// have produced (victim still registered, no reservation, our key
	// missing after registering).
	ErrVerify = errors.New("persistent reservation state did not verify")
	// ErrForeignReservation: the LUN is reserved with another type, or by
	// a key that is not this cluster's: something else manages it.
	ErrForeignReservation = errors.New("LUN reserved by another type or another key owner")
	// ErrBadRequest: the call itself is wrong (fencing ourselves, no
	// paths, an invalid type).
	ErrBadRequest = errors.New("invalid fencing request")
)

// Error is a failed fencing step: which operation, LUN, path and step.
type Error struct {
	Op   string // "unfence" or "fence node N"
	LUN  string
	Path string // empty when the step is not path-specific
	Step string // "test unit ready", "register", "reserve", "preempt and abort", "read keys", "verify", ...
	Err  error
}

func (e *Error) Error() string {
	where := e.LUN
	if e.Path != "" && e.Path != e.LUN {
		where += " via " + e.Path
	}
	return fmt.Sprintf("%s: LUN %s: %s: %v", e.Op, where, e.Step, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// LUN is one shared logical unit and every path this node has to it.
type LUN struct {
	Name  string // as configured, e.g. /dev/mapper/mpatha
	Paths []Path // at least one
}

// Close closes every path.
func (l *LUN) Close() error {
	var errs []error
	for _, p := range l.Paths {
		errs = append(errs, p.Close())
	}
	l.Paths = nil
	return errors.Join(errs...)
}

// Fencer runs unfencing and fencing for this node.
type Fencer struct {
	Cluster uuid.UUID
	Self    ident.NodeID
	// Type is the reservation type to take; 0 means DefaultType.
	Type scsi.Type
	// APTPL asks the target to keep registrations and the reservation
	// across its power loss (sent with every registration).
	APTPL bool
	// Now stamps proofs; nil means time.Now.
	Now func() time.Time
	// Log receives one record per step; nil discards.
	Log *slog.Logger
}

func (f *Fencer) typ() scsi.Type {
	if f.Type == 0 {
		return DefaultType
	}
	return f.Type
}

func (f *Fencer) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

func (f *Fencer) now() time.Time {
	if f.Now == nil {
		return time.Now()
	}
	return f.Now()
}

func (f *Fencer) check(op string, luns []*LUN) error {
	if !f.typ().Valid() {
		return &Error{Op: op, Step: "configuration", Err: fmt.Errorf("%w: reservation type %d", ErrBadRequest, f.typ())}
	}
	if f.Self < 1 || f.Self > ident.MaxNodes {
		return &Error{Op: op, Step: "configuration", Err: fmt.Errorf("%w: node id %d", ErrBadRequest, f.Self)}
	}
	if len(luns) == 0 {
		return &Error{Op: op, Step: "configuration", Err: fmt.Errorf("%w: no LUNs", ErrBadRequest)}
	}
	for _, l := range luns {
		if len(l.Paths) == 0 {
			return &Error{Op: op, LUN: l.Name, Step: "configuration", Err: fmt.Errorf("%w: no paths", ErrBadRequest)}
		}
	}
	return nil
}

// Unfence registers this node on every path of every LUN and makes sure
// each LUN holds a reservation of the configured type, then reads the
// state back. Call it when the node joins, before any package of it may
// start, and after every new session to the storage (a new I_T nexus is
// unregistered).
//
// Per LUN: TEST UNIT READY on every path (clearing unit attentions);
// REGISTER AND IGNORE EXISTING KEY with our key on every path; RESERVE
// when no reservation is held (a RESERVATION CONFLICT there means another
// node reserved first, which is as good); then verify that our key is
// registered at least once per path and that a reservation of the
// configured type is held by a registered key of this cluster.
//
// It fails closed: any error means this node must not start packages.
// Registrations already made are left in place (undoing them could cut
// off I/O this node already does); the caller retries.
//
// Unfence registers unconditionally, so it also undoes a fence of this
// node: call it only when this node is entitled to the storage (it has
// joined with quorum and nothing of it runs that a survivor took over),
// never as a reflex to RESERVATION CONFLICT or EBADE, which mean: stop.
func (f *Fencer) Unfence(ctx context.Context, luns []*LUN) error {
	return f.register(ctx, "unfence", "unfenced", luns, false)
}

// Rejoin is Unfence for a node that is joining: no package of it runs
// and it does no I/O to the LUNs yet. Before registering everywhere it
// removes registrations of our key left by earlier sessions (an I_T
// nexus that no longer exists: an old iSCSI session, a replaced HBA) with
// a PREEMPT of our own key from our first path, and it then verifies our
// key is registered exactly once per path. The PREEMPT also drops our
// other live paths' registrations until they register again a moment
// later, which is why only a joining node may do it: I/O on those paths
// in between would fail with RESERVATION CONFLICT.
func (f *Fencer) Rejoin(ctx context.Context, luns []*LUN) error {
	return f.register(ctx, "rejoin", "rejoined", luns, true)
}

// register unfences every LUN (dropping our stale registrations first
// when dropStale), logs each outcome as op/done, and returns every
// failure joined.
func (f *Fencer) register(ctx context.Context, op, done string, luns []*LUN, dropStale bool) error {
	if err := f.check(op, luns); err != nil {
		return err
	}
	var errs []error
	for _, l := range luns {
		if err := f.unfenceLUN(ctx, op, l, dropStale); err != nil {
			if errors.Is(err, ErrNotSupported) {
				// The caller decides: without PR on this LUN, takeovers
				// wait for the watchdog deadline.
				f.log().Warn(op+": the LUN has no persistent reservations", "lun", l.Name, "err", err)
			} else {
				f.log().Error(op+" failed: this node must not start packages on this LUN", "lun", l.Name, "err", err)
			}
			errs = append(errs, err)
			continue
		}
		f.log().Info(done, "lun", l.Name, "key", NodeKey(f.Cluster, f.Self), "paths", len(l.Paths))
	}
	return errors.Join(errs...)
}

// dropStale registers our first path and preempts every other
// registration of our key (see Rejoin).
func (f *Fencer) dropStale(ctx context.Context, op string, l *LUN, own Key) error {
	st, err := readState(ctx, l)
	if err != nil {
		return &Error{Op: op, LUN: l.Name, Step: "read keys", Err: err}
	}
	if st.count(own) == 0 {
		return nil
	}
	p0 := l.Paths[0]
	if err := p0.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: uint64(own), APTPL: f.APTPL}); err != nil {
		return &Error{Op: op, LUN: l.Name, Path: p0.Name(), Step: "register and ignore existing key", Err: err}
	}
	if st, err = readState(ctx, l); err != nil {
		return &Error{Op: op, LUN: l.Name, Step: "read keys", Err: err}
	}
	if st.count(own) <= 1 {
		return nil
	}
	err = p0.Out(ctx, scsi.Preempt, f.typ(), scsi.OutParams{Key: uint64(own), ServiceKey: uint64(own)})
	if err == nil || errors.Is(err, ErrReservationConflict) {
		// A conflict: nothing else matched; the read-back judges.
		f.log().Info("removed stale registrations of our key", "lun", l.Name, "count", st.count(own)-1)
		return nil
	}
	return &Error{Op: op, LUN: l.Name, Path: p0.Name(), Step: "preempt stale registrations of our key", Err: err}
}

func (f *Fencer) unfenceLUN(ctx context.Context, op string, l *LUN, rejoin bool) error {
	own := NodeKey(f.Cluster, f.Self)
	fail := func(p Path, step string, err error) error { return stepError(op, l, p, step, err) }
	for _, p := range l.Paths {
		if err := p.TestUnitReady(ctx); err != nil {
			return fail(p, "test unit ready", err)
		}
	}
	if rejoin {
		if err := f.dropStale(ctx, op, l, own); err != nil {
			return err
		}
	}
	for _, p := range l.Paths {
		if err := p.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: uint64(own), APTPL: f.APTPL}); err != nil {
			return fail(p, "register and ignore existing key", err)
		}
	}
	st, err := readState(ctx, l)
	if err != nil {
		return fail(nil, "read reservation", err)
	}
	if !st.res.Held {
		if err := f.reserveAny(ctx, op, l, own); err != nil {
			return err
		}
	}
	st, err = readState(ctx, l)
	if err != nil {
		return fail(nil, "read back", err)
	}
	if n := st.count(own); n < len(l.Paths) || (rejoin && n != len(l.Paths)) {
		return fail(nil, "verify", fmt.Errorf("%w: our key %v registered %d times, want once per path (%d)", ErrVerify, own, n, len(l.Paths)))
	}
	return f.verifyReservation(st, op, l)
}

// state is one LUN's keys and reservation, read back.
type state struct {
	keys scsi.Keys
	res  scsi.Reservation
}

func (s state) count(k Key) int {
	n := 0
	for _, x := range s.keys.Keys {
		if Key(x) == k {
			n++
		}
	}
	return n
}

// readState reads keys and reservation through the first path that
// answers: a path failure moves on to the next path, anything else fails.
func readState(ctx context.Context, l *LUN) (state, error) {
	var errs []error
	for _, p := range l.Paths {
		k, err := p.ReadKeys(ctx)
		if err == nil {
			var r scsi.Reservation
			if r, err = p.ReadReservation(ctx); err == nil {
				return state{keys: k, res: r}, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		if !errors.Is(err, ErrPath) {
			break
		}
	}
	return state{}, errors.Join(errs...)
}

func (f *Fencer) verifyReservation(st state, op string, l *LUN) error {
	fail := func(err error) error { return &Error{Op: op, LUN: l.Name, Step: "verify", Err: err} }
	switch {
	case !st.res.Held:
		return fail(fmt.Errorf("%w: no reservation held", ErrVerify))
	case st.res.Type != f.typ():
		return fail(fmt.Errorf("%w: reserved as %v by key %v, want %v", ErrForeignReservation, st.res.Type, Key(st.res.Key), f.typ()))
	case st.count(Key(st.res.Key)) == 0:
		return fail(fmt.Errorf("%w: reservation holder key %v is not registered", ErrVerify, Key(st.res.Key)))
	}
	if _, err := KeyOwner(f.Cluster, Key(st.res.Key)); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrForeignReservation, err))
	}
	return nil
}

// Proof is the evidence that a node was fenced: its key was verified gone
// from every listed LUN, each of which holds a reservation. Only this
// package makes one with content; the zero Proof is not Valid. Storage
// takeover (volume-group activation) takes a Proof, so taking over a
// node's storage without fencing it first does not compile.
type Proof struct {
	victim ident.NodeID
	inc    ident.Incarnation
	key    Key
	luns   []string
	at     time.Time
}

// Valid reports whether p came from a successful Fence.
func (p Proof) Valid() bool { return p.victim != 0 && len(p.luns) > 0 }

// Victim is the fenced node.
func (p Proof) Victim() ident.NodeID { return p.victim }

// Incarnation is the victim's incarnation the fence was asked for.
func (p Proof) Incarnation() ident.Incarnation { return p.inc }

// Key is the victim's removed key.
func (p Proof) Key() Key { return p.key }

// LUNs lists the verified LUNs.
func (p Proof) LUNs() []string { return slices.Clone(p.luns) }

// At is when the last LUN was verified.
func (p Proof) At() time.Time { return p.at }

// Covers reports whether lun was verified.
func (p Proof) Covers(lun string) bool { return p.Valid() && slices.Contains(p.luns, lun) }

func (p Proof) String() string {
	if !p.Valid() {
		return "no fencing proof"
	}
	return fmt.Sprintf("node %d (incarnation %#x, key %v) fenced on %v at %s", p.victim, uint64(p.inc), p.key, p.luns, p.at.Format(time.RFC3339Nano))
}

// Fence removes victim's registrations from every LUN and returns the
// proof once every LUN is verified.
//
// Per LUN: read the keys; if our own key is missing we have been fenced
// ourselves (ErrSelfFenced: stop, never re-register, or two survivors
// could undo each other's fence and both write); if the victim's key is
// registered, PREEMPT AND ABORT it with our key on a path device (the
// victim's queued commands are aborted, not just refused from now on); a
// RESERVATION CONFLICT there is read again: our key gone is ErrSelfFenced,
// the victim's key gone means someone fenced it first; then RESERVE if no
// reservation is held; and verify that the victim's key is gone, ours is
// there, and a reservation of the configured type is held by a registered
// key of this cluster.
//
// It fails closed: any error returns no proof, and the caller must not
// take over the victim's storage (it retries with backoff, or waits for
// the victim's watchdog deadline).
func (f *Fencer) Fence(ctx context.Context, victim ident.NodeID, inc ident.Incarnation, luns []*LUN) (Proof, error) {
	op := fmt.Sprintf("fence node %d", victim)
	if err := f.check(op, luns); err != nil {
		return Proof{}, err
	}
	if victim < 1 || victim > ident.MaxNodes || victim == f.Self {
		return Proof{}, &Error{Op: op, Step: "configuration", Err: fmt.Errorf("%w: victim %d (this node is %d)", ErrBadRequest, victim, f.Self)}
	}
	vk := NodeKey(f.Cluster, victim)
	var names []string
	for _, l := range luns {
		t0 := time.Now()
		if err := f.fenceLUN(ctx, op, vk, l); err != nil {
			f.log().Error("fence failed: no takeover of this node's storage", "victim", victim, "lun", l.Name, "err", err)
			return Proof{}, err
		}
		f.log().Info("fenced", "victim", victim, "key", vk, "lun", l.Name, "took", time.Since(t0))
		names = append(names, l.Name)
	}
	return Proof{victim: victim, inc: inc, key: vk, luns: names, at: f.now()}, nil
}

// stepError is the typed error of one step of op on LUN l, through path p
// (nil: the LUN as a whole).
func stepError(op string, l *LUN, p Path, step string, err error) error {
	e := &Error{Op: op, LUN: l.Name, Step: step, Err: err}
	if p != nil {
		e.Path = p.Name()
	}
	return e
}

func (f *Fencer) fenceLUN(ctx context.Context, op string, vk Key, l *LUN) error {
	own := NodeKey(f.Cluster, f.Self)
	fail := func(p Path, step string, err error) error { return stepError(op, l, p, step, err) }
	st, err := readState(ctx, l)
	if err != nil {
		return fail(nil, "read keys", err)
	}
	if st.count(own) == 0 {
		return fail(nil, "check own registration", fmt.Errorf("%w (key %v; registered: %v)", ErrSelfFenced, own, keyList(st.keys.Keys)))
	}
	if st.count(vk) > 0 {
		if err := f.preempt(ctx, op, l, own, vk); err != nil {
			return err
		}
	}
	st, err = readState(ctx, l)
	if err != nil {
		return fail(nil, "read back", err)
	}
	if !st.res.Held {
		if err := f.reserveAny(ctx, op, l, own); err != nil {
			return err
		}
		if st, err = readState(ctx, l); err != nil {
			return fail(nil, "read back", err)
		}
	}
	switch {
	case st.count(own) == 0:
		return fail(nil, "verify", fmt.Errorf("%w (key %v)", ErrSelfFenced, own))
	case st.count(vk) > 0:
		return fail(nil, "verify", fmt.Errorf("%w: victim key %v still registered %d times", ErrVerify, vk, st.count(vk)))
	}
	return f.verifyReservation(st, op, l)
}

// preempt issues PREEMPT AND ABORT on each path in turn until one takes
// it. A path failure or a conflict on a nexus of ours that is not
// registered moves on; a conflict after which our key is gone is
// ErrSelfFenced; one after which the victim's key is gone is success (a
// peer preempted it first). A conflict whose outcome no path can read
// moves on too: it may be either, so it is neither ErrSelfFenced nor
// success, and if every path ends so the error is the caller's to retry
// (a node that was fenced finds its own key gone then, or meets the
// storage's refusal at its next write).
func (f *Fencer) preempt(ctx context.Context, op string, l *LUN, own, vk Key) error {
	const step = "preempt and abort"
	var errs []error
	for _, p := range l.Paths {
		err := p.Out(ctx, scsi.PreemptAndAbort, f.typ(), scsi.OutParams{Key: uint64(own), ServiceKey: uint64(vk)})
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		switch {
		case errors.Is(err, ErrReservationConflict):
			st, rerr := readState(ctx, l)
			switch {
			case rerr != nil:
				errs = append(errs, fmt.Errorf("read keys after the conflict: %w", rerr))
			case st.count(own) == 0:
				return &Error{Op: op, LUN: l.Name, Path: p.Name(), Step: step, Err: fmt.Errorf("%w: %w", ErrSelfFenced, err)}
			case st.count(vk) == 0:
				return nil
			}
		case errors.Is(err, ErrPath):
		default:
			return &Error{Op: op, LUN: l.Name, Path: p.Name(), Step: step, Err: err}
		}
	}
	return &Error{Op: op, LUN: l.Name, Step: step + " on every path", Err: errors.Join(errs...)}
}

// reserveAny takes the reservation through the first path that can. A
// conflict (another node reserved first, or this nexus is not registered)
// moves on to the next path; if every path conflicted, verification
// judges what is held.
func (f *Fencer) reserveAny(ctx context.Context, op string, l *LUN, own Key) error {
	var errs []error
	conflicts := 0
	for _, p := range l.Paths {
		err := p.Out(ctx, scsi.Reserve, f.typ(), scsi.OutParams{Key: uint64(own)})
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		switch {
		case errors.Is(err, ErrReservationConflict):
			conflicts++
		case errors.Is(err, ErrPath):
		default:
			return &Error{Op: op, LUN: l.Name, Path: p.Name(), Step: "reserve", Err: err}
		}
	}
	if conflicts > 0 {
		return nil
	}
	return &Error{Op: op, LUN: l.Name, Step: "reserve on every path", Err: errors.Join(errs...)}
}

func keyList(ks []uint64) []Key {
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = Key(k)
	}
	return out
}
