package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/nethb"
)

// StatusCmd asks the local daemon for its status over its socket, or
// another node's over the control channel.
type StatusCmd struct {
	Config string        `type:"existingfile" help:"Cluster configuration file, to find the daemon's socket by cluster name." placeholder:"FILE"`
	Socket string        `help:"Status socket path (default: /run/mtc/<cluster>.sock, or the only socket in /run/mtc)." placeholder:"PATH"`
	Node   string        `help:"Ask this node's daemon, over the control channel, from any machine that has the cluster file and key (needs --config)." placeholder:"NAME" completion:"node"`
	JSON   bool          `help:"Print the raw JSON status."`
	Watch  bool          `short:"w" help:"Refresh the status every --interval until interrupted (as watch(1), with the screen cleared on a terminal)."`
	Every  time.Duration `name:"interval" default:"2s" help:"With --watch: how often to refresh."`
	Color  string        `enum:"auto,always,never" default:"auto" help:"Colour the states: auto (on a terminal, unless NO_COLOR is set), always or never."`
	Steps  bool          `help:"Also print each package's last start and halt on the node, step by step."`

	remote *remote
}

// remote reaches one node's daemon over the control channel.
type remote struct {
	cfg   control.ClientConfig
	addrs []string // the node's control addresses, one per heartbeat network
}

func newRemote(cfgPath, node string) (*remote, error) {
	cl, key, err := loadControl(cfgPath)
	if err != nil {
		return nil, err
	}
	n, ok := cl.NodeByName(node)
	if !ok {
		return nil, fmt.Errorf("node %q is not in %s", node, cfgPath)
	}
	return remoteOf(cl, key, n), nil
}

// loadControl loads the cluster file and the cluster key the control
// channel is authenticated with.
func loadControl(cfgPath string) (*config.Cluster, []byte, error) {
	cl, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := nethb.LoadKey(cl.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (the control channel is authenticated with the cluster key: run as root on a machine that has it)", err)
	}
	return cl, key, nil
}

// remoteOf is node n of cl, reached on its control address on each
// heartbeat network.
func remoteOf(cl *config.Cluster, key []byte, n *config.Node) *remote {
	r := &remote{cfg: control.ClientConfig{Cluster: cl.UUID, Key: key, Node: n.Name}}
	for _, nw := range cl.Networks {
		if a, ok := n.Addresses[nw.Name]; ok {
			r.addrs = append(r.addrs, net.JoinHostPort(a.String(), strconv.Itoa(cl.Control.Port)))
		}
	}
	return r
}

// try runs call on each of the node's addresses in turn until one answers
// (another error than unreachable ends it too).
func (r *remote) try(ctx context.Context, call func(addr string) error) error {
	var errs []error
	for _, a := range r.addrs {
		err := call(a)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
		if !errors.Is(err, control.ErrUnreachable) || ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("node %s: %w", r.cfg.Node, errors.Join(errs...))
}

// status asks the node for its status.
func (r *remote) status(ctx context.Context) (daemon.Status, error) {
	var s daemon.Status
	err := r.try(ctx, func(a string) (err error) {
		s, err = daemon.QueryRemoteStatus(ctx, a, r.cfg)
		return err
	})
	return s, err
}

// statusTimeout bounds the exchange with the daemon.
const statusTimeout = 5 * time.Second

func (c *StatusCmd) socket() (string, error) {
	if c.Socket != "" {
		return c.Socket, nil
	}
	if c.Config != "" {
		cl, err := config.Load(c.Config)
		if err != nil {
			return "", err
		}
		return daemon.DefaultSocket(cl.Name), nil
	}
	socks, _ := filepath.Glob(filepath.Join(daemon.DefaultSocketDir, "*.sock"))
	switch len(socks) {
	case 1:
		return socks[0], nil
	case 0:
		return "", fmt.Errorf("no daemon socket in %s: is the daemon running? (or pass --socket PATH)", daemon.DefaultSocketDir)
	default:
		return "", fmt.Errorf("several daemon sockets in %s (%s): pass --socket PATH or --config FILE", daemon.DefaultSocketDir, strings.Join(socks, ", "))
	}
}

// Run prints the status, once or (--watch) until interrupted.
func (c *StatusCmd) Run(out io.Writer) error {
	var path string
	var err error
	if c.Node != "" {
		if c.Config == "" || c.Socket != "" {
			return errors.New("--node asks a daemon over the network: give --config FILE (for its addresses and the key), and no --socket")
		}
		c.remote, err = newRemote(c.Config, c.Node)
	} else {
		path, err = c.socket()
	}
	if err != nil {
		return err
	}
	tty := isTerminal(out)
	p := painter{on: c.Color == "always" || c.Color == "auto" && tty && os.Getenv("NO_COLOR") == ""}
	if !c.Watch {
		return c.once(out, path, p)
	}
	if c.Every < 100*time.Millisecond {
		return fmt.Errorf("--interval %v: want 100ms or more", c.Every)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	t := time.NewTicker(c.Every)
	defer t.Stop()
	for {
		var buf bytes.Buffer
		if err := c.once(&buf, path, p); err != nil {
			// The daemon may be restarting: say so and keep watching.
			fmt.Fprintf(&buf, "%s  mtc: %v\n", time.Now().Format("15:04:05"), err)
		}
		if tty && !c.JSON {
			io.WriteString(out, "\x1b[H\x1b[2J")
		}
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *StatusCmd) once(out io.Writer, path string, p painter) error {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	var s daemon.Status
	var err error
	if c.remote != nil {
		s, err = c.remote.status(ctx)
	} else {
		s, err = daemon.QueryStatus(ctx, path)
	}
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(out)
		if !c.Watch {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(s)
	}
	printStatus(out, s, p)
	if c.Steps {
		printSteps(out, s.Packages)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// painter colours state words on a terminal. Every state gets a colour
// (the default one for those without), so the escape sequences are the
// same length in every cell of a column and tabwriter keeps it aligned.
type painter struct{ on bool }

func (p painter) state(s string) string {
	if !p.on {
		return s
	}
	code := "39"
	switch s {
	case daemon.StateQuorate, "alive", "live", "fenced", "running":
		code = "32"
	case daemon.StateStarting, daemon.StateInquorate, "suspect", "pending", "failing", "halting":
		code = "33"
	case daemon.StateStopped, "dead", "partitioned", "failed", "halt failed", "halt-failed":
		code = "31"
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// alert colours a line that needs the operator (red, bold).
func (p painter) alert(s string) string {
	if !p.on {
		return s
	}
	return "\x1b[1;31m" + s + "\x1b[0m"
}

func ago(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String() + " ago"
}

func printStatus(out io.Writer, s daemon.Status, paint painter) {
	fmt.Fprintf(out, "cluster %s (%s)\nnode %s (id %d), pid %d, incarnation %s, up %v\n",
		s.Cluster, s.ClusterUUID, s.Node, s.NodeID, s.PID, s.Incarnation, s.Uptime.Round(time.Second))
	if !s.Time.IsZero() {
		fmt.Fprintf(out, "as of %s (monotonic %v)\n", s.Time.Format(time.RFC3339Nano), s.Uptime.Round(time.Millisecond))
	}
	fmt.Fprintf(out, "state: %s   members: %s   epoch %d", paint.state(s.State), strings.Join(s.Members, ", "), s.Epoch)
	if s.Reason != "" {
		fmt.Fprintf(out, "   (%s)", s.Reason)
	}
	if s.Tie {
		fmt.Fprint(out, "   (tie: decided on the quorum disk)")
	}
	if s.StopIn > 0 {
		fmt.Fprintf(out, "   stops in %v unless quorum returns", s.StopIn.Round(time.Millisecond))
	}
	fmt.Fprintln(out)
	if s.Coordinator != "" || s.LastIntent > 0 || len(s.Drained) > 0 {
		fmt.Fprintf(out, "coordinator: %s   last intent: %d", orDash(s.Coordinator), s.LastIntent)
		if len(s.Drained) > 0 {
			fmt.Fprintf(out, "   drained: %s", strings.Join(s.Drained, ", "))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "watchdog: %s, %d feeds, last %s", s.Watchdog.Mode, s.Watchdog.Feeds, ago(s.Watchdog.SinceFeed))
	if s.Watchdog.LastError != "" {
		fmt.Fprintf(out, ", error: %s", s.Watchdog.LastError)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "quorum disk %s: %d writes (%d failed), last %s; %d reads (%d failed)\n",
		s.Disk.Path, s.Disk.Writes, s.Disk.WriteFailures, ago(s.Disk.SinceWrite), s.Disk.Reads, s.Disk.ReadFailures)
	if s.Disk.LastWriteError != "" {
		fmt.Fprintf(out, "  last write error: %s\n", s.Disk.LastWriteError)
	}
	if s.Disk.LastReadError != "" {
		fmt.Fprintf(out, "  last read error: %s\n", s.Disk.LastReadError)
	}
	if s.Disk.LastLockError != "" {
		fmt.Fprintf(out, "  last tie-break lock read error (%d failed): %s\n", s.Disk.LockReadFailures, s.Disk.LastLockError)
	}
	if s.Disk.Conflict {
		fmt.Fprintln(out, paint.alert(fmt.Sprintf("  CONFLICT: another daemon writes this node's slot (%d times seen); this node's writes do not count and it will self-fence", s.Disk.Conflicts)))
	}
	if s.Disk.OwnSlotProblem != "" {
		fmt.Fprintf(out, "  OWN SLOT: %s\n", s.Disk.OwnSlotProblem)
	}
	if s.Disk.OtherGeneration > 0 {
		fmt.Fprintf(out, "  %d peer slot reads of another configuration generation (counted as unknown)\n", s.Disk.OtherGeneration)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PEER\tID\t%s\tMEMBER\t%s\tHEARD\t%s\tCHANGED\tACCEPTED\tDROPPED\tRESTARTS\n",
		paint.state("STATE"), paint.state("NETWORK"), paint.state("DISK"))
	for _, p := range s.Peers {
		net := p.Net
		if net == "" {
			net = "silent"
			if p.NetAlive {
				net = "alive"
			}
		}
		disk := p.Disk
		if p.OtherGeneration != "" {
			disk += " (other generation " + p.OtherGeneration + ")"
		}
		var dropped uint64
		for _, n := range s.Network.Receive.Dropped[p.Name] {
			dropped += n
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%v\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", p.Name, p.ID, paint.state(p.State), p.Member, paint.state(net), ago(p.SinceHeard),
			paint.state(disk), ago(p.DiskSinceChange), s.Network.Receive.Accepted[p.Name], dropped, s.Network.Receive.Restarts[p.Name])
	}
	tw.Flush()
	for _, p := range s.Peers {
		if p.FencePending != "" {
			fmt.Fprintln(out, paint.alert(fmt.Sprintf("%s: fence pending: %s", p.Name, p.FencePending)))
		}
	}
	if len(s.Packages) > 0 {
		fmt.Fprintln(out)
		printPackageViews(out, s.Packages, s.Time, paint)
		fmt.Fprintln(out)
	}
	for _, l := range s.Fencing.LUNs {
		if l.Backend == "none" {
			fmt.Fprintf(out, "fencing %s: none (%s): takeovers wait for the watchdog deadline\n", l.Name, l.NoPR)
		} else {
			fmt.Fprintf(out, "fencing %s: %s, %d path(s), registered\n", l.Name, l.Backend, l.Paths)
		}
	}
	for _, f := range s.Fencing.Fenced {
		fmt.Fprintf(out, "fenced at %s (%v): %s (incarnation %s) on %s\n", wall(f.Time), f.At.Round(time.Millisecond), f.Peer, f.Incarnation, f.Reason)
	}
	for src, reasons := range s.Network.Receive.Dropped {
		for r, n := range reasons {
			fmt.Fprintf(out, "dropped from %s: %d %s\n", src, n, r)
		}
	}
	if o := s.Network.Receive.OtherSources; o.Packets > 0 {
		fmt.Fprintf(out, "dropped from about %d other addresses: %d packets\n", o.Addresses, o.Packets)
	}
	for nw, n := range s.Network.Send.Sent {
		fmt.Fprintf(out, "network %s: %d sent, %d send errors\n", nw, n, s.Network.Send.Errors[nw])
	}
	if s.Network.LastSendError != "" {
		fmt.Fprintf(out, "last send error: %s\n", s.Network.LastSendError)
	}
	for _, st := range s.PackageStops {
		fmt.Fprintf(out, "packages stopped at %s (%v): %s\n", wall(st.Time), st.At.Round(time.Millisecond), st.Reason)
	}
	for _, f := range s.FenceRequests {
		fmt.Fprintf(out, "fencing requested at %s (%v): %s (incarnation %s)\n", wall(f.Time), f.At.Round(time.Millisecond), f.Peer, f.Incarnation)
	}
	for _, t := range s.Takeovers {
		fmt.Fprintf(out, "takeover allowed at %s (%v): %s (incarnation %s, %s)\n", wall(t.Time), t.At.Round(time.Millisecond), t.Peer, t.Incarnation, t.Reason)
	}
	if n := len(s.Decisions); n > 0 {
		fmt.Fprintln(out, "\nrecent decisions (wall clock, monotonic since start):")
		for _, d := range s.Decisions[max(0, n-10):] {
			fmt.Fprintf(out, "  %s %10v  %s\n", wall(d.Time), d.At.Round(time.Millisecond), d.Text)
		}
	}
}

// wall renders a record's wall-clock time, or "-" when it has none.
func wall(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05.000")
}
