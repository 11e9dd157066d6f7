package guest

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/mtcluster/mtc/fence/scsi"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// TestFenceCDBsMatchSgPersist: for every PR command fencing sends, the CDB
// and parameter list fence/scsi builds are byte for byte what sg_persist
// -vvv reports sending for the same operation on a real LUN (node1's and
// node2's paths to data2, in an order in which every command is valid).
// REPORT CAPABILITIES decoded by fence/scsi agrees with labkit's own
// decoding of sg_persist's bytes.
func TestFenceCDBsMatchSgPersist(t *testing.T) {
	san, ctx := lab(t)
	pr1, pr2 := labkit.PR{Dev: dev(t, san, "node1", "data2")}, labkit.PR{Dev: dev(t, san, "node2", "data2")}
	cleanLUNs(t, ctx, "data2")
	const k1, k1b, k2 uint64 = 0x4d5443a1b2c30101, 0x4d5443a1b2c30111, 0x4d5443a1b2c30102
	hex := func(k uint64) string { return "0x" + strconv.FormatUint(k, 16) }
	wero := scsi.WriteExclusiveRegistrantsOnly

	for _, c := range []struct {
		name   string
		pr     labkit.PR
		args   []string
		cdb    []byte
		params []byte
	}{
		{"REGISTER AND IGNORE EXISTING KEY", pr1, []string{"--out", "--register-ignore", "--param-sark=" + hex(k1)},
			scsi.PROutCDB(scsi.RegisterAndIgnoreExisting, 0), scsi.PROutData(scsi.OutParams{ServiceKey: k1})},
		{"REGISTER (change key)", pr1, []string{"--out", "--register", "--param-rk=" + hex(k1), "--param-sark=" + hex(k1b)},
			scsi.PROutCDB(scsi.Register, 0), scsi.PROutData(scsi.OutParams{Key: k1, ServiceKey: k1b})},
		{"REGISTER AND IGNORE with APTPL", pr1, []string{"--out", "--register-ignore", "--param-aptpl", "--param-sark=" + hex(k1)},
			scsi.PROutCDB(scsi.RegisterAndIgnoreExisting, 0), scsi.PROutData(scsi.OutParams{ServiceKey: k1, APTPL: true})},
		{"REGISTER AND IGNORE without APTPL", pr1, []string{"--out", "--register-ignore", "--param-sark=" + hex(k1)},
			scsi.PROutCDB(scsi.RegisterAndIgnoreExisting, 0), scsi.PROutData(scsi.OutParams{ServiceKey: k1})},
		{"REGISTER node2", pr2, []string{"--out", "--register-ignore", "--param-sark=" + hex(k2)},
			scsi.PROutCDB(scsi.RegisterAndIgnoreExisting, 0), scsi.PROutData(scsi.OutParams{ServiceKey: k2})},
		{"RESERVE type 5", pr1, []string{"--out", "--reserve", "--param-rk=" + hex(k1), "--prout-type=5"},
			scsi.PROutCDB(scsi.Reserve, wero), scsi.PROutData(scsi.OutParams{Key: k1})},
		{"RELEASE type 5", pr1, []string{"--out", "--release", "--param-rk=" + hex(k1), "--prout-type=5"},
			scsi.PROutCDB(scsi.Release, wero), scsi.PROutData(scsi.OutParams{Key: k1})},
		{"RESERVE type 5 again", pr1, []string{"--out", "--reserve", "--param-rk=" + hex(k1), "--prout-type=5"},
			scsi.PROutCDB(scsi.Reserve, wero), scsi.PROutData(scsi.OutParams{Key: k1})},
		{"PREEMPT node1 by node2", pr2, []string{"--out", "--preempt", "--param-rk=" + hex(k2), "--param-sark=" + hex(k1), "--prout-type=5"},
			scsi.PROutCDB(scsi.Preempt, wero), scsi.PROutData(scsi.OutParams{Key: k2, ServiceKey: k1})},
		{"REGISTER node1 again", pr1, []string{"--out", "--register-ignore", "--param-sark=" + hex(k1)},
			scsi.PROutCDB(scsi.RegisterAndIgnoreExisting, 0), scsi.PROutData(scsi.OutParams{ServiceKey: k1})},
		{"PREEMPT AND ABORT node1 by node2", pr2, []string{"--out", "--preempt-abort", "--param-rk=" + hex(k2), "--param-sark=" + hex(k1), "--prout-type=5"},
			scsi.PROutCDB(scsi.PreemptAndAbort, wero), scsi.PROutData(scsi.OutParams{Key: k2, ServiceKey: k1})},
		{"CLEAR", pr2, []string{"--out", "--clear", "--param-rk=" + hex(k2)},
			scsi.PROutCDB(scsi.Clear, 0), scsi.PROutData(scsi.OutParams{Key: k2})},
	} {
		// A preempt leaves the preempted nexus a unit attention, which
		// sg_persist reports instead of running its next command.
		clearUA(t, ctx, c.pr.Dev)
		s, err := c.pr.Sent(ctx, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.Err != nil {
			t.Errorf("%s: sg_persist: %v (the sequence should be valid)", c.name, s.Err)
		}
		if !bytes.Equal(s.CDB, c.cdb) {
			t.Errorf("%s: CDB ours % x, sg_persist % x", c.name, c.cdb, s.CDB)
		}
		if !bytes.Equal(s.Params, c.params) {
			t.Errorf("%s: parameters ours % x, sg_persist % x", c.name, c.params, s.Params)
		}
	}

	clearUA(t, ctx, pr1.Dev)
	for _, c := range []struct {
		name string
		arg  string
		sa   scsi.InAction
	}{
		{"READ KEYS", "--read-keys", scsi.ReadKeys},
		{"READ RESERVATION", "--read-reservation", scsi.ReadReservation},
		{"REPORT CAPABILITIES", "--report-capabilities", scsi.ReportCapabilities},
	} {
		s, err := pr1.Sent(ctx, "--in", c.arg)
		if err != nil || s.Err != nil {
			t.Fatalf("%s: %v %v", c.name, err, s.Err)
		}
		if len(s.CDB) != 10 {
			t.Fatalf("%s: sg_persist CDB % x", c.name, s.CDB)
		}
		alloc := binary.BigEndian.Uint16(s.CDB[7:])
		if want := scsi.PRInCDB(c.sa, alloc); !bytes.Equal(s.CDB, want) || alloc == 0 {
			t.Errorf("%s: CDB ours % x, sg_persist % x", c.name, want, s.CDB)
		}
	}

	p := openPath(t, pr1.Dev)
	ours, err := p.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := pr1.ReportCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mask uint16
	for _, ty := range ours.Types {
		mask |= map[scsi.Type]uint16{1: 0x0200, 3: 0x0800, 5: 0x2000, 6: 0x4000, 7: 0x8000, 8: 0x0001}[ty]
	}
	if ours.PTPLC != theirs.PTPLC || ours.ATPC != theirs.ATPC || ours.SIPC != theirs.SIPC || ours.CRH != theirs.CRH ||
		ours.TMV != theirs.TMV || ours.PTPLA != theirs.PTPLA || (theirs.TMV && mask != theirs.TypeMask&0xea01) {
		t.Errorf("REPORT CAPABILITIES: ours %+v, sg_persist %+v", ours, theirs)
	}
	t.Logf("LIO REPORT CAPABILITIES: %+v", ours)
}
