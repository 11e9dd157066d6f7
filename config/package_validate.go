package config

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/pkgrun/service"
)

// validate checks one package on its own, without changing it. f is the
// decoded file (for what was written and what was left out); skip holds
// the fields already reported as malformed.
func (p *Package) validate(f *filePackage, skip map[string]bool) []*FieldError {
	var errs []*FieldError
	add := func(sentinel error, field, related, what, hint string) {
		errs = append(errs, newFieldError(sentinel, field, related, what, hint))
	}
	switch {
	case p.Name == "":
		add(ErrMissing, "name", "", "the package has no name",
			`add name = "orders-db" (lowercase letters, digits and '-', at most 63) at the top of the file`)
	case !validName(p.Name, MaxPackageNameLen):
		add(ErrInvalid, "name", "", fmt.Sprintf("%q is not a valid package name", p.Name), "use 1 to 63 lowercase letters, digits and '-'")
	}
	if hasControl(p.Description) {
		add(ErrInvalid, "description", "", controlWhat("the description", p.Description), "write it without control characters")
	}
	if len(p.Nodes) == 0 {
		add(ErrMissing, "nodes", "", "the package may run on no node",
			`add nodes = ["alpha", "beta"]: the nodes allowed to run it, in order of preference`)
	}
	for i, n := range p.Nodes {
		if j := slices.Index(p.Nodes, n); j < i {
			add(ErrDuplicate, fmt.Sprintf("nodes[%d]", i), "", fmt.Sprintf("node %q is listed twice", n), "list each node once, in order of preference")
		}
	}
	switch p.FailoverPolicy {
	case FailoverConfiguredNode, FailoverMinPackageNode:
	default:
		add(ErrInvalid, "failover_policy", "", fmt.Sprintf("%q is not a failover policy", p.FailoverPolicy),
			`use "configured_node" (the default: the first node of nodes that can run it) or "min_package_node" (the node running the fewest packages)`)
	}
	switch p.FailbackPolicy {
	case FailbackManual:
	case FailbackAutomatic:
		if p.FailoverPolicy == FailoverMinPackageNode {
			add(ErrInvalid, "failback_policy", "failover_policy", `failback_policy "automatic" moves the package back to its first node, which failover_policy "min_package_node" does not have`,
				`use failback_policy = "manual", or failover_policy = "configured_node"`)
		}
	default:
		add(ErrInvalid, "failback_policy", "", fmt.Sprintf("%q is not a failback policy", p.FailbackPolicy),
			`use "manual" (the default: the package stays where it runs) or "automatic" (it moves back to its first node when that node can run it)`)
	}
	for i, d := range p.Dependencies {
		field := fmt.Sprintf("dependency[%d]", i)
		switch {
		case d.Package == "":
			add(ErrMissing, field+".package", "", "the dependency names no package", `add package = "NAME": the other package`)
		case d.Package == p.Name:
			add(ErrInvalid, field+".package", "", "a package cannot depend on itself", "name another package, or remove the dependency")
		}
		if !slices.Contains(DependencyConditions, d.Condition) {
			add(missingOr(d.Condition), field+".condition", "", describeEnum("condition", d.Condition), `use "needs" (the other package must be up) or "excludes" (it must not be)`)
		}
		if !slices.Contains(DependencyPlaces, d.Where) {
			add(missingOr(d.Where), field+".where", "", describeEnum("where", d.Where), `use "same_node", "different_node" or "any_node"`)
		}
	}
	errs = append(errs, p.validateNetwork(f, skip)...)
	errs = append(errs, p.validateStorage(f, skip)...)
	errs = append(errs, p.validateProcesses(f, skip)...)
	errs = append(errs, p.validateTimeouts(skip)...)
	return errs
}

func missingOr(v string) error {
	if v == "" {
		return ErrMissing
	}
	return ErrInvalid
}

func describeEnum(key, v string) string {
	if v == "" {
		return "no " + key + " is given"
	}
	return fmt.Sprintf("%q is not a valid %s", v, key)
}

func (p *Package) validateNetwork(f *filePackage, skip map[string]bool) []*FieldError {
	var errs []*FieldError
	add := func(sentinel error, field, related, what, hint string) {
		errs = append(errs, newFieldError(sentinel, field, related, what, hint))
	}
	for i, a := range p.spec.Addresses {
		field := fmt.Sprintf("ip[%d]", i)
		if f.IP[i].Address == nil {
			add(ErrMissing, field+".address", "", "the address is missing", `add address = "10.0.0.50/24": the address and its prefix length`)
		} else if a.Prefix.IsValid() {
			ad := a.Prefix.Addr()
			if ad.IsUnspecified() || ad.IsMulticast() || ad.IsLoopback() || a.Prefix.Bits() == 0 {
				add(ErrInvalid, field+".address", "", fmt.Sprintf("%s cannot be a package address", a.Prefix),
					"use a unicast address of the service's network with its prefix length")
			} else if ad.Is4() && a.Prefix.Bits() < 31 && (ad == a.Prefix.Masked().Addr() || ad == lastAddr(a.Prefix)) {
				add(ErrInvalid, field+".address", "", fmt.Sprintf("%s is the network or broadcast address of its subnet", a.Prefix),
					"use a host address inside the subnet")
			}
			for j := 0; j < i; j++ {
				if p.spec.Addresses[j].Prefix.Addr() == ad {
					add(ErrDuplicate, field+".address", fmt.Sprintf("ip[%d].address", j), fmt.Sprintf("%s is already this package's address{line}", ad), "remove one of them")
				}
			}
		}
		hasIf, hasSub := f.IP[i].Interface != nil, f.IP[i].Subnet != nil
		switch {
		case hasIf && hasSub:
			add(ErrInvalid, field+".subnet", field+".interface", "both interface and subnet are given", "give interface (the link to use) or subnet (use the link that carries an address in it), not both")
		case !hasIf && !hasSub:
			add(ErrMissing, field, "", "the address has neither interface nor subnet",
				`add interface = "eth0", or subnet = "10.0.0.0/24" to put it on the link that already carries an address in that subnet`)
		case hasIf && !validLinkName(a.Interface):
			add(ErrInvalid, field+".interface", "", fmt.Sprintf("%q is not an interface name", a.Interface), "use the link's name as `ip link` shows it, at most 15 characters")
		case hasSub && a.Subnet.IsValid() && a.Prefix.IsValid() && !a.Subnet.Contains(a.Prefix.Addr()):
			add(ErrInvalid, field+".subnet", field+".address", fmt.Sprintf("the subnet %s does not contain %s", a.Subnet, a.Prefix.Addr()), "give the subnet the address belongs to")
		}
	}
	for i, r := range p.spec.Routes {
		field := fmt.Sprintf("route[%d]", i)
		if f.Routes[i].Destination == nil {
			add(ErrMissing, field+".destination", "", "the route has no destination", `add destination = "10.20.0.0/16" (or "0.0.0.0/0" for a default route)`)
		}
		if f.Routes[i].Interface != nil && !validLinkName(r.Interface) {
			add(ErrInvalid, field+".interface", "", fmt.Sprintf("%q is not an interface name", r.Interface), "use the link's name as `ip link` shows it, at most 15 characters")
		}
		if !r.Gateway.IsValid() && r.Interface == "" && !skip[field+".gateway"] {
			add(ErrMissing, field, "", "the route has neither gateway nor interface", `add gateway = "10.0.0.1", or interface = "eth0" for a directly connected route`)
		}
		if r.Gateway.IsValid() && r.Dst.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
			add(ErrInvalid, field+".gateway", field+".destination", fmt.Sprintf("the gateway %s and the destination %s are of different IP families", r.Gateway, r.Dst),
				"use a gateway of the destination's family")
		}
	}
	return errs
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func validLinkName(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/ \t\n:") && !hasControl(s) && s != "." && s != ".."
}

// validLVMName: the characters lvm2 accepts in a VG name.
func validLVMName(s string) bool {
	if s == "" || len(s) > 127 || s[0] == '-' || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+_.-", c) >= 0) {
			return false
		}
	}
	return true
}

func (p *Package) validateStorage(f *filePackage, skip map[string]bool) []*FieldError {
	var errs []*FieldError
	add := func(sentinel error, field, related, what, hint string) {
		errs = append(errs, newFieldError(sentinel, field, related, what, hint))
	}
	for i, vg := range p.spec.VolumeGroups {
		field := fmt.Sprintf("volume_group[%d].name", i)
		switch {
		case vg.Name == "":
			add(ErrMissing, field, "", "the volume group has no name", `add name = "vg_orders"`)
		case !validLVMName(vg.Name):
			add(ErrInvalid, field, "", fmt.Sprintf("%q is not a volume group name", vg.Name), "use the name vgs shows: letters, digits and + _ . -")
		}
		for j := 0; j < i; j++ {
			if vg.Name != "" && p.spec.VolumeGroups[j].Name == vg.Name {
				add(ErrDuplicate, field, fmt.Sprintf("volume_group[%d].name", j), fmt.Sprintf("volume group %q is listed twice{line}", vg.Name), "remove one of them")
			}
		}
	}
	for i, fsys := range p.spec.Filesystems {
		field := fmt.Sprintf("filesystem[%d]", i)
		switch {
		case fsys.Device == "":
			add(ErrMissing, field+".device", "", "the filesystem has no device", `add device = "/dev/vg_orders/data": the logical volume`)
		case hasControl(fsys.Device) || !filepath.IsAbs(fsys.Device):
			add(ErrInvalid, field+".device", "", fmt.Sprintf("%q is not an absolute device path", fsys.Device), `write the LV's path, such as "/dev/vg_orders/data"`)
		default:
			if vg, ok := lvOf(fsys.Device); ok && len(p.spec.VolumeGroups) > 0 && !slices.ContainsFunc(p.spec.VolumeGroups, func(v lvm.VGSpec) bool { return v.Name == vg }) {
				add(ErrInvalid, field+".device", "", fmt.Sprintf("%s is on the volume group %q, which is not one of this package's", fsys.Device, vg),
					fmt.Sprintf("add a [[volume_group]] with name = %q, or correct the device", vg))
			}
		}
		switch {
		case fsys.MountPoint == "":
			add(ErrMissing, field+".mount_point", "", "the filesystem has no mount point", `add mount_point = "/srv/orders"`)
		case hasControl(fsys.MountPoint) || !filepath.IsAbs(fsys.MountPoint) || filepath.Clean(fsys.MountPoint) != fsys.MountPoint || fsys.MountPoint == "/":
			add(ErrInvalid, field+".mount_point", "", fmt.Sprintf("%q is not a mount point for a package", fsys.MountPoint),
				"write an absolute, clean directory path other than /, such as \"/srv/orders\"")
		}
		if fsys.Type == "" {
			add(ErrMissing, field+".type", "", "the filesystem has no type", `add type = "ext4" (or "xfs", ...): the type given to mount and fsck`)
		} else if !validLVMName(fsys.Type) {
			add(ErrInvalid, field+".type", "", fmt.Sprintf("%q is not a filesystem type", fsys.Type), `use a type the kernel knows, such as "ext4" or "xfs"`)
		}
		if hasControl(fsys.Options) || strings.ContainsAny(fsys.Options, " \t") {
			add(ErrInvalid, field+".options", "", fmt.Sprintf("%q is not a mount option list", fsys.Options), `write the options as in fstab, separated by commas without spaces: "noatime,nodev"`)
		}
		for j := 0; j < i; j++ {
			o := p.spec.Filesystems[j]
			switch {
			case fsys.MountPoint != "" && o.MountPoint == fsys.MountPoint:
				add(ErrDuplicate, field+".mount_point", fmt.Sprintf("filesystem[%d].mount_point", j), fmt.Sprintf("%s is already a mount point of this package{line}", fsys.MountPoint), "mount each filesystem on its own directory")
			case fsys.Device != "" && o.Device == fsys.Device:
				add(ErrDuplicate, field+".device", fmt.Sprintf("filesystem[%d].device", j), fmt.Sprintf("%s is already mounted by this package{line}", fsys.Device), "remove one of them")
			}
		}
		for j := i + 1; j < len(p.spec.Filesystems); j++ {
			if o := p.spec.Filesystems[j]; o.MountPoint != "" && fsys.MountPoint != "" && containsPath(o.MountPoint, fsys.MountPoint) {
				add(ErrInvalid, field+".mount_point", fmt.Sprintf("filesystem[%d].mount_point", j),
					fmt.Sprintf("%s lies inside %s, which is mounted after it{line}", fsys.MountPoint, o.MountPoint),
					"list the outer filesystem first: filesystems are mounted in file order and unmounted in reverse")
			}
		}
	}
	return errs
}

// lvOf returns the VG of an LV path /dev/VG/LV or /dev/mapper/VG-LV.
func lvOf(dev string) (string, bool) {
	rest, ok := strings.CutPrefix(dev, "/dev/")
	if !ok {
		return "", false
	}
	dir, lv, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(lv, "/") {
		return "", false
	}
	switch dir {
	case "mapper":
		// VG-LV with "--" for a '-' in either name.
		for i := 0; i < len(lv); i++ {
			if lv[i] == '-' {
				if i+1 < len(lv) && lv[i+1] == '-' {
					i++
					continue
				}
				return strings.ReplaceAll(lv[:i], "--", "-"), true
			}
		}
		return "", false
	case "disk", "md", "loop", "block", "char", "bus", "net", "pts", "shm":
		return "", false
	}
	return dir, true
}

func (p *Package) validateProcesses(f *filePackage, skip map[string]bool) []*FieldError {
	var errs []*FieldError
	add := func(sentinel error, field, related, what, hint string) {
		errs = append(errs, newFieldError(sentinel, field, related, what, hint))
	}
	checkArgv := func(field string, argv []string, what string) {
		switch {
		case len(argv) == 0:
			add(ErrMissing, field, "", what+" has no command",
				`add command = ["/etc/mtc/orders/check", "--quick"]: the program's absolute path and its arguments, one string each (no shell)`)
		case !filepath.IsAbs(argv[0]) || hasControl(argv[0]):
			add(ErrInvalid, field+"[0]", "", fmt.Sprintf("%q is not an absolute path", argv[0]),
				"give the program's absolute path: commands are run without a shell and without $PATH")
		case len(argv) == 1 && strings.ContainsAny(argv[0], " \t|;&<>$"):
			add(ErrInvalid, field+"[0]", "", fmt.Sprintf("%q looks like a shell command line", argv[0]),
				`write one string per argument, ["/usr/bin/prog", "--flag", "value"]; for a pipeline, write ["/bin/sh", "-c", "..."]`)
		}
	}
	checkEnv := func(field string, env map[string]string) {
		for _, k := range sortedKeys(env) {
			if k == "" || strings.ContainsAny(k, "= ") || hasControl(k) || hasControl(env[k]) && !strings.ContainsAny(env[k], "\t") {
				add(ErrInvalid, field+"."+quoteKey(k), "", fmt.Sprintf("%q is not a valid environment variable", k), "use a name of letters, digits and '_', and a value without control characters")
			}
		}
	}
	checkDir := func(field string, d *string) {
		if d != nil && (!filepath.IsAbs(*d) || hasControl(*d)) {
			add(ErrInvalid, field, "", fmt.Sprintf("%q is not an absolute directory path", *d), `write the full path, such as "/srv/orders", or leave directory out for "/"`)
		}
	}
	checkUser := func(field string, u *string) {
		if u != nil && (*u == "" || strings.ContainsAny(*u, ": /") || hasControl(*u)) {
			add(ErrInvalid, field, "", fmt.Sprintf("%q is not a user name", *u), "give a user name from /etc/passwd, or leave user out to run as root")
		}
	}
	for _, sc := range f.Scripts.all() {
		if sc.s == nil {
			continue
		}
		field := "scripts." + sc.field
		checkArgv(field+".command", sc.s.Command, "the "+sc.field+" script")
		checkEnv(field+".environment", sc.s.Environment)
		checkUser(field+".user", sc.s.User)
		checkDir(field+".directory", sc.s.Directory)
	}
	for i, s := range p.spec.Services {
		field := fmt.Sprintf("service[%d]", i)
		fs := f.Services[i]
		switch {
		case s.Name == "":
			add(ErrMissing, field+".name", "", "the service has no name", `add name = "postgres": it names the service in logs and status`)
		case !validName(s.Name, MaxPackageNameLen):
			add(ErrInvalid, field+".name", "", fmt.Sprintf("%q is not a valid service name", s.Name), "use 1 to 63 lowercase letters, digits and '-'")
		}
		for j := 0; j < i; j++ {
			if s.Name != "" && p.spec.Services[j].Name == s.Name {
				add(ErrDuplicate, field+".name", fmt.Sprintf("service[%d].name", j), fmt.Sprintf("service %q is already defined{line}", s.Name), "give each service its own name")
			}
		}
		switch {
		case fs.Agent != nil && fs.Command != nil:
			add(ErrInvalid, field+".agent", field+".command", "both command and agent are given", "a service is a command or an OCF agent: remove one")
		case fs.Agent == nil && fs.Command == nil:
			add(ErrMissing, field, "", "the service has neither command nor agent",
				`add command = ["/usr/bin/prog", "--foreground"], or agent = "ocf:heartbeat:NAME" with a [service.parameters] table`)
		case fs.Command != nil:
			checkArgv(field+".command", fs.Command, "the service")
			if fs.Parameters != nil {
				add(ErrInvalid, field+".parameters", "", "parameters are for an OCF agent", "pass a command's settings in its arguments or environment")
			}
			for _, k := range []struct {
				key string
				set bool
			}{{"start_timeout", fs.StartTimeout != nil}, {"stop_timeout", fs.StopTimeout != nil}, {"monitor_timeout", fs.MonitorTimeout != nil}} {
				if k.set {
					add(ErrInvalid, field+"."+k.key, "", k.key+" is for an OCF agent", "a command service is bounded by halt_timeout (and health_timeout)")
				}
			}
			if fs.HealthCommand != nil {
				checkArgv(field+".health_command", fs.HealthCommand, "the health check")
			} else if fs.HealthInterval != nil || fs.HealthTimeout != nil {
				add(ErrInvalid, field+".health_interval", "", "health_interval and health_timeout need a health_command", `add health_command = ["/usr/bin/pg_isready", "-q"], or remove them`)
			}
		case fs.Agent != nil:
			for _, k := range []struct {
				key string
				set bool
			}{{"health_command", fs.HealthCommand != nil}, {"restart_delay", fs.RestartDelay != nil}, {"max_restart_delay", fs.MaxRestartDelay != nil},
				{"halt_timeout", fs.HaltTimeout != nil}, {"health_timeout", fs.HealthTimeout != nil}, {"user", fs.User != nil}, {"directory", fs.Directory != nil}} {
				if k.set {
					add(ErrInvalid, field+"."+k.key, field+".agent", k.key+" does not apply to an OCF agent{line}",
						"an agent is checked by its monitor action (every health_interval) and bounded by start_timeout, stop_timeout and monitor_timeout")
				}
			}
			for _, k := range sortedKeys(fs.Parameters) {
				if !validParamName(k) {
					add(ErrInvalid, field+".parameters."+quoteKey(k), "", fmt.Sprintf("%q is not an OCF parameter name", k), "use letters, digits and '_' (it becomes OCF_RESKEY_<name>)")
				}
			}
		}
		checkEnv(field+".environment", fs.Environment)
		checkUser(field+".user", fs.User)
		if fs.Agent == nil {
			checkDir(field+".directory", fs.Directory)
		}
		if s.Agent == nil && s.MaxRestartDelay < s.RestartDelay && !skip[field+".restart_delay"] && !skip[field+".max_restart_delay"] {
			add(ErrInvalid, field+".max_restart_delay", field+".restart_delay", fmt.Sprintf("max_restart_delay %v is shorter than restart_delay %v{line}", s.MaxRestartDelay, s.RestartDelay),
				"the delay doubles from restart_delay up to max_restart_delay: make max_restart_delay at least restart_delay")
		}
		if s.Health != nil && s.HealthTimeout > s.HealthInterval && !skip[field+".health_timeout"] {
			add(ErrInvalid, field+".health_timeout", field+".health_interval", fmt.Sprintf("health_timeout %v is longer than health_interval %v{line}", s.HealthTimeout, s.HealthInterval),
				"a check must end before the next is due: shorten health_timeout or lengthen health_interval")
		}
		if s.FailFast && fs.Restarts != nil && s.Restarts > 0 {
			add(ErrInvalid, field+".fail_fast", field+".restarts", "fail_fast fails the service at its first exit, so restarts is never used{line}", "remove one of them")
		}
	}
	return errs
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// validateTimeouts checks that run_timeout and halt_timeout hold their
// parts (pkgrun.MinHaltTimeout, MinRunTimeout).
func (p *Package) validateTimeouts(skip map[string]bool) []*FieldError {
	for f := range skip {
		if strings.HasSuffix(f, "timeout") {
			return nil // a part is unknown: the sums would mislead
		}
	}
	var errs []*FieldError
	s := p.spec
	if min := pkgrun.MinHaltTimeout(s); !p.haltDerived && s.HaltTimeout < min {
		errs = append(errs, newFieldError(ErrTiming, "halt_timeout", "",
			fmt.Sprintf("halt_timeout %s is shorter than the %s its parts may take (%s)", formatDuration(s.HaltTimeout), formatDuration(min), haltParts(s)),
			fmt.Sprintf("set halt_timeout to at least %s, or shorten the parts; leave it out to derive it", formatDuration(min+DefaultStepAllowance))))
	}
	if min := MinRunTimeout(s); !p.runDerived && s.RunTimeout < min {
		errs = append(errs, newFieldError(ErrTiming, "run_timeout", "",
			fmt.Sprintf("run_timeout %s is shorter than the %s its parts may take (%s)", formatDuration(s.RunTimeout), formatDuration(min), runParts(s)),
			fmt.Sprintf("set run_timeout to at least %s, or shorten the parts; leave it out to derive it", formatDuration(min+DefaultStepAllowance))))
	}
	return errs
}

func haltParts(s pkgrun.Spec) string {
	var parts []string
	if s.Scripts.PreStop != nil {
		parts = append(parts, fmt.Sprintf("pre_stop %v", formatDuration(s.Scripts.PreStop.Timeout)))
	}
	if s.Scripts.PostStop != nil {
		parts = append(parts, fmt.Sprintf("post_stop %v", formatDuration(s.Scripts.PostStop.Timeout)))
	}
	for _, svc := range s.Services {
		if svc.Agent != nil {
			parts = append(parts, fmt.Sprintf("service %s stop_timeout %v", svc.Name, formatDuration(svc.Agent.StopTimeout)))
		} else {
			parts = append(parts, fmt.Sprintf("service %s halt_timeout %v + %v for SIGKILL", svc.Name, formatDuration(svc.HaltTimeout), formatDuration(service.KillGrace)))
		}
	}
	for _, f := range s.Filesystems {
		parts = append(parts, fmt.Sprintf("unmount of %s %v", f.MountPoint, formatDuration(f.UnmountTimeout)))
	}
	return strings.Join(parts, ", ")
}

func runParts(s pkgrun.Spec) string {
	var parts []string
	if s.Scripts.PreStart != nil {
		parts = append(parts, fmt.Sprintf("pre_start %v", formatDuration(s.Scripts.PreStart.Timeout)))
	}
	if s.Scripts.PostStart != nil {
		parts = append(parts, fmt.Sprintf("post_start %v", formatDuration(s.Scripts.PostStart.Timeout)))
	}
	for _, svc := range s.Services {
		if svc.Agent != nil {
			parts = append(parts, fmt.Sprintf("service %s start_timeout %v", svc.Name, formatDuration(svc.Agent.StartTimeout)))
		}
	}
	return strings.Join(parts, ", ")
}

// ValidatePackages checks the packages together and against the cluster c:
// unknown nodes and dependencies, duplicate names, an address claimed by
// two packages or by a node's heartbeat address, a volume group in two
// packages, a mount point inside another package's. It does not look at
// the machine (see CheckPackageFiles). The error is an *Errors.
func ValidatePackages(c *Cluster, pkgs []*Package) error {
	var list []*FieldError
	add := func(p *Package, sentinel error, field, msg string) {
		fe := p.Annotate(field, msg, nil)
		fe.Err = sentinel
		list = append(list, fe)
	}
	at := func(p *Package, field string) string {
		fe := p.Annotate(field, "", nil)
		if fe.Line > 0 {
			return fmt.Sprintf("%s:%d", fe.File, fe.Line)
		}
		return fe.File
	}
	var nodeNames []string
	if c != nil {
		for _, n := range c.Nodes {
			nodeNames = append(nodeNames, n.Name)
		}
	}
	byName := map[string]*Package{}
	for _, p := range pkgs {
		if q, ok := byName[p.Name]; ok {
			add(p, ErrDuplicate, "name", fmt.Sprintf("package %q is also defined in %s; give each package its own name", p.Name, at(q, "name")))
			continue
		}
		byName[p.Name] = p
	}
	for _, p := range pkgs {
		if c != nil {
			for i, n := range p.Nodes {
				if _, ok := c.NodeByName(n); !ok {
					msg := fmt.Sprintf("%q is not a node of cluster %s", n, c.Name)
					if s := suggest(n, nodeNames); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
					add(p, ErrInvalid, fmt.Sprintf("nodes[%d]", i), msg+"; the nodes are: "+strings.Join(nodeNames, ", "))
				}
			}
		}
		for i, d := range p.Dependencies {
			if _, ok := byName[d.Package]; !ok && d.Package != "" && d.Package != p.Name {
				add(p, ErrInvalid, fmt.Sprintf("dependency[%d].package", i), fmt.Sprintf("no package is called %q; name a package of the cluster, or remove the dependency", d.Package))
			}
		}
	}

	// Claims across packages: the first claimant (in file order) keeps it.
	type claim struct {
		p     *Package
		field string
		what  string // for a node's address
	}
	addrs := map[netip.Addr]claim{}
	vgs := map[string]claim{}
	if c != nil {
		for i, n := range c.Nodes {
			for _, net := range sortedKeys(n.Addresses) {
				addrs[n.Addresses[net]] = claim{nil, fmt.Sprintf("node[%d].addresses.%s", i, quoteKey(net)), fmt.Sprintf("the heartbeat address of node %s on network %s", n.Name, net)}
			}
		}
	}
	for _, p := range pkgs {
		for i, a := range p.spec.Addresses {
			ad := a.Prefix.Addr()
			field := fmt.Sprintf("ip[%d].address", i)
			if prev, ok := addrs[ad]; ok && prev.p != p {
				if prev.p == nil {
					where := prev.what
					if fe := c.Annotate(prev.field, "", nil); fe.Line > 0 {
						where += fmt.Sprintf(" (%s:%d)", fe.File, fe.Line)
					}
					add(p, ErrDuplicate, field, fmt.Sprintf("%s is %s; a package address must be its own: choose a free address", ad, where))
				} else {
					add(p, ErrDuplicate, field, fmt.Sprintf("%s is also an address of package %s (%s); give each package its own addresses", ad, prev.p.Name, at(prev.p, prev.field)))
				}
				continue
			}
			addrs[ad] = claim{p: p, field: field}
		}
		for i, vg := range p.spec.VolumeGroups {
			field := fmt.Sprintf("volume_group[%d].name", i)
			if prev, ok := vgs[vg.Name]; ok && prev.p != p {
				add(p, ErrDuplicate, field, fmt.Sprintf("volume group %q is also a volume group of package %s (%s); a VG belongs to one package, which activates it on one node", vg.Name, prev.p.Name, at(prev.p, prev.field)))
				continue
			}
			vgs[vg.Name] = claim{p: p, field: field}
		}
	}
	for _, p := range pkgs {
		for i, f := range p.spec.Filesystems {
			for _, q := range pkgs {
				if q == p {
					continue
				}
				for j, g := range q.spec.Filesystems {
					field := fmt.Sprintf("filesystem[%d].mount_point", i)
					other := fmt.Sprintf("filesystem[%d].mount_point", j)
					switch {
					case f.MountPoint == g.MountPoint && q.File < p.File:
						add(p, ErrDuplicate, field, fmt.Sprintf("%s is also a mount point of package %s (%s); give each package its own directories", f.MountPoint, q.Name, at(q, other)))
					case containsPath(g.MountPoint, f.MountPoint):
						add(p, ErrInvalid, field, fmt.Sprintf("%s lies inside %s, a mount point of package %s (%s): it cannot be mounted unless that package runs on the same node, and would block its unmount; mount it elsewhere, or move the filesystem into package %s", f.MountPoint, g.MountPoint, q.Name, at(q, other), q.Name))
					}
					if f.Device == g.Device && q.File < p.File {
						add(p, ErrDuplicate, fmt.Sprintf("filesystem[%d].device", i), fmt.Sprintf("%s is also mounted by package %s (%s); a device belongs to one package", f.Device, q.Name, at(q, fmt.Sprintf("filesystem[%d].device", j))))
					}
				}
			}
		}
	}
	return asFileErrors(list)
}

// CheckPackageFiles looks on this machine for what the packages run: every
// script and command must be an executable regular file, every OCF agent
// must exist under its root (/usr/lib/ocf/resource.d). The problems are
// returned with positions; the daemon would refuse to start such a
// package. stat is os.Stat (a parameter for tests).
func CheckPackageFiles(pkgs []*Package, stat func(string) (fs.FileInfo, error)) []*FieldError {
	if stat == nil {
		stat = os.Stat
	}
	var list []*FieldError
	exe := func(p *Package, field, path, what string) {
		fi, err := stat(path)
		var msg string
		switch {
		case err != nil && os.IsNotExist(err):
			msg = fmt.Sprintf("%s %s does not exist on this node; install it (on every node of nodes) or correct the path", what, path)
			if strings.HasPrefix(what, "the OCF agent") {
				msg += " (Debian's agents come with: apt-get install resource-agents)"
			}
		case err != nil:
			msg = fmt.Sprintf("%s %s cannot be checked: %v", what, path, err)
		case !fi.Mode().IsRegular():
			msg = fmt.Sprintf("%s %s is not a regular file (%s); give the path of the program", what, path, describeMode(fi.Mode()))
		case fi.Mode().Perm()&0o111 == 0:
			msg = fmt.Sprintf("%s %s is not executable; run chmod +x %s", what, path, path)
		default:
			return
		}
		fe := p.Annotate(field, msg, err)
		fe.Err = ErrInvalid
		list = append(list, fe)
	}
	for _, p := range pkgs {
		for _, sc := range []struct {
			field string
			s     *service.Script
		}{{"pre_start", p.spec.Scripts.PreStart}, {"post_start", p.spec.Scripts.PostStart}, {"pre_stop", p.spec.Scripts.PreStop}, {"post_stop", p.spec.Scripts.PostStop}} {
			if sc.s != nil {
				exe(p, "scripts."+sc.field+".command[0]", sc.s.Argv[0], "the "+sc.field+" script")
			}
		}
		for i, s := range p.spec.Services {
			field := fmt.Sprintf("service[%d]", i)
			switch {
			case s.Agent != nil:
				exe(p, field+".agent", s.Agent.Path(), fmt.Sprintf("the OCF agent %s", s.Agent))
			default:
				exe(p, field+".command[0]", s.Argv[0], "the command")
			}
			if len(s.Health) > 0 {
				exe(p, field+".health_command[0]", s.Health[0], "the health check")
			}
		}
	}
	return list
}
