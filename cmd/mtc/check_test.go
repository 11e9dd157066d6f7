package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mtcluster/mtc/config"
)

// checkCLI runs `mtc check args...` in-process and returns its output.
func checkCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, append([]string{"check"}, args...)...)
}

// checkConfig writes the example configuration with its key file moved
// into a temporary directory, edited by the replacer pairs, and returns
// the config path and the key file path.
func checkConfig(t *testing.T, edits ...string) (string, string) {
	t.Helper()
	ex, err := os.ReadFile("../../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	doc := strings.Replace(string(ex), `key_file = "/etc/mtc/cluster.key"`, fmt.Sprintf("key_file = %q", key), 1)
	if len(edits) > 0 {
		doc = strings.NewReplacer(edits...).Replace(doc)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, key
}

func writeKey(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{0x5a}, 32), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCheckExampleSummary(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	d := config.DefaultTiming().Derive()
	for _, want := range []string{
		cfg + ": valid",
		"Cluster payments (uuid 0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90)",
		"0  lan      UDP port 5405",
		"1  storage  UDP port 5406",
		"NAME   ID  VOTES  LAN       STORAGE       QUORUM DISK",
		"gamma  3   1      10.0.0.3  192.168.50.3  /dev/mapper/mtc-quorum",
		"alpha  1   1      10.0.0.1  192.168.50.1  /dev/disk/by-id/wwn-0x600a0b800026b2820000a1b2c3d4e5f6",
		"3 votes; quorum is 2 votes",
		fmt.Sprintf("a peer silent for %v is suspected", d.SuspectAfter),
		fmt.Sprintf("a peer silent for %v on both the network and the quorum disk is declared dead", d.DeadAfter),
		fmt.Sprintf("a node that cannot write its quorum-disk slot or loses quorum for %v stops its packages and its watchdog resets it within %v", d.SelfFenceAfter, d.WatchdogTimeout),
		fmt.Sprintf("takeover of a dead node's packages without fencing is allowed %v after it is declared dead", roundMs(d.TakeoverAfter)),
		fmt.Sprintf("claimed once it has been unchanged for %v", roundMs(d.TieClaimAfter)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Warnings") {
		t.Errorf("unexpected warnings:\n%s", out)
	}
}

func TestCheckKeyFileWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode // 0: no key file
		want string
	}{
		{"missing", 0, "does not exist"},
		{"group readable", 0o640, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, key := checkConfig(t)
			if tc.mode != 0 {
				writeKey(t, key, tc.mode)
			}
			out, err := checkCLI(t, "--config", cfg)
			if err != nil {
				t.Fatalf("a key file problem must warn, not fail: %v", err)
			}
			want := fmt.Sprintf("%s:20:1: cluster.key_file: cluster key file %s", cfg, key)
			if !strings.Contains(out, "Warnings (1)") || !strings.Contains(out, want) || !strings.Contains(out, tc.want) {
				t.Errorf("want one warning %q ... %q:\n%s", want, tc.want, out)
			}
		})
	}
}

func TestCheckKeyFileFIFO(t *testing.T) {
	cfg, key := checkConfig(t)
	if err := syscall.Mkfifo(key, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v", err)
	}
	if !strings.Contains(out, "is not a regular file (p---------)") {
		t.Errorf("no warning about the FIFO:\n%s", out)
	}
}

func TestCheckWarnings(t *testing.T) {
	cfg, key := checkConfig(t,
		"[[network]]\nname = \"storage\"\nport = 5406\n", "",
		"storage = \"192.168.50.1\"\n", "", "storage = \"192.168.50.2\"\n", "", "storage = \"192.168.50.3\"\n", "",
		`mode = "device"`, "mode = \"none\"\nallow_none = true")
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v", err)
	}
	for _, want := range []string{"Warnings (2)", `network: only one heartbeat network ("lan")`, `watchdog.mode: watchdog mode "none"`, "watchdog mode none"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckInvalid(t *testing.T) {
	cfg, _ := checkConfig(t, "id = 3", "id = 2", `name = "payments"`, `nmae = "payments"`)
	out, err := checkCLI(t, "--config", cfg)
	if err == nil {
		t.Fatalf("invalid configuration accepted:\n%s", out)
	}
	if exitCode(err) == 0 {
		t.Errorf("exit code 0 for an invalid configuration")
	}
	msg := err.Error()
	for _, want := range []string{
		cfg + ": 3 problems:\n",
		cfg + ":10:2: cluster.name: the cluster has no name",
		cfg + `:13:1: cluster.nmae: unknown key "nmae" (did you mean "name"?)`,
		cfg + `:69:1: node[2].id: 2 is already used by node "beta" (line 62)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, config.ErrDuplicate) || !errors.Is(err, config.ErrUnknownKey) {
		t.Errorf("error does not wrap the config sentinels")
	}
}

func TestCheckJSON(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	out, err := checkCLI(t, "--json", "--config", cfg)
	if err != nil {
		t.Fatalf("check --json: %v", err)
	}
	var r checkReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	d := config.DefaultTiming().Derive()
	if !r.Valid || r.Cluster == nil || len(r.Cluster.Nodes) != 3 || r.Cluster.Quorum != 2 ||
		r.Cluster.Derived["takeover_after"] != d.TakeoverAfter.String() || r.Cluster.Nodes[2].QuorumDisk != "/dev/mapper/mtc-quorum" {
		t.Errorf("unexpected report: %+v", r)
	}

	bad, _ := checkConfig(t, "id = 3", "id = 17")
	out, err = checkCLI(t, "--json", "--config", bad)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("invalid file with --json: error %v, want exit code 1", err)
	}
	r = checkReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if r.Valid || len(r.Errors) != 1 || r.Errors[0].Line != 69 || r.Errors[0].Field != "node[2].id" {
		t.Errorf("unexpected report: %+v", r)
	}
}

func TestQuorumText(t *testing.T) {
	for total, want := range map[int]string{
		1: "1 vote; quorum is 1 vote; an exact split cannot happen",
		2: "2 votes; quorum is 2 votes; an exact split (1 and 1) is decided on the quorum disk",
		3: "3 votes; quorum is 2 votes; an exact split cannot happen",
		4: "4 votes; quorum is 3 votes; an exact split (2 and 2) is decided on the quorum disk",
	} {
		if got := quorumText(total); !strings.HasPrefix(got, want) {
			t.Errorf("quorumText(%d) = %q, want prefix %q", total, got, want)
		}
	}
}
