package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/pkgrun"
	"github.com/mtcluster/mtc/quorum"
)

// PackageCmd runs one package's start or halt plan on this node alone,
// outside the cluster, as crm_resource --force-start does: to test a
// package file and its scripts before the cluster runs it. It refuses
// while this node's cluster daemon runs, and never takes a volume group
// over from another node.
type PackageCmd struct {
	Start  PackageStartCmd  `cmd:"" help:"Run a package's start plan on this node, outside the cluster, and supervise its services until halted."`
	Halt   PackageHaltCmd   `cmd:"" help:"Run a package's halt plan on this node (stopping the mtc package start that supervises it, if one runs)."`
	Status PackageStatusCmd `cmd:"" help:"Show a package started by hand on this node: its state and last start and halt timelines."`
}

// DefaultPackageStateDir holds one state file per package started by hand.
const DefaultPackageStateDir = "/run/mtc/packages"

// packageFlags are the flags of every mtc package command.
type packageFlags struct {
	Config   string `required:"" type:"existingfile" help:"Cluster configuration file." placeholder:"FILE"`
	Packages string `help:"Directory of the package files (default: the cluster file's packages_dir, else packages/ beside it)." placeholder:"DIR"`
	Node     string `help:"This node's name in the cluster (default: the host name)." placeholder:"NAME"`
	Socket   string `help:"The cluster daemon's status socket, to make sure it does not run (default: /run/mtc/<cluster>.sock)." placeholder:"PATH"`
	StateDir string `name:"state-dir" default:"/run/mtc/packages" hidden:"" help:"Directory of the by-hand state files."`
	JSON     bool   `name:"json" help:"Print the timelines as JSON."`
	Package  string `arg:"" help:"Package name."`
}

// handState is what a by-hand run leaves in its state file, for halt and
// status.
type handState struct {
	Package string `json:"package"`
	Node    string `json:"node"`
	// PID is the mtc package start process that supervises the
	// package's services; 0 when nothing supervises it (it had no command
	// services, or it was halted).
	PID    int              `json:"pid,omitempty"`
	State  string           `json:"state"`
	Reason string           `json:"reason,omitempty"`
	Start  *pkgrun.Timeline `json:"last_start,omitempty"`
	Halt   *pkgrun.Timeline `json:"last_halt,omitempty"`
}

// loaded is the cluster, this node and the package, checked.
type loaded struct {
	cluster *config.Cluster
	node    string
	pkg     *config.Package
	state   string // the state file
}

// load reads and checks the configuration, finds the package and this
// node, and refuses when the cluster daemon runs here.
func (f *packageFlags) load() (*loaded, error) {
	c, err := config.Load(f.Config)
	if err != nil {
		return nil, err
	}
	dir := f.Packages
	if dir == "" {
		dir = config.PackagesDirOf(c, f.Config)
	}
	pkgs, perr := config.LoadPackages(c, dir, os.Stat)
	var pkg *config.Package
	for _, p := range pkgs {
		if p.Name == f.Package {
			pkg = p
		}
	}
	if pkg == nil {
		if perr != nil {
			return nil, fmt.Errorf("package %s is not among the valid packages of %s: %w", f.Package, dir, perr)
		}
		var names []string
		for _, p := range pkgs {
			names = append(names, p.Name)
		}
		return nil, fmt.Errorf("no package %q in %s (packages: %s)", f.Package, dir, strings.Join(names, ", "))
	}
	if perr != nil {
		var errs *config.Errors
		if errors.As(perr, &errs) {
			for _, fe := range errs.List {
				if fe.File == pkg.File {
					return nil, fmt.Errorf("package %s: %w", pkg.Name, perr)
				}
			}
		}
	}
	node := f.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("host name: %w (pass --node NAME)", err)
		}
		node, _, _ = strings.Cut(node, ".")
	}
	if _, ok := c.NodeByName(node); !ok {
		return nil, fmt.Errorf("%q is not a node of cluster %s: pass --node NAME with this node's name in %s", node, c.Name, f.Config)
	}
	allowed := false
	for _, n := range pkg.Nodes {
		allowed = allowed || n == node
	}
	if !allowed {
		return nil, fmt.Errorf("package %s may not run on node %s (its nodes: %s); add the node to nodes in %s to test it here", pkg.Name, node, strings.Join(pkg.Nodes, ", "), pkg.File)
	}
	sock := f.Socket
	if sock == "" {
		sock = daemon.DefaultSocket(c.Name)
	}
	if err := daemonAbsent(sock); err != nil {
		return nil, err
	}
	return &loaded{cluster: c, node: node, pkg: pkg, state: filepath.Join(f.StateDir, pkg.Name+".json")}, nil
}

// daemonAbsent refuses when the cluster daemon answers on its socket: a
// package run by hand beside the daemon could start what the cluster runs
// elsewhere.
func daemonAbsent(sock string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := daemon.QueryStatus(ctx, sock)
	if err != nil {
		return nil // nothing answers: a stale socket or none
	}
	return fmt.Errorf("the cluster daemon of %s runs on this node (pid %d, socket %s): packages run by hand would compete with the cluster; stop the daemon first (on a node the cluster can do without), or move the package with the cluster's commands", s.Cluster, s.PID, sock)
}

// handMembers is the cluster as a by-hand run sees it: it cannot know who
// is alive, so every other node counts as alive and a VG it owns is
// refused; system IDs are taken to be node names (lvm2's "uname" source).
type handMembers struct {
	c    *config.Cluster
	self string
}

func (m handMembers) NodeOfSystemID(id string) (string, bool) {
	for _, n := range m.c.Nodes {
		if strings.EqualFold(n.Name, id) {
			return n.Name, true
		}
	}
	return "", false
}
func (m handMembers) IsNode(name string) bool { _, ok := m.c.NodeByName(name); return ok }
func (m handMembers) NodeID(name string) (quorum.NodeID, bool) {
	n, ok := m.c.NodeByName(name)
	if !ok {
		return 0, false
	}
	return quorum.NodeID(n.ID), true
}
func (m handMembers) Live(node string) bool { return node != m.self }

// LastIncarnation is 0 for every node: a by-hand run has seen no
// incarnation, so no fencing proof can count.
func (m handMembers) LastIncarnation(node string) quorum.Incarnation { return 0 }

var _ lvm.Members = handMembers{}

func (l *loaded) open(ctx context.Context, log *slog.Logger) (*pkgrun.Node, error) {
	cfg := pkgrun.NodeConfig{Node: l.node, Members: handMembers{l.cluster, l.node}, Logger: log}
	if len(l.pkg.Spec().VolumeGroups) == 0 {
		// No VG to own: do not ask lvm2 (which may not be installed).
		cfg.SystemID = l.node
	}
	return pkgrun.NewNode(ctx, cfg)
}

// explain adds what to do to the refusals an operator meets by hand.
func explain(err error) error {
	switch {
	case errors.Is(err, lvm.ErrOwnedByLiveMember), errors.Is(err, lvm.ErrNoProof):
		return fmt.Errorf("%w\nmtc package start never takes a volume group over from another node: halt the package on the node that owns it (mtc package halt there), or let the cluster fail it over, which fences that node first", err)
	case errors.Is(err, lvm.ErrForeignOwner):
		return fmt.Errorf("%w\nthe volume group belongs to a system outside this cluster: check that it is the right VG; if it is, clear its owner there (vgchange --systemid) before testing here", err)
	case errors.Is(err, pkgrun.ErrNodeMustReset):
		return fmt.Errorf("%w\nsomething of the package could not be released (see the failed steps): do not start it on another node until this one is rebooted", err)
	}
	return err
}

// PackageStartCmd is mtc package start.
type PackageStartCmd struct {
	packageFlags
}

// Run starts the package; with command services it stays in the
// foreground, supervising them, until SIGINT or SIGTERM (mtc package
// halt sends it) or until the package fails, and then halts it.
func (cmd *PackageStartCmd) Run(out io.Writer, log *slog.Logger) error {
	l, err := cmd.load()
	if err != nil {
		return err
	}
	if st, err := readState(l.state); err == nil && st.PID > 0 && alive(st.PID) {
		return fmt.Errorf("package %s is already started by hand on this node (pid %d); run mtc package halt first", l.pkg.Name, st.PID)
	}
	if err := os.MkdirAll(filepath.Dir(l.state), 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	node, err := l.open(ctx, log)
	if err != nil {
		return err
	}
	defer node.Close()
	failed := make(chan error, 1)
	spec := l.pkg.Spec()
	p := node.Package(spec, pkgrun.Options{OnFailed: func(_ string, reason error) {
		select {
		case failed <- reason:
		default:
		}
	}})
	st := &handState{Package: spec.Name, Node: l.node}
	serr := p.Start(ctx, nil)
	st.Start = p.LastStart()
	if err := printTimeline(out, cmd.JSON, st.Start); err != nil {
		return err
	}
	if serr != nil {
		s, why := p.State()
		st.State, st.Reason = s.String(), why
		writeState(l.state, st)
		return explain(serr)
	}
	supervised := 0
	for _, s := range spec.Services {
		if s.Agent == nil {
			supervised++
		}
	}
	if supervised == 0 {
		st.State = pkgrun.Running.String()
		if err := writeState(l.state, st); err != nil {
			return err
		}
		if !cmd.JSON {
			fmt.Fprintf(out, "package %s running on %s; halt it with: mtc package halt --config %s --node %s %s\n", spec.Name, l.node, cmd.Config, l.node, spec.Name)
		}
		return nil
	}
	st.State, st.PID = pkgrun.Running.String(), os.Getpid()
	if err := writeState(l.state, st); err != nil {
		p.Halt(context.Background())
		return err
	}
	if !cmd.JSON {
		fmt.Fprintf(out, "package %s running on %s; this process (pid %d) supervises its services: stop it with Ctrl-C or mtc package halt --config %s --node %s %s\n",
			spec.Name, l.node, os.Getpid(), cmd.Config, l.node, spec.Name)
	}
	if f, ok := out.(interface{ Sync() error }); ok {
		f.Sync()
	}
	var reason error
	select {
	case <-ctx.Done():
	case reason = <-failed:
		log.Error("package failed; halting it", "package", spec.Name, "err", reason)
	}
	stop()
	herr := p.Halt(context.Background())
	st.Halt, st.PID = p.LastHalt(), 0
	s, why := p.State()
	st.State, st.Reason = s.String(), why
	werr := writeState(l.state, st)
	if err := printTimeline(out, cmd.JSON, st.Halt); err != nil {
		return err
	}
	switch {
	case herr != nil:
		return explain(herr)
	case reason != nil:
		return fmt.Errorf("package %s failed and was halted: %w", spec.Name, reason)
	}
	return werr
}

// PackageHaltCmd is mtc package halt.
type PackageHaltCmd struct {
	packageFlags
	Wait time.Duration `default:"0s" help:"How long to wait for the supervising mtc package start to halt the package (default: the package's halt_timeout plus 10s)."`
}

// Run halts the package: through the mtc package start that supervises
// it when one runs, else by running the halt plan here.
func (cmd *PackageHaltCmd) Run(out io.Writer, log *slog.Logger) error {
	l, err := cmd.load()
	if err != nil {
		return err
	}
	spec := l.pkg.Spec()
	if st, err := readState(l.state); err == nil && st.PID > 0 && alive(st.PID) {
		return cmd.haltRunner(out, l, st.PID, spec.HaltTimeout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	node, err := l.open(ctx, log)
	if err != nil {
		return err
	}
	defer node.Close()
	p := node.Package(spec, pkgrun.Options{})
	herr := p.Halt(ctx)
	st := &handState{Package: spec.Name, Node: l.node, Halt: p.LastHalt()}
	if old, err := readState(l.state); err == nil {
		st.Start = old.Start
	}
	s, why := p.State()
	st.State, st.Reason = s.String(), why
	if err := os.MkdirAll(filepath.Dir(l.state), 0o755); err == nil {
		writeState(l.state, st)
	}
	if err := printTimeline(out, cmd.JSON, st.Halt); err != nil {
		return err
	}
	return explain(herr)
}

// haltRunner signals the supervising process and waits for it to record
// its halt.
func (cmd *PackageHaltCmd) haltRunner(out io.Writer, l *loaded, pid int, haltTimeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal the mtc package start of %s (pid %d): %w", l.pkg.Name, pid, err)
	}
	wait := cmd.Wait
	if wait <= 0 {
		wait = haltTimeout + 10*time.Second
	}
	deadline := time.Now().Add(wait)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the mtc package start of %s (pid %d) did not end within %v of SIGTERM; look at its output, and do not start the package elsewhere until it has", l.pkg.Name, pid, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := readState(l.state)
	if err != nil {
		return fmt.Errorf("package %s: the supervising process ended without recording its halt (%v): check the node before starting the package elsewhere", l.pkg.Name, err)
	}
	if err := printTimeline(out, cmd.JSON, st.Halt); err != nil {
		return err
	}
	if st.State != pkgrun.Halted.String() {
		return explain(fmt.Errorf("package %s: %s: %s: %w", l.pkg.Name, st.State, st.Reason, pkgrun.ErrNodeMustReset))
	}
	return nil
}

// PackageStatusCmd is mtc package status.
type PackageStatusCmd struct {
	packageFlags
}

// Run prints the by-hand state of the package on this node.
func (cmd *PackageStatusCmd) Run(out io.Writer) error {
	l, err := cmd.load()
	if err != nil {
		return err
	}
	st, err := readState(l.state)
	if errors.Is(err, fs.ErrNotExist) {
		st = &handState{Package: l.pkg.Name, Node: l.node, State: pkgrun.Halted.String()}
		if !cmd.JSON {
			fmt.Fprintf(out, "package %s has not been started by hand on this node\n", l.pkg.Name)
			return nil
		}
	} else if err != nil {
		return err
	}
	if st.PID > 0 && !alive(st.PID) {
		st.Reason = fmt.Sprintf("its supervising process (pid %d) is gone: its services are no longer supervised; run mtc package halt", st.PID)
		st.PID = 0
	}
	if cmd.JSON {
		return writeJSON(out, st)
	}
	fmt.Fprintf(out, "package %s on %s: %s", st.Package, st.Node, strings.ToLower(st.State))
	if st.PID > 0 {
		fmt.Fprintf(out, " (supervised by pid %d)", st.PID)
	}
	fmt.Fprintln(out)
	if st.Reason != "" {
		fmt.Fprintf(out, "  %s\n", st.Reason)
	}
	for _, tl := range []*pkgrun.Timeline{st.Start, st.Halt} {
		if tl != nil {
			printTimeline(out, false, tl)
		}
	}
	return nil
}

// printTimeline prints a start or halt timeline, one line per step.
func printTimeline(out io.Writer, asJSON bool, tl *pkgrun.Timeline) error {
	if tl == nil {
		return nil
	}
	if asJSON {
		return writeJSON(out, tl)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s: %s in %v\n", tl.Kind, tl.Start.Format(time.RFC3339Nano), tl.Outcome, tl.End.Sub(tl.Start).Round(time.Microsecond))
	for _, s := range tl.Steps {
		fmt.Fprintf(&b, "  %+9.3fs %10v  %-9s %-8s %s", s.Start.Sub(tl.Start).Seconds(), s.Duration().Round(time.Microsecond), s.Outcome, s.Phase, s.Name)
		if s.Err != "" {
			fmt.Fprintf(&b, ": %s", s.Err)
		}
		b.WriteString("\n")
	}
	if tl.Err != "" {
		fmt.Fprintf(&b, "  error: %s\n", tl.Err)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func readState(path string) (*handState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st handState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &st, nil
}

// writeState replaces the state file atomically.
func writeState(path string, st *handState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// alive reports whether pid is a running mtc process (not a zombie, not
// a recycled pid of another program).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open || close+2 >= len(s) {
		return false
	}
	if s[close+2] == 'Z' {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return true // not ours to read: assume it is
	}
	self, err := os.Executable()
	if err != nil {
		return true
	}
	return filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == filepath.Base(self)
}
