package diskhb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/diskhb/fakedev"
)

var (
	cluster = uuid.MustParse("3f1b6c7e-2a44-4d1e-9a53-0c2f6f0a9b01")
	other   = uuid.MustParse("9d2e1f00-5b6a-4c3d-8e7f-112233445566")
)

func header(ss int) diskhb.Header {
	return diskhb.Header{
		ClusterUUID: cluster, ClusterName: "payments", SectorSize: ss, Slots: 4,
		HeartbeatInterval: 200 * time.Millisecond, IOTimeout: 400 * time.Millisecond,
		FailureTimeout: time.Second, WatchdogTimeout: 3 * time.Second,
		FormattedAt: time.Now(),
	}
}

func expect() diskhb.Expect {
	return diskhb.Expect{ClusterUUID: cluster, MaxNodeID: 3, HeartbeatInterval: 200 * time.Millisecond,
		IOTimeout: 400 * time.Millisecond, FailureTimeout: time.Second, WatchdogTimeout: 3 * time.Second}
}

func newFake(t *testing.T, ss int) (*fakedev.Disk, func(name string) *diskhb.Device) {
	t.Helper()
	fd := fakedev.NewDisk(ss, 1024)
	open := func(name string) *diskhb.Device {
		d := diskhb.NewDevice(fd.Path(name), 100*time.Millisecond, nil)
		t.Cleanup(func() { d.Close() })
		return d
	}
	return fd, open
}

func ctx() context.Context { return context.Background() }

func TestFormatOpenRefuse(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		_, open := newFake(t, ss)
		dev := open("admin")
		if _, err := diskhb.Open(ctx(), dev, expect()); !errors.Is(err, diskhb.ErrNotFormatted) {
			t.Fatalf("blank disk: %v", err)
		}
		if err := diskhb.Format(ctx(), dev, header(ss), false); err != nil {
			t.Fatalf("format blank: %v", err)
		}
		d, err := diskhb.Open(ctx(), dev, expect())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if h := d.Header(); h.Slots != 4 || h.SectorSize != ss || h.ClusterName != "payments" {
			t.Fatalf("header %+v", h)
		}
		// A node writes its slot; formatting again must refuse and say
		// what it would erase.
		if err := d.WriteSlot(ctx(), diskhb.Slot{NodeID: 2, Incarnation: 5, Seq: 1}); err != nil {
			t.Fatal(err)
		}
		other := header(ss)
		other.ClusterUUID = uuid.New()
		err = diskhb.Format(ctx(), dev, other, false)
		if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), `"payments"`) || !strings.Contains(err.Error(), "[2]") {
			t.Fatalf("reformat without force: %v", err)
		}
		if err := diskhb.Format(ctx(), dev, other, true); err != nil {
			t.Fatalf("forced: %v", err)
		}
		if _, err := diskhb.Open(ctx(), dev, expect()); !errors.Is(err, diskhb.ErrForeignCluster) {
			t.Fatalf("open after foreign format: %v", err)
		}
	}
}

func TestFormatRefusesDamagedHeader(t *testing.T) {
	fd, open := newFake(t, 512)
	dev := open("admin")
	if err := diskhb.Format(ctx(), dev, header(512), false); err != nil {
		t.Fatal(err)
	}
	fd.FlipBit(40, 3)
	if _, err := diskhb.Open(ctx(), dev, expect()); !errors.Is(err, diskhb.ErrChecksum) {
		t.Fatalf("damaged header opened: %v", err)
	}
	if err := diskhb.Format(ctx(), dev, header(512), false); !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("format over damaged header: %v", err)
	}
}

func TestOpenChecksConfiguration(t *testing.T) {
	_, open := newFake(t, 512)
	dev := open("admin")
	if err := diskhb.Format(ctx(), dev, header(512), false); err != nil {
		t.Fatal(err)
	}
	e := expect()
	e.FailureTimeout = 2 * time.Second
	_, err := diskhb.Open(ctx(), dev, e)
	if !errors.Is(err, diskhb.ErrTimingMismatch) || !strings.Contains(err.Error(), "failure_timeout is 1s on disk, 2s in the configuration") {
		t.Fatalf("timing mismatch: %v", err)
	}
	e = expect()
	e.MaxNodeID = 5
	if _, err := diskhb.Open(ctx(), dev, e); !errors.Is(err, diskhb.ErrGeometry) {
		t.Fatalf("too few slots: %v", err)
	}
	e = expect()
	e.ClusterUUID = other
	if _, err := diskhb.Open(ctx(), dev, e); !errors.Is(err, diskhb.ErrForeignCluster) {
		t.Fatalf("foreign: %v", err)
	}
}

func TestFormatDeviceTooSmall(t *testing.T) {
	fd := fakedev.NewDisk(4096, 100)
	dev := diskhb.NewDevice(fd.Path("a"), 100*time.Millisecond, nil)
	defer dev.Close()
	h := header(4096)
	h.Slots = 16
	if err := diskhb.Format(ctx(), dev, h, false); !errors.Is(err, diskhb.ErrGeometry) {
		t.Fatalf("got %v", err)
	}
}

func TestLocksAndMessages(t *testing.T) {
	fd, open := newFake(t, 4096)
	dev := open("n1")
	if err := diskhb.Format(ctx(), dev, header(4096), false); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(ctx(), dev, expect())
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.ReadLock(ctx(), diskhb.TieBreakLock)
	if err != nil || !l.Free() {
		t.Fatalf("fresh lock: %+v %v", l, err)
	}
	if err := d.WriteLock(ctx(), diskhb.Lock{Index: 0, Owner: 1, OwnerIncarnation: 7, Generation: 1}); err != nil {
		t.Fatal(err)
	}
	// A torn lock write reads as an error, not as free and not as owned.
	fd.Path("n1").TearNextWrite(64)
	if err := d.WriteLock(ctx(), diskhb.Lock{Index: 0, Owner: 2, OwnerIncarnation: 9, Generation: 2}); err != nil {
		t.Fatal(err)
	}
	if l, err := d.ReadLock(ctx(), 0); !errors.Is(err, diskhb.ErrChecksum) || l.Owner != 0 {
		t.Fatalf("torn lock: %+v %v", l, err)
	}
	if err := d.WriteMessage(ctx(), diskhb.Message{To: 3, From: 1, Seq: 1, Command: diskhb.MsgReset, TargetIncarnation: 42}); err != nil {
		t.Fatal(err)
	}
	msgs, errs, err := d.ReadMessages(ctx(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if errs[i] != nil {
			t.Fatalf("message from %d: %v", i+1, errs[i])
		}
		if want := i == 0; (m.Command == diskhb.MsgReset) != want {
			t.Fatalf("message from %d: %+v", i+1, m)
		}
	}
}
