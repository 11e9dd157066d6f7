package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/pkgrun"
)

func TestExamplePackage(t *testing.T) {
	c, err := Load("../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := LoadPackages(c, PackagesDir("../examples/cluster.toml"), nil)
	if err != nil {
		t.Fatalf("examples/packages rejected:\n%v", err)
	}
	if len(pkgs) != 1 {
		t.Fatalf("got %d packages, want 1", len(pkgs))
	}
	p := pkgs[0]
	s := p.Spec()
	if s.Name != "orders-db" || len(s.Addresses) != 1 || len(s.Routes) != 1 || len(s.VolumeGroups) != 1 ||
		len(s.Filesystems) != 2 || len(s.Services) != 1 || s.Scripts.PreStart == nil || s.Scripts.PostStop == nil {
		t.Fatalf("spec: %+v", s)
	}
	if s.VolumeGroups[0].Activation != lvm.SystemID || !s.Filesystems[1].KillHolders || s.Filesystems[1].UnmountTimeout != DefaultUnmountTimeout {
		t.Errorf("defaults not applied: %+v %+v", s.VolumeGroups[0], s.Filesystems[1])
	}
	if s.HaltTimeout != 3*time.Minute || s.HaltTimeout < pkgrun.MinHaltTimeout(s) {
		t.Errorf("halt timeout %v, min %v", s.HaltTimeout, pkgrun.MinHaltTimeout(s))
	}
	if got := s.Scripts.PreStart.Env; len(got) != 1 || got[0] != "PGDATA=/srv/orders/data" {
		t.Errorf("pre_start env %q", got)
	}
}

func TestPackageDerivedTimeouts(t *testing.T) {
	p, err := ParsePackage("p.toml", []byte(`name = "p"
nodes = ["alpha"]
[[service]]
name = "s"
command = ["/bin/sleep", "1000"]
halt_timeout = "5s"
[scripts.pre_stop]
command = ["/bin/true"]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec()
	want := 5*time.Second + 2*time.Second + DefaultScriptTimeout + DefaultStepAllowance
	if s.HaltTimeout != want || !p.HaltTimeoutDerived() {
		t.Errorf("derived halt_timeout %v, want %v", s.HaltTimeout, want)
	}
	if s.RunTimeout != DefaultStepAllowance {
		t.Errorf("derived run_timeout %v", s.RunTimeout)
	}
}

func TestCheckPackageFiles(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644)
	data := `name = "p"
nodes = ["alpha"]
[scripts.pre_start]
command = ["` + exe + `"]
[scripts.post_start]
command = ["` + plain + `"]
[scripts.pre_stop]
command = ["` + filepath.Join(dir, "missing") + `"]
[scripts.post_stop]
command = ["` + dir + `"]
[[service]]
name = "a"
agent = "ocf:nosuchprovider:Nope"
`
	p, err := ParsePackage("p.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckPackageFiles([]*Package{p}, nil)
	want := []struct {
		line  int
		field string
	}{{6, "scripts.post_start.command[0]"}, {8, "scripts.pre_stop.command[0]"}, {10, "scripts.post_stop.command[0]"}, {13, "service[0].agent"}}
	if len(got) != len(want) {
		t.Fatalf("got %d problems:\n%v", len(got), &Errors{List: got})
	}
	for i, w := range want {
		if got[i].Line != w.line || got[i].Field != w.field || !errors.Is(got[i], ErrInvalid) {
			t.Errorf("problem %d: %v, want line %d field %s", i, got[i], w.line, w.field)
		}
	}
}

// Every key of the package file is documented in docs/packages.md.
func TestPackageDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/packages.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, fields []schemaField)
	walk = func(prefix string, fields []schemaField) {
		for _, f := range fields {
			if !strings.Contains(string(doc), "`"+f.Key+"`") && !strings.Contains(string(doc), "["+prefix+f.Key+"]") &&
				!strings.Contains(string(doc), "[["+f.Key+"]]") {
				t.Errorf("docs/packages.md does not document %s%s", prefix, f.Key)
			}
			walk(prefix+f.Key+".", schemaFields(f.Type))
		}
	}
	walk("", schemaFields(packageSchema))
}

func TestPackagesDirOf(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"", "/etc/mtc/packages"},
		{"pk", "/etc/mtc/pk"},
		{"/srv/mtc/pk/", "/srv/mtc/pk"},
	} {
		if got := PackagesDirOf(&Cluster{PackagesDir: tc.dir}, "/etc/mtc/cluster.toml"); got != tc.want {
			t.Errorf("packages_dir %q: got %s, want %s", tc.dir, got, tc.want)
		}
	}
}
