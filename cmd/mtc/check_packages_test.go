package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// examplePackages copies examples/packages/orders-db.toml into the
// packages directory beside cfg, with its programs moved into that
// directory (created executable unless listed in missing).
func examplePackages(t *testing.T, cfg string, missing ...string) string {
	t.Helper()
	ex, err := os.ReadFile("../../examples/packages/orders-db.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(cfg), "packages")
	bin := filepath.Join(filepath.Dir(cfg), "bin")
	for _, d := range []string{dir, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	doc := strings.NewReplacer(`"/etc/mtc/orders-db/`, `"`+bin+"/", `"/usr/lib/postgresql/15/bin/`, `"`+bin+"/").Replace(string(ex))
	for _, prog := range []string{"pre_start", "post_stop", "postgres", "pg_isready"} {
		skip := false
		for _, m := range missing {
			skip = skip || m == prog
		}
		if !skip {
			if err := os.WriteFile(filepath.Join(bin, prog), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(dir, "orders-db.toml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckExamplePackage(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	examplePackages(t, cfg)
	out, err := checkCLI(t, "--config", cfg)
	if err != nil {
		t.Fatalf("check failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Packages (1, in " + filepath.Join(filepath.Dir(cfg), "packages") + ")",
		"orders-db: Orders database (PostgreSQL 15)",
		"nodes         alpha, beta; failover configured_node, failback manual, priority 10",
		"address       10.0.0.50/24",
		"volume group  vg_orders",
		"filesystem    /dev/vg_orders/wal",
		"service       postgres:",
		"timeouts      run 5m0s, halt 3m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	out, err = checkCLI(t, "--config", cfg, "--json")
	if err != nil || !strings.Contains(out, `"name": "orders-db"`) || !strings.Contains(out, `"halt_timeout": "3m0s"`) {
		t.Errorf("json: %v\n%s", err, out)
	}
}

// Problems in the cluster file, the package file and on the machine are
// reported together, each with file, line and field.
func TestCheckPackageProblemsTogether(t *testing.T) {
	cfg, key := checkConfig(t)
	writeKey(t, key, 0o600)
	pkg := examplePackages(t, cfg, "post_stop")
	data, _ := os.ReadFile(pkg)
	bad := strings.NewReplacer(`nodes = ["alpha", "beta"]`, `nodes = ["alpha", "betta"]`, `halt_timeout = "3m"`, `halt_timeout = "30s"`).Replace(string(data))
	os.WriteFile(pkg, []byte(bad), 0o644)
	out, err := checkCLI(t, "--config", cfg)
	if err == nil {
		t.Fatalf("check passed:\n%s", out)
	}
	for _, want := range []string{
		"3 problems",
		pkg + `:12:19: nodes[1]: "betta" is not a node`,
		pkg + ":25:1: halt_timeout: halt_timeout 30s is shorter than the 142s its parts may take",
		pkg + ":70:12: scripts.post_stop.command[0]: the post_stop script",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// An invalid cluster file does not hide the problems of the package files.
func TestCheckClusterAndPackageProblems(t *testing.T) {
	cfg, key := checkConfig(t, `port = 5406`, `port = 99999`)
	writeKey(t, key, 0o600)
	pkg := examplePackages(t, cfg, "pre_start")
	_, err := checkCLI(t, "--config", cfg)
	if err == nil {
		t.Fatal("check passed")
	}
	for _, want := range []string{"2 problems", cfg + ":49:1: network[1].port", pkg + ":65:12: scripts.pre_start.command[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// packages_dir in the cluster file moves the package files.
func TestCheckPackagesDir(t *testing.T) {
	cfg, key := checkConfig(t, `[timing]`, "packages_dir = \"pk\"\n\n[timing]")
	writeKey(t, key, 0o600)
	pkg := examplePackages(t, cfg)
	moved := filepath.Join(filepath.Dir(cfg), "pk")
	if err := os.Rename(filepath.Dir(pkg), moved); err != nil {
		t.Fatal(err)
	}
	out, err := checkCLI(t, "--config", cfg)
	if err != nil || !strings.Contains(out, "Packages (1, in "+moved+")") {
		t.Errorf("got %v:\n%s", err, out)
	}
}

// Many packages: a report of them makes a heartbeat larger than one
// Ethernet frame (a warning: the networks must pass IP fragments); more
// than the wire carries is refused.
func TestCheckPackageCountLimits(t *testing.T) {
	write := func(n int) string {
		cfg, key := checkConfig(t)
		writeKey(t, key, 0o600)
		dir := filepath.Join(filepath.Dir(cfg), "packages")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			name := fmt.Sprintf("pkg-%04d", i)
			body := fmt.Sprintf("name = %q\nnodes = [\"alpha\", \"beta\"]\n", name)
			if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return cfg
	}
	out, err := checkCLI(t, "--config", write(400))
	if err != nil || !strings.Contains(out, "must pass IP fragments") {
		t.Errorf("400 packages: %v:\n%s", err, out)
	}
	out, err = checkCLI(t, "--config", write(20))
	if err != nil || strings.Contains(out, "IP fragments") {
		t.Errorf("20 packages: %v:\n%s", err, out)
	}
	if _, err := checkCLI(t, "--config", write(1001)); err == nil || !strings.Contains(err.Error(), "1001") {
		t.Errorf("1001 packages: %v", err)
	}
}
