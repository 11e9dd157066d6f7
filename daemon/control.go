package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/mtcluster/mtc/control"
)

// Control commands this daemon serves to other nodes and to operators'
// tools holding the cluster key.
const (
	// CommandStatus answers this node's Status.
	CommandStatus = "status"
)

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
