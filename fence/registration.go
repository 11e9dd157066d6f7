package fence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mtcluster/mtc/fence/scsi"
)

// Registration is this node's registration on one LUN as READ KEYS shows
// it (Fencer.CheckRegistration).
type Registration struct {
	LUN string
	// Nexuses is how many registrations hold this node's key; 0 means the
	// key is gone: a PREEMPT (a peer's fence) removed it. Meaningful only
	// when Err is nil.
	Nexuses int
	// Paths is how many paths this node has to the LUN.
	Paths int
	// Err: READ KEYS failed on every path (a dead or hung path, a
	// timeout, a backend that cannot read PR state). Nothing is known of
	// the registration then, which is not the same as gone.
	Err error
}

// Gone: the LUN answered, and no registration holds this node's key.
func (r Registration) Gone() bool { return r.Err == nil && r.Nexuses == 0 }

// Partial: the key is registered, but by fewer registrations than this
// node has paths: a path's session was logged in again (a new I_T nexus
// is unregistered), or a registration of ours was lost. Writes through
// that path meet RESERVATION CONFLICT until the node registers it.
func (r Registration) Partial() bool { return r.Err == nil && r.Nexuses > 0 && r.Nexuses < r.Paths }

// Registrations are the outcome of one CheckRegistration, one per LUN in
// the order given.
type Registrations []Registration

// Gone lists the LUNs on which this node's key is gone.
func (rs Registrations) Gone() []string {
	var out []string
	for _, r := range rs {
		if r.Gone() {
			out = append(out, r.LUN)
		}
	}
	return out
}

// Err joins the errors of the LUNs that could not be read (nil when every
// LUN answered).
func (rs Registrations) Err() error {
	var errs []error
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

func (rs Registrations) String() string {
	var parts []string
	for _, r := range rs {
		switch {
		case r.Err != nil:
			parts = append(parts, r.LUN+": unknown")
		case r.Gone():
			parts = append(parts, r.LUN+": gone")
		default:
			parts = append(parts, fmt.Sprintf("%s: %d of %d paths", r.LUN, r.Nexuses, r.Paths))
		}
	}
	return strings.Join(parts, ", ")
}

// CheckRegistration reads the registered keys of every LUN (PERSISTENT
// RESERVE IN, READ KEYS: it changes nothing at the target) and reports
// this node's registration on each, so that a node learns that a peer's
// fence removed its key even when nothing it writes meets the
// reservation (a LUN only its packages write, a fence that landed on
// some LUNs and not others).
//
// Per LUN, READ KEYS goes through the first path that answers: a path
// failure or a timeout moves on to the next path (a unit attention, such
// as the REGISTRATIONS PREEMPTED a fenced nexus gets, is cleared and the
// command retried by the device layer). A LUN that no path can read has
// Err set: a dead path is not a removed key, and the caller must not
// treat it as one. The returned error is set only for a request that is
// wrong in itself (ErrBadRequest); every command honours ctx's deadline.
//
// READ KEYS lists keys, not the nexuses that hold them: a registration
// of our key left by an earlier session of ours counts as ours (Rejoin
// removes such registrations).
func (f *Fencer) CheckRegistration(ctx context.Context, luns []*LUN) (Registrations, error) {
	const op = "check registration"
	if err := f.check(op, luns); err != nil {
		return nil, err
	}
	own := NodeKey(f.Cluster, f.Self)
	out := make(Registrations, 0, len(luns))
	for _, l := range luns {
		r := Registration{LUN: l.Name, Paths: len(l.Paths)}
		keys, err := readKeys(ctx, l)
		if err != nil {
			r.Err = &Error{Op: op, LUN: l.Name, Step: "read keys", Err: err}
			f.log().Warn("cannot read the registered keys: this node's registration is unknown", "lun", l.Name, "err", err)
		} else {
			for _, k := range keys.Keys {
				if Key(k) == own {
					r.Nexuses++
				}
			}
			if r.Nexuses == 0 {
				f.log().Error("this node's key is gone from the LUN: a peer fenced this node", "lun", l.Name, "key", own, "registered", keyList(keys.Keys))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// readKeys reads l's keys through the first path that answers: a path
// failure (a timeout included) moves on to the next path, anything else
// fails.
func readKeys(ctx context.Context, l *LUN) (scsi.Keys, error) {
	var errs []error
	for _, p := range l.Paths {
		k, err := p.ReadKeys(ctx)
		if err == nil {
			return k, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		if !errors.Is(err, ErrPath) {
			break
		}
	}
	return scsi.Keys{}, errors.Join(errs...)
}
