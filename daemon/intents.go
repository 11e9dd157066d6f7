package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/placement"
	"github.com/mtcluster/mtc/quorum"
)

// maxIntentWait bounds IntentArgs.Wait (the control channel's own
// deadline bounds the whole call).
const maxIntentWait = control.MaxTimeout - 5*time.Second

var intentKinds = map[string]placement.IntentKind{
	IntentRun: placement.IntentRun, IntentHalt: placement.IntentHalt, IntentMove: placement.IntentMove,
	IntentEnable: placement.IntentEnable, IntentDisable: placement.IntentDisable,
	IntentMaintenanceOn: placement.IntentMaintenanceOn, IntentMaintenanceOff: placement.IntentMaintenanceOff,
	IntentDrain: placement.IntentDrain, IntentUndrain: placement.IntentUndrain, IntentClear: placement.IntentClear,
}

// parseIntent checks an intent's names against the configuration.
func (d *Daemon) parseIntent(a IntentArgs) (placement.Intent, error) {
	k, ok := intentKinds[a.Kind]
	if !ok {
		return placement.Intent{}, &codedErr{code: CodeBadArgs, err: fmt.Errorf("unknown intent kind %q (kinds: %s)", a.Kind, strings.Join(IntentKinds, ", "))}
	}
	in := placement.Intent{Kind: k}
	needsPkg := k != placement.IntentDrain && k != placement.IntentUndrain
	if needsPkg {
		if _, ok := d.pl.defs[a.Package]; !ok {
			return in, &codedErr{code: CodeUnknownPackage, err: fmt.Errorf("no package %q in the configuration of cluster %s (packages: %s)", a.Package, d.cl.Name, strings.Join(d.pl.names, ", "))}
		}
		in.Package = a.Package
	}
	if a.Node != "" {
		n, ok := d.cl.NodeByName(a.Node)
		if !ok {
			var names []string
			for _, n := range d.cl.Nodes {
				names = append(names, n.Name)
			}
			return in, &codedErr{code: CodeUnknownNode, err: fmt.Errorf("no node %q in cluster %s (nodes: %s)", a.Node, d.cl.Name, strings.Join(names, ", "))}
		}
		in.Node = quorum.NodeID(n.ID)
	}
	switch k {
	case placement.IntentMove, placement.IntentDrain, placement.IntentUndrain:
		if in.Node == 0 {
			return in, &codedErr{code: CodeBadArgs, err: fmt.Errorf("%s needs a node", a.Kind)}
		}
	}
	if needsPkg && in.Node != 0 && (k == placement.IntentRun || k == placement.IntentMove) {
		def := d.pl.defs[a.Package]
		if !slices.Contains(def.Nodes, a.Node) {
			return in, &codedErr{code: CodeRefused, err: fmt.Errorf("package %s may not run on node %s (its nodes: %s): add the node to nodes in %s first", a.Package, a.Node, strings.Join(def.Nodes, ", "), def.File)}
		}
	}
	return in, nil
}

// intent serves CommandIntent: on the coordinator it commits the intent
// and waits for its goal; elsewhere it forwards it to the coordinator.
func (d *Daemon) intent(ctx context.Context, raw json.RawMessage) (any, error) {
	if d.pl == nil {
		return nil, &control.CodedError{Code: CodeNoPackages, Err: fmt.Errorf("cluster %s has no packages configured on node %s", d.cl.Name, d.self.Name)}
	}
	var a IntentArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, &control.CodedError{Code: CodeBadArgs, Err: fmt.Errorf("intent: %w", err)}
	}
	a.Wait = min(max(a.Wait, 0), maxIntentWait)
	in, err := d.parseIntent(a)
	if err != nil {
		return nil, toCoded(err)
	}
	req := &intentReq{in: in, args: a, start: d.clock(), reply: make(chan intentReply, 1)}
	var coord string
	select {
	case d.onLoop <- func() { d.intentArrived(req) }:
	case <-d.loopDone:
		return nil, &control.CodedError{Code: CodeNotQuorate, Err: errors.New("the daemon is stopping")}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.reply:
		var fwd *forwardErr
		if errors.As(r.err, &fwd) {
			coord = fwd.to
			break
		}
		if r.err != nil {
			return nil, toCoded(r.err)
		}
		return r.res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if a.Forwarded {
		return nil, &control.CodedError{Code: CodeNotQuorate, Err: fmt.Errorf("node %s is not the coordinator (it sees %s): retry once the cluster agrees", d.self.Name, coord)}
	}
	return d.forward(ctx, coord, a)
}

// forwardErr tells the control handler to forward the intent.
type forwardErr struct{ to string }

func (e *forwardErr) Error() string { return "forward to " + e.to }

// forward sends the intent to the coordinator and relays its answer.
func (d *Daemon) forward(ctx context.Context, to string, a IntentArgs) (any, error) {
	n, ok := d.cl.NodeByName(to)
	if !ok {
		return nil, &control.CodedError{Code: CodeNotQuorate, Err: fmt.Errorf("coordinator %q unknown", to)}
	}
	a.Forwarded = true
	args, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	var last error
	for _, addr := range d.controlAddrs(n) {
		res, err := control.Call(ctx, addr,
			control.ClientConfig{Cluster: d.cl.UUID, Node: to, Key: d.key},
			control.Request{From: d.self.Name, Command: CommandIntent, Args: args, Timeout: min(a.Wait+10*time.Second, control.MaxTimeout)})
		if err == nil {
			var r IntentResult
			if err := json.Unmarshal(res, &r); err != nil {
				return nil, errors.Join(control.ErrProtocol, err)
			}
			return r, nil
		}
		var re *control.RemoteError
		if errors.As(err, &re) {
			return nil, &control.CodedError{Code: re.Code, Err: errors.New(re.Msg)}
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &control.CodedError{Code: CodeNotQuorate, Err: fmt.Errorf("coordinator %s did not answer: %w", to, last)}
}

// toCoded converts the daemon's own coded errors for the control channel.
func toCoded(err error) error {
	var ce *codedErr
	if errors.As(err, &ce) {
		return &control.CodedError{Code: ce.code, Err: ce.err}
	}
	return err
}

// intentArrived runs on the event loop: commit here, or forward.
func (d *Daemon) intentArrived(r *intentReq) {
	p := d.pl
	if p.m == nil {
		r.reply <- intentReply{err: notQuorate("node %s is starting", d.self.Name)}
		return
	}
	if !p.view.Quorate {
		r.reply <- intentReply{err: notQuorate("node %s does not hold quorum (%s): no intent can be committed through it; ask a node of the quorate side", d.self.Name, d.drv.Node.Status().Reason.String())}
		return
	}
	if !p.coordinator {
		ids := p.view.Members.IDs()
		r.reply <- intentReply{err: &forwardErr{to: d.names[ids[0]]}}
		return
	}
	if p.noArea != nil {
		r.reply <- intentReply{err: &codedErr{code: CodeRefused, err: p.noArea}}
		return
	}
	if !p.stateKnown {
		r.reply <- intentReply{err: notQuorate("coordinator %s is still reading the cluster state from the quorum disk; retry in a moment", d.self.Name)}
		return
	}
	if err := d.precheck(r.in); err != nil {
		r.reply <- intentReply{err: err}
		return
	}
	p.proposals = append(p.proposals, r)
	d.pumpState(d.clock())
}

// precheck refuses, before committing, an intent that placement would
// reject as things stand, with placement's reason: nothing is committed
// for it. It steps a clone of the machine.
func (d *Daemon) precheck(in placement.Intent) error {
	p := d.pl
	c := p.m.Clone()
	probe := in
	probe.ID = p.last + uint64(len(p.proposals)) + 1
	c.Step(d.clock(), placement.Commanded{Intent: probe})
	for _, dec := range c.Ready().Decisions {
		if dec.Kind == placement.IntentRejected && dec.Intent == probe.ID {
			return &codedErr{code: CodeRefused, err: errors.New(dec.Reason)}
		}
	}
	return nil
}

// plan serves CommandPlan on the event loop.
func (d *Daemon) plan(ctx context.Context, raw json.RawMessage) (any, error) {
	if d.pl == nil {
		return nil, &control.CodedError{Code: CodeNoPackages, Err: fmt.Errorf("cluster %s has no packages configured on node %s", d.cl.Name, d.self.Name)}
	}
	var a PlanArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, &control.CodedError{Code: CodeBadArgs, Err: fmt.Errorf("plan: %w", err)}
	}
	type out struct {
		r   PlanResult
		err error
	}
	c := make(chan out, 1)
	select {
	case d.onLoop <- func() { r, err := d.planOnLoop(a); c <- out{r, err} }:
	case <-d.loopDone:
		return nil, &control.CodedError{Code: CodeNotQuorate, Err: errors.New("the daemon is stopping")}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case o := <-c:
		if o.err != nil {
			return nil, toCoded(o.err)
		}
		return o.r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// controlAddrs are the control-channel addresses of node n.
func (d *Daemon) controlAddrs(n *config.Node) []string {
	if d.opt.ControlAddrs != nil {
		return d.opt.ControlAddrs(n.Name)
	}
	var out []string
	for _, nw := range d.cl.Networks {
		if a, ok := n.Addresses[nw.Name]; ok {
			out = append(out, net.JoinHostPort(a.String(), strconv.Itoa(d.cl.Control.Port)))
		}
	}
	return out
}
