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
}

// TakeoverProof is evidence that a node can no longer write to shared
// storage: it has been fenced (power-cycled, its storage access revoked, or
// its own watchdog deadline has certainly passed). The fencing layer
// produces it; nothing else should. Activate accepts the takeover of a VG
// owned by node N only with a proof whose FencedNode is N.
//
// A proof is about one incarnation of the node (one run of its daemon,
// quorum.Incarnation): it shows that this run stopped writing, not that
// the node stays stopped. Activate accepts it only for the incarnation
// Members reports as the owner's last, so a proof kept from an earlier
// failure cannot serve for a node that has since come back and gone again.
type TakeoverProof interface {
	// FencedNode is the cluster node name the proof is about.
	FencedNode() string
	// Incarnation is the incarnation of FencedNode that was fenced.
	Incarnation() uint64
	// Describe says how the node was fenced, for the log (e.g. "power
	// off by ipmi").
	Describe() string
}

// Members is the cluster as the VG owner check needs it.
type Members interface {
	// NodeOfSystemID returns the cluster node whose LVM system ID is id.
	NodeOfSystemID(id string) (node string, ok bool)
	// IsNode reports whether name is a cluster node (for tag owners).
	IsNode(name string) bool
	// Live reports whether node is a live member now.
	Live(node string) bool
	// LastIncarnation is the last incarnation of node this node has seen,
	// 0 if it has seen none (then no proof can be checked against it).
	LastIncarnation(node string) uint64
}

// Errors of Activate.
var (
	ErrOwnedByLiveMember = errors.New("volume group is owned by a live cluster member")
	ErrNoProof           = errors.New("volume group is owned by another node and no fencing proof for that node was given")
	ErrForeignOwner      = errors.New("volume group is owned by a host that is not a cluster node")
	ErrNoSuchVG          = errors.New("no such volume group")
)

// OwnerError is an Activate refusal, naming the VG and its owner.
type OwnerError struct {
	VG    string
	Owner string // node name, or the system ID when not a node
	Err   error  // one of the errors above
}

func (e *OwnerError) Error() string {
	switch e.Err {
	case ErrOwnedByLiveMember:
		return fmt.Sprintf("volume group %s: owned by %s, which is a live member: halt the package there first", e.VG, e.Owner)
	case ErrNoProof:
		return fmt.Sprintf("volume group %s: owned by %s, which is not live but not proven fenced: it is taken over only after %s is fenced (a proof counts only for the last incarnation of %s this node saw)", e.VG, e.Owner, e.Owner, e.Owner)
	case ErrForeignOwner:
		return fmt.Sprintf("volume group %s: system ID %q belongs to no cluster node: if that host is stopped for good, take the VG over by hand (vgchange --config 'local/extra_system_ids=[\"%s\"]' --systemid <this node's ID> %s)", e.VG, e.Owner, e.Owner, e.VG)
	}
	return fmt.Sprintf("volume group %s: owner %s: %v", e.VG, e.Owner, e.Err)
}

func (e *OwnerError) Unwrap() error { return e.Err }

// Manager drives lvm2 for one node.
type Manager struct {
	run     Runner
	node    string
	sysID   string
	members Members
	log     *slog.Logger
}

// NewManager returns a Manager for node, whose LVM system ID is sysID (see
// LocalSystemID).
func NewManager(r Runner, node, sysID string, members Members, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{run: r, node: node, sysID: sysID, members: members, log: log}
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
// autoactivation and how many of its LVs are active.
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
// do with vg, or an *OwnerError.
func (m *Manager) Decide(spec VGSpec, vg VG, proofs []TakeoverProof) (Decision, string, error) {
	owner, isNode := m.owner(spec, vg)
	switch {
	case owner == m.node:
		return Owned, owner, nil
	case owner == "":
		return Claim, "", nil
	case !isNode:
		return 0, owner, &OwnerError{VG: vg.Name, Owner: owner, Err: ErrForeignOwner}
	case m.members.Live(owner):
		return 0, owner, &OwnerError{VG: vg.Name, Owner: owner, Err: ErrOwnedByLiveMember}
	}
	if m.proofFor(owner, proofs) != nil {
		return Takeover, owner, nil
	}
	return 0, owner, &OwnerError{VG: vg.Name, Owner: owner, Err: ErrNoProof}
}

// proofFor returns the proof that owner's last incarnation is fenced, or
// nil.
func (m *Manager) proofFor(owner string, proofs []TakeoverProof) TakeoverProof {
	last := m.members.LastIncarnation(owner)
	if last == 0 {
		return nil
	}
	for _, p := range proofs {
		if p != nil && p.FencedNode() == owner && p.Incarnation() == last {
			return p
		}
	}
	return nil
}

// CheckTakeover reads spec's VG and applies Decide without changing
// anything: nil when the VG is ours or unowned, or owned by a fenced node
// for which proofs hold a proof; the *OwnerError otherwise.
func (m *Manager) CheckTakeover(ctx context.Context, spec VGSpec, proofs []TakeoverProof) error {
	vg, err := m.Report(ctx, spec.Name)
	if err != nil {
		return err
	}
	_, _, err = m.Decide(spec, vg, proofs)
	return err
}

// Activate makes spec's VG ours (see the package doc) and activates its
// logical volumes; every part is skipped when already done.
func (m *Manager) Activate(ctx context.Context, spec VGSpec, proofs []TakeoverProof) error {
	vg, err := m.Report(ctx, spec.Name)
	if err != nil {
		return err
	}
	d, owner, err := m.Decide(spec, vg, proofs)
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
		p := m.proofFor(owner, proofs)
		m.log.Warn("volume group taken over from a fenced node", "vg", spec.Name, "from", owner, "incarnation", p.Incarnation(), "proof", p.Describe())
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
