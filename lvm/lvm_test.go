package lvm

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

type members map[string]bool // node -> live

func (m members) NodeOfSystemID(id string) (string, bool) { _, ok := m[id]; return id, ok }
func (m members) IsNode(n string) bool                    { _, ok := m[n]; return ok }
func (m members) Live(n string) bool                      { return m[n] }

// LastIncarnation: beta was last seen as incarnation 7, gamma as 9.
func (m members) LastIncarnation(n string) uint64 {
	return map[string]uint64{"alpha": 3, "beta": 7, "gamma": 9}[n]
}

// proof is a proof that the last incarnation of a node is fenced.
type proof string

func (p proof) FencedNode() string { return string(p) }
func (p proof) Incarnation() uint64 {
	return members{}.LastIncarnation(string(p))
}
func (p proof) Describe() string { return "fenced " + string(p) }

// staleProof is about an earlier incarnation.
type staleProof string

func (p staleProof) FencedNode() string  { return string(p) }
func (p staleProof) Incarnation() uint64 { return 5 }
func (p staleProof) Describe() string    { return "fenced long ago " + string(p) }

var cluster = members{"alpha": true, "beta": false, "gamma": true}

func newManager(f *Fake) *Manager { return NewManager(f, "alpha", "alpha", cluster, nil) }

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
	for _, tc := range []struct {
		name   string
		owner  string
		tags   []string
		mode   Activation
		proofs []TakeoverProof
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
		{name: "fenced with proof", owner: "beta", mode: SystemID, proofs: []TakeoverProof{proof("beta")},
			cmds:  []string{`vgchange --yes --config local/extra_system_ids=["beta"] --systemid alpha vg0`, "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid=alpha tags= autoactivation=n lv0=active lv1=active"},
		{name: "fenced without proof", owner: "beta", mode: SystemID, proofs: []TakeoverProof{proof("gamma")}, err: ErrNoProof,
			state: "vg vg0 systemid=beta tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "fenced with a proof of an earlier incarnation", owner: "beta", mode: SystemID, proofs: []TakeoverProof{staleProof("beta")}, err: ErrNoProof,
			state: "vg vg0 systemid=beta tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "live owner", owner: "gamma", mode: SystemID, proofs: []TakeoverProof{proof("gamma")}, err: ErrOwnedByLiveMember,
			state: "vg vg0 systemid=gamma tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "foreign", owner: "laptop", mode: SystemID, proofs: []TakeoverProof{proof("laptop")}, err: ErrForeignOwner,
			state: "vg vg0 systemid=laptop tags= autoactivation=y lv0=inactive lv1=inactive"},
		{name: "tags unowned", mode: Tags, tags: []string{"db"},
			cmds:  []string{"vgchange --addtag alpha vg0", "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid= tags=db,alpha autoactivation=n lv0=active lv1=active"},
		{name: "tags fenced with proof", mode: Tags, tags: []string{"beta"}, proofs: []TakeoverProof{proof("beta")},
			cmds:  []string{"vgchange --deltag beta --addtag alpha vg0", "vgchange --setautoactivation n vg0", "vgchange --activate y vg0"},
			state: "vg vg0 systemid= tags=alpha autoactivation=n lv0=active lv1=active"},
		{name: "tags live owner", mode: Tags, tags: []string{"gamma"}, err: ErrOwnedByLiveMember,
			state: "vg vg0 systemid= tags=gamma autoactivation=y lv0=inactive lv1=inactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake("alpha")
			f.AddVG("vg0", tc.owner, tc.tags, "lv0", "lv1")
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
			other := NewManager(f, "gamma", "gamma", cluster, nil)
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
	}
	m := NewManager(r, "alpha", "alpha", cluster, nil)
	vg, err := m.Report(context.Background(), "vgorders")
	if err != nil {
		t.Fatal(err)
	}
	if vg.SystemID != "beta" || !slices.Equal(vg.Tags, []string{"db", "prod"}) || vg.AutoActivation || vg.LVs != 2 || vg.ActiveLVs != 1 {
		t.Errorf("parsed %+v", vg)
	}
	if _, err := m.Report(context.Background(), "vgmissing"); !errors.Is(err, ErrNoSuchVG) {
		t.Errorf("missing VG: %v", err)
	}
}
