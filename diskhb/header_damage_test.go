package diskhb

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// A header one bit away from valid is a damaged quorum disk, never "not a
// quorum disk": the distinction decides whether `mtc disk init` may erase
// it and whether a starting daemon advises doing so.
func TestHeaderOneBitFromValidIsDamaged(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		good, err := EncodeHeader(testHeader(ss))
		if err != nil {
			t.Fatal(err)
		}
		// Every single-bit flip anywhere in the sector.
		for bit := 0; bit < 8*ss; bit++ {
			b := slices.Clone(good)
			b[bit/8] ^= 1 << (bit % 8)
			_, err := DecodeHeader(b, testCluster)
			if !errors.Is(err, ErrDamagedHeader) || errors.Is(err, ErrNotFormatted) {
				t.Fatalf("%d: bit %d flipped: %v, want ErrDamagedHeader", ss, bit, err)
			}
		}
		// Up to maxMagicDistance bits of the magic.
		b := slices.Clone(good)
		for _, bit := range []int{0, 9, 18, 63} {
			b[bit/8] ^= 1 << (bit % 8)
		}
		if _, err := DecodeHeader(b, testCluster); !errors.Is(err, ErrDamagedHeader) || !strings.Contains(err.Error(), "4 bit(s) away") {
			t.Fatalf("%d: four magic bits: %v", ss, err)
		}
		// The whole magic overwritten, the layout fields intact.
		b = slices.Clone(good)
		copy(b, "garbage!")
		if _, err := DecodeHeader(b, testCluster); !errors.Is(err, ErrDamagedHeader) {
			t.Fatalf("%d: overwritten magic: %v", ss, err)
		}
		// A bad checksum is both damaged and a checksum error.
		b = slices.Clone(good)
		b[ss-1] ^= 0x40
		if _, err := DecodeHeader(b, testCluster); !errors.Is(err, ErrDamagedHeader) || !errors.Is(err, ErrChecksum) {
			t.Fatalf("%d: checksum: %v", ss, err)
		}
	}
}

func TestHeaderNotFormatted(t *testing.T) {
	slot, _ := EncodeSlot(testSlot(), 512, testCluster)
	noise := make([]byte, 512)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	for name, b := range map[string][]byte{"blank": make([]byte, 512), "a slot record": slot, "noise": noise} {
		if _, err := DecodeHeader(b, testCluster); !errors.Is(err, ErrNotFormatted) || errors.Is(err, ErrDamagedHeader) {
			t.Errorf("%s: %v, want ErrNotFormatted", name, err)
		}
	}
	// A flipped bit in a slot's magic is a corrupted slot, not a missing one.
	slot[3] ^= 2
	if _, err := DecodeSlot(slot, testCluster, 3); !errors.Is(err, ErrChecksum) {
		t.Errorf("slot with one magic bit flipped: %v", err)
	}
}

// A header that checksums but holds impossible timings is damaged: it
// must not dump as io_timeout=-1ns, nor drive a watch of zero length.
func TestHeaderTimingsChecked(t *testing.T) {
	good, _ := EncodeHeader(testHeader(512))
	for _, c := range []struct {
		off  int
		v    time.Duration
		name string
	}{
		{40, 0, "heartbeat_interval"}, {48, -1, "io_timeout"}, {56, 0, "failure_timeout"},
		{64, -time.Second, "watchdog_timeout"}, {56, 25 * time.Hour, "failure_timeout"},
	} {
		b := slices.Clone(good)
		le.PutUint64(b[c.off:], uint64(c.v))
		seal(b)
		_, err := DecodeHeader(b, testCluster)
		if !errors.Is(err, ErrDamagedHeader) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s = %v: %v", c.name, c.v, err)
		}
		h := testHeader(512)
		switch c.off {
		case 40:
			h.HeartbeatInterval = c.v
		case 48:
			h.IOTimeout = c.v
		case 56:
			h.FailureTimeout = c.v
		case 64:
			h.WatchdogTimeout = c.v
		}
		if _, err := EncodeHeader(h); err == nil {
			t.Errorf("%s = %v encoded", c.name, c.v)
		}
	}
}

func TestHeaderSectorSize(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		b, _ := EncodeHeader(testHeader(ss))
		b[5] ^= 1
		if got, ok := HeaderSectorSize(b); !ok || got != ss {
			t.Errorf("%d: damaged header reports %d %v", ss, got, ok)
		}
	}
	if _, ok := HeaderSectorSize(make([]byte, 512)); ok {
		t.Error("blank sector has a sector size")
	}
}

func TestFlagNamesShowUndefinedBits(t *testing.T) {
	all := ^uint32(0)
	names := FlagNames(all)
	if !slices.Contains(names, "empty") || names[len(names)-1] != "undefined:0xffffffe0" {
		t.Fatalf("all flags: %v", names)
	}
	if (Slot{Flags: all}).Empty() || (Slot{Flags: FlagEmpty | FlagRunning}).Empty() || !(Slot{Flags: FlagEmpty}).Empty() {
		t.Fatal("Empty must mean exactly the empty flag")
	}
}
