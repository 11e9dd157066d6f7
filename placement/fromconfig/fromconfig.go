// Package fromconfig turns the validated cluster and package files
// (package config) into the placement machine's configuration. It is the
// one place that knows both: placement itself imports nothing with I/O,
// and config, which pulls in the package runner's OS edges, does not
// depend on placement.
package fromconfig

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/placement"
)

// Nodes are the cluster's nodes for placement, in file order.
func Nodes(c *config.Cluster) []placement.Node {
	out := make([]placement.Node, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		out = append(out, placement.Node{ID: placement.NodeID(n.ID), Name: n.Name})
	}
	return out
}

// Packages converts validated packages (config.LoadPackages). A problem
// the package files' own validation does not catch — a node unknown to
// the cluster, a cycle of needs dependencies — comes back as a
// *config.Errors naming file, line and field.
func Packages(c *config.Cluster, pkgs []*config.Package) ([]placement.Package, error) {
	var list []*config.FieldError
	bad := func(p *config.Package, field, msg string) {
		fe := p.Annotate(field, msg, nil)
		fe.Err = config.ErrInvalid
		list = append(list, fe)
	}
	out := make([]placement.Package, 0, len(pkgs))
	for _, p := range pkgs {
		q := placement.Package{Name: p.Name, AutoRun: p.AutoRun, Priority: p.Priority}
		for i, name := range p.Nodes {
			n, ok := c.NodeByName(name)
			if !ok {
				bad(p, fmt.Sprintf("nodes[%d]", i), fmt.Sprintf("%q is not a node of cluster %s", name, c.Name))
				continue
			}
			q.Nodes = append(q.Nodes, placement.NodeID(n.ID))
		}
		switch p.FailoverPolicy {
		case config.FailoverMinPackageNode:
			q.Failover = placement.MinPackageNode
		case config.FailoverConfiguredNode, "":
			q.Failover = placement.ConfiguredNode
		default:
			bad(p, "failover_policy", fmt.Sprintf("%q is not a failover policy", p.FailoverPolicy))
		}
		switch p.FailbackPolicy {
		case config.FailbackAutomatic:
			q.Failback = placement.FailbackAutomatic
		case config.FailbackManual, "":
			q.Failback = placement.FailbackManual
		default:
			bad(p, "failback_policy", fmt.Sprintf("%q is not a failback policy", p.FailbackPolicy))
		}
		for i, d := range p.Dependencies {
			dep := placement.Dependency{Package: d.Package}
			switch d.Condition {
			case "needs":
				dep.Cond = placement.Needs
			case "excludes":
				dep.Cond = placement.Excludes
			default:
				bad(p, fmt.Sprintf("dependency[%d].condition", i), fmt.Sprintf("%q is not a condition", d.Condition))
			}
			switch d.Where {
			case "same_node":
				dep.Where = placement.SameNode
			case "different_node":
				dep.Where = placement.DifferentNode
			case "any_node":
				dep.Where = placement.AnyNode
			default:
				bad(p, fmt.Sprintf("dependency[%d].where", i), fmt.Sprintf("%q is not a place", d.Where))
			}
			q.Dependencies = append(q.Dependencies, dep)
		}
		out = append(out, q)
	}
	if len(list) == 0 {
		if cyc := placement.NeedsCycle(out); cyc != nil {
			for _, p := range pkgs {
				if p.Name != cyc[0] {
					continue
				}
				for i, d := range p.Dependencies {
					if d.Condition == "needs" && d.Package == cyc[1] {
						bad(p, fmt.Sprintf("dependency[%d].package", i), fmt.Sprintf("packages %s need each other in a cycle, so none of them could ever start; remove one of these needs dependencies", strings.Join(cyc, " -> ")))
					}
				}
			}
		}
	}
	if len(list) > 0 {
		return nil, &config.Errors{List: list}
	}
	return out, nil
}

// Config is the placement configuration of node self (its name) in
// incarnation inc, with the operator state read back from the quorum disk
// (nil at the first start).
func Config(c *config.Cluster, pkgs []*config.Package, self string, inc placement.Incarnation, durable *placement.Durable) (placement.Config, error) {
	n, ok := c.NodeByName(self)
	if !ok {
		return placement.Config{}, fmt.Errorf("node %q is not a node of cluster %s", self, c.Name)
	}
	ps, err := Packages(c, pkgs)
	if err != nil {
		return placement.Config{}, err
	}
	cfg := placement.Config{Self: placement.NodeID(n.ID), Inc: inc, Nodes: Nodes(c), Packages: ps, Durable: durable}
	if err := cfg.Validate(); err != nil {
		return placement.Config{}, errors.Join(err)
	}
	return cfg, nil
}
