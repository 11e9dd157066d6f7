package diskhb

import (
	"errors"
	"testing"
)

func TestVerifyOwn(t *testing.T) {
	wrote := Slot{NodeID: 2, Incarnation: 7, Seq: 5}
	reads := func(r SlotRead) []SlotRead { return []SlotRead{{ID: 1}, r} }
	if err := verifyOwn(reads(SlotRead{ID: 2, Slot: wrote}), wrote); err != nil {
		t.Fatalf("matching read back: %v", err)
	}
	if err := verifyOwn(reads(SlotRead{ID: 2, Err: ErrChecksum}), wrote); !errors.Is(err, ErrWriteVerify) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("torn: %v", err)
	}
	if err := verifyOwn(reads(SlotRead{ID: 2, Slot: Slot{NodeID: 2, Incarnation: 7, Seq: 4}}), wrote); !errors.Is(err, ErrWriteVerify) {
		t.Fatalf("lost write: %v", err)
	}
	if err := verifyOwn(reads(SlotRead{ID: 2, Slot: Slot{NodeID: 2, Incarnation: 9, Seq: 100}}), wrote); !errors.Is(err, ErrSlotConflict) {
		t.Fatalf("second daemon with our id: %v", err)
	}
	if err := verifyOwn(reads(SlotRead{ID: 2, Slot: Slot{NodeID: 2, Flags: FlagEmpty}}), wrote); !errors.Is(err, ErrWriteVerify) {
		t.Fatalf("empty slot after our write: %v", err)
	}
}
