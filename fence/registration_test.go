package fence

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/fence/scsi"
)

func isReadKeys(cdb []byte) bool {
	return cdb[0] == scsi.OpPersistentReserveIn && scsi.InAction(cdb[1]&0x1f) == scsi.ReadKeys
}

// A registered node finds its key on every LUN, once per path; after a
// peer's fence it finds it gone on every LUN the fence reached, through
// the REGISTRATIONS PREEMPTED unit attention its nexus gets, and a LUN
// the fence has not reached yet still shows it. Nothing at the target
// changes: the check sends PR IN only.
func TestCheckRegistrationSeesAFence(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "quorum", "data1")
	c.unfenceAll(t, ctx)
	regs, err := c.fencer(1).CheckRegistration(ctx, c.lunsOf(1))
	if err != nil || regs.Err() != nil || len(regs.Gone()) != 0 || len(regs) != 2 {
		t.Fatalf("registered node: %v (%v, %v)", regs, err, regs.Err())
	}
	for _, r := range regs {
		if r.Nexuses != 2 || r.Paths != 2 || r.Partial() {
			t.Errorf("LUN %s: %d registrations over %d paths, want 2 of 2", r.LUN, r.Nexuses, r.Paths)
		}
	}
	before := c.t.State("quorum").Generation

	// Node 2 fences node 1 on the data LUN only (a fence under way, or
	// one whose preempt on the quorum LUN came before a re-registration).
	if _, err := c.fencer(2).Fence(ctx, 1, 7, c.lunsOf(2)[1:]); err != nil {
		t.Fatal(err)
	}
	regs, err = c.fencer(1).CheckRegistration(ctx, c.lunsOf(1))
	if err != nil || regs.Err() != nil {
		t.Fatalf("after the fence: %v (%v, %v)", regs, err, regs.Err())
	}
	if got := regs.Gone(); !slices.Equal(got, []string{"data1"}) {
		t.Fatalf("gone on %v, want [data1] (%v)", got, regs)
	}
	if g := c.t.State("quorum").Generation; g != before {
		t.Errorf("the check changed the target: generation %d -> %d", before, g)
	}
}

// A dead path is not a removed key: READ KEYS that fails on every path
// (transport failure, timeout) leaves the LUN unknown with the path
// error, never gone; one failing path of two is failed over.
func TestCheckRegistrationDeadPathIsNotGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault prfake.Fault
		want  error
	}{
		{"every path fails", prfake.Fault{Match: isReadKeys, PathFail: true}, ErrPath},
		{"every path hangs", prfake.Fault{Match: isReadKeys, Delay: time.Hour}, ErrTimeout},
		{"every reply is lost", prfake.Fault{Match: isReadKeys, LostReply: true}, ErrPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			c := newCluster(2, "quorum", "data1")
			c.unfenceAll(t, ctx)
			for _, p := range c.ports[1]["data1"] {
				p.Inject(tc.fault)
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			regs, err := c.fencer(1).CheckRegistration(short, c.lunsOf(1))
			if err != nil {
				t.Fatal(err)
			}
			if len(regs.Gone()) != 0 {
				t.Fatalf("a dead path reported as a removed key: %v", regs)
			}
			if !errors.Is(regs.Err(), tc.want) || regs[1].Err == nil || regs[0].Err != nil {
				t.Fatalf("errors %v, want %v on data1 alone", regs.Err(), tc.want)
			}
			var fe *Error
			if !errors.As(regs[1].Err, &fe) || fe.LUN != "data1" || fe.Step != "read keys" {
				t.Errorf("error %v does not name LUN data1 and its step", regs[1].Err)
			}
		})
	}
	t.Run("one path of two fails", func(t *testing.T) {
		ctx := ctxT(t)
		c := newCluster(2, "data1")
		c.unfenceAll(t, ctx)
		c.ports[1]["data1"][0].Inject(prfake.Fault{Match: isReadKeys, PathFail: true})
		regs, err := c.fencer(1).CheckRegistration(ctx, c.lunsOf(1))
		if err != nil || regs.Err() != nil || regs[0].Nexuses != 2 {
			t.Fatalf("with the first path failing: %v (%v, %v)", regs, err, regs.Err())
		}
	})
}

// A path whose session was logged in again (a new, unregistered nexus)
// shows as a partial registration; a backend that cannot read PR state
// leaves the LUN unknown; a request without LUNs is refused.
func TestCheckRegistrationPartialAndUnreadable(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(2, "data1")
	c.unfenceAll(t, ctx)
	l := c.lunsOf(1)
	l[0].Paths = append(l[0].Paths, NewSCSIPath("new-session", BackendFake, c.t.Port("data1", "node1-new-session"), nil))
	regs, err := c.fencer(1).CheckRegistration(ctx, l)
	if err != nil || !regs[0].Partial() || regs[0].Gone() {
		t.Fatalf("a new session: %+v (%v), want partial", regs, err)
	}

	l = c.lunsOf(1)
	for i, p := range l[0].Paths {
		l[0].Paths[i] = noReads{p}
	}
	regs, err = c.fencer(1).CheckRegistration(ctx, l)
	if err != nil || !errors.Is(regs.Err(), ErrNotSupported) || len(regs.Gone()) != 0 {
		t.Fatalf("no PR reads: %v (%v, %v), want unknown with ErrNotSupported", regs, err, regs.Err())
	}

	if _, err := c.fencer(1).CheckRegistration(ctx, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("no LUNs: %v, want ErrBadRequest", err)
	}
}
