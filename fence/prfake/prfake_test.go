package prfake

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence/scsi"
)

const wero = scsi.WriteExclusiveRegistrantsOnly

func dev(p *Port) *scsi.Device { return &scsi.Device{T: p, UARetries: -1} }

func out(t *testing.T, p *Port, a scsi.OutAction, ty scsi.Type, rk, sark uint64) error {
	t.Helper()
	return dev(p).Out(context.Background(), a, ty, scsi.OutParams{Key: rk, ServiceKey: sark})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRegisterRules: SPC-4 5.12.7 as the fake implements it.
func TestRegisterRules(t *testing.T) {
	tg := New("lun")
	a, b := tg.Port("lun", "a"), tg.Port("lun", "b")
	if err := out(t, a, scsi.Register, 0, 5, 7); !errors.Is(err, scsi.ErrReservationConflict) {
		t.Errorf("REGISTER by an unregistered nexus with a non-zero key: %v, want conflict", err)
	}
	must(t, out(t, a, scsi.Register, 0, 0, 7))
	if err := out(t, a, scsi.Register, 0, 8, 9); !errors.Is(err, scsi.ErrReservationConflict) {
		t.Errorf("REGISTER with the wrong current key: %v, want conflict", err)
	}
	must(t, out(t, a, scsi.RegisterAndIgnoreExisting, 0, 0, 9))
	must(t, out(t, b, scsi.RegisterAndIgnoreExisting, 0, 0, 9))
	k, err := dev(a).ReadKeys(context.Background())
	must(t, err)
	if !slices.Equal(k.Keys, []uint64{9, 9}) || k.Generation != 3 {
		t.Errorf("keys %+v, want [9 9] at generation 3", k)
	}
	must(t, out(t, a, scsi.Register, 0, 9, 0))
	if st := tg.State("lun"); !slices.Equal(st.Keys, []uint64{9}) || st.Nexus["b"] != 9 {
		t.Errorf("after unregistering a: %+v", st)
	}
}

func TestReserveReleasePreempt(t *testing.T) {
	ctx := context.Background()
	tg := New("lun")
	a, b, c := tg.Port("lun", "a"), tg.Port("lun", "b"), tg.Port("lun", "c")
	for i, p := range []*Port{a, b, c} {
		must(t, out(t, p, scsi.RegisterAndIgnoreExisting, 0, 0, uint64(i+1)))
	}
	if err := out(t, a, scsi.Reserve, wero, 9, 0); !errors.Is(err, scsi.ErrReservationConflict) {
		t.Errorf("RESERVE with a wrong key: %v", err)
	}
	must(t, out(t, a, scsi.Reserve, wero, 1, 0))
	must(t, out(t, a, scsi.Reserve, wero, 1, 0)) // again: no conflict for the holder
	if err := out(t, b, scsi.Reserve, wero, 2, 0); !errors.Is(err, scsi.ErrReservationConflict) {
		t.Errorf("RESERVE over another's reservation: %v", err)
	}
	if err := out(t, a, scsi.Reserve, 2, 1, 0); !errors.Is(err, scsi.ErrNotSupported) {
		t.Errorf("RESERVE type 2: %v, want ILLEGAL REQUEST", err)
	}
	// Unregistered nexus may not write; registered ones may.
	d := tg.Port("lun", "d")
	if err := d.Write(ctx, 0); !errors.Is(err, ErrConflict) {
		t.Errorf("unregistered write under type 5: %v", err)
	}
	must(t, b.Write(ctx, 0))

	// b preempts the holder a: a's registration goes, b holds; a gets 2A/05.
	must(t, out(t, b, scsi.PreemptAndAbort, wero, 2, 1))
	st := tg.State("lun")
	if st.Holder != "b" || st.Key != 2 || slices.Contains(st.Keys, 1) {
		t.Errorf("after preempting a: %+v", st)
	}
	err := dev(a).TestUnitReady(ctx)
	var se *scsi.SenseError
	if !errors.As(err, &se) || se.Sense.ASC != 0x2a || se.Sense.ASCQ != 0x05 {
		t.Errorf("a's next command: %v, want UNIT ATTENTION 2A/05", err)
	}
	must(t, dev(a).TestUnitReady(ctx)) // the attention was reported once
	if err := a.Write(ctx, 0); !errors.Is(err, ErrConflict) {
		t.Errorf("preempted a wrote: %v", err)
	}

	// Preempting a non-holder removes its registration, the reservation stays.
	must(t, out(t, b, scsi.Preempt, wero, 2, 3))
	if st := tg.State("lun"); st.Holder != "b" || slices.Contains(st.Keys, 3) {
		t.Errorf("after preempting c: %+v", st)
	}
	// Preempting a key nobody has: conflict.
	if err := out(t, b, scsi.Preempt, wero, 2, 42); !errors.Is(err, scsi.ErrReservationConflict) {
		t.Errorf("PREEMPT of an unknown key: %v", err)
	}
	// Releasing with the wrong type is ILLEGAL REQUEST; with the right one it frees.
	if err := out(t, b, scsi.Release, scsi.WriteExclusive, 2, 0); !errors.Is(err, scsi.ErrCheckCondition) {
		t.Errorf("RELEASE with the wrong type: %v", err)
	}
	must(t, out(t, b, scsi.Release, wero, 2, 0))
	if st := tg.State("lun"); st.Held {
		t.Errorf("after release: %+v", st)
	}
	must(t, out(t, b, scsi.Clear, 0, 2, 0))
	if st := tg.State("lun"); len(st.Keys) != 0 {
		t.Errorf("after clear: %+v", st)
	}
}

// TestAbortVersusPreempt: a plain PREEMPT lets the victim's admitted write
// complete; PREEMPT AND ABORT aborts it.
func TestAbortVersusPreempt(t *testing.T) {
	for _, tc := range []struct {
		a    scsi.OutAction
		want error
	}{{scsi.Preempt, nil}, {scsi.PreemptAndAbort, ErrConflict}} {
		ctx := context.Background()
		tg := New("lun")
		v, s := tg.Port("lun", "victim"), tg.Port("lun", "survivor")
		must(t, out(t, v, scsi.RegisterAndIgnoreExisting, 0, 0, 1))
		must(t, out(t, s, scsi.RegisterAndIgnoreExisting, 0, 0, 2))
		must(t, out(t, v, scsi.Reserve, wero, 1, 0))
		done := make(chan error, 1)
		go func() { done <- v.Write(ctx, 100*time.Millisecond) }()
		time.Sleep(20 * time.Millisecond)
		must(t, out(t, s, tc.a, wero, 2, 1))
		if err := <-done; !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("%v: in-flight write %v, want %v", tc.a, err, tc.want)
		}
	}
}

// TestStartFinish: a write admitted with StartWrite and completed with
// Finish at another instant, as the simulation drives it without sleeping:
// aborted in flight by PREEMPT AND ABORT, not by PREEMPT, and refused at
// admission once the nexus's key is gone.
func TestStartFinish(t *testing.T) {
	for _, tc := range []struct {
		a    scsi.OutAction
		want error
	}{{scsi.Preempt, nil}, {scsi.PreemptAndAbort, ErrConflict}} {
		tg := New("lun")
		v, s := tg.Port("lun", "victim"), tg.Port("lun", "survivor")
		must(t, out(t, v, scsi.RegisterAndIgnoreExisting, 0, 0, 1))
		must(t, out(t, s, scsi.RegisterAndIgnoreExisting, 0, 0, 2))
		must(t, out(t, v, scsi.Reserve, wero, 1, 0))
		w, err := v.StartWrite()
		must(t, err)
		must(t, out(t, s, tc.a, wero, 2, 1))
		if err := w.Finish(); !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("%v: in-flight write %v, want %v", tc.a, err, tc.want)
		}
		if _, err := v.StartWrite(); !errors.Is(err, ErrConflict) {
			t.Errorf("%v: a write admitted after the preempt: %v, want ErrConflict", tc.a, err)
		}
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	tg := New("lun")
	p := tg.Port("lun", "a")
	p.Inject(Fault{PathFail: true})
	if err := out(t, p, scsi.RegisterAndIgnoreExisting, 0, 0, 1); !errors.Is(err, scsi.ErrPath) {
		t.Errorf("path failure: %v", err)
	}
	if st := tg.State("lun"); len(st.Keys) != 0 {
		t.Errorf("a failed path executed the command: %+v", st)
	}
	p.Inject(Fault{LostReply: true})
	if err := out(t, p, scsi.RegisterAndIgnoreExisting, 0, 0, 1); !errors.Is(err, scsi.ErrPath) {
		t.Errorf("lost reply: %v", err)
	}
	if st := tg.State("lun"); len(st.Keys) != 1 {
		t.Errorf("a lost reply did not execute the command: %+v", st)
	}
	p.Inject(Fault{Delay: time.Hour})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := dev(p).ReadKeys(short); !errors.Is(err, scsi.ErrTimeout) {
		t.Errorf("slow command: %v, want a timeout", err)
	}
	tg.Restart()
	if err := dev(p).TestUnitReady(ctx); !errors.Is(err, scsi.ErrUnitAttention) {
		t.Errorf("after restart: %v, want UNIT ATTENTION 29/00", err)
	}
	if st := tg.State("lun"); len(st.Keys) != 0 {
		t.Errorf("registrations survived a restart without APTPL: %+v", st)
	}
}
