package placement

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Config configures one node's placement machine. Every node of the
// cluster must be given the same Nodes and Packages (the daemon compares
// the configuration generation at join); Self and Inc are its own.
type Config struct {
	Self  NodeID
	Inc   Incarnation
	Nodes []Node
	// Packages in any order; placement orders them itself.
	Packages []Package
	// Durable is the operator state read back from the quorum disk (nil at
	// the first start of a cluster: every package follows its auto_run).
	Durable *Durable
	Unsafe  Unsafe
}

// Unsafe holds switches that each disable one safety rule. They exist only
// so that the tests can prove their checker catches the resulting double
// starts; never set them in a running cluster.
type Unsafe struct {
	// SkipAcks: start right after the claim, without waiting for every
	// member to acknowledge it.
	SkipAcks bool
	// SkipClear: claim without checking that every other node is clear
	// of the package.
	SkipClear bool
}

// ErrConfig is wrapped by every Config error.
var ErrConfig = errors.New("invalid placement configuration")

// Validate checks cfg without changing it; the error names the package
// and field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	var nodes Set
	for i, n := range c.Nodes {
		switch {
		case n.ID < 1 || n.ID > MaxNodes:
			bad("nodes[%d]: id %d is outside 1..%d", i, n.ID, MaxNodes)
		case nodes.Has(n.ID):
			bad("nodes[%d]: id %d appears twice", i, n.ID)
		default:
			nodes = nodes.Add(n.ID)
		}
	}
	if !nodes.Has(c.Self) {
		bad("self node id %d is not among the configured nodes %v", c.Self, nodes)
	}
	if c.Inc == 0 {
		bad("incarnation is 0; pass this daemon start's incarnation")
	}
	byName := map[string]int{}
	for i, p := range c.Packages {
		if p.Name == "" {
			bad("packages[%d]: the package has no name", i)
			continue
		}
		if _, dup := byName[p.Name]; dup {
			bad("package %s is defined twice", p.Name)
			continue
		}
		byName[p.Name] = i
	}
	for _, p := range c.Packages {
		if len(p.Nodes) == 0 {
			bad("package %s: nodes: the package may run on no node", p.Name)
		}
		var seen Set
		for j, n := range p.Nodes {
			switch {
			case !nodes.Has(n):
				bad("package %s: nodes[%d]: node id %d is not a configured node", p.Name, j, n)
			case seen.Has(n):
				bad("package %s: nodes[%d]: node id %d is listed twice", p.Name, j, n)
			}
			seen = seen.Add(n)
		}
		if p.Priority < 0 || p.Priority > MaxPriority {
			bad("package %s: priority %d is outside 1..%d (0 for none)", p.Name, p.Priority, MaxPriority)
		}
		if p.Failback == FailbackAutomatic && p.Failover == MinPackageNode {
			bad("package %s: failback_policy automatic needs failover_policy configured_node", p.Name)
		}
		for j, d := range p.Dependencies {
			switch _, ok := byName[d.Package]; {
			case d.Package == p.Name:
				bad("package %s: dependency[%d]: a package cannot depend on itself", p.Name, j)
			case !ok:
				bad("package %s: dependency[%d]: no package is called %q", p.Name, j, d.Package)
			}
		}
	}
	if len(errs) == 0 {
		if cyc := needsCycle(c.Packages); cyc != nil {
			bad("packages %s need each other in a cycle: none of them could ever start; remove one of these needs dependencies", strings.Join(cyc, " -> "))
		}
	}
	return errors.Join(errs...)
}

// NeedsCycle returns package names that need each other in a cycle, the
// first repeated at the end (a -> b -> a), or nil. The configuration
// layer uses it to point at the package files.
func NeedsCycle(pkgs []Package) []string { return needsCycle(pkgs) }

// needsCycle returns a cycle of needs dependencies, or nil.
func needsCycle(pkgs []Package) []string {
	idx := map[string]int{}
	for i, p := range pkgs {
		idx[p.Name] = i
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(pkgs))
	var stack []string
	var cycle []string
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, pkgs[i].Name)
		for _, d := range pkgs[i].Dependencies {
			if d.Cond != Needs {
				continue
			}
			j := idx[d.Package]
			switch color[j] {
			case grey:
				k := len(stack) - 1
				for stack[k] != d.Package {
					k--
				}
				cycle = append(append([]string(nil), stack[k:]...), d.Package)
				return true
			case white:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range pkgs {
		if color[i] == white && visit(i) {
			return cycle
		}
	}
	return nil
}

// placementOrder orders the packages for placement: a package comes after
// every package it needs; among those free to go, the higher effective
// priority first (a package inherits the priority of the highest package
// that needs it, directly or not), then the name. It returns indexes into
// pkgs and each package's effective priority (MaxPriority+1 for none).
func placementOrder(pkgs []Package) ([]int, []int) {
	idx := map[string]int{}
	for i, p := range pkgs {
		idx[p.Name] = i
	}
	eff := make([]int, len(pkgs))
	for i, p := range pkgs {
		eff[i] = p.Priority
		if eff[i] == 0 {
			eff[i] = MaxPriority + 1
		}
	}
	// Inherit along needs edges until nothing changes (the graph is
	// acyclic, so at most len(pkgs) rounds).
	for changed := true; changed; {
		changed = false
		for i, p := range pkgs {
			for _, d := range p.Dependencies {
				if d.Cond != Needs {
					continue
				}
				if j := idx[d.Package]; eff[i] < eff[j] {
					eff[j] = eff[i]
					changed = true
				}
			}
		}
	}
	indeg := make([]int, len(pkgs))
	users := make([][]int, len(pkgs))
	for i, p := range pkgs {
		for _, d := range p.Dependencies {
			if d.Cond == Needs {
				j := idx[d.Package]
				indeg[i]++
				users[j] = append(users[j], i)
			}
		}
	}
	less := func(a, b int) bool {
		if eff[a] != eff[b] {
			return eff[a] < eff[b]
		}
		return pkgs[a].Name < pkgs[b].Name
	}
	var ready, order []int
	for i := range pkgs {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(a, b int) bool { return less(ready[a], ready[b]) })
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, u := range users[i] {
			if indeg[u]--; indeg[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	return order, eff
}
