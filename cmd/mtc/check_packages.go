package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/pkgrun"
)

// packagesDir is where mtc check reads the package files: --packages,
// else the cluster file's packages_dir, else packages/ beside it.
func (cmd *CheckCmd) packagesDir(c *config.Cluster) string {
	if cmd.Packages != "" {
		return cmd.Packages
	}
	return config.PackagesDirOf(c, cmd.Config)
}

// loadPackages parses every package file, checks them against the cluster
// c (nil when the cluster file is invalid: then the package files are
// checked on their own, so that every problem is reported at once) and
// looks on this node for their programs. It returns the packages that
// parsed and every problem; the error is for a directory that cannot be
// read.
func (cmd *CheckCmd) loadPackages(c *config.Cluster) ([]*config.Package, []*config.FieldError, error) {
	pkgs, err := config.LoadPackages(c, cmd.packagesDir(c), os.Stat)
	var list []*config.FieldError
	var errs *config.Errors
	switch {
	case errors.As(err, &errs):
		list = errs.List
	case err != nil:
		return nil, nil, err
	}
	return pkgs, list, nil
}

// printPackages prints a short summary of each package.
func printPackages(out io.Writer, dir string, pkgs []*config.Package) error {
	var b strings.Builder
	if len(pkgs) == 0 {
		fmt.Fprintf(&b, "\nPackages: none in %s\n", dir)
		_, err := io.WriteString(out, b.String())
		return err
	}
	fmt.Fprintf(&b, "\nPackages (%d, in %s)\n", len(pkgs), dir)
	for _, p := range pkgs {
		s := p.Spec()
		fmt.Fprintf(&b, "  %s", p.Name)
		if p.Description != "" {
			fmt.Fprintf(&b, ": %s", p.Description)
		}
		fmt.Fprintf(&b, " (%s)\n", p.File)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, l := range packageLines(p, s) {
			fmt.Fprintf(tw, "    %s\n", l)
		}
		tw.Flush()
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func packageLines(p *config.Package, s pkgrun.Spec) []string {
	place := fmt.Sprintf("nodes\t%s; failover %s, failback %s", strings.Join(p.Nodes, ", "), p.FailoverPolicy, p.FailbackPolicy)
	if p.Priority > 0 {
		place += fmt.Sprintf(", priority %d", p.Priority)
	}
	if !p.AutoRun {
		place += "; not started automatically (auto_run = false)"
	}
	lines := []string{place}
	for _, d := range p.Dependencies {
		lines = append(lines, fmt.Sprintf("depends\t%s %s on %s", d.Condition, d.Package, strings.ReplaceAll(d.Where, "_", " ")))
	}
	for _, a := range s.Addresses {
		lines = append(lines, "address\t"+a.String())
	}
	for _, r := range s.Routes {
		lines = append(lines, "route\t"+r.String())
	}
	for _, vg := range s.VolumeGroups {
		lines = append(lines, fmt.Sprintf("volume group\t%s (owner by %s)", vg.Name, vg.Activation))
	}
	for _, f := range s.Filesystems {
		lines = append(lines, "filesystem\t"+f.String())
	}
	scripts := map[string][]string{}
	if s.Scripts.PreStart != nil {
		scripts["pre_start"] = s.Scripts.PreStart.Argv
	}
	if s.Scripts.PostStart != nil {
		scripts["post_start"] = s.Scripts.PostStart.Argv
	}
	if s.Scripts.PreStop != nil {
		scripts["pre_stop"] = s.Scripts.PreStop.Argv
	}
	if s.Scripts.PostStop != nil {
		scripts["post_stop"] = s.Scripts.PostStop.Argv
	}
	for _, name := range []string{"pre_start", "post_start", "pre_stop", "post_stop"} {
		if argv, ok := scripts[name]; ok {
			lines = append(lines, fmt.Sprintf("script\t%s: %s", name, strings.Join(argv, " ")))
		}
	}
	for _, svc := range s.Services {
		if svc.Agent != nil {
			lines = append(lines, fmt.Sprintf("service\t%s: agent %s", svc.Name, svc.Agent))
		} else {
			lines = append(lines, fmt.Sprintf("service\t%s: %s (restarts %d)", svc.Name, strings.Join(svc.Argv, " "), svc.Restarts))
		}
	}
	derived := func(b bool) string {
		if b {
			return " (derived)"
		}
		return ""
	}
	lines = append(lines, fmt.Sprintf("timeouts\trun %v%s, halt %v%s (its parts need %v)",
		s.RunTimeout, derived(p.RunTimeoutDerived()), s.HaltTimeout, derived(p.HaltTimeoutDerived()), pkgrun.MinHaltTimeout(s)))
	return lines
}

// packageReport is one package in mtc check --json.
type packageReport struct {
	Name         string   `json:"name"`
	File         string   `json:"file"`
	Description  string   `json:"description,omitempty"`
	Nodes        []string `json:"nodes"`
	AutoRun      bool     `json:"auto_run"`
	Failover     string   `json:"failover_policy"`
	Failback     string   `json:"failback_policy"`
	Priority     int      `json:"priority,omitempty"`
	Addresses    []string `json:"addresses,omitempty"`
	Routes       []string `json:"routes,omitempty"`
	VolumeGroups []string `json:"volume_groups,omitempty"`
	Filesystems  []string `json:"filesystems,omitempty"`
	Services     []string `json:"services,omitempty"`
	RunTimeout   string   `json:"run_timeout"`
	HaltTimeout  string   `json:"halt_timeout"`
}

func packageReports(pkgs []*config.Package) []packageReport {
	var out []packageReport
	for _, p := range pkgs {
		s := p.Spec()
		r := packageReport{Name: p.Name, File: p.File, Description: p.Description, Nodes: p.Nodes, AutoRun: p.AutoRun,
			Failover: string(p.FailoverPolicy), Failback: string(p.FailbackPolicy), Priority: p.Priority,
			RunTimeout: s.RunTimeout.String(), HaltTimeout: s.HaltTimeout.String()}
		for _, a := range s.Addresses {
			r.Addresses = append(r.Addresses, a.String())
		}
		for _, rt := range s.Routes {
			r.Routes = append(r.Routes, rt.String())
		}
		for _, vg := range s.VolumeGroups {
			r.VolumeGroups = append(r.VolumeGroups, vg.Name)
		}
		for _, f := range s.Filesystems {
			r.Filesystems = append(r.Filesystems, f.String())
		}
		for _, svc := range s.Services {
			r.Services = append(r.Services, svc.Name)
		}
		out = append(out, r)
	}
	return out
}
