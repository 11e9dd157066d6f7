package guest

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/quorum"
	"github.com/mtcluster/mtc/test/lab/labkit"
)

// mtcBinary is where run.sh puts mtc in the guest.
const mtcBinary = "/lab/mtc"

// TestFenceStatusCommand: `mtc fence status --json` on a LUN two nodes
// unfenced reports both keys with their owners, node1's type-5
// reservation and readiness; on a LUN nobody registered it fails (exit
// status 1) and says why.
func TestFenceStatusCommand(t *testing.T) {
	san, ctx := lab(t)
	if _, err := os.Stat(mtcBinary); err != nil {
		t.Skipf("%s is not in the guest (run.sh reports why ./cmd/mtc did not build): %v", mtcBinary, err)
	}
	d := dev(t, san, "node3", "data2")
	cleanLUNs(t, ctx, "data2")
	status := func() ([]map[string]any, error) {
		out, err := labkit.Run(ctx, mtcBinary, "fence", "status", "--device", d, "--cluster-uuid", labCluster.String(), "--json")
		var v []map[string]any
		if jerr := json.Unmarshal([]byte(out), &v); jerr != nil {
			t.Fatalf("mtc fence status --json printed %q: %v (%v)", out, jerr, err)
		}
		return v, err
	}
	v, err := status()
	var ce *labkit.CmdError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || v[0]["ok"] != false {
		t.Errorf("status of an unregistered LUN: exit %v, ok %v; want exit 1, not ok", err, v[0]["ok"])
	}
	for _, n := range []int{1, 2} {
		l, err := fence.OpenLUN(dev(t, san, nodeName(quorum.NodeID(n)), "data2"), "")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := (&fence.Fencer{Cluster: labCluster, Self: quorum.NodeID(n)}).Unfence(ctx, []*fence.LUN{l}); err != nil {
			t.Fatal(err)
		}
	}
	v, err = status()
	if err != nil {
		t.Fatalf("status of an unfenced LUN: %v", err)
	}
	r := v[0]
	keys, _ := r["keys"].([]any)
	res, _ := r["reservation"].(map[string]any)
	if r["ok"] != true || len(keys) != 2 || res["owner"] != "node 1" || res["type"] != "Write Exclusive, Registrants Only" {
		t.Errorf("status after unfencing nodes 1 and 2: %v", r)
	}
	for i, k := range keys {
		km := k.(map[string]any)
		if want := fence.NodeKey(labCluster, quorum.NodeID(i+1)).String(); km["key"] != want || km["node"] != float64(i+1) {
			t.Errorf("key %d: %v, want %s of node %d", i, km, want, i+1)
		}
	}
	t.Logf("mtc fence status: %v", r)
}
