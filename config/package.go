package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/netres"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/pkgrun/fsres"
	"github.com/mtcluster/mtc/pkgrun/service"
)

// Defaults of a package file. A package's timeouts bound what the OS does
// for it; each default is long enough for the ordinary case and short
// enough that a hung step is noticed within minutes, not hours.
const (
	// PackagesDirName is the directory of package files beside the cluster
	// file: /etc/mtc/cluster.toml → /etc/mtc/packages/*.toml.
	PackagesDirName = "packages"
	// DefaultScriptTimeout bounds a pre_start, post_start, pre_stop or
	// post_stop script.
	DefaultScriptTimeout = 60 * time.Second
	// DefaultUnmountTimeout bounds an unmount, holders' killing included.
	DefaultUnmountTimeout = 30 * time.Second
	// DefaultStepAllowance is what a derived run_timeout or halt_timeout
	// adds to the sum of the bounded parts for the steps that have no
	// bound of their own (VG activation, fsck and mount, addresses with
	// their probe or DAD, routes).
	DefaultStepAllowance = 60 * time.Second
	// MaxPriority is the largest priority (Serviceguard's range, 1 the
	// highest).
	MaxPriority = 3000
	// MaxPackageNameLen is the longest package name.
	MaxPackageNameLen = 63
)

// FailoverPolicy selects the node a package fails over to.
type FailoverPolicy string

// Failover policies (Serviceguard's).
const (
	// FailoverConfiguredNode: the first node of the package's nodes list
	// that can run it (the default).
	FailoverConfiguredNode FailoverPolicy = "configured_node"
	// FailoverMinPackageNode: the eligible node running the fewest packages.
	FailoverMinPackageNode FailoverPolicy = "min_package_node"
)

// FailbackPolicy says whether a package moves back to a better node when it
// becomes available.
type FailbackPolicy string

// Failback policies.
const (
	// FailbackManual: the package stays where it runs until an operator
	// moves it (the default).
	FailbackManual FailbackPolicy = "manual"
	// FailbackAutomatic: the package moves back to the first node of its
	// list as soon as that node can run it (configured_node only).
	FailbackAutomatic FailbackPolicy = "automatic"
)

// Dependency is one relation to another package, validated at load and
// enforced by the placement layer.
type Dependency struct {
	// Package is the other package.
	Package string
	// Condition is "needs" (the other package must be up) or "excludes"
	// (it must not be).
	Condition string
	// Where is "same_node", "different_node" or "any_node".
	Where string
}

// Dependency conditions and places.
var (
	DependencyConditions = []string{"needs", "excludes"}
	DependencyPlaces     = []string{"same_node", "different_node", "any_node"}
)

// Package is one validated package file: where it may run and how it is
// placed, and (Spec) what the runner starts and halts.
type Package struct {
	// File is the path the package was read from; "" when built in code.
	File        string
	Name        string
	Description string
	// Nodes are the nodes allowed to run the package, in priority order.
	Nodes          []string
	AutoRun        bool
	FailoverPolicy FailoverPolicy
	FailbackPolicy FailbackPolicy
	// Priority is 1 (highest) to MaxPriority, or 0 for none.
	Priority     int
	Dependencies []Dependency

	spec pkgrun.Spec
	// halfDerived and runDerived tell whether the timeouts were derived.
	haltDerived, runDerived bool
	src                     *source
}

// Spec returns the resolved package for the runner: every default applied,
// every timeout bounded.
func (p *Package) Spec() pkgrun.Spec { return cloneSpec(p.spec) }

// HaltTimeoutDerived and RunTimeoutDerived report whether the package file
// left the timeout out (it is then the sum of the parts plus
// DefaultStepAllowance).
func (p *Package) HaltTimeoutDerived() bool { return p.haltDerived }
func (p *Package) RunTimeoutDerived() bool  { return p.runDerived }

// Annotate returns a FieldError about field of the package file carrying
// msg, placed at the field's line (as Cluster.Annotate).
func (p *Package) Annotate(field, msg string, err error) *FieldError {
	fe := &FieldError{Field: field, Msg: msg, Cause: err, File: p.File}
	if p.src != nil {
		if pos, _ := p.src.ix.lookup(field); pos.Line > 0 {
			fe.Line, fe.Col = pos.Line, pos.Col
		}
	}
	return fe
}

func cloneSpec(s pkgrun.Spec) pkgrun.Spec {
	s.VolumeGroups = append([]lvm.VGSpec(nil), s.VolumeGroups...)
	s.Filesystems = append([]fsres.Filesystem(nil), s.Filesystems...)
	s.Addresses = append([]netres.Address(nil), s.Addresses...)
	s.Routes = append([]netres.Route(nil), s.Routes...)
	s.Services = append([]service.Spec(nil), s.Services...)
	return s
}

// The filePackage types mirror a package file, as fileConfig the cluster
// file: optional keys are pointers.
type filePackage struct {
	Name           *string          `toml:"name"`
	Description    *string          `toml:"description"`
	Nodes          []string         `toml:"nodes"`
	AutoRun        *bool            `toml:"auto_run"`
	FailoverPolicy *string          `toml:"failover_policy"`
	FailbackPolicy *string          `toml:"failback_policy"`
	Priority       *int64           `toml:"priority"`
	RunTimeout     *duration        `toml:"run_timeout"`
	HaltTimeout    *duration        `toml:"halt_timeout"`
	Dependencies   []fileDependency `toml:"dependency"`
	IP             []fileIP         `toml:"ip"`
	Routes         []fileRoute      `toml:"route"`
	VolumeGroups   []fileVG         `toml:"volume_group"`
	Filesystems    []fileFS         `toml:"filesystem"`
	Scripts        fileScripts      `toml:"scripts"`
	Services       []fileService    `toml:"service"`
}

type fileDependency struct {
	Package   *string `toml:"package"`
	Condition *string `toml:"condition"`
	Where     *string `toml:"where"`
}

type fileIP struct {
	Address   *string `toml:"address"`
	Interface *string `toml:"interface"`
	Subnet    *string `toml:"subnet"`
}

type fileRoute struct {
	Destination *string `toml:"destination"`
	Gateway     *string `toml:"gateway"`
	Interface   *string `toml:"interface"`
	Table       *int64  `toml:"table"`
	Metric      *int64  `toml:"metric"`
}

type fileVG struct {
	Name       *string `toml:"name"`
	Activation *string `toml:"activation"`
}

type fileFS struct {
	Device         *string   `toml:"device"`
	MountPoint     *string   `toml:"mount_point"`
	Type           *string   `toml:"type"`
	Options        *string   `toml:"options"`
	Fsck           *string   `toml:"fsck"`
	UnmountTimeout *duration `toml:"unmount_timeout"`
	ForceUnmount   *bool     `toml:"force_unmount"`
}

type fileScripts struct {
	PreStart  *fileScript `toml:"pre_start"`
	PostStart *fileScript `toml:"post_start"`
	PreStop   *fileScript `toml:"pre_stop"`
	PostStop  *fileScript `toml:"post_stop"`
}

type fileScript struct {
	Command     []string          `toml:"command"`
	Timeout     *duration         `toml:"timeout"`
	Environment map[string]string `toml:"environment"`
	User        *string           `toml:"user"`
	Directory   *string           `toml:"directory"`
}

type fileService struct {
	Name            *string           `toml:"name"`
	Command         []string          `toml:"command"`
	Agent           *string           `toml:"agent"`
	Parameters      map[string]string `toml:"parameters"`
	User            *string           `toml:"user"`
	Directory       *string           `toml:"directory"`
	Environment     map[string]string `toml:"environment"`
	Restarts        *int64            `toml:"restarts"`
	RestartDelay    *duration         `toml:"restart_delay"`
	MaxRestartDelay *duration         `toml:"max_restart_delay"`
	HealthCommand   []string          `toml:"health_command"`
	HealthInterval  *duration         `toml:"health_interval"`
	HealthTimeout   *duration         `toml:"health_timeout"`
	HaltTimeout     *duration         `toml:"halt_timeout"`
	FailFast        *bool             `toml:"fail_fast"`
	StartTimeout    *duration         `toml:"start_timeout"`
	StopTimeout     *duration         `toml:"stop_timeout"`
	MonitorTimeout  *duration         `toml:"monitor_timeout"`
}

// packageSchema is the root of a package file's schema.
var packageSchema = reflect.TypeOf(filePackage{})

// PackagesDir is the directory of the package files of the cluster file at
// clusterFile: "packages" beside it.
func PackagesDir(clusterFile string) string {
	return filepath.Join(filepath.Dir(clusterFile), PackagesDirName)
}

// PackagesDirOf is the directory of the package files of c, read from
// clusterFile: its packages_dir (relative to the cluster file's directory
// when relative), else PackagesDir(clusterFile).
func PackagesDirOf(c *Cluster, clusterFile string) string {
	switch {
	case c == nil || c.PackagesDir == "":
		return PackagesDir(clusterFile)
	case filepath.IsAbs(c.PackagesDir):
		return filepath.Clean(c.PackagesDir)
	}
	return filepath.Join(filepath.Dir(clusterFile), c.PackagesDir)
}

// ParsePackage decodes and validates one package file on its own (without
// the cluster: see ValidatePackages for what involves the nodes and the
// other packages). On failure the error is an *Errors holding every
// problem, sorted by line.
func ParsePackage(name string, data []byte) (*Package, error) {
	p, list, err := parsePackage(name, data)
	if err != nil {
		return nil, err
	}
	if len(list) > 0 {
		return nil, asError(list)
	}
	return p, nil
}

// parsePackage decodes and validates one package file. It returns the
// package even when it has problems (with zero values where a value was
// malformed), so that the checks across packages and on the machine still
// see it; err is a syntax or type error that stopped decoding.
func parsePackage(name string, data []byte) (*Package, []*FieldError, error) {
	var f filePackage
	src := &source{file: name, ix: buildIndex(data), root: packageSchema}
	list, err := src.decode(data, &f)
	if err != nil {
		return nil, nil, err
	}
	f.applyDefaults()
	p, convErrs := f.toPackage()
	list = append(list, convErrs...)
	skip := make(map[string]bool, len(convErrs))
	for _, fe := range convErrs {
		skip[fe.Field] = true
	}
	list = append(list, p.validate(&f, skip)...)
	src.place(list)
	for _, fe := range list {
		if fe.Line == 0 {
			// A key missing at the top level: the top of the file.
			fe.Line, fe.Col = 1, 1
		}
	}
	p.File, p.src = name, src
	sortFieldErrors(list)
	return p, list, nil
}

// LoadPackage reads and parses one package file.
func LoadPackage(path string) (*Package, error) {
	data, err := readFile(path, "package", "/etc/mtc/packages/orders-db.toml")
	if err != nil {
		return nil, err
	}
	return ParsePackage(path, data)
}

// LoadPackages reads every *.toml file of dir (in name order), parses each
// and validates them together with the cluster c (ValidatePackages; c may
// be nil when the cluster file is itself invalid: the checks involving
// its nodes are then skipped). With stat (os.Stat) it also looks on this
// machine for the packages' programs (CheckPackageFiles). A directory that
// does not exist holds no packages. The error is an *Errors with every
// problem of every file, sorted by file and line; the packages without
// problems are returned even then, for a summary.
func LoadPackages(c *Cluster, dir string, stat func(string) (fs.FileInfo, error)) ([]*Package, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("packages directory %s: %w", dir, err)
	}
	if len(files) == 0 {
		if _, err := os.Stat(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("packages directory: %w", err)
		}
	}
	sort.Strings(files)
	var all, valid []*Package
	var list []*FieldError
	for _, file := range files {
		data, err := readFile(file, "package", "/etc/mtc/packages/orders-db.toml")
		var p *Package
		var plist []*FieldError
		if err == nil {
			p, plist, err = parsePackage(file, data)
		}
		var errs *Errors
		switch {
		case errors.As(err, &errs):
			list = append(list, errs.List...)
		case err != nil:
			list = append(list, &FieldError{File: file, Err: ErrInvalid, Cause: err, Msg: err.Error()})
		default:
			all = append(all, p)
			list = append(list, plist...)
		}
	}
	if err := ValidatePackages(c, all); err != nil {
		var errs *Errors
		if errors.As(err, &errs) {
			list = append(list, errs.List...)
		}
	}
	if stat != nil {
		list = append(list, CheckPackageFiles(all, stat)...)
	}
	bad := map[string]bool{}
	for _, fe := range list {
		bad[fe.File] = true
	}
	for _, p := range all {
		if !bad[p.File] {
			valid = append(valid, p)
		}
	}
	return valid, asFileErrors(list)
}

// asFileErrors is asError for problems of several files: sorted by file,
// then line.
func asFileErrors(list []*FieldError) error {
	if len(list) == 0 {
		return nil
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].File != list[j].File {
			return list[i].File < list[j].File
		}
		if list[i].Line != list[j].Line {
			return list[i].Line < list[j].Line
		}
		return list[i].Col < list[j].Col
	})
	return &Errors{List: list}
}

// applyDefaults fills the absent optional keys that have a fixed default.
// The derived timeouts (run_timeout, halt_timeout when absent) are set by
// toPackage, from the parts.
func (f *filePackage) applyDefaults() {
	if f.AutoRun == nil {
		t := true
		f.AutoRun = &t
	}
	if f.FailoverPolicy == nil {
		s := string(FailoverConfiguredNode)
		f.FailoverPolicy = &s
	}
	if f.FailbackPolicy == nil {
		s := string(FailbackManual)
		f.FailbackPolicy = &s
	}
	for i := range f.VolumeGroups {
		if f.VolumeGroups[i].Activation == nil {
			s := "system_id"
			f.VolumeGroups[i].Activation = &s
		}
	}
	for i := range f.Filesystems {
		fs := &f.Filesystems[i]
		if fs.Fsck == nil {
			s := "auto"
			fs.Fsck = &s
		}
		if fs.UnmountTimeout == nil {
			d := duration(formatDuration(DefaultUnmountTimeout))
			fs.UnmountTimeout = &d
		}
		if fs.ForceUnmount == nil {
			t := true
			fs.ForceUnmount = &t
		}
	}
	root := func(p **string) {
		if *p == nil {
			s := "/"
			*p = &s
		}
	}
	for _, sc := range f.Scripts.all() {
		if sc.s != nil && sc.s.Timeout == nil {
			d := duration(formatDuration(DefaultScriptTimeout))
			sc.s.Timeout = &d
		}
		if sc.s != nil {
			root(&sc.s.Directory)
		}
	}
	setDur := func(p **duration, d time.Duration) {
		if *p == nil {
			s := duration(formatDuration(d))
			*p = &s
		}
	}
	for i := range f.Services {
		s := &f.Services[i]
		if s.Agent != nil {
			setDur(&s.StartTimeout, service.DefaultAgentTimeout)
			setDur(&s.StopTimeout, service.DefaultAgentTimeout)
			setDur(&s.MonitorTimeout, service.DefaultAgentTimeout)
			setDur(&s.HealthInterval, service.DefaultHealthInterval)
			continue
		}
		if s.Command != nil {
			root(&s.Directory)
		}
		setDur(&s.RestartDelay, service.DefaultRestartDelay)
		setDur(&s.MaxRestartDelay, service.DefaultMaxRestartDelay)
		setDur(&s.HaltTimeout, service.DefaultHaltTimeout)
		if s.HealthCommand != nil {
			setDur(&s.HealthInterval, service.DefaultHealthInterval)
			setDur(&s.HealthTimeout, service.DefaultHealthTimeout)
		}
	}
}

type namedScript struct {
	field string
	s     *fileScript
}

func (s *fileScripts) all() []namedScript {
	return []namedScript{{"pre_start", s.PreStart}, {"post_start", s.PostStart}, {"pre_stop", s.PreStop}, {"post_stop", s.PostStop}}
}

// toPackage converts the decoded file; values that cannot be represented
// are reported here, the rest by validate.
func (f *filePackage) toPackage() (*Package, []*FieldError) {
	var errs []*FieldError
	bad := func(field, what, hint string) {
		errs = append(errs, newFieldError(ErrInvalid, field, "", what, hint))
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	dur := func(field string, p *duration) time.Duration {
		if p == nil {
			return 0
		}
		d, err := parseDuration(string(*p))
		var ue *unitError
		switch {
		case errors.As(err, &ue):
			bad(field, err.Error(), fmt.Sprintf("durations are written in ms, s or m: write %q", formatDuration(ue.d)))
		case err != nil:
			bad(field, err.Error(), "write a positive number with a unit, such as \"30s\" or \"2m\" (units: ms, s, m)")
		}
		return d
	}
	p := &Package{
		Name:           str(f.Name),
		Description:    str(f.Description),
		Nodes:          f.Nodes,
		AutoRun:        *f.AutoRun,
		FailoverPolicy: FailoverPolicy(*f.FailoverPolicy),
		FailbackPolicy: FailbackPolicy(*f.FailbackPolicy),
	}
	if f.Priority != nil {
		if *f.Priority < 1 || *f.Priority > MaxPriority {
			bad("priority", fmt.Sprintf("%d is out of range", *f.Priority),
				fmt.Sprintf("use 1 (highest) to %d, or leave priority out for none", MaxPriority))
		} else {
			p.Priority = int(*f.Priority)
		}
	}
	for _, d := range f.Dependencies {
		p.Dependencies = append(p.Dependencies, Dependency{Package: str(d.Package), Condition: str(d.Condition), Where: str(d.Where)})
	}
	s := &p.spec
	s.Name = p.Name

	for i, ip := range f.IP {
		field := fmt.Sprintf("ip[%d]", i)
		a := netres.Address{Interface: str(ip.Interface)}
		if ip.Address != nil {
			pfx, err := netip.ParsePrefix(*ip.Address)
			if err != nil || pfx.Addr().Zone() != "" {
				bad(field+".address", fmt.Sprintf("%q is not an address with a prefix length", *ip.Address),
					`write the address and its prefix length, such as "10.0.0.50/24" or "fd00::50/64"`)
			} else {
				a.Prefix = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits())
			}
		}
		if ip.Subnet != nil {
			sub, err := netip.ParsePrefix(*ip.Subnet)
			if err != nil || sub != sub.Masked() {
				bad(field+".subnet", fmt.Sprintf("%q is not a subnet", *ip.Subnet),
					`write the network address and its prefix length, such as "10.0.0.0/24"`)
			} else {
				a.Subnet = sub
			}
		}
		s.Addresses = append(s.Addresses, a)
	}

	for i, r := range f.Routes {
		field := fmt.Sprintf("route[%d]", i)
		rt := netres.Route{Interface: str(r.Interface)}
		if r.Destination != nil {
			dst, err := netip.ParsePrefix(*r.Destination)
			if err != nil || dst != dst.Masked() {
				bad(field+".destination", fmt.Sprintf("%q is not a destination prefix", *r.Destination),
					`write a network and its prefix length, such as "10.20.0.0/16", or "0.0.0.0/0" for a default route`)
			} else {
				rt.Dst = dst
			}
		}
		if r.Gateway != nil {
			gw, err := netip.ParseAddr(*r.Gateway)
			if err != nil || gw.Zone() != "" {
				bad(field+".gateway", fmt.Sprintf("%q is not an IP address", *r.Gateway), `write the next hop's address, such as "10.0.0.1"`)
			} else {
				rt.Gateway = gw.Unmap()
			}
		}
		if r.Table != nil {
			if *r.Table < 0 || *r.Table > 1<<32-1 {
				bad(field+".table", fmt.Sprintf("%d is not a routing table", *r.Table), "use a table number from 1 to 4294967295, or leave it out for the main table")
			} else {
				rt.Table = int(*r.Table)
			}
		}
		if r.Metric != nil {
			if *r.Metric < 0 || *r.Metric > 1<<32-1 {
				bad(field+".metric", fmt.Sprintf("%d is not a route metric", *r.Metric), "use a metric from 0 to 4294967295 (lower is preferred)")
			} else {
				rt.Metric = int(*r.Metric)
			}
		}
		s.Routes = append(s.Routes, rt)
	}

	for i, vg := range f.VolumeGroups {
		field := fmt.Sprintf("volume_group[%d]", i)
		v := lvm.VGSpec{Name: str(vg.Name)}
		switch *vg.Activation {
		case "system_id":
			v.Activation = lvm.SystemID
		case "tags":
			v.Activation = lvm.Tags
		default:
			bad(field+".activation", fmt.Sprintf("%q is not an activation mode", *vg.Activation),
				`use "system_id" (the default: the VG's LVM system ID names its owner) or "tags" (a tag with the node's name)`)
		}
		s.VolumeGroups = append(s.VolumeGroups, v)
	}

	for i, fs := range f.Filesystems {
		field := fmt.Sprintf("filesystem[%d]", i)
		x := fsres.Filesystem{
			Device: str(fs.Device), MountPoint: str(fs.MountPoint), Type: str(fs.Type), Options: str(fs.Options),
			UnmountTimeout: dur(field+".unmount_timeout", fs.UnmountTimeout), KillHolders: *fs.ForceUnmount,
		}
		switch *fs.Fsck {
		case "auto":
			x.Fsck = fsres.FsckAuto
		case "never":
			x.Fsck = fsres.FsckNever
		case "always":
			x.Fsck = fsres.FsckAlways
		default:
			bad(field+".fsck", fmt.Sprintf("%q is not an fsck policy", *fs.Fsck),
				`use "auto" (the default: fsck -p, which checks only what needs it), "always" (fsck -f -p) or "never"`)
		}
		s.Filesystems = append(s.Filesystems, x)
	}

	scripts := []**service.Script{&s.Scripts.PreStart, &s.Scripts.PostStart, &s.Scripts.PreStop, &s.Scripts.PostStop}
	for i, sc := range f.Scripts.all() {
		if sc.s == nil {
			continue
		}
		field := "scripts." + sc.field
		*scripts[i] = &service.Script{
			Name: sc.field, Argv: sc.s.Command, Env: environ(sc.s.Environment), User: str(sc.s.User), Dir: str(sc.s.Directory),
			Timeout: dur(field+".timeout", sc.s.Timeout),
		}
	}

	for i, fsv := range f.Services {
		field := fmt.Sprintf("service[%d]", i)
		sv := service.Spec{
			Name: str(fsv.Name), Argv: fsv.Command, Env: environ(fsv.Environment), User: str(fsv.User), Dir: str(fsv.Directory),
			Health: fsv.HealthCommand, HealthInterval: dur(field+".health_interval", fsv.HealthInterval),
			HealthTimeout: dur(field+".health_timeout", fsv.HealthTimeout),
			RestartDelay:  dur(field+".restart_delay", fsv.RestartDelay), MaxRestartDelay: dur(field+".max_restart_delay", fsv.MaxRestartDelay),
			HaltTimeout: dur(field+".halt_timeout", fsv.HaltTimeout),
		}
		if fsv.FailFast != nil {
			sv.FailFast = *fsv.FailFast
		}
		if fsv.Restarts != nil {
			if *fsv.Restarts < 0 || *fsv.Restarts > 1000 {
				bad(field+".restarts", fmt.Sprintf("%d is not a restart count", *fsv.Restarts), "use 0 (fail at the first exit) to 1000")
			} else {
				sv.Restarts = int(*fsv.Restarts)
			}
		}
		if fsv.Agent != nil {
			a, err := service.ParseAgent(*fsv.Agent)
			if err != nil {
				bad(field+".agent", fmt.Sprintf("%q is not an OCF agent name", *fsv.Agent),
					`write "ocf:PROVIDER:TYPE", such as "ocf:heartbeat:Dummy" (the agent /usr/lib/ocf/resource.d/heartbeat/Dummy)`)
			} else {
				a.Params = fsv.Parameters
				a.StartTimeout = dur(field+".start_timeout", fsv.StartTimeout)
				a.StopTimeout = dur(field+".stop_timeout", fsv.StopTimeout)
				a.MonitorTimeout = dur(field+".monitor_timeout", fsv.MonitorTimeout)
				sv.Agent = &a
			}
		}
		s.Services = append(s.Services, sv)
	}

	s.RunTimeout = dur("run_timeout", f.RunTimeout)
	s.HaltTimeout = dur("halt_timeout", f.HaltTimeout)
	if f.RunTimeout == nil {
		s.RunTimeout, p.runDerived = MinRunTimeout(*s)+DefaultStepAllowance, true
	}
	if f.HaltTimeout == nil {
		s.HaltTimeout, p.haltDerived = pkgrun.MinHaltTimeout(*s)+DefaultStepAllowance, true
	}
	return p, errs
}

// MinRunTimeout is the shortest run_timeout that lets every bounded part of
// the start use its own bound: the pre_start and post_start scripts'
// timeouts and every OCF agent's start timeout. (A command service's start
// is its fork; VG activation, mounts and addresses have no bound of their
// own.)
func MinRunTimeout(s pkgrun.Spec) time.Duration {
	var d time.Duration
	for _, sc := range []*service.Script{s.Scripts.PreStart, s.Scripts.PostStart} {
		if sc != nil {
			d += sc.Timeout
		}
	}
	for _, svc := range s.Services {
		if svc.Agent != nil {
			t := svc.Agent.StartTimeout
			if t == 0 {
				t = service.DefaultAgentTimeout
			}
			d += t
		}
	}
	return d
}

// environ turns an environment table into KEY=value entries, sorted.
func environ(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// containsPath reports whether path lies strictly inside dir.
func containsPath(dir, path string) bool {
	if dir == "/" {
		return path != "/"
	}
	return strings.HasPrefix(path, dir+"/")
}
