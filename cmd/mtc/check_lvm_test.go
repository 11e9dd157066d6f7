package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/lvm"
)

// mtc check reads this node's lvm2 configuration when a package that may
// run here has volume groups, and says what to change.
func TestCheckLVMConfiguration(t *testing.T) {
	saveRunner, saveLook, saveHost := lvmRunner, lvmLookPath, checkHostname
	t.Cleanup(func() { lvmRunner, lvmLookPath, checkHostname = saveRunner, saveLook, saveHost })
	checkHostname = func() (string, error) { return "alpha", nil }
	lvmLookPath = func(string) (string, error) { return "/usr/sbin/lvmconfig", nil }

	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	examplePackages(t, cfg)

	// A correct lvm.conf.
	lvmRunner = lvm.NewFake("alpha")
	out, err := checkCLI(t, "--config", cfg)
	if err != nil || !strings.Contains(out, "LVM on alpha (for orders-db)") || !strings.Contains(out, "lvm.conf is set up") {
		t.Fatalf("good lvm.conf: err %v\n%s", err, out)
	}

	// No system ID source: lvm2 would activate another node's VG.
	f := lvm.NewFake("alpha")
	f.Config["global/system_id_source"] = `"none"`
	lvmRunner = f
	out, err = checkCLI(t, "--config", cfg)
	if !errors.Is(err, errLVMConfig) || !strings.Contains(out, "global/system_id_source") || !strings.Contains(out, `system_id_source = "uname"`) {
		t.Fatalf("system_id_source none: err %v\n%s", err, out)
	}

	// lvm2 missing: said plainly, not an error of the files.
	lvmLookPath = func(string) (string, error) { return "", errors.New("not found") }
	out, err = checkCLI(t, "--config", cfg)
	if err != nil || !strings.Contains(out, "lvm2 is not installed on this node") {
		t.Fatalf("lvm2 missing: err %v\n%s", err, out)
	}

	// A node that no package with volume groups may run on is not asked.
	checkHostname = func() (string, error) { return "gamma", nil }
	out, err = checkCLI(t, "--config", cfg)
	if err != nil || strings.Contains(out, "LVM on") {
		t.Fatalf("node without VG packages: err %v\n%s", err, out)
	}
}
