package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/daemon"
	"github.com/mtcluster/mtc/journal"
)

// EventsCmd shows this node's event journal.
type EventsCmd struct {
	Config string   `type:"existingfile" help:"Cluster configuration file: the journal is its [events] journal (default /var/lib/mtc/<cluster>/<node>/events.jsonl)." placeholder:"FILE"`
	Node   string   `help:"With --config: the node whose journal to read: this machine's file when the node is named like this host, else the node's daemon over the control channel (default: the node named like this host)." placeholder:"NAME"`
	File   string   `help:"The journal file to read instead of the configured one." placeholder:"PATH"`
	Follow bool     `short:"f" help:"Keep printing events as they are written, until interrupted."`
	JSON   bool     `name:"json" help:"Print each event as one JSON line, as the journal keeps it."`
	Last   int      `short:"n" default:"50" help:"Print only the last N events before following (0: all)."`
	Kind   []string `help:"Print only events of these kinds (quorum-lost, fenced, takeover-allowed, ...); repeat or separate with commas." placeholder:"KIND"`
}

// Run prints the journal's events.
func (c *EventsCmd) Run(out io.Writer) error {
	if c.Last < 0 {
		return fmt.Errorf("--last %d: want 0 (all) or more", c.Last)
	}
	if h, _ := os.Hostname(); c.Node != "" && c.Node != h && c.File == "" {
		return c.runRemote(out)
	}
	path, err := c.path()
	if err != nil {
		return err
	}
	keep := func(e journal.Event) bool { return len(c.Kind) == 0 || slices.Contains(c.Kind, e.Kind) }
	evs, bad, err := journal.Read(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && c.Follow:
		evs = nil
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no event journal at %s: the daemon has not run on this node with this configuration (or [events] journal names another file)", path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: run as root", err)
	case err != nil:
		return err
	}
	var shown []journal.Event
	for _, e := range evs {
		if keep(e) {
			shown = append(shown, e)
		}
	}
	if c.Last > 0 && len(shown) > c.Last {
		shown = shown[len(shown)-c.Last:]
	}
	for _, e := range shown {
		if err := c.print(out, e); err != nil {
			return err
		}
	}
	if bad > 0 && !c.JSON {
		fmt.Fprintf(os.Stderr, "mtc events: %d unreadable line(s) skipped (a line torn by a crash)\n", bad)
	}
	if !c.Follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var last uint64
	if len(evs) > 0 {
		last = evs[len(evs)-1].Seq
	}
	return journal.Follow(ctx, path, last, 200*time.Millisecond, func(e journal.Event) error {
		if !keep(e) {
			return nil
		}
		return c.print(out, e)
	})
}

// runRemote asks another node's daemon for its newest events.
func (c *EventsCmd) runRemote(out io.Writer) error {
	if c.Config == "" {
		return errors.New("--node for another node needs --config FILE (its addresses and the cluster key)")
	}
	if c.Follow {
		return errors.New("--follow reads this machine's journal: run it on that node, or without --follow here")
	}
	r, err := newRemote(c.Config, c.Node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	var evs []journal.Event
	err = r.try(ctx, func(a string) (err error) {
		evs, err = daemon.QueryRemoteEvents(ctx, a, r.cfg, daemon.EventsArgs{Last: c.Last, Kinds: c.Kind})
		return err
	})
	if err != nil {
		return err
	}
	for _, e := range evs {
		if err := c.print(out, e); err != nil {
			return err
		}
	}
	return nil
}

func (c *EventsCmd) path() (string, error) {
	switch {
	case c.File != "" && c.Config != "":
		return "", errors.New("give --config or --file, not both")
	case c.File != "":
		return c.File, nil
	case c.Config != "":
		cl, err := config.Load(c.Config)
		if err != nil {
			return "", err
		}
		node := c.Node
		if node == "" {
			h, err := os.Hostname()
			if err != nil {
				return "", fmt.Errorf("host name: %w; pass --node NAME", err)
			}
			node = h
		}
		if _, ok := cl.NodeByName(node); !ok {
			return "", fmt.Errorf("node %q is not in %s: pass --node with one of its node names", node, c.Config)
		}
		return cl.JournalPath(node), nil
	}
	return "", errors.New("which journal? pass --config FILE (the cluster file) or --file PATH")
}

func (c *EventsCmd) print(out io.Writer, e journal.Event) error {
	if c.JSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(out, formatEvent(e))
	return err
}

// formatEvent is one event on one line: time, node, severity, kind, then
// what it concerns.
func formatEvent(e journal.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-8s %-5s %-20s", e.Time.Local().Format("2006-01-02 15:04:05.000"), esc(e.Node), e.Severity, esc(e.Kind))
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, esc(v))
		}
	}
	add("peer", e.Peer)
	add("package", e.Package)
	if len(e.Members) > 0 {
		add("members", strings.Join(e.Members, ","))
	}
	if e.Epoch > 0 {
		add("epoch", fmt.Sprint(e.Epoch))
	}
	if e.Took > 0 {
		add("took", e.Took.Round(time.Millisecond).String())
	}
	add("reason", e.Reason)
	add("error", e.Error)
	if e.DroppedBefore > 0 {
		add("dropped_before", fmt.Sprintf("%d events (queue full)", e.DroppedBefore))
	}
	return b.String()
}
