package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mtc check lists every node's fenced LUNs (the quorum disk first) and,
// with --probe-fence, which fencing each LUN of this node gets.
func TestCheckFencing(t *testing.T) {
	img := filepath.Join(t.TempDir(), "quorum.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, key := checkConfig(t, `path = "/dev/disk/by-id/wwn-0x600a0b800026b2820000a1b2c3d4e5f6"`, `path = "`+img+`"`)
	writeKey(t, key, 0o600)
	if err := os.WriteFile(cfg, append(mustRead(t, cfg), []byte("\n[fence]\nluns = [\"/dev/mtc-test-absent\"]\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Fencing (SCSI-3 persistent reservations, type write-exclusive-registrants-only, APTPL false",
		"alpha  " + img + "  not probed", "/dev/mtc-test-absent", "gamma  /dev/mapper/mtc-quorum"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	out, err = checkCLI(t, "--config", cfg, "--probe-fence", "--node", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	norm := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(norm, "alpha "+img+" none a regular file has no persistent reservations: watchdog fallback") {
		t.Errorf("probed quorum disk image:\n%s", out)
	}
	if !strings.Contains(norm, "alpha /dev/mtc-test-absent unknown") {
		t.Errorf("probed absent LUN:\n%s", out)
	}
	if _, err := checkCLI(t, "--config", cfg, "--probe-fence", "--node", "nosuch"); err == nil || !strings.Contains(err.Error(), "not a node") {
		t.Errorf("--probe-fence for an unknown node: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
