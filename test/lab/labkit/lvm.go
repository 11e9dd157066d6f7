package labkit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// LVMNode runs lvm2 commands as one simulated node: restricted to that
// node's own device paths (--devices) and with its own system ID
// (local/system_id), as on a separate host. All nodes share the guest's
// device-mapper, so a volume activated by one node is visible to all; the
// tests check ownership through LVM and the SAN, not through /dev.
type LVMNode struct {
	Name    string   // system ID, e.g. node1
	Devices []string // the node's paths, e.g. /dev/sdc
}

// Run runs `lvm CMD ARGS...` as the node. extraConfig is added to the
// node's --config string (lvm accepts --config only once per command), e.g.
// `local/extra_system_ids=["node1"]`; empty for none.
func (n LVMNode) Run(ctx context.Context, extraConfig string, cmd string, args ...string) (string, error) {
	cfg := "global/system_id_source=lvmlocal local/system_id=" + n.Name
	if extraConfig != "" {
		cfg += " " + extraConfig
	}
	argv := append([]string{"lvm", cmd}, args...)
	argv = append(argv, "--devices", strings.Join(n.Devices, ","), "--config", cfg)
	out, err := Run(ctx, argv...)
	if err != nil {
		return out, fmt.Errorf("%s: %w", n.Name, err)
	}
	return out, nil
}

// VG is one row of `vgs --reportformat json`.
type VG struct {
	Name     string `json:"vg_name"`
	SystemID string `json:"vg_systemid"`
	LVCount  string `json:"lv_count"`
}

// VGs lists the volume groups the node sees; foreign ones too when foreign.
func (n LVMNode) VGs(ctx context.Context, foreign bool) ([]VG, error) {
	args := []string{"--reportformat", "json", "-o", "vg_name,vg_systemid,lv_count"}
	if foreign {
		args = append(args, "--foreign")
	}
	out, err := n.Run(ctx, "", "vgs", args...)
	if err != nil {
		return nil, err
	}
	return decodeVGs(out)
}

func decodeVGs(out string) ([]VG, error) {
	var rep struct {
		Report []struct {
			VG []VG `json:"vg"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return nil, fmt.Errorf("vgs json report: %w", err)
	}
	var vgs []VG
	for _, r := range rep.Report {
		vgs = append(vgs, r.VG...)
	}
	return vgs, nil
}

// LVMRunner runs the argument vectors of package lvm's Manager (vgs,
// vgchange, ...) as Node: `lvm CMD ...` with the node's --devices and
// --config. A --config in the vector is merged into the node's, since
// lvm takes --config once per command. It satisfies lvm.Runner.
type LVMRunner struct{ Node LVMNode }

// Run runs argv as the node and returns its standard output.
func (r LVMRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("labkit.LVMRunner: empty argument vector")
	}
	var extra []string
	var args []string
	for i := 1; i < len(argv); i++ {
		if argv[i] == "--config" && i+1 < len(argv) {
			extra = append(extra, argv[i+1])
			i++
			continue
		}
		args = append(args, argv[i])
	}
	out, err := r.Node.Run(ctx, strings.Join(extra, " "), argv[0], args...)
	return []byte(out), err
}
