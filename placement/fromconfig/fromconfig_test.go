package fromconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/placement"
)

func TestExample(t *testing.T) {
	c, err := config.Load("../../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := config.LoadPackages(c, config.PackagesDir("../../examples/cluster.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(c, pkgs, "beta", 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	alpha, _ := c.NodeByName("alpha")
	beta, _ := c.NodeByName("beta")
	p := cfg.Packages[0]
	if cfg.Self != placement.NodeID(beta.ID) || len(cfg.Nodes) != len(c.Nodes) || p.Name != "orders-db" ||
		!slices.Equal(p.Nodes, []placement.NodeID{placement.NodeID(alpha.ID), placement.NodeID(beta.ID)}) ||
		p.Priority != 10 || p.Failover != placement.ConfiguredNode || p.Failback != placement.FailbackManual || !p.AutoRun {
		t.Fatalf("converted %+v", cfg)
	}
	if _, err := placement.New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Config(c, pkgs, "delta", 7, nil); err == nil || !strings.Contains(err.Error(), `"delta"`) {
		t.Fatalf("unknown self node: %v", err)
	}
}

// A cycle of needs dependencies, which the package files' validation does
// not look for, is reported at the dependency that closes it, with its
// file and line.
func TestNeedsCycle(t *testing.T) {
	c, err := config.Load("../../examples/cluster.toml")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name, other string) *config.Package {
		p, err := config.ParsePackage(name+".toml", []byte(`name = "`+name+`"
nodes = ["alpha", "beta"]

[[dependency]]
package = "`+other+`"
condition = "needs"
where = "same_node"
`))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, err = Packages(c, []*config.Package{mk("a", "b"), mk("b", "a")})
	var errs *config.Errors
	if !errors.As(err, &errs) || len(errs.List) != 1 {
		t.Fatalf("cycle: %v", err)
	}
	fe := errs.List[0]
	if fe.File != "a.toml" || fe.Line != 5 || fe.Field != "dependency[0].package" || !strings.Contains(fe.Error(), "a -> b -> a") {
		t.Fatalf("cycle reported as %+v: %v", fe, fe)
	}
}
