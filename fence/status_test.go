package fence

import (
	"strings"
	"testing"

	"github.com/mtcluster/mtc/fence/scsi"
)

func findings(r Report) string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, f.Severity+": "+f.What)
	}
	return strings.Join(s, "\n")
}

func TestInspect(t *testing.T) {
	ctx := ctxT(t)
	c := newCluster(3, "data1")
	l := c.lunsOf(2)[0]

	r := Inspect(ctx, testCluster, 0, l)
	if r.OK() || !strings.Contains(findings(r), "no node of this cluster is registered") {
		t.Errorf("empty LUN: OK %v, findings:\n%s", r.OK(), findings(r))
	}
	if !strings.Contains(findings(r), "APTPL not active") {
		t.Errorf("APTPL inactive not reported:\n%s", findings(r))
	}

	c.unfenceAll(t, ctx)
	r = Inspect(ctx, testCluster, 0, l)
	if !r.OK() {
		t.Errorf("unfenced LUN not OK:\n%s", findings(r))
	}
	if len(r.Keys) != 3 || r.Keys[0].Node == 0 || !r.Reservation.Held || r.Reservation.Type != scsi.WriteExclusiveRegistrantsOnly.String() {
		t.Errorf("report %+v", r)
	}
	for _, k := range r.Keys {
		if want := 1; k.Node == 1 {
			want = 2
			if k.Count != want {
				t.Errorf("node 1 has two paths: count %d", k.Count)
			}
		}
	}
	if r.Capabilities == nil || !r.Capabilities.TypesReported || len(r.Capabilities.Types) != 6 {
		t.Errorf("capabilities %+v", r.Capabilities)
	}

	// A foreign key registers; the report names it.
	p := NewSCSIPath("x", BackendFake, c.t.Port("data1", "stranger"), nil)
	if err := p.Out(ctx, scsi.RegisterAndIgnoreExisting, 0, scsi.OutParams{ServiceKey: 0x11aa}); err != nil {
		t.Fatal(err)
	}
	r = Inspect(ctx, testCluster, 0, l)
	if !strings.Contains(findings(r), "key 0x00000000000011aa is not a key of cluster") || !r.OK() {
		t.Errorf("foreign key: OK %v\n%s", r.OK(), findings(r))
	}

	// Configured for another type than the LUN holds.
	r = Inspect(ctx, testCluster, scsi.ExclusiveAccessRegistrantsOnly, l)
	if r.OK() || !strings.Contains(findings(r), "fencing is configured for Exclusive Access, Registrants Only") {
		t.Errorf("type mismatch: OK %v\n%s", r.OK(), findings(r))
	}

	// Unreadable paths.
	l.Paths[0] = noReads{l.Paths[0]}
	r = Inspect(ctx, testCluster, 0, l)
	if r.OK() || !strings.Contains(findings(r), "no path could read the PR state") {
		t.Errorf("unreadable: OK %v\n%s", r.OK(), findings(r))
	}
}
