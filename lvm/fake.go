package lvm

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Fake is an in-memory lvm2 behind the Runner interface. It interprets the
// argument vectors Manager and CheckConfig issue (vgs, lvs, vgchange,
// lvmconfig) as lvm2 does where it matters: a VG whose system ID is
// another host's is invisible without --foreign and cannot be changed or
// activated unless that ID is in local/extra_system_ids; unknown options
// are errors, so a wrong argument vector fails the test.
type Fake struct {
	mu sync.Mutex
	// SystemID is this host's lvm2 system ID.
	SystemID string
	// Config holds lvmconfig values by key, as lvmconfig prints them
	// after NAME= (strings quoted; "" for a setting with no value).
	Config map[string]string
	vgs    map[string]*fakeVG
	// Calls records every argument vector run.
	Calls [][]string
	// Fail, when set, is called with every mutating command line; a
	// non-nil result is returned instead of running it.
	Fail func(cmdline string) error
}

type fakeVG struct {
	systemID string
	tags     []string
	autoAct  bool
	lvs      map[string]bool // name -> active
	pvs      []string        // PV devices
}

var _ Runner = (*Fake)(nil)

// NewFake returns a Fake lvm2 for a host with the given system ID and
// system_id_source = "uname".
func NewFake(systemID string) *Fake {
	return &Fake{SystemID: systemID, vgs: map[string]*fakeVG{}, Config: map[string]string{
		"global/system_id_source": `"uname"`,
		"global/use_lvmlockd":     "0",
	}}
}

// AddVG creates a VG with the given system ID ("" for none), tags and
// inactive logical volumes; autoactivation is enabled, as vgcreate does.
func (f *Fake) AddVG(name, systemID string, tags []string, lvs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vg := &fakeVG{systemID: systemID, tags: tags, autoAct: true, lvs: map[string]bool{}}
	for _, lv := range lvs {
		vg.lvs[lv] = false
	}
	f.vgs[name] = vg
}

// SetPVs sets the devices of a VG's physical volumes (none after AddVG).
func (f *Fake) SetPVs(name string, devs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vgs[name].pvs = slices.Clone(devs)
}

// SetActive sets the activation of every LV of a VG (as another node's
// lvm2 would see it, for tests).
func (f *Fake) SetActive(name string, active bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for lv := range f.vgs[name].lvs {
		f.vgs[name].lvs[lv] = active
	}
}

func exitErr(argv []string, code int, format string, args ...any) error {
	return &ExitError{Argv: argv, Code: code, Stderr: fmt.Sprintf("  "+format+"\n", args...)}
}

// Run implements Runner.
func (f *Fake) Run(ctx context.Context, argv []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, slices.Clone(argv))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch argv[0] {
	case "vgs", "lvs", "pvs":
		return f.report(argv)
	case "lvmconfig":
		return f.lvmconfig(argv)
	case "vgchange":
		if f.Fail != nil {
			if err := f.Fail(strings.Join(argv, " ")); err != nil {
				return nil, err
			}
		}
		return nil, f.vgchange(argv)
	}
	return nil, exitErr(argv, 3, "No such command '%s'.", argv[0])
}

// flags parses argv[1:] into options (with their values) and positional
// arguments; valued lists the options that take a value.
func flags(argv []string, valued ...string) (map[string][]string, []string, error) {
	opts := map[string][]string{}
	var pos []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "--") {
			pos = append(pos, a)
			continue
		}
		if slices.Contains(valued, a) {
			if i+1 >= len(argv) {
				return nil, nil, exitErr(argv, 3, "Option %s requires an argument.", a)
			}
			opts[a] = append(opts[a], argv[i+1])
			i++
			continue
		}
		opts[a] = append(opts[a], "")
	}
	return opts, pos, nil
}

func (f *Fake) lvmconfig(argv []string) ([]byte, error) {
	opts, pos, err := flags(argv, "--typeconfig")
	if err != nil {
		return nil, err
	}
	if _, ok := opts["--valuesonly"]; ok {
		// Debian 12's lvm2 (2.03.16) has no --valuesonly.
		return nil, exitErr(argv, 3, "lvmconfig: unrecognized option '--valuesonly'")
	}
	if len(pos) != 1 {
		return nil, exitErr(argv, 3, "the fake lvmconfig supports only KEY")
	}
	v, ok := f.Config[pos[0]]
	if !ok {
		return nil, exitErr(argv, 5, "Configuration node %s not found", pos[0])
	}
	if v == "" {
		return nil, nil // set to nothing and no default: lvmconfig prints nothing
	}
	name := pos[0][strings.LastIndexByte(pos[0], '/')+1:]
	return []byte(name + "=" + v + "\n"), nil
}

// accessible reports whether this host may change or activate vg, given
// the extra system IDs of a --config override.
func (f *Fake) accessible(vg *fakeVG, extra []string) bool {
	return vg.systemID == "" || vg.systemID == f.SystemID || slices.Contains(extra, vg.systemID)
}

func (f *Fake) report(argv []string) ([]byte, error) {
	opts, pos, err := flags(argv, "--reportformat", "--options")
	if err != nil {
		return nil, err
	}
	if opts["--reportformat"] == nil || opts["--reportformat"][0] != "json" {
		return nil, exitErr(argv, 3, "the fake reports only --reportformat json")
	}
	_, foreign := opts["--foreign"]
	type row = map[string]string
	var rows []row
	if len(pos) == 0 {
		for _, name := range sortedKeys(f.vgs) {
			if foreign || f.accessible(f.vgs[name], nil) {
				pos = append(pos, name)
			}
		}
	}
	for _, name := range pos {
		vg, ok := f.vgs[name]
		if !ok || (!foreign && !f.accessible(vg, nil)) {
			return nil, exitErr(argv, 5, "Volume group \"%s\" not found", name)
		}
		if argv[0] == "pvs" {
			for _, pv := range vg.pvs {
				rows = append(rows, row{"pv_name": pv, "vg_name": name})
			}
			continue
		}
		if argv[0] == "vgs" {
			auto := ""
			if vg.autoAct {
				auto = "enabled"
			}
			rows = append(rows, row{"vg_name": name, "vg_systemid": vg.systemID, "vg_tags": strings.Join(vg.tags, ","), "vg_autoactivation": auto})
			continue
		}
		for _, lv := range sortedKeys(vg.lvs) {
			act := ""
			if vg.lvs[lv] {
				act = "active"
			}
			rows = append(rows, row{"vg_name": name, "lv_name": lv, "lv_active": act})
		}
	}
	key := map[string]string{"vgs": "vg", "lvs": "lv", "pvs": "pv"}[argv[0]]
	return json.Marshal(map[string]any{"report": []map[string]any{{key: rows}}})
}

func (f *Fake) vgchange(argv []string) error {
	opts, pos, err := flags(argv, "--activate", "--systemid", "--addtag", "--deltag", "--setautoactivation", "--config")
	if err != nil {
		return err
	}
	for o := range opts {
		if !slices.Contains([]string{"--activate", "--systemid", "--addtag", "--deltag", "--setautoactivation", "--config", "--yes"}, o) {
			return exitErr(argv, 3, "vgchange: unrecognized option '%s'", o)
		}
	}
	if len(pos) != 1 {
		return exitErr(argv, 3, "the fake vgchange takes one VG")
	}
	vg, ok := f.vgs[pos[0]]
	if !ok {
		return exitErr(argv, 5, "Volume group \"%s\" not found", pos[0])
	}
	var extra []string
	for _, c := range opts["--config"] {
		if v, ok := strings.CutPrefix(c, "local/extra_system_ids=["); ok {
			for _, id := range strings.Split(strings.TrimSuffix(v, "]"), ",") {
				extra = append(extra, strings.Trim(id, `"`))
			}
		}
	}
	if !f.accessible(vg, extra) {
		return exitErr(argv, 5, "Cannot access VG %s with system ID %s with local system ID %s.", pos[0], vg.systemID, f.SystemID)
	}
	if ids := opts["--systemid"]; ids != nil {
		if _, ok := opts["--yes"]; !ok && vg.systemID != f.SystemID {
			return exitErr(argv, 5, "the fake would prompt: pass --yes")
		}
		vg.systemID = ids[0]
	}
	for _, t := range opts["--deltag"] {
		vg.tags = slices.DeleteFunc(vg.tags, func(x string) bool { return x == t })
	}
	for _, t := range opts["--addtag"] {
		if !slices.Contains(vg.tags, t) {
			vg.tags = append(vg.tags, t)
		}
	}
	if a := opts["--setautoactivation"]; a != nil {
		vg.autoAct = a[0] == "y"
	}
	if a := opts["--activate"]; a != nil {
		if !f.accessible(vg, nil) {
			return exitErr(argv, 5, "Cannot activate VG %s with system ID %s.", pos[0], vg.systemID)
		}
		for lv := range vg.lvs {
			vg.lvs[lv] = a[0] == "y" || a[0] == "ey"
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Render returns the VGs, one per line, sorted:
//
//	vg NAME systemid=ID tags=A,B autoactivation=y|n LV=active|inactive ...
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, name := range sortedKeys(f.vgs) {
		vg := f.vgs[name]
		auto := "n"
		if vg.autoAct {
			auto = "y"
		}
		s := fmt.Sprintf("vg %s systemid=%s tags=%s autoactivation=%s", name, vg.systemID, strings.Join(vg.tags, ","), auto)
		for _, lv := range sortedKeys(vg.lvs) {
			st := "inactive"
			if vg.lvs[lv] {
				st = "active"
			}
			s += " " + lv + "=" + st
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}

// SetAutoActivation sets a VG's autoactivation flag.
func (f *Fake) SetAutoActivation(name string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vgs[name].autoAct = on
}

// FakeDevices is Devices over a table, for tests: Numbers maps device
// paths to device numbers, Below a device to the devices it is built on.
type FakeDevices struct {
	Numbers map[string]uint64
	Below   map[uint64][]uint64
}

var _ Devices = FakeDevices{}

// Number implements Devices.
func (d FakeDevices) Number(path string) (uint64, error) {
	n, ok := d.Numbers[path]
	if !ok {
		return 0, fmt.Errorf("device %s: no such device", path)
	}
	return n, nil
}

// Under implements Devices.
func (d FakeDevices) Under(dev uint64) ([]uint64, error) { return d.Below[dev], nil }
