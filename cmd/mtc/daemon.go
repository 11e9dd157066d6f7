package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/internal/sdnotify"
	"github.com/mtcluster/mtc/journal"
	"github.com/mtcluster/mtc/watchdog"
)

// DaemonCmd runs the cluster daemon of one node.
type DaemonCmd struct {
	Config     string `required:"" type:"existingfile" help:"Cluster configuration file." placeholder:"FILE"`
	Node       string `help:"This node's name in the configuration (default: the host name)." placeholder:"NAME"`
	Socket     string `help:"Status socket path (default: /run/mtc/<cluster>.sock)." placeholder:"PATH"`
	NoRealtime bool   `help:"Do not lock memory or raise the heartbeat threads to real-time priority."`
	Journal    string `help:"The event journal file (default: [events] journal, else /var/lib/mtc/<cluster>/<node>/events.jsonl)." placeholder:"PATH"`
	Metrics    string `name:"metrics-listen" help:"Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464; default: none)." placeholder:"ADDR"`
}

// Run runs the daemon until SIGINT or SIGTERM, then shuts down in order.
func (c *DaemonCmd) Run(log *slog.Logger) error {
	cl, err := config.Load(c.Config)
	if err != nil {
		return err
	}
	name := c.Node
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("host name: %w; pass --node NAME", err)
		}
		name = h
	}
	if _, ok := cl.NodeByName(name); !ok {
		return fmt.Errorf("node %q is not in %s: pass --node with one of its node names", name, c.Config)
	}
	// Every node must place the same packages: a daemon refuses to start
	// with a package file that does not validate, rather than run a
	// subset of them.
	pkgDir := config.PackagesDirOf(cl, c.Config)
	pkgs, err := config.LoadPackages(cl, pkgDir, os.Stat)
	if err != nil {
		return fmt.Errorf("packages in %s: %w (run `mtc check --config %s` for every problem)", pkgDir, err, c.Config)
	}
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) }
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate the mtc binary for the watchdog supervisor: %w", err)
	}
	if cl.Watchdog.Mode == config.WatchdogDevice {
		// Fail now on a missing device, not at the first quorum.
		if _, err := os.Stat(cl.Watchdog.Device); err != nil {
			return fmt.Errorf("watchdog device: %w (load a watchdog driver, e.g. modprobe softdog, or set [watchdog] device)", err)
		}
	}
	wlog := log.With("component", "watchdog", "node", name)
	open := func() (watchdog.Watchdog, error) {
		return daemon.NewWatchdog(cl, wlog, clock, []string{exe, "watchdog-supervise"}, os.Stderr)
	}
	// A real watchdog is armed at the first feed, when the node first holds
	// quorum; "none" has nothing to arm and warns from the start.
	wd := daemon.Lazy(open)
	if cl.Watchdog.Mode == config.WatchdogNone {
		if wd, err = open(); err != nil {
			return err
		}
	}
	// Started by systemd with Type=notify: READY=1, STATUS=, STOPPING=1,
	// and WATCHDOG=1 from the event loop when the unit sets WatchdogSec.
	// The variables are taken out of the environment, so the package
	// services this daemon starts do not inherit them.
	sdEvery, _, err := sdnotify.WatchdogInterval()
	if err != nil {
		return fmt.Errorf("service manager watchdog: %w", err)
	}
	sd, err := sdnotify.FromEnv()
	if err != nil {
		return err
	}
	defer sd.Close()
	jpath := c.Journal
	if jpath == "" {
		jpath = cl.JournalPath(name)
	}
	jr, err := journal.Open(jpath, journal.Options{Notify: cl.Events.Notify, NotifyTimeout: cl.Events.NotifyTimeout,
		Log: log.With("component", "journal", "node", name)})
	if err != nil {
		return fmt.Errorf("%w (set [events] journal to a writable local path)", err)
	}
	defer jr.Close(5 * time.Second)
	opt := daemon.Options{
		Cluster: cl, Node: name, Log: log, Watchdog: wd, WatchdogMode: string(cl.Watchdog.Mode),
		Clock: clock, Realtime: !c.NoRealtime, NotifyWatchdog: sdEvery / 3, Journal: jr,
		Packages: pkgs,
	}
	if len(pkgs) > 0 {
		log.Info("packages configured", "count", len(pkgs), "dir", pkgDir)
	}
	if sd != nil {
		opt.Notify = sd
	}
	d, err := daemon.New(opt)
	if err != nil {
		return err
	}
	sock := c.Socket
	if sock == "" {
		sock = daemon.DefaultSocket(cl.Name)
	}
	l, err := daemon.ListenStatus(sock)
	if err != nil {
		return err
	}
	defer os.Remove(sock)
	defer l.Close()
	go func() {
		if err := d.ServeStatus(l); err != nil {
			log.Error("status socket stopped", "err", err)
		}
	}()
	// The control channel, on each of this node's heartbeat addresses:
	// other nodes' commands, and `mtc status --node` from anywhere.
	self, _ := cl.NodeByName(name)
	for _, nw := range cl.Networks {
		a, ok := self.Addresses[nw.Name]
		if !ok {
			continue
		}
		addr := net.JoinHostPort(a.String(), strconv.Itoa(cl.Control.Port))
		cln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Error("control channel not served on this address: other nodes cannot command this one through it", "addr", addr, "err", err)
			continue
		}
		defer cln.Close()
		go func() {
			if err := d.ServeControl(cln); err != nil {
				log.Error("control listener stopped", "addr", addr, "err", err)
			}
		}()
		log.Info("control channel listening", "addr", addr)
	}
	if c.Metrics != "" {
		ml, err := net.Listen("tcp", c.Metrics)
		if err != nil {
			return fmt.Errorf("--metrics-listen %s: %w", c.Metrics, err)
		}
		defer ml.Close()
		go func() {
			if err := d.ServeMetrics(ml); err != nil {
				log.Error("metrics listener stopped", "err", err)
			}
		}()
		log.Info("metrics listening", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("status socket listening", "path", sock)
	err = d.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
