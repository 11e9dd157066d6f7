package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFenceDefaultsAndLUNs(t *testing.T) {
	c, err := Parse("cluster.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fence.ReservationType != WriteExclusiveRegistrantsOnly || c.Fence.APTPL || c.Fence.LUNs != nil {
		t.Fatalf("fence defaults: %+v", c.Fence)
	}
	if got := c.FenceLUNs("alpha"); !slices.Equal(got, []string{"/dev/sdb"}) {
		t.Fatalf("without [fence], alpha fences %v; want the quorum disk alone", got)
	}
	doc := strings.Replace(base, "lan = \"10.0.0.3\"", "lan = \"10.0.0.3\"", 1) +
		"\n[fence]\nluns = [\"/dev/disk/by-id/wwn-0x1\", \"/dev/mapper/data\"]\nreservation_type = \"exclusive-access-registrants-only\"\naptpl = true\n"
	// gamma lists its own paths to the data LUNs.
	doc = strings.Replace(doc, "id = 3\n", "id = 3\nquorum_disk = \"/dev/mapper/q\"\nfence_luns = [\"/dev/mapper/data-g\"]\n", 1)
	c, err = Parse("cluster.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fence.ReservationType != ExclusiveAccessRegistrantsOnly || !c.Fence.APTPL {
		t.Fatalf("fence: %+v", c.Fence)
	}
	if got := c.FenceLUNs("alpha"); !slices.Equal(got, []string{"/dev/sdb", "/dev/disk/by-id/wwn-0x1", "/dev/mapper/data"}) {
		t.Fatalf("alpha fences %v", got)
	}
	if got := c.FenceLUNs("gamma"); !slices.Equal(got, []string{"/dev/mapper/q", "/dev/mapper/data-g"}) {
		t.Fatalf("gamma fences %v", got)
	}
	if c.Generation() == mustParse(t, base).Generation() {
		t.Fatal("[fence] did not change the generation")
	}
}

func mustParse(t *testing.T, doc string) *Cluster {
	t.Helper()
	c, err := Parse("cluster.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every bad [fence] value is an error naming its field and line.
func TestFenceErrors(t *testing.T) {
	for _, tc := range []struct {
		add   string
		field string
		line  int
		msg   string
	}{
		{"[fence]\nreservation_type = \"write-exclusive\"\n", "fence.reservation_type", 0, "cannot fence: only the holder could write"},
		{"[fence]\nreservation_type = \"wero\"\n", "fence.reservation_type", 0, `"wero" is not a reservation type`},
		{"[fence]\nluns = [\"data\"]\n", "fence.luns[0]", 0, "not a device path under /dev"},
		{"[fence]\nluns = [\"/dev/sdb\"]\n", "fence.luns[0]", 0, "is the quorum disk, which is always fenced"},
		{"[fence]\nluns = [\"/dev/sdc\", \"/dev/sdc\"]\n", "fence.luns[1]", 0, "listed twice"},
		{"[fence]\naptpl = \"yes\"\n", "fence.aptpl", 0, "expected"},
	} {
		_, err := Parse("cluster.toml", []byte(base+"\n"+tc.add))
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) != 1 {
			t.Errorf("%q: want one error, got %v", tc.add, err)
			continue
		}
		fe := errs.List[0]
		// The value's line: [fence] follows base and a blank line.
		tc.line = strings.Count(base, "\n") + 3
		if fe.Field != tc.field || !strings.Contains(fe.Error(), tc.msg) || fe.Line != tc.line {
			t.Errorf("%q: got %s (field %s, line %d); want field %s, line %d, %q", tc.add, fe.Error(), fe.Field, fe.Line, tc.field, tc.line, tc.msg)
		}
	}
	_, err := Parse("cluster.toml", []byte(strings.Replace(base, "id = 2\n", "id = 2\nfence_luns = [\"relative\"]\n", 1)))
	if err == nil || !strings.Contains(err.Error(), "node[1].fence_luns[0]") {
		t.Fatalf("node fence_luns error: %v", err)
	}
}
