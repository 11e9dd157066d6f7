package scsi

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCDBGolden: the bytes of every command fencing sends, written out by
// hand from SPC-4 6.16-6.17 and matching what sg_persist -vvv prints for
// the same operation (the lab test TestFenceCDBsMatchSgPersist compares
// them on a real target).
func TestCDBGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"TEST UNIT READY", TestUnitReadyCDB(), "00 00 00 00 00 00"},
		{"READ KEYS alloc 8192", PRInCDB(ReadKeys, 8192), "5e 00 00 00 00 00 00 20 00 00"},
		{"READ RESERVATION alloc 24", PRInCDB(ReadReservation, 24), "5e 01 00 00 00 00 00 00 18 00"},
		{"REPORT CAPABILITIES alloc 8", PRInCDB(ReportCapabilities, 8), "5e 02 00 00 00 00 00 00 08 00"},
		{"READ FULL STATUS alloc 0xffff", PRInCDB(ReadFullStatus, 0xffff), "5e 03 00 00 00 00 00 ff ff 00"},
		{"REGISTER", PROutCDB(Register, WriteExclusiveRegistrantsOnly), "5f 00 00 00 00 00 00 00 18 00"},
		{"REGISTER AND IGNORE", PROutCDB(RegisterAndIgnoreExisting, WriteExclusiveRegistrantsOnly), "5f 06 00 00 00 00 00 00 18 00"},
		{"RESERVE type 5", PROutCDB(Reserve, WriteExclusiveRegistrantsOnly), "5f 01 05 00 00 00 00 00 18 00"},
		{"RESERVE type 1", PROutCDB(Reserve, WriteExclusive), "5f 01 01 00 00 00 00 00 18 00"},
		{"RELEASE type 5", PROutCDB(Release, WriteExclusiveRegistrantsOnly), "5f 02 05 00 00 00 00 00 18 00"},
		{"CLEAR", PROutCDB(Clear, WriteExclusiveRegistrantsOnly), "5f 03 00 00 00 00 00 00 18 00"},
		{"PREEMPT type 5", PROutCDB(Preempt, WriteExclusiveRegistrantsOnly), "5f 04 05 00 00 00 00 00 18 00"},
		{"PREEMPT AND ABORT type 5", PROutCDB(PreemptAndAbort, WriteExclusiveRegistrantsOnly), "5f 05 05 00 00 00 00 00 18 00"},
		{"PREEMPT AND ABORT type 6", PROutCDB(PreemptAndAbort, ExclusiveAccessRegistrantsOnly), "5f 05 06 00 00 00 00 00 18 00"},
		{"params register key", PROutData(OutParams{ServiceKey: 0x4d5443a1b2c30102}),
			"00 00 00 00 00 00 00 00 4d 54 43 a1 b2 c3 01 02 00 00 00 00 00 00 00 00"},
		{"params register APTPL", PROutData(OutParams{ServiceKey: 0x11aa, APTPL: true}),
			"00 00 00 00 00 00 00 00 00 00 00 00 00 00 11 aa 00 00 00 00 01 00 00 00"},
		{"params register ALL_TG_PT", PROutData(OutParams{ServiceKey: 0x11aa, AllTgPt: true}),
			"00 00 00 00 00 00 00 00 00 00 00 00 00 00 11 aa 00 00 00 00 04 00 00 00"},
		{"params preempt", PROutData(OutParams{Key: 0x22bb, ServiceKey: 0x11aa}),
			"00 00 00 00 00 00 22 bb 00 00 00 00 00 00 11 aa 00 00 00 00 00 00 00 00"},
		{"params reserve", PROutData(OutParams{Key: 0xfedcba9876543210}),
			"fe dc ba 98 76 54 32 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
	} {
		if want := unhex(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, want)
		}
	}
}

func TestTypeNames(t *testing.T) {
	for _, ty := range Types {
		if !ty.Valid() || strings.HasPrefix(ty.String(), "type ") {
			t.Errorf("type %d: valid %v, name %q", ty, ty.Valid(), ty.String())
		}
	}
	for _, ty := range []Type{0, 2, 4, 9, 15} {
		if ty.Valid() {
			t.Errorf("type %d reported valid", ty)
		}
	}
}
