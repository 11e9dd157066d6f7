package lvm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/quorum/ident"
)

// Runner runs one lvm2 command given as an argument vector and returns its
// standard output. A command that exits non-zero returns an *ExitError.
type Runner interface {
	Run(ctx context.Context, argv []string) ([]byte, error)
}

// ExitError is an lvm2 command that failed.
type ExitError struct {
	Argv   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: exit status %d: %s", strings.Join(e.Argv, " "), e.Code, strings.TrimSpace(e.Stderr))
}

// Exec runs lvm2 commands as child processes with LC_ALL=C.
type Exec struct{}

var _ Runner = Exec{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, argv []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil, &ExitError{Argv: argv, Code: ee.ExitCode(), Stderr: stderr.String()}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return stdout.Bytes(), nil
}

// Activation selects how a VG's owner is recorded.
type Activation int

const (
	// SystemID records the owner as the VG's LVM system ID (default).
	SystemID Activation = iota
	// Tags records the owner as a VG tag equal to the node's name.
	Tags
)

func (a Activation) String() string {
	if a == Tags {
		return "tags"
	}
	return "system_id"
}

// VGSpec is one volume group of a package.
type VGSpec struct {
	Name       string
	Activation Activation
}

// VG is a volume group as lvm2 reports it.
type VG struct {
	Name     string
	SystemID string
	Tags     []string
	// AutoActivation is true unless --setautoactivation n was set.
	AutoActivation bool
	// ActiveLVs and LVs count its logical volumes.
	ActiveLVs, LVs int
	// PVs are the devices of its physical volumes, as lvm2 names them
	// ("[unknown]" for a missing one).
	PVs []string
}

// Members is the cluster as the VG owner check needs it.
type Members interface {
	// NodeOfSystemID returns the cluster node whose LVM system ID is id.
	NodeOfSystemID(id string) (node string, ok bool)
	// IsNode reports whether name is a cluster node (for tag owners).
	IsNode(name string) bool
	// NodeID is the cluster node id of node, the one fencing proofs name.
	NodeID(node string) (ident.NodeID, bool)
	// Live reports whether node is a live member now.
	Live(node string) bool
	// LastIncarnation is the last incarnation of node this node has seen,
	// 0 if it has seen none (then no proof can be checked against it).
	LastIncarnation(node string) ident.Incarnation
}

// Errors of Activate.
var (
	ErrOwnedByLiveMember = errors.New("volume group is owned by a live cluster member")
	ErrNoProof           = errors.New("volume group is owned by another node and no fencing proof for that node was given")
	ErrProofDoesNotCover = errors.New("the fencing proof does not cover every physical volume of the volume group")
	ErrForeignOwner      = errors.New("volume group is owned by a host that is not a cluster node")
	ErrNoSuchVG          = errors.New("no such volume group")
)

// OwnerError is an Activate refusal, naming the VG and its owner.
type OwnerError struct {
	VG    string
	Owner string // node name, or the system ID when not a node
	Err   error  // one of the errors above
	// Detail says more, for ErrProofDoesNotCover: which PVs are not
	// covered and what the proof covers.
	Detail string
}

func (e *OwnerError) Error() string {
	switch e.Err {
	case ErrOwnedByLiveMember:
		return fmt.Sprintf("volume group %s: owned by %s, which is a live member: halt the package there first", e.VG, e.Owner)
	case ErrNoProof:
		return fmt.Sprintf("volume group %s: owned by %s, which is not live but not proven fenced: it is taken over only after %s is fenced (a proof counts only for the last incarnation of %s this node saw)", e.VG, e.Owner, e.Owner, e.Owner)
	case ErrProofDoesNotCover:
		return fmt.Sprintf("volume group %s: owned by %s, which was fenced, but not on every LUN the VG lives on (%s): fence %s on those LUNs too before taking the VG over", e.VG, e.Owner, e.Detail, e.Owner)
	case ErrForeignOwner:
		return fmt.Sprintf("volume group %s: system ID %q belongs to no cluster node: if that host is stopped for good, take the VG over by hand (vgchange --config 'local/extra_system_ids=[\"%s\"]' --systemid <this node's ID> %s)", e.VG, e.Owner, e.Owner, e.VG)
	}
	return fmt.Sprintf("volume group %s: owner %s: %v", e.VG, e.Owner, e.Err)
}

func (e *OwnerError) Unwrap() error { return e.Err }

// Manager drives lvm2 for one node.
type Manager struct {
	run     Runner
	devs    Devices
	node    string
	sysID   string
	members Members
	log     *slog.Logger
}

// NewManager returns a Manager for node, whose LVM system ID is sysID (see
// LocalSystemID). devs identifies the devices of physical volumes and of
// fenced LUNs (SysDevices{} on a real node).
func NewManager(r Runner, devs Devices, node, sysID string, members Members, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{run: r, devs: devs, node: node, sysID: sysID, members: members, log: log}
}

type vgReport struct {
	Report []struct {
		VG []struct {
			Name     string `json:"vg_name"`
			SystemID string `json:"vg_systemid"`
			Tags     string `json:"vg_tags"`
			AutoAct  string `json:"vg_autoactivation"`
		} `json:"vg"`
	} `json:"report"`
}

type pvReport struct {
	Report []struct {
		PV []struct {
			Name string `json:"pv_name"`
			VG   string `json:"vg_name"`
		} `json:"pv"`
	} `json:"report"`
}

type lvReport struct {
	Report []struct {
		LV []struct {
			Name   string `json:"lv_name"`
			VG     string `json:"vg_name"`
			Active string `json:"lv_active"`
		} `json:"lv"`
	} `json:"report"`
}

// Report reads one VG, including a foreign one (--foreign): its owner, tags,
// autoactivation, how many of its LVs are active, and its PVs.
func (m *Manager) Report(ctx context.Context, name string) (VG, error) {
	// Every VG is listed and this one picked from the report, so that a
	// missing VG is told by its absence, not by lvm2's error text.
	out, err := m.run.Run(ctx, []string{"vgs", "--reportformat", "json", "--foreign", "--options", "vg_name,vg_systemid,vg_tags,vg_autoactivation"})
	if err != nil {
		return VG{}, err
	}
	var r vgReport
	if err := json.Unmarshal(out, &r); err != nil {
		return VG{}, fmt.Errorf("vgs %s: JSON report: %w", name, err)
	}
	var vg VG
	found := false
	for _, rep := range r.Report {
		for _, v := range rep.VG {
			if v.Name == name {
				found = true
				vg = VG{Name: v.Name, SystemID: v.SystemID, AutoActivation: v.AutoAct == "enabled"}
				if v.Tags != "" {
					vg.Tags = strings.Split(v.Tags, ",")
				}
			}
		}
	}
	if !found {
		return VG{}, fmt.Errorf("volume group %s: %w", name, ErrNoSuchVG)
	}
	out, err = m.run.Run(ctx, []string{"lvs", "--reportformat", "json", "--foreign", "--options", "vg_name,lv_name,lv_active", name})
	if err != nil {
		return VG{}, err
	}
	var lr lvReport
	if err := json.Unmarshal(out, &lr); err != nil {
		return VG{}, fmt.Errorf("lvs %s: JSON report: %w", name, err)
	}
	for _, rep := range lr.Report {
		for _, lv := range rep.LV {
			if lv.VG != name {
				continue
			}
			vg.LVs++
			if lv.Active == "active" {
				vg.ActiveLVs++
			}
		}
	}
	out, err = m.run.Run(ctx, []string{"pvs", "--reportformat", "json", "--foreign", "--options", "pv_name,vg_name"})
	if err != nil {
		return VG{}, err
	}
	var pr pvReport
	if err := json.Unmarshal(out, &pr); err != nil {
		return VG{}, fmt.Errorf("pvs %s: JSON report: %w", name, err)
	}
	for _, rep := range pr.Report {
		for _, pv := range rep.PV {
			if pv.VG == name {
				vg.PVs = append(vg.PVs, pv.Name)
			}
		}
	}
	return vg, nil
}

// owner returns the node (or foreign system ID) that owns vg, "" for none,
// and whether it is a cluster node.
func (m *Manager) owner(spec VGSpec, vg VG) (string, bool) {
	if spec.Activation == Tags {
		for _, t := range vg.Tags {
			if m.members.IsNode(t) || t == m.node {
				return t, true
			}
		}
		return "", false
	}
	if vg.SystemID == "" {
		return "", false
	}
	if vg.SystemID == m.sysID {
		return m.node, true
	}
	if n, ok := m.members.NodeOfSystemID(vg.SystemID); ok {
		return n, true
	}
	return vg.SystemID, false
}

// Decision is what Activate must do about a VG's ownership.
type Decision int

const (
	Owned    Decision = iota // already ours
	Claim                    // unowned: claim it
	Takeover                 // owned by a fenced node: take it over with the proof
)

// Decide is the ownership rule of the package doc, pure: it returns what to
// do with vg, the owner, and for a Takeover the proofs that count (valid,
// about the owner's node id and its last incarnation), or an *OwnerError.
// Whether those proofs cover the VG's PVs is checked by Covered.
func (m *Manager) Decide(spec VGSpec, vg VG, proofs []fence.Proof) (Decision, string, []fence.Proof, error) {
	owner, isNode := m.owner(spec, vg)
	switch {
	case owner == m.node:
		return Owned, owner, nil, nil
	case owner == "":
		return Claim, "", nil, nil
	case !isNode:
		return 0, owner, nil, &OwnerError{VG: vg.Name, Owner: owner, Err: ErrForeignOwner}
	case m.members.Live(owner):
		return 0, owner, nil, &OwnerError{VG: vg.Name, Owner: owner, Err: ErrOwnedByLiveMember}
	}
	if ps := m.proofsFor(owner, proofs); len(ps) > 0 {
		return Takeover, owner, ps, nil
	}
	return 0, owner, nil, &OwnerError{VG: vg.Name, Owner: owner, Err: ErrNoProof}
}

// proofsFor returns the proofs that owner's last incarnation is fenced.
func (m *Manager) proofsFor(owner string, proofs []fence.Proof) []fence.Proof {
	id, ok := m.members.NodeID(owner)
	last := m.members.LastIncarnation(owner)
	if !ok || last == 0 {
		return nil
	}
	var out []fence.Proof
	for _, p := range proofs {
		if p.Valid() && p.Victim() == id && p.Incarnation() == last {
			out = append(out, p)
		}
	}
	return out
}

// Covered checks that every PV of vg lies on LUNs the proofs verified
// fenced, comparing device numbers: a PV is covered when its device is a
// fenced LUN or one of the path devices under it (a multipath map's
// paths), or is built only on covered devices (a partition of a fenced
// LUN, a linear map over one). A PV lvm2 cannot find ("[unknown]"), a VG
// without PVs, or a device that cannot be identified is not covered: the
// takeover fails closed with ErrProofDoesNotCover.
func (m *Manager) Covered(vg VG, owner string, proofs []fence.Proof) error {
	fenced := map[uint64]bool{}
	var luns []string
	for _, p := range proofs {
		for _, l := range p.LUNs() {
			luns = append(luns, l)
			n, err := m.devs.Number(l)
			if err != nil {
				m.log.Warn("a fenced LUN cannot be identified", "lun", l, "err", err)
				continue
			}
			if err := leaves(m.devs, n, fenced, 0); err != nil {
				m.log.Warn("the devices under a fenced LUN cannot be listed", "lun", l, "err", err)
			}
		}
	}
	var missing []string
	for _, pv := range vg.PVs {
		n, err := m.devs.Number(pv)
		ok := false
		if err == nil {
			ok, err = coveredBy(m.devs, n, fenced, 0)
		}
		if err != nil {
			m.log.Warn("a physical volume cannot be identified", "vg", vg.Name, "pv", pv, "err", err)
		}
		if !ok {
			missing = append(missing, pv)
		}
	}
	if len(vg.PVs) == 0 {
		missing = append(missing, "(lvm2 reports no physical volume)")
	}
	if len(missing) == 0 {
		return nil
	}
	return &OwnerError{VG: vg.Name, Owner: owner, Err: ErrProofDoesNotCover,
		Detail: fmt.Sprintf("physical volumes %s not on the fenced LUNs %s", strings.Join(missing, ", "), strings.Join(luns, ", "))}
}

// decide is Decide followed, for a Takeover, by Covered.
func (m *Manager) decide(spec VGSpec, vg VG, proofs []fence.Proof) (Decision, string, []fence.Proof, error) {
	d, owner, ps, err := m.Decide(spec, vg, proofs)
	if err == nil && d == Takeover {
		err = m.Covered(vg, owner, ps)
	}
	return d, owner, ps, err
}

// CheckTakeover reads spec's VG and applies the ownership rule without
// changing anything: nil when the VG is ours or unowned, or owned by a
// fenced node for which proofs hold a proof covering its PVs; the
// *OwnerError otherwise.
func (m *Manager) CheckTakeover(ctx context.Context, spec VGSpec, proofs []fence.Proof) error {
	vg, err := m.Report(ctx, spec.Name)
	if err != nil {
		return err
	}
	_, _, _, err = m.decide(spec, vg, proofs)
	return err
}

// Activate makes spec's VG ours (see the package doc) and activates its
// logical volumes; every part is skipped when already done. proofs are the
// fencing proofs the caller holds; only package fence makes valid ones.
func (m *Manager) Activate(ctx context.Context, spec VGSpec, proofs []fence.Proof) error {
	vg, err := m.Report(ctx, spec.Name)
	if err != nil {
		return err
	}
	d, owner, ps, err := m.decide(spec, vg, proofs)
	if err != nil {
		return err
	}
	switch d {
	case Claim:
		if err := m.setOwner(ctx, spec, vg, ""); err != nil {
			return err
		}
		m.log.Info("volume group claimed", "vg", spec.Name, "activation", spec.Activation.String())
	case Takeover:
		var why []string
		for _, p := range ps {
			why = append(why, p.String())
		}
		m.log.Warn("volume group taken over from a fenced node", "vg", spec.Name, "from", owner, "pvs", vg.PVs, "proof", strings.Join(why, "; "))
		if err := m.setOwner(ctx, spec, vg, owner); err != nil {
			return err
		}
	}
	if vg.AutoActivation {
		if _, err := m.run.Run(ctx, []string{"vgchange", "--setautoactivation", "n", spec.Name}); err != nil {
			return err
		}
	}
	if vg.ActiveLVs < vg.LVs || d != Owned {
		if _, err := m.run.Run(ctx, []string{"vgchange", "--activate", "y", spec.Name}); err != nil {
			return err
		}
		m.log.Info("volume group activated", "vg", spec.Name)
	}
	return nil
}

// setOwner records this node as the owner; from is the previous owner node
// ("" for none).
func (m *Manager) setOwner(ctx context.Context, spec VGSpec, vg VG, from string) error {
	var argv []string
	if spec.Activation == Tags {
		argv = []string{"vgchange"}
		if from != "" {
			argv = append(argv, "--deltag", from)
		}
		argv = append(argv, "--addtag", m.node, spec.Name)
	} else {
		argv = []string{"vgchange", "--yes"}
		if vg.SystemID != "" {
			argv = append(argv, "--config", fmt.Sprintf("local/extra_system_ids=[%q]", vg.SystemID))
		}
		argv = append(argv, "--systemid", m.sysID, spec.Name)
	}
	_, err := m.run.Run(ctx, argv)
	return err
}

// Deactivate deactivates spec's VG and releases it (see the package doc).
// A VG that is not ours is left alone.
func (m *Manager) Deactivate(ctx context.Context, spec VGSpec) error {
	vg, err := m.Report(ctx, spec.Name)
	if errors.Is(err, ErrNoSuchVG) {
		return nil
	}
	if err != nil {
		return err
	}
	if owner, _ := m.owner(spec, vg); owner != m.node {
		return nil
	}
	if vg.ActiveLVs > 0 {
		if _, err := m.run.Run(ctx, []string{"vgchange", "--activate", "n", spec.Name}); err != nil {
			return err
		}
		m.log.Info("volume group deactivated", "vg", spec.Name)
	}
	var argv []string
	if spec.Activation == Tags {
		argv = []string{"vgchange", "--deltag", m.node, spec.Name}
	} else {
		argv = []string{"vgchange", "--yes", "--systemid", "", spec.Name}
	}
	if _, err := m.run.Run(ctx, argv); err != nil {
		return err
	}
	m.log.Info("volume group released", "vg", spec.Name)
	return nil
}
