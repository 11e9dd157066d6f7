package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/quorum"
)

var fenceTestCluster = uuid.MustParse("6f1c9a52-3b7e-4d0a-9e61-2f4c8b1d7a30")

func fakeReports(t *testing.T) []fence.Report {
	t.Helper()
	ctx := context.Background()
	tg := prfake.New("data1", "empty")
	var reps []fence.Report
	for _, lun := range []string{"data1", "empty"} {
		for n := 1; n <= 2 && lun == "data1"; n++ {
			l := &fence.LUN{Name: lun, Paths: []fence.Path{fence.NewSCSIPath("/dev/fake-"+lun, fence.BackendFake, tg.Port(lun, "n"+string(rune('0'+n))), nil)}}
			f := &fence.Fencer{Cluster: fenceTestCluster, Self: quorum.NodeID(n)}
			if err := f.Unfence(ctx, []*fence.LUN{l}); err != nil {
				t.Fatal(err)
			}
		}
		l := &fence.LUN{Name: "/dev/" + lun, Paths: []fence.Path{fence.NewSCSIPath("/dev/fake-"+lun, fence.BackendFake, tg.Port(lun, "reader"), nil)}}
		reps = append(reps, fence.Inspect(ctx, fenceTestCluster, 0, l))
	}
	return reps
}

func TestPrintFenceReports(t *testing.T) {
	var b bytes.Buffer
	if err := printReports(&b, fakeReports(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"LUN /dev/data1\n",
		"  path /dev/fake-data1: backend fake, reads PR state\n",
		"  key 0xfaad61dda9c20101: node 1, 1 nexus(es)\n",
		"  key 0xfaad61dda9c20102: node 2, 1 nexus(es)\n",
		"  reservation: Write Exclusive, Registrants Only, held by 0xfaad61dda9c20101 (node 1)\n",
		"  fencing: ready\n",
		"LUN /dev/empty\n",
		"  keys: none\n",
		"  error: no node of this cluster is registered: fencing this LUN cannot work\n",
		"    do: start the daemons",
		"  fencing: NOT READY\n",
		"APTPL not active",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFenceReportJSON(t *testing.T) {
	b, err := json.Marshal(fakeReports(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"key":"0xfaad61dda9c20101"`, `"owner":"node 1"`, `"type":"Write Exclusive, Registrants Only"`, `"backend":"fake"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}

func TestFenceTargetCluster(t *testing.T) {
	if _, err := (&fenceTarget{}).cluster(); err == nil || !strings.Contains(err.Error(), "--config FILE or --cluster-uuid") {
		t.Errorf("no cluster given: %v", err)
	}
	if _, err := (&fenceTarget{ClusterUUID: "nope"}).cluster(); err == nil {
		t.Error("a bad UUID was accepted")
	}
	if u, err := (&fenceTarget{ClusterUUID: fenceTestCluster.String()}).cluster(); err != nil || u != fenceTestCluster {
		t.Errorf("cluster() = %v, %v", u, err)
	}
}
