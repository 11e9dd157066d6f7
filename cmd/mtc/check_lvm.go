package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/lvm"
)

// lvmRunner is how mtc check asks lvm2 for its configuration; tests
// replace it with lvm.Fake.
var lvmRunner lvm.Runner = lvm.Exec{}

// lvmLookPath finds lvm2's programs; tests replace it.
var lvmLookPath = exec.LookPath

// checkHostname names the node mtc check runs on; tests replace it.
var checkHostname = os.Hostname

// lvmCheck is what this node's lvm.conf must change for the packages that
// may run here and activate volume groups.
type lvmCheck struct {
	Node     string   `json:"node"`
	Packages []string `json:"packages"`
	// Missing: lvm2 is not installed on this node.
	Missing  bool     `json:"lvm2_missing,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Err      string   `json:"error,omitempty"`
}

// checkLVM reads this node's lvm2 configuration (lvmconfig, read only)
// when a package that may run on node has volume groups. It returns nil
// when none has.
func checkLVM(ctx context.Context, node string, pkgs []*config.Package) *lvmCheck {
	var names []string
	var modes []lvm.Activation
	for _, p := range pkgs {
		if !slices.Contains(p.Nodes, node) {
			continue
		}
		s := p.Spec()
		if len(s.VolumeGroups) == 0 {
			continue
		}
		names = append(names, p.Name)
		for _, vg := range s.VolumeGroups {
			if !slices.Contains(modes, vg.Activation) {
				modes = append(modes, vg.Activation)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	lc := &lvmCheck{Node: node, Packages: names}
	if _, err := lvmLookPath("lvmconfig"); err != nil {
		lc.Missing = true
		return lc
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	probs, err := lvm.CheckConfig(ctx, lvmRunner, node, modes)
	if err != nil {
		lc.Err = err.Error()
		return lc
	}
	for _, p := range probs {
		lc.Problems = append(lc.Problems, p.String())
	}
	return lc
}

func printLVMCheck(out io.Writer, lc *lvmCheck) error {
	if lc == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nLVM on %s (for %s)\n", lc.Node, strings.Join(lc.Packages, ", "))
	switch {
	case lc.Missing:
		fmt.Fprintf(&b, "  lvm2 is not installed on this node: these packages cannot activate their volume groups here; install it (apt-get install lvm2)\n")
	case lc.Err != "":
		fmt.Fprintf(&b, "  lvm2's configuration could not be read: %s\n", lc.Err)
	case len(lc.Problems) == 0:
		fmt.Fprintf(&b, "  lvm.conf is set up for package volume groups (system ID source, volume_list, no lvmlockd)\n")
	default:
		for _, p := range lc.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// errLVMConfig is returned by mtc check when this node's lvm.conf must
// change before its packages can run here.
var errLVMConfig = errors.New("this node's lvm2 configuration does not protect package volume groups")
