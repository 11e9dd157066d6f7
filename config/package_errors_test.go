package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pkgBase is a valid package that the error cases extend.
const pkgBase = `name = "p"
nodes = ["alpha"]
`

// packageErrorCases are package files with one problem each (or a few of
// one kind); the golden file holds what ParsePackage reports for each, with
// file, line, field and message. Every case must report at least one error
// naming a line and a field.
var packageErrorCases = []struct{ name, file string }{
	{"syntax", pkgBase + "description = \"x\n"},
	{"unknown key suggested", pkgBase + "fail_over_policy = \"configured_node\"\n"},
	{"unknown key in table", pkgBase + "[[ip]]\naddress = \"10.0.0.50/24\"\ninterfce = \"eth0\"\n"},
	{"miscased key", pkgBase + "Priority = 3\n"},
	{"wrong type", pkgBase + "priority = \"3\"\n"},
	{"command as string", pkgBase + "[[service]]\nname = \"s\"\ncommand = \"/usr/bin/prog --flag\"\n"},
	{"missing name and nodes", "description = \"nothing\"\n"},
	{"bad name", "name = \"Orders DB\"\nnodes = [\"alpha\"]\n"},
	{"duplicate node", "name = \"p\"\nnodes = [\"alpha\", \"alpha\"]\n"},
	{"policies", pkgBase + "failover_policy = \"nearest\"\nfailback_policy = \"sometimes\"\n"},
	{"automatic failback with min_package_node", pkgBase + "failover_policy = \"min_package_node\"\nfailback_policy = \"automatic\"\n"},
	{"priority out of range", pkgBase + "priority = 0\n"},
	{"dependency", pkgBase + "[[dependency]]\npackage = \"p\"\ncondition = \"wants\"\n"},
	{"ip malformed", pkgBase + "[[ip]]\naddress = \"10.0.0.50\"\ninterface = \"eth0\"\n"},
	{"ip without interface or subnet", pkgBase + "[[ip]]\naddress = \"10.0.0.50/24\"\n"},
	{"ip with both", pkgBase + "[[ip]]\naddress = \"10.0.0.50/24\"\ninterface = \"eth0\"\nsubnet = \"10.0.0.0/24\"\n"},
	{"ip outside subnet", pkgBase + "[[ip]]\naddress = \"10.0.1.50/24\"\nsubnet = \"10.0.0.0/24\"\n"},
	{"ip broadcast", pkgBase + "[[ip]]\naddress = \"10.0.0.255/24\"\ninterface = \"eth0\"\n"},
	{"ip twice", pkgBase + "[[ip]]\naddress = \"fd00::50/64\"\ninterface = \"eth0\"\n[[ip]]\naddress = \"fd00::50/64\"\ninterface = \"eth1\"\n"},
	{"ip missing address", pkgBase + "[[ip]]\ninterface = \"eth0\"\n"},
	{"route", pkgBase + "[[route]]\ndestination = \"10.1.0.1/16\"\n[[route]]\ndestination = \"10.2.0.0/16\"\ngateway = \"fd00::1\"\ntable = -1\n"},
	{"route without next hop", pkgBase + "[[route]]\ndestination = \"10.2.0.0/16\"\n"},
	{"vg", pkgBase + "[[volume_group]]\nname = \"vg orders\"\n[[volume_group]]\nname = \"vg1\"\nactivation = \"exclusive\"\n[[volume_group]]\nname = \"vg1\"\n"},
	{"filesystem missing keys", pkgBase + "[[filesystem]]\noptions = \"noatime, nodev\"\n"},
	{"filesystem bad values", pkgBase + "[[filesystem]]\ndevice = \"dev/sdb\"\nmount_point = \"/srv/x/\"\ntype = \"ext4\"\nfsck = \"sometimes\"\nunmount_timeout = \"30\"\n"},
	{"filesystem on another vg", pkgBase + "[[volume_group]]\nname = \"vg1\"\n[[filesystem]]\ndevice = \"/dev/vg2/data\"\nmount_point = \"/srv/x\"\ntype = \"ext4\"\n"},
	{"filesystem nested before parent", pkgBase + "[[filesystem]]\ndevice = \"/dev/vg/wal\"\nmount_point = \"/srv/x/wal\"\ntype = \"ext4\"\n[[filesystem]]\ndevice = \"/dev/vg/data\"\nmount_point = \"/srv/x\"\ntype = \"ext4\"\n"},
	{"filesystem twice", pkgBase + "[[filesystem]]\ndevice = \"/dev/vg/data\"\nmount_point = \"/srv/x\"\ntype = \"ext4\"\n[[filesystem]]\ndevice = \"/dev/vg/data\"\nmount_point = \"/srv/x\"\ntype = \"ext4\"\n"},
	{"script", pkgBase + "[scripts.pre_start]\ncommand = [\"prepare.sh\"]\n[scripts.post_stop]\ncommand = [\"/usr/bin/a | b\"]\ntimeout = \"2h\"\n[scripts.pre_stop]\ncommand = []\n"},
	{"unknown script", pkgBase + "[scripts.pre_halt]\ncommand = [\"/bin/true\"]\n"},
	{"service neither", pkgBase + "[[service]]\nname = \"s\"\n"},
	{"service both", pkgBase + "[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\nagent = \"ocf:heartbeat:Dummy\"\n"},
	{"service names", pkgBase + "[[service]]\ncommand = [\"/bin/sleep\", \"1\"]\n[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\n[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\n"},
	{"service command options", pkgBase + "[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\nparameters = { state = \"x\" }\nstop_timeout = \"5s\"\nhealth_interval = \"5s\"\nrestarts = -1\n"},
	{"service delays", pkgBase + "[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\nrestart_delay = \"10s\"\nmax_restart_delay = \"5s\"\nhealth_command = [\"/bin/true\"]\nhealth_interval = \"2s\"\nhealth_timeout = \"5s\"\n"},
	{"service fail_fast with restarts", pkgBase + "[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\nfail_fast = true\nrestarts = 3\n"},
	{"agent", pkgBase + "[[service]]\nname = \"s\"\nagent = \"heartbeat:Dummy\"\n"},
	{"agent options", pkgBase + "[[service]]\nname = \"s\"\nagent = \"ocf:heartbeat:Dummy\"\nhalt_timeout = \"5s\"\nhealth_command = [\"/bin/true\"]\nparameters = { \"bad-name\" = \"x\" }\n"},
	{"interface names", pkgBase + "[[ip]]\naddress = \"10.0.0.50/24\"\ninterface = \"a-very-long-interface-name\"\n[[route]]\ndestination = \"10.2.0.0/16\"\ninterface = \"eth 0\"\n"},
	{"mapper device on another vg, root mount point", pkgBase + "[[volume_group]]\nname = \"vg1\"\n[[filesystem]]\ndevice = \"/dev/mapper/vg--2-data\"\nmount_point = \"/\"\ntype = \"ext4\"\n"},
	{"user, environment, directory", pkgBase + "[scripts.pre_start]\ncommand = [\"/bin/true\"]\nuser = \"a:b\"\ndirectory = \"srv\"\nenvironment = { \"A=B\" = \"x\" }\n"},
	{"description with control character", pkgBase + "description = \"a\\u0007b\"\n"},
	{"halt_timeout too short", pkgBase + "halt_timeout = \"10s\"\n[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1\"]\nhalt_timeout = \"30s\"\n[[filesystem]]\ndevice = \"/dev/vg/data\"\nmount_point = \"/srv/x\"\ntype = \"ext4\"\n"},
	{"run_timeout too short", pkgBase + "run_timeout = \"10s\"\n[scripts.pre_start]\ncommand = [\"/bin/true\"]\n[[service]]\nname = \"a\"\nagent = \"ocf:heartbeat:Dummy\"\nstart_timeout = \"30s\"\n"},
}

func TestPackageErrors(t *testing.T) {
	var b strings.Builder
	for _, tc := range packageErrorCases {
		_, err := ParsePackage("p.toml", []byte(tc.file))
		var errs *Errors
		if !errors.As(err, &errs) {
			t.Errorf("%s: accepted (err %v)", tc.name, err)
			continue
		}
		for _, fe := range errs.List {
			if fe.Line == 0 || fe.File != "p.toml" || fe.Err == nil {
				t.Errorf("%s: error without a line, file or sentinel: %v", tc.name, fe)
			}
		}
		fmt.Fprintf(&b, "## %s\n%s\n%v\n\n", tc.name, indent(tc.file), errs)
	}
	golden(t, "testdata/package_errors.golden", b.String())
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ")
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s is stale (run go test ./config -run %s -update and review the diff)\ngot:\n%s", path, t.Name(), got)
	}
}

// packageSetCases are packages checked together and against the example
// cluster (nodes alpha, beta, gamma; heartbeat addresses 10.0.0.1-3 and
// 192.168.50.1-3).
var packageSetCases = []struct {
	name  string
	files []string
}{
	{"unknown node", []string{"name = \"a\"\nnodes = [\"alpha\", \"betta\", \"delta\"]\n"}},
	{"duplicate names", []string{"name = \"a\"\nnodes = [\"alpha\"]\n", "name = \"a\"\nnodes = [\"beta\"]\n"}},
	{"unknown dependency", []string{"name = \"a\"\nnodes = [\"alpha\"]\n[[dependency]]\npackage = \"b\"\ncondition = \"needs\"\nwhere = \"same_node\"\n"}},
	{"address of a node", []string{"name = \"a\"\nnodes = [\"alpha\"]\n[[ip]]\naddress = \"10.0.0.2/24\"\ninterface = \"eth0\"\n"}},
	{"address of two packages", []string{
		"name = \"a\"\nnodes = [\"alpha\"]\n[[ip]]\naddress = \"10.0.0.50/24\"\ninterface = \"eth0\"\n",
		"name = \"b\"\nnodes = [\"alpha\"]\n\n[[ip]]\naddress = \"10.0.0.50/24\"\nsubnet = \"10.0.0.0/24\"\n"}},
	{"volume group of two packages", []string{
		"name = \"a\"\nnodes = [\"alpha\"]\n[[volume_group]]\nname = \"vg1\"\n",
		"name = \"b\"\nnodes = [\"alpha\"]\n[[volume_group]]\nname = \"vg2\"\n[[volume_group]]\nname = \"vg1\"\n"}},
	{"mount point inside another package's", []string{
		"name = \"a\"\nnodes = [\"alpha\"]\n[[filesystem]]\ndevice = \"/dev/vga/data\"\nmount_point = \"/srv/a\"\ntype = \"ext4\"\n",
		"name = \"b\"\nnodes = [\"alpha\"]\n[[filesystem]]\ndevice = \"/dev/vgb/data\"\nmount_point = \"/srv/a/b\"\ntype = \"ext4\"\n[[filesystem]]\ndevice = \"/dev/vga/data\"\nmount_point = \"/srv/b\"\ntype = \"ext4\"\n"}},
	{"problems in several files at once", []string{
		"name = \"a\"\nnodes = [\"alpha\"]\npriority = 5000\n",
		"name = \"b\"\nnodes = [\"omega\"]\n[[ip]]\naddress = \"192.168.50.3/24\"\ninterface = \"eth1\"\n"}},
}

func TestPackageSetErrors(t *testing.T) {
	c, err := Load("../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tc := range packageSetCases {
		dir := t.TempDir()
		for i, f := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%c.toml", 'a'+i)), []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := LoadPackages(c, dir, nil)
		var errs *Errors
		if !errors.As(err, &errs) {
			t.Errorf("%s: accepted (err %v)", tc.name, err)
			continue
		}
		fmt.Fprintf(&b, "## %s\n", tc.name)
		for i, f := range tc.files {
			fmt.Fprintf(&b, "  %c.toml:\n%s\n", 'a'+i, indent(f))
		}
		for _, fe := range errs.List {
			if fe.Line == 0 || fe.Err == nil {
				t.Errorf("%s: error without a line or sentinel: %v", tc.name, fe)
			}
			fe.File = filepath.Base(fe.File)
			fmt.Fprintf(&b, "%v\n", strings.ReplaceAll(fe.Error(), dir+"/", ""))
		}
		b.WriteString("\n")
	}
	golden(t, "testdata/package_set_errors.golden", b.String())
}

// A missing directory holds no packages; the example set is valid.
func TestLoadPackagesEmpty(t *testing.T) {
	c, err := Load("../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := LoadPackages(c, filepath.Join(t.TempDir(), "none"), nil)
	if err != nil || len(pkgs) != 0 {
		t.Fatalf("got %v, %v", pkgs, err)
	}
}
