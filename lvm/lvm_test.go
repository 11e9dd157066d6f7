package lvm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
	"github.com/mtcluster/mtc/quorum/ident"
)

type members map[string]bool // node -> live

func (m members) NodeOfSystemID(id string) (string, bool) { _, ok := m[id]; return id, ok }
func (m members) IsNode(n string) bool                    { _, ok := m[n]; return ok }
func (m members) Live(n string) bool                      { return m[n] }

// NodeID: alpha is node 1, beta 2, gamma 3.
func (m members) NodeID(n string) (ident.NodeID, bool) {
	id, ok := ids[n]
	return id, ok
}

var ids = map[string]ident.NodeID{"alpha": 1, "beta": 2, "gamma": 3}

// LastIncarnation: beta was last seen as incarnation 7, gamma as 9.
func (m members) LastIncarnation(n string) ident.Incarnation {
	return map[string]ident.Incarnation{"alpha": 3, "beta": 7, "gamma": 9}[n]
}

var cluster = members{"alpha": true, "beta": false, "gamma": true}

// devices: the multipath map mpatha (also /dev/dm-0) over the paths sdb
// and sdc, its partition mpatha1, and the map mpathb over sdd.
var devices = FakeDevices{
	Numbers: map[string]uint64{
		"/dev/mapper/mpatha": 0xfd00, "/dev/dm-0": 0xfd00, "/dev/mapper/mpatha1": 0xfd01,
		"/dev/mapper/mpathb": 0xfd02, "/dev/sdb": 0x810, "/dev/sdc": 0x820, "/dev/sdd": 0x830,
	},
	Below: map[uint64][]uint64{0xfd00: {0x810, 0x820}, 0xfd01: {0xfd00}, 0xfd02: {0x830}},
}

// fenced returns the proof of a real fence of node (by alpha) on luns,
// through fence.Fencer over the fake PR target: the only way to get one.
func fenced(t testing.TB, node string, inc ident.Incarnation, luns ...string) fence.Proof {
	t.Helper()
	ctx := context.Background()
	target := prfake.New(luns...)
	lunsOf := func(n ident.NodeID) []*fence.LUN {
		var out []*fence.LUN
		for _, l := range luns {
			out = append(out, &fence.LUN{Name: l, Paths: []fence.Path{fence.NewSCSIPath(l, fence.BackendFake, target.Port(l, fmt.Sprintf("node%d", n)), nil)}})
		}
		return out
	}
	cl := uuid.MustParse("6f0c2a51-8e3d-4b7a-9c15-2d4e6f8a0b1c")
	victim := ids[node]
	for _, n := range []ident.NodeID{1, victim} {
		if err := (&fence.Fencer{Cluster: cl, Self: n}).Unfence(ctx, lunsOf(n)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := (&fence.Fencer{Cluster: cl, Self: 1}).Fence(ctx, victim, inc, lunsOf(1))
	if err != nil || !p.Valid() {
		t.Fatalf("fencing %s: %v %v", node, p, err)
	}
	return p
}

func newManager(f *Fake) *Manager { return NewManager(f, devices, "alpha", "alpha", cluster, nil) }

func vgchanges(f *Fake) []string {
	var out []string
	for _, c := range f.Calls {
		if c[0] == "vgchange" {
			out = append(out, strings.Join(c, " "))
		}
	}
	return out
}

// TestActivateTransitions: each ownership case, the lvm2 commands it runs
// and the state it leaves (golden), and that a second Activate runs none.
func TestActivateTransitions(t *testing.T) {
	beta := []fence.Proof{fenced(t, "beta", 7, "/dev/mapper/mpatha")}
	gamma := []fence.Proof{fenced(t, "gamma", 9, "/dev/mapper/mpatha")}
	staleBeta := []fence.Proof{fenced(t, "beta", 5, "/dev/mapper/mpatha")}
	for _, tc := range []struct {
		name   string
		owner  string
		tags   []string
		mode   Activation
		proofs []fence.Proof
		cmds   []string
		state  string
		err    error
	}{
		{name: "unowned", mode: SystemID,
			cmds:  []string{"vgchange --yes --systemid alpha vg0", "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid=alpha tags= autoactivation=n lv0=active lv1=active"},
		{name: "ours", owner: "alpha", mode: SystemID,
			cmds:  []string{"vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid=alpha tags= autoactivation=n lv0=active lv1=active"},
		{name: "fenced with proof", owner: "beta", mode: SystemID, proofs: beta,
			cmds:  []string{`vgchange --yes --config local/extra_system_ids=["beta"] --systemid alpha vg0`, "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid=alpha tags= autoactivation=n lv0=active lv1=active"},
		{name: "fenced without proof", owner: "beta", mode: SystemID, proofs: gamma, err: ErrNoProof,
			state: "vg vg0 systemid=beta tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "fenced with a proof of an earlier incarnation", owner: "beta", mode: SystemID, proofs: staleBeta, err: ErrNoProof,
			state: "vg vg0 systemid=beta tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "live owner", owner: "gamma", mode: SystemID, proofs: gamma, err: ErrOwnedByLiveMember,
			state: "vg vg0 systemid=gamma tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "foreign", owner: "laptop", mode: SystemID, proofs: beta, err: ErrForeignOwner,
			state: "vg vg0 systemid=laptop tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "tags unowned", mode: Tags, tags: []string{"db"},
			cmds:  []string{"vgchange --addtag alpha vg0", "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid= tags=db,alpha autoactivation=n lv0=active lv1=active"},
		{name: "tags fenced with proof", mode: Tags, tags: []string{"beta"}, proofs: beta,
			cmds:  []string{"vgchange --deltag beta --addtag alpha vg0", "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid= tags=alpha autoactivation=n lv0=active lv1=active"},
		{name: "tags live owner", mode: Tags, tags: []string{"gamma"}, err: ErrOwnedByLiveMember,
			state: "vg vg0 systemid= tags=gamma autoactivation=y lv0=inactive lv1=inactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake("alpha")
			f.AddVG("vg0", tc.owner, tc.tags, "lv0", "lv1")
			f.SetPVs("vg0", "/dev/dm-0")
			m := newManager(f)
			spec := VGSpec{Name: "vg0", Activation: tc.mode}
			err := m.Activate(context.Background(), spec, tc.proofs)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Activate: %v, want %v", err, tc.err)
			}
			if got := vgchanges(f); !slices.Equal(got, tc.cmds) {
				t.Errorf("commands\n got %q\nwant %q", got, tc.cmds)
			}
			if got := f.Render(); got != tc.state {
				t.Errorf("state\n got %s\nwant %s", got, tc.state)
			}
			if err != nil {
				var oe *OwnerError
				if !errors.As(err, &oe) || oe.VG != "vg0" {
					t.Errorf("error %v is not an OwnerError naming the VG", err)
				}
				return
			}
			n := len(vgchanges(f))
			if err := m.Activate(context.Background(), spec, nil); err != nil {
				t.Fatalf("second Activate: %v", err)
			}
			if got := vgchanges(f)[n:]; len(got) != 0 {
				t.Errorf("second Activate ran %q", got)
			}
			// Deactivate releases the VG for the next node, twice is once.
			if err := m.Deactivate(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			n = len(vgchanges(f))
			if err := m.Deactivate(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			if got := vgchanges(f)[n:]; len(got) != 0 {
				t.Errorf("second Deactivate ran %q", got)
			}
			if got := f.Render(); strings.Contains(got, "=active") || strings.Contains(got, "alpha") {
				t.Errorf("after Deactivate: %s", got)
			}
			// Another node now claims it without a proof.
			other := NewManager(f, devices, "gamma", "gamma", cluster, nil)
			f.SystemID = "gamma"
			if err := other.Activate(context.Background(), spec, nil); err != nil {
				t.Errorf("the next node's claim after a release: %v", err)
			}
		})
	}
}

// Every command runs with the JSON report format, never text.
func TestReportsAreJSON(t *testing.T) {
	f := NewFake("alpha")
	f.AddVG("vg0", "", nil, "lv0")
	m := newManager(f)
	m.Activate(context.Background(), VGSpec{Name: "vg0"}, nil)
	for _, c := range f.Calls {
		if (c[0] == "vgs" || c[0] == "lvs") && !slices.Contains(c, "json") {
			t.Errorf("%q without --reportformat json", c)
		}
	}
}

// The fake refuses what lvm2 refuses: a foreign VG cannot be changed
// without extra_system_ids, and unknown options fail.
func TestFakeRefusesLikeLVM(t *testing.T) {
	f := NewFake("alpha")
	f.AddVG("vg0", "beta", nil, "lv0")
	ctx := context.Background()
	if _, err := f.Run(ctx, []string{"vgchange", "--activate", "y", "vg0"}); err == nil {
		t.Error("activated a VG owned by another system ID")
	}
	if _, err := f.Run(ctx, []string{"vgchange", "--yes", "--systemid", "alpha", "vg0"}); err == nil {
		t.Error("took over a foreign VG without extra_system_ids")
	}
	if _, err := f.Run(ctx, []string{"vgchange", "--bogus", "vg0"}); err == nil {
		t.Error("accepted an unknown option")
	}
	if _, err := f.Run(ctx, []string{"vgs", "--reportformat", "json", "vg0"}); err == nil {
		t.Error("a foreign VG was visible without --foreign")
	}
	m := newManager(f)
	if _, err := m.Report(ctx, "nosuch"); !errors.Is(err, ErrNoSuchVG) {
		t.Errorf("Report of a missing VG: %v", err)
	}
}

func TestCheckConfig(t *testing.T) {
	ctx := context.Background()
	f := NewFake("alpha")
	probs, err := CheckConfig(ctx, f, "alpha", []Activation{SystemID})
	if err != nil || len(probs) != 0 {
		t.Fatalf("default fake config: %v %v", probs, err)
	}
	f.Config["global/system_id_source"] = `"none"`
	f.Config["global/use_lvmlockd"] = "1"
	f.Config["activation/volume_list"] = `["vg00","@beta"]`
	probs, err = CheckConfig(ctx, f, "alpha", []Activation{SystemID, Tags})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range probs {
		keys = append(keys, p.Key)
		if p.Fix == "" || !strings.Contains(p.String(), p.Key) {
			t.Errorf("problem without a fix: %v", p)
		}
	}
	want := []string{"global/system_id_source", "activation/volume_list", "global/use_lvmlockd"}
	if !slices.Equal(keys, want) {
		t.Errorf("problems %q, want %q", keys, want)
	}
	f.Config["global/system_id_source"] = `"lvmlocal"`
	if _, err := LocalSystemID(ctx, f); err == nil {
		t.Error("lvmlocal without local/system_id accepted")
	}
	f.Config["local/system_id"] = `"alpha-01"`
	if id, err := LocalSystemID(ctx, f); err != nil || id != "alpha-01" {
		t.Errorf("LocalSystemID: %q %v", id, err)
	}
}

// A failing lvm2 command surfaces as an *ExitError with its argv.
func TestActivateCommandFailure(t *testing.T) {
	f := NewFake("alpha")
	f.AddVG("vg0", "", nil, "lv0")
	f.Fail = func(cmd string) error {
		if strings.Contains(cmd, "--activate y") {
			return &ExitError{Argv: strings.Fields(cmd), Code: 5, Stderr: "device-mapper: reload ioctl failed"}
		}
		return nil
	}
	err := newManager(f).Activate(context.Background(), VGSpec{Name: "vg0"}, nil)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 5 || !strings.Contains(err.Error(), "reload ioctl") {
		t.Errorf("Activate: %v", err)
	}
}

// scripted answers canned lvm2 output, as lvm2 2.03 prints it (indented
// JSON, a log section), to check the report parsing independently of the
// fake's own encoder.
type scripted map[string]string

func (s scripted) Run(_ context.Context, argv []string) ([]byte, error) {
	out, ok := s[argv[0]]
	if !ok {
		return nil, &ExitError{Argv: argv, Code: 3}
	}
	return []byte(out), nil
}

func TestReportParsesLVM2Output(t *testing.T) {
	r := scripted{
		"vgs": `  {
      "report": [
          {
              "vg": [
                  {"vg_name":"vg00", "vg_systemid":"", "vg_tags":"", "vg_autoactivation":"enabled"},
                  {"vg_name":"vgorders", "vg_systemid":"beta", "vg_tags":"db,prod", "vg_autoactivation":""}
              ]
          }
      ]
      ,
      "log": [
          {"log_seq_num":"1", "log_type":"status", "log_context":"processing", "log_object_type":"cmd", "log_object_name":"", "log_object_id":"", "log_object_group":"", "log_object_group_id":"", "log_message":"success", "log_errno":"0", "log_ret_code":"1"}
      ]
  }
`,
		"lvs": `  {
      "report": [
          {
              "lv": [
                  {"vg_name":"vgorders", "lv_name":"data", "lv_active":"active"},
                  {"vg_name":"vgorders", "lv_name":"log", "lv_active":""}
              ]
          }
      ]
  }
`,
		"pvs": `  {
      "report": [
          {
              "pv": [
                  {"pv_name":"/dev/vda2", "vg_name":"vg00"},
                  {"pv_name":"/dev/mapper/mpatha", "vg_name":"vgorders"},
                  {"pv_name":"[unknown]", "vg_name":"vgorders"}
              ]
          }
      ]
  }
`,
	}
	m := NewManager(r, devices, "alpha", "alpha", cluster, nil)
	vg, err := m.Report(context.Background(), "vgorders")
	if err != nil {
		t.Fatal(err)
	}
	if vg.SystemID != "beta" || !slices.Equal(vg.Tags, []string{"db", "prod"}) || vg.AutoActivation || vg.LVs != 2 || vg.ActiveLVs != 1 ||
		!slices.Equal(vg.PVs, []string{"/dev/mapper/mpatha", "[unknown]"}) {
		t.Errorf("parsed %+v", vg)
	}
	if _, err := m.Report(context.Background(), "vgmissing"); !errors.Is(err, ErrNoSuchVG) {
		t.Errorf("missing VG: %v", err)
	}
}

// TestTakeoverProofChecks: a takeover counts only a valid proof from
// fence.Fence about the owner's node id and last incarnation, whose LUNs
// cover every PV of the VG (compared by device number). Every refusal
// leaves the VG as it was and runs no vgchange.
func TestTakeoverProofChecks(t *testing.T) {
	onA := fenced(t, "beta", 7, "/dev/mapper/mpatha")
	onB := fenced(t, "beta", 7, "/dev/mapper/mpathb")
	onPath := fenced(t, "beta", 7, "/dev/sdb")
	gamma := fenced(t, "gamma", 9, "/dev/mapper/mpatha")
	stale := fenced(t, "beta", 6, "/dev/mapper/mpatha")
	for _, tc := range []struct {
		name   string
		mode   Activation
		pvs    []string
		proofs []fence.Proof
		err    error
	}{
		{name: "zero proof", pvs: []string{"/dev/mapper/mpatha"}, proofs: []fence.Proof{{}}, err: ErrNoProof},
		{name: "no proof", pvs: []string{"/dev/mapper/mpatha"}, err: ErrNoProof},
		{name: "proof for another node", pvs: []string{"/dev/mapper/mpatha"}, proofs: []fence.Proof{gamma}, err: ErrNoProof},
		{name: "proof for an earlier incarnation", pvs: []string{"/dev/mapper/mpatha"}, proofs: []fence.Proof{stale}, err: ErrNoProof},
		{name: "proof on another LUN", pvs: []string{"/dev/mapper/mpatha"}, proofs: []fence.Proof{onB}, err: ErrProofDoesNotCover},
		{name: "proof on another LUN, tags", mode: Tags, pvs: []string{"/dev/mapper/mpatha"}, proofs: []fence.Proof{onB}, err: ErrProofDoesNotCover},
		{name: "proof on one of two LUNs", pvs: []string{"/dev/mapper/mpatha", "/dev/mapper/mpathb"}, proofs: []fence.Proof{onA}, err: ErrProofDoesNotCover},
		{name: "proofs on both LUNs", pvs: []string{"/dev/mapper/mpatha", "/dev/mapper/mpathb"}, proofs: []fence.Proof{onA, onB}},
		{name: "missing PV", pvs: []string{"/dev/mapper/mpatha", "[unknown]"}, proofs: []fence.Proof{onA}, err: ErrProofDoesNotCover},
		{name: "no PV reported", proofs: []fence.Proof{onA}, err: ErrProofDoesNotCover},
		{name: "same device by another name", pvs: []string{"/dev/dm-0"}, proofs: []fence.Proof{onA}},
		{name: "partition of the fenced LUN", pvs: []string{"/dev/mapper/mpatha1"}, proofs: []fence.Proof{onA}},
		{name: "a path of the fenced LUN", pvs: []string{"/dev/sdc"}, proofs: []fence.Proof{onA}},
		// Device numbers cannot tell that sdb and sdc reach one LU.
		{name: "multipath map over a fenced path and another", pvs: []string{"/dev/mapper/mpatha"}, proofs: []fence.Proof{onPath}, err: ErrProofDoesNotCover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake("alpha")
			owner, tags := "beta", []string(nil)
			if tc.mode == Tags {
				owner, tags = "", []string{"beta"}
			}
			f.AddVG("vg0", owner, tags, "lv0")
			f.SetPVs("vg0", tc.pvs...)
			before := f.Render()
			m := newManager(f)
			spec := VGSpec{Name: "vg0", Activation: tc.mode}
			cerr := m.CheckTakeover(context.Background(), spec, tc.proofs)
			err := m.Activate(context.Background(), spec, tc.proofs)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) || !errors.Is(cerr, tc.err) || (tc.err == nil) != (cerr == nil) {
				t.Fatalf("Activate: %v; CheckTakeover: %v; want %v", err, cerr, tc.err)
			}
			if tc.err == nil {
				if got := f.Render(); !strings.Contains(got, "lv0=active") {
					t.Errorf("after takeover: %s", got)
				}
				return
			}
			var oe *OwnerError
			if !errors.As(err, &oe) || oe.VG != "vg0" || oe.Owner != "beta" {
				t.Errorf("error %v is not an OwnerError naming the VG and beta", err)
			}
			if tc.err == ErrProofDoesNotCover && (len(tc.pvs) > 0 && !strings.Contains(err.Error(), tc.pvs[len(tc.pvs)-1])) {
				t.Errorf("error does not name the uncovered PV: %v", err)
			}
			if got := vgchanges(f); len(got) != 0 {
				t.Errorf("refused takeover ran %q", got)
			}
			if got := f.Render(); got != before {
				t.Errorf("refused takeover changed the VG:\n got %s\nwant %s", got, before)
			}
		})
	}
}
