package diskhb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNodeIDInUse means a node's slot is being written by a running
// daemon: another node runs with the same node id (often a copied
// configuration naming the wrong node). A newcomer refuses to join.
var ErrNodeIDInUse = errors.New("node id in use by another running daemon")

// SlotWatch is how long and how often WatchSlot watches a slot.
type SlotWatch struct {
	// For is the watch's length: the failure timeout stored in the disk's
	// header plus one heartbeat interval, so a writer running at the
	// header's timing writes at least once in it, even one that is just
	// short of being declared dead.
	For time.Duration
	// Every is the time between reads: half a heartbeat interval.
	Every time.Duration
}

// DefaultSlotWatch derives the watch from the disk header's timing, not
// from the local configuration: the writers run at the header's.
func (d *Disk) DefaultSlotWatch() SlotWatch {
	h := d.hdr
	return SlotWatch{For: h.FailureTimeout + h.HeartbeatInterval, Every: max(h.HeartbeatInterval/2, time.Millisecond)}
}

// WatchSlot reads slot id repeatedly for w.For before a daemon first
// writes it, and returns an error wrapping ErrNodeIDInUse, which names the
// node id and the record seen, when the sector changes meanwhile: another
// daemon is writing it. Reads that fail are retried; when the successful
// reads do not span w.For within 2 x w.For, the slot could not be proven
// idle and the error says why. It returns ctx's error when ctx ends.
func (d *Disk) WatchSlot(ctx context.Context, id int, w SlotWatch) error {
	start := time.Now()
	var first, last []byte
	var firstAt time.Time
	var lastErr error
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		b, err := d.readSlotSector(ctx, id)
		now := time.Now()
		switch {
		case err != nil:
			lastErr = err
		case first == nil:
			first, last, firstAt = b, b, now
		case !bytes.Equal(b, last):
			return d.inUse(id, first, b, now.Sub(firstAt))
		default:
			last = b
			if now.Sub(firstAt) >= w.For {
				return nil
			}
		}
		if now.Sub(start) >= 2*w.For {
			return fmt.Errorf("node id %d: cannot prove that no other daemon writes its quorum-disk slot: reads failed for %v: %w",
				id, now.Sub(start).Round(time.Millisecond), lastErr)
		}
		t.Reset(w.Every)
	}
}

func (d *Disk) inUse(id int, before, after []byte, within time.Duration) error {
	desc := func(b []byte) string {
		s, err := DecodeSlot(b, d.hdr.ClusterUUID, id)
		switch {
		case err != nil:
			return "an unreadable record (" + err.Error() + ")"
		case s.Flags&FlagEmpty != 0:
			return "an empty slot"
		}
		return fmt.Sprintf("node %q incarnation %016x sequence %d", s.NodeName, s.Incarnation, s.Seq)
	}
	return fmt.Errorf("%w: node id %d: its quorum-disk slot changed from %s to %s within %v; two daemons must never run with one node id: stop the other daemon, or give this node its own id in the cluster file",
		ErrNodeIDInUse, id, desc(before), desc(after), within.Round(time.Millisecond))
}
