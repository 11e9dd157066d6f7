package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/journal"
)

// Control commands this daemon serves to other nodes and to operators'
// tools holding the cluster key.
const (
	// CommandStatus answers this node's Status.
	CommandStatus = "status"
	// CommandEvents answers the last events of this node's journal
	// (EventsArgs; a []journal.Event, oldest first).
	CommandEvents = "events"
)

// EventsArgs select the events CommandEvents answers.
type EventsArgs struct {
	// Last is how many of the newest events (0: all, at most MaxEvents).
	Last int `json:"last,omitempty"`
	// Kinds keeps only these kinds (none: every kind).
	Kinds []string `json:"kinds,omitempty"`
}

// MaxEvents bounds one events answer, so it fits the control channel's
// frame.
const MaxEvents = 2000

// ServeControl serves the control channel (package control) on l until l
// is closed. The commands are the CommandX constants.
func (d *Daemon) ServeControl(l net.Listener) error {
	srv, err := control.NewServer(control.ServerConfig{Cluster: d.cl.UUID, Node: d.self.Name, Key: d.key,
		Handler: d.control, Log: d.log.With("component", "control")})
	if err != nil {
		return err
	}
	return srv.Serve(l)
}

func (d *Daemon) control(ctx context.Context, req control.Request) (any, error) {
	switch req.Command {
	case CommandStatus:
		return d.Status(), nil
	case CommandIntent:
		return d.intent(ctx, req.Args)
	case CommandPlan:
		return d.plan(ctx, req.Args)
	case CommandEvents:
		var a EventsArgs
		if len(req.Args) > 0 {
			if err := json.Unmarshal(req.Args, &a); err != nil {
				return nil, &control.CodedError{Code: "bad-args", Err: fmt.Errorf("events: %w", err)}
			}
		}
		if d.opt.Journal == nil {
			return nil, &control.CodedError{Code: "no-journal", Err: errors.New("this node keeps no event journal")}
		}
		evs, _, err := journal.Read(d.opt.Journal.Path())
		if err != nil {
			return nil, err
		}
		var out []journal.Event
		for _, e := range evs {
			if len(a.Kinds) == 0 || slices.Contains(a.Kinds, e.Kind) {
				out = append(out, e)
			}
		}
		n := MaxEvents
		if a.Last > 0 {
			n = min(a.Last, MaxEvents)
		}
		if len(out) > n {
			out = out[len(out)-n:]
		}
		return out, nil
	}
	return nil, &control.CodedError{Code: "unknown-command",
		Err: fmt.Errorf("unknown command %q: node %s does not serve it (is it running another release of mtc?)", req.Command, d.self.Name)}
}

// QueryRemoteStatus asks the daemon of node at addr for its status over the
// control channel.
func QueryRemoteStatus(ctx context.Context, addr string, cfg control.ClientConfig) (Status, error) {
	var s Status
	res, err := control.Call(ctx, addr, cfg, control.Request{Command: CommandStatus})
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(res, &s); err != nil {
		return s, fmt.Errorf("status of node %s: %w", cfg.Node, errors.Join(control.ErrProtocol, err))
	}
	return s, nil
}

// QueryRemoteEvents asks the daemon of node at addr for its newest events.
func QueryRemoteEvents(ctx context.Context, addr string, cfg control.ClientConfig, a EventsArgs) ([]journal.Event, error) {
	args, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	res, err := control.Call(ctx, addr, cfg, control.Request{Command: CommandEvents, Args: args})
	if err != nil {
		return nil, err
	}
	var evs []journal.Event
	if err := json.Unmarshal(res, &evs); err != nil {
		return nil, fmt.Errorf("events of node %s: %w", cfg.Node, errors.Join(control.ErrProtocol, err))
	}
	return evs, nil
}
