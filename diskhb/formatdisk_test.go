package diskhb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/diskhb"
)

// fastHeader is a header with short timings, so that watches are short:
// WriterGoneAfter is 20+20+2+2*5 = 52 ms.
func fastHeader(ss int) diskhb.Header {
	h := header(ss)
	h.HeartbeatInterval, h.IOTimeout, h.FailureTimeout, h.WatchdogTimeout = 5*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	return h
}

// writeLoop keeps writing node id's slot every 2 ms until the test ends,
// as a running daemon does.
func writeLoop(t *testing.T, d *diskhb.Disk, id int) {
	t.Helper()
	if err := d.WriteSlot(context.Background(), diskhb.Slot{NodeID: id, Incarnation: 7, Flags: diskhb.FlagRunning}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); ctx.Err() == nil; seq++ {
			_ = d.WriteSlot(ctx, diskhb.Slot{NodeID: id, Incarnation: 7, Seq: seq, Flags: diskhb.FlagRunning})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func TestFormatOnlyBlankWithoutForce(t *testing.T) {
	fd, open := newFake(t, 512)
	dev := open("admin")
	fd.Poke(50_000, []byte{1})
	_, err := diskhb.FormatWith(ctx(), dev, fastHeader(512), diskhb.FormatOptions{})
	if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "first non-zero byte is at offset 50000") {
		t.Fatalf("format over data: %v", err)
	}
	if fd.Peek(50_000, 1)[0] != 1 {
		t.Fatal("refused format wrote the device")
	}
	// Past the area Format writes, data is not its business.
	fd.Poke(50_000, []byte{0})
	fd.Poke(fd.Size()-1, []byte{1})
	if _, err := diskhb.FormatWith(ctx(), dev, fastHeader(512), diskhb.FormatOptions{}); err != nil {
		t.Fatalf("format with data past the quorum area: %v", err)
	}
}

// Planted: a signature of each kind the tools name, at its place.
func TestFormatNamesSignatures(t *testing.T) {
	for _, c := range []struct {
		off  int64
		b    string
		want string
	}{
		{1080, "\x53\xef", "an ext2 filesystem"},
		{0, "XFSB", "an XFS filesystem"},
		{1024, "LABELONE", "an LVM2 physical volume"},
		{4086, "SWAPSPACE2", "a Linux swap area"},
		{512, "EFI PART", "a GPT partition table"},
		{510, "\x55\xaa", "an MBR partition table or boot sector"},
		{65600, "_BHRfS_M", "a btrfs filesystem"},
	} {
		fd, open := newFake(t, 512)
		fd.Poke(c.off, []byte(c.b))
		_, err := diskhb.FormatWith(ctx(), open("admin"), fastHeader(512), diskhb.FormatOptions{})
		if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}
}

// The reproductions: a zeroed header over live slots, and one bit
// of the magic flipped on a running cluster's disk. Neither may be erased,
// with or without force, while a slot changes.
func TestFormatRefusesWhileSlotsChange(t *testing.T) {
	for _, damage := range []string{"zeroed header", "flipped magic bit"} {
		t.Run(damage, func(t *testing.T) {
			fd, open := newFake(t, 512)
			dev := open("admin")
			h := fastHeader(512)
			if err := diskhb.Format(ctx(), dev, h, false); err != nil {
				t.Fatal(err)
			}
			d, err := diskhb.Open(ctx(), open("n2"), expect2(h))
			if err != nil {
				t.Fatal(err)
			}
			writeLoop(t, d, 2)
			if damage == "zeroed header" {
				fd.Poke(0, make([]byte, 512))
			} else {
				fd.FlipBit(2, 0)
			}
			_, err = diskhb.FormatWith(ctx(), dev, h, diskhb.FormatOptions{})
			if !errors.Is(err, diskhb.ErrWouldErase) || !strings.Contains(err.Error(), "slots of node ids [2]") {
				t.Fatalf("without force: %v", err)
			}
			want := map[string]string{"zeroed header": "records of cluster " + h.ClusterUUID.String() + " but no header",
				"flipped magic bit": "damaged MT-Cluster quorum disk header"}[damage]
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%q not named: %v", want, err)
			}
			var watched time.Duration
			plan, err := diskhb.FormatWith(ctx(), dev, h, diskhb.FormatOptions{Force: true,
				OnWatch: func(_ diskhb.FormatPlan, d time.Duration) { watched = d }})
			if !errors.Is(err, diskhb.ErrInUse) || !strings.Contains(err.Error(), "slots of node ids [2] changed") {
				t.Fatalf("forced: %v", err)
			}
			if watched < h.WriterGoneAfter() || plan.Watched != watched {
				t.Fatalf("watched %v (plan %v), want at least %v", watched, plan.Watched, h.WriterGoneAfter())
			}
			if got := fd.Peek(int64(diskhb.SlotLBA+1)*512, 8); string(got) != "MTCQSLT1" {
				t.Fatalf("slot 2 was overwritten: %q", got)
			}
		})
	}
}

// A damaged header's timings, when readable, set the watch: a disk whose
// nodes heartbeat slowly is watched for as long as they need, even when
// the local configuration's timings are short.
func TestFormatWatchesByTheDisksTiming(t *testing.T) {
	fd, open := newFake(t, 512)
	dev := open("admin")
	slow := fastHeader(512)
	slow.FailureTimeout = 60 * time.Millisecond
	if err := diskhb.Format(ctx(), dev, slow, false); err != nil {
		t.Fatal(err)
	}
	fd.FlipBit(0, 1)
	var watched time.Duration
	if _, err := diskhb.FormatWith(ctx(), dev, fastHeader(512), diskhb.FormatOptions{Force: true,
		OnWatch: func(_ diskhb.FormatPlan, d time.Duration) { watched = d }}); err != nil {
		t.Fatalf("forced over an idle damaged disk: %v", err)
	}
	if watched != slow.WriterGoneAfter() || watched <= fastHeader(512).WriterGoneAfter() {
		t.Fatalf("watched %v, want the damaged header's %v", watched, slow.WriterGoneAfter())
	}
	if _, err := diskhb.Open(ctx(), dev, expect2(fastHeader(512))); err != nil {
		t.Fatalf("after forced format: %v", err)
	}
}

func TestWatchSlotsSeesAnyWriter(t *testing.T) {
	fd, open := newFake(t, 512)
	h := fastHeader(512)
	if err := diskhb.Format(ctx(), open("admin"), h, false); err != nil {
		t.Fatal(err)
	}
	d, err := diskhb.Open(ctx(), open("n1"), expect2(h))
	if err != nil {
		t.Fatal(err)
	}
	// Slot 3 holds garbage that keeps changing: not a record, but a writer.
	stop := make(chan struct{})
	go func() {
		for i := byte(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fd.Poke(int64(diskhb.SlotLBA+2)*512+100, []byte{i})
			time.Sleep(time.Millisecond)
		}
	}()
	defer close(stop)
	changed, err := d.WatchSlots(ctx(), 30*time.Millisecond, 2*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := changed[3]; !ok || len(changed) != 1 {
		t.Fatalf("changed %v, want slot 3 only", changed)
	}
}

func expect2(h diskhb.Header) diskhb.Expect {
	return diskhb.Expect{ClusterUUID: h.ClusterUUID, MaxNodeID: 3}
}
