package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/daemon"
)

// The package and node commands: each is one operator intent
// (daemon.IntentArgs) sent over the control channel to a node's daemon,
// which carries it to the cluster's coordinator; the coordinator commits
// it to the quorum disk, and the answer says what became of it.

// controlFlags are the flags of every command that asks the cluster over
// the control channel.
type controlFlags struct {
	Config string `required:"" type:"existingfile" help:"Cluster configuration file (the nodes' control addresses; the cluster key authenticates the request)." placeholder:"FILE"`
	Via    string `help:"Ask this node's daemon (default: the node named like this host); while it does not answer, or cannot reach a quorate coordinator, the other nodes are asked in turn. Any node carries the command to the coordinator." placeholder:"NODE" completion:"node"`
	JSON   bool   `name:"json" help:"Print the daemon's answer as JSON."`
}

// goalWait is --wait of the commands with a goal to wait for (run, halt,
// move, drain).
type goalWait struct {
	Wait   time.Duration `default:"60s" help:"How long the cluster may take to reach the goal before the command answers (exit status 5 when it has not: the cluster keeps working on it)."`
	NoWait bool          `help:"Answer as soon as the cluster has committed the command (as --wait 0)."`
}

func (w goalWait) wait() (time.Duration, error) { return waitFor(w.Wait, w.NoWait, time.Minute) }

// commitWait is --wait of the commands whose effect is the commit itself.
type commitWait struct {
	Wait   time.Duration `default:"0s" help:"How long to wait for the cluster to act on it after the commit (0: answer once committed)."`
	NoWait bool          `help:"Answer as soon as the cluster has committed the command (the default)."`
}

func (w commitWait) wait() (time.Duration, error) { return waitFor(w.Wait, w.NoWait, 0) }

// waiter is either --wait.
type waiter interface {
	wait() (time.Duration, error)
}

// waitFor checks --wait (whose default is dflt) and --no-wait.
func waitFor(wait time.Duration, noWait bool, dflt time.Duration) (time.Duration, error) {
	switch {
	case noWait && wait != dflt:
		return 0, &ExitError{Code: exitUsage, Err: errors.New("give --wait or --no-wait, not both")}
	case noWait:
		return 0, nil
	case wait < 0 || wait > control.MaxTimeout-commitTime:
		return 0, &ExitError{Code: exitUsage, Err: fmt.Errorf("--wait %v: want 0 to %v", wait, control.MaxTimeout-commitTime)}
	}
	return wait, nil
}

// Time the daemons take beyond --wait: commitTime to forward the intent
// to the coordinator, commit it on the quorum disk and answer; callTime
// for the exchange itself on top of the handler's time. (Variables for
// the tests.)
var (
	commitTime = 10 * time.Second
	callTime   = 5 * time.Second
)

// hostname names this machine, for the default node to ask (a variable
// for the tests).
var hostname = os.Hostname

// cluster is the cluster file and key, and the nodes to ask in turn.
type cluster struct {
	path  string
	cl    *config.Cluster
	nodes []*remote
}

// dial loads the cluster file and orders its nodes for asking: via (or
// the node named like this host) first, then the others in file order.
func (f *controlFlags) dial() (*cluster, error) {
	cl, key, err := loadControl(f.Config)
	if err != nil {
		return nil, err
	}
	c := &cluster{path: f.Config, cl: cl}
	first := f.Via
	if first == "" {
		first, _ = hostname()
	} else if err := c.checkNode(first, "--via"); err != nil {
		return nil, err
	}
	if n, ok := cl.NodeByName(first); ok {
		c.nodes = append(c.nodes, remoteOf(cl, key, n))
	}
	for i := range cl.Nodes {
		if cl.Nodes[i].Name != first {
			c.nodes = append(c.nodes, remoteOf(cl, key, &cl.Nodes[i]))
		}
	}
	return c, nil
}

// checkNode refuses a node name that is not in the cluster file.
func (c *cluster) checkNode(name, what string) error {
	if _, ok := c.cl.NodeByName(name); ok || name == "" {
		return nil
	}
	names := make([]string, len(c.cl.Nodes))
	for i, n := range c.cl.Nodes {
		names[i] = n.Name
	}
	return &ExitError{Code: exitRefused, Err: fmt.Errorf("%s: node %s is not in %s (its nodes: %s)", what, name, c.path, strings.Join(names, ", "))}
}

// request builds one attempt's request: spent is the time the attempts
// before it took (0 for the first).
type request func(spent time.Duration) (args any, handlerTime time.Duration)

// call sends command to the nodes in turn until one answers, and decodes
// its result into res. A node is passed over while it cannot be reached,
// is busy, or answers that it cannot reach a quorate coordinator (another
// may: every command is idempotent, so asking twice is safe); any other
// answer, an error included, ends it. It returns the node that answered.
func (c *cluster) call(ctx context.Context, command string, req request, res any) (string, error) {
	start := time.Now()
	var failed []error
	for _, n := range c.nodes {
		for _, addr := range n.addrs {
			var spent time.Duration
			if len(failed) > 0 {
				spent = time.Since(start)
			}
			args, timeout := req(spent)
			body, err := json.Marshal(args)
			if err != nil {
				return "", err
			}
			out, err := control.Call(ctx, addr, n.cfg, control.Request{Command: command, Args: body, Timeout: timeout})
			if err == nil {
				if err := json.Unmarshal(out, res); err != nil {
					return n.cfg.Node, fmt.Errorf("the answer of node %s: %w", n.cfg.Node, errors.Join(control.ErrProtocol, err))
				}
				return n.cfg.Node, nil
			}
			if !passOver(err) || ctx.Err() != nil {
				return n.cfg.Node, err
			}
			failed = append(failed, err)
			if isCode(err, daemon.CodeNotQuorate) {
				break // its other addresses reach the same daemon
			}
		}
	}
	return "", errors.Join(failed...)
}

// passOver reports whether call asks the next node after err.
func passOver(err error) bool {
	return errors.Is(err, control.ErrUnreachable) || errors.Is(err, control.ErrBusy) || isCode(err, daemon.CodeNotQuorate)
}

func isCode(err error, code string) bool {
	var re *control.RemoteError
	return errors.As(err, &re) && re.Code == code
}

// callError gives the error of call its exit status and says what to do.
// what is the command in words; intent is set for a command that changes
// something (not for mtc plan).
func callError(what string, err error, waited time.Duration, intent bool) error {
	var re *control.RemoteError
	switch {
	case errors.As(err, &re) && re.Code != daemon.CodeNotQuorate:
		code := exitFailed
		switch re.Code {
		case daemon.CodeRefused, daemon.CodeUnknownPackage, daemon.CodeUnknownNode, daemon.CodeNoPackages:
			code = exitRefused
		}
		return &ExitError{Code: code, Err: fmt.Errorf("%s: %s (answered by %s)", what, re.Msg, re.Node)}
	case errors.Is(err, context.DeadlineExceeded) && intent:
		return fmt.Errorf("%s: no answer within %v: the command may have been committed; see `mtc status`, and repeat it if need be (it is idempotent): %w", what, waited, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within %v: %w", what, waited, err)
	case passOver(err):
		// Every node was passed over.
		msg := "no daemon could answer it (is the cluster quorate? `mtc status` on a node says)"
		if intent {
			msg = "no daemon could commit it (is the cluster quorate? `mtc status` on a node says); nothing was committed"
		}
		return &ExitError{Code: exitNoQuorum, Err: fmt.Errorf("%s: %s:\n  %s", what, msg, strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// submit sends the intent a, waiting as w says for its goal, and prints
// its outcome. nodes are the node names the intent names.
func (f *controlFlags) submit(out io.Writer, w waiter, a daemon.IntentArgs, nodes ...string) error {
	what := describe(a)
	wait, err := w.wait()
	if err != nil {
		return err
	}
	c, err := f.dial()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := c.checkNode(n, what); err != nil {
			return err
		}
	}
	total := wait + commitTime + callTime
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	var r daemon.IntentResult
	_, err = c.call(ctx, daemon.CommandIntent, func(spent time.Duration) (any, time.Duration) {
		// After a node did not answer, what is left of --wait.
		a := a
		a.Wait = max(0, wait-spent)
		return a, min(a.Wait+commitTime, total-callTime-spent)
	}, &r)
	if err != nil {
		if f.JSON {
			printErrorJSON(out, err)
		}
		return callError(what, err, total, true)
	}
	if f.JSON {
		if err := writeJSON(out, r); err != nil {
			return err
		}
	} else {
		printIntent(out, what, r, wait)
	}
	switch r.Outcome {
	case daemon.OutcomeDone:
		return nil
	case daemon.OutcomeRejected:
		return &ExitError{Code: exitRefused, Err: fmt.Errorf("%s: rejected, nothing changed: %s", what, r.Reason)}
	case daemon.OutcomeCommitted:
		if wait == 0 {
			return nil
		}
		return &ExitError{Code: exitNotDone, Err: fmt.Errorf("%s: committed, but not done within %v: %s; the cluster keeps working on it: follow it with `mtc status --watch`",
			what, wait, orUnknown(r.Reason))}
	}
	return fmt.Errorf("%s: the daemon answered outcome %q, which this mtc does not know (is it another release?)", what, r.Outcome)
}

func orUnknown(s string) string {
	if s == "" {
		return "the daemon did not say what it waits for"
	}
	return s
}

// describe is the intent in words, as the operator typed it.
func describe(a daemon.IntentArgs) string {
	switch a.Kind {
	case daemon.IntentRun:
		if a.Node != "" {
			return "run " + a.Package + " on " + a.Node
		}
		return "run " + a.Package
	case daemon.IntentMove:
		return "move " + a.Package + " to " + a.Node
	case daemon.IntentMaintenanceOn:
		return "maintenance " + a.Package + " on"
	case daemon.IntentMaintenanceOff:
		return "maintenance " + a.Package + " off"
	case daemon.IntentDrain, daemon.IntentUndrain:
		return "node " + a.Kind + " " + a.Node
	case daemon.IntentClear:
		if a.Node != "" {
			return "clear " + a.Package + " on " + a.Node
		}
		return "clear " + a.Package
	}
	return a.Kind + " " + a.Package
}

// printIntent prints the outcome line and the packages concerned.
func printIntent(out io.Writer, what string, r daemon.IntentResult, wait time.Duration) {
	fmt.Fprintf(out, "%s: %s in %v (intent %d, committed by %s)\n", what, r.Outcome, r.Took.Round(100*time.Millisecond), r.ID, r.Coordinator)
	if r.Outcome == daemon.OutcomeCommitted && r.Reason != "" {
		if wait == 0 {
			fmt.Fprintf(out, "  not waited for: %s (follow it with `mtc status --watch`)\n", r.Reason)
		} else {
			fmt.Fprintf(out, "  still waiting: %s\n", r.Reason)
		}
	}
	if len(r.Packages) > 0 {
		printPackageViews(out, r.Packages, time.Now(), painter{})
	}
}

// printErrorJSON prints a failed call as JSON, for scripts reading --json.
func printErrorJSON(out io.Writer, err error) {
	v := struct {
		Error string `json:"error"`
		Code  string `json:"code,omitempty"`
		Node  string `json:"node,omitempty"`
	}{Error: err.Error()}
	var re *control.RemoteError
	if errors.As(err, &re) {
		v.Error, v.Code, v.Node = re.Msg, re.Code, re.Node
	}
	_ = writeJSON(out, v)
}

// RunCmd starts a package.
type RunCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	On      string `help:"Start it on this node (once: the choice is not kept as a constraint); default: where placement puts it." placeholder:"NODE" completion:"node"`
	goalWait
	controlFlags
}

// Run submits the intent.
func (c *RunCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentRun, Package: c.Package, Node: c.On}, c.On)
}

// HaltCmd halts a package.
type HaltCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	goalWait
	controlFlags
}

// Run submits the intent.
func (c *HaltCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentHalt, Package: c.Package})
}

// MoveCmd moves a running package to another node.
type MoveCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	To      string `required:"" help:"The node to move it to." placeholder:"NODE" completion:"node"`
	goalWait
	controlFlags
}

// Run submits the intent.
func (c *MoveCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentMove, Package: c.Package, Node: c.To}, c.To)
}

// EnableCmd turns a package's automatic switching on.
type EnableCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	commitWait
	controlFlags
}

// Run submits the intent.
func (c *EnableCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentEnable, Package: c.Package})
}

// DisableCmd turns a package's automatic switching off.
type DisableCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	commitWait
	controlFlags
}

// Run submits the intent.
func (c *DisableCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentDisable, Package: c.Package})
}

// MaintenanceCmd puts a package in maintenance or takes it out.
type MaintenanceCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	Mode    string `arg:"" name:"on|off" enum:"on,off" help:"on: the cluster stops acting on the package (no start, halt, monitor or failover); off: it acts again."`
	commitWait
	controlFlags
}

// Run submits the intent.
func (c *MaintenanceCmd) Run(out io.Writer) error {
	kind := daemon.IntentMaintenanceOn
	if c.Mode == "off" {
		kind = daemon.IntentMaintenanceOff
	}
	return c.submit(out, c, daemon.IntentArgs{Kind: kind, Package: c.Package})
}

// ClearCmd forgets a package's failure marks.
type ClearCmd struct {
	Package string `arg:"" help:"The package." completion:"package"`
	Node    string `help:"Forget only its mark on this node (default: on every node)." placeholder:"NODE" completion:"node"`
	commitWait
	controlFlags
}

// Run submits the intent.
func (c *ClearCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentClear, Package: c.Package, Node: c.Node}, c.Node)
}

// NodeCmd groups the node commands.
type NodeCmd struct {
	Drain   NodeDrainCmd   `cmd:"" help:"Planned downtime: move every package off the node; it stays a member (and keeps its vote). Undo with mtc node undrain. Idempotent."`
	Undrain NodeUndrainCmd `cmd:"" help:"Let packages run on a drained node again (they move back only as their failback policy says). Idempotent."`
}

// NodeDrainCmd drains a node.
type NodeDrainCmd struct {
	Node string `arg:"" help:"The node." completion:"node"`
	goalWait
	controlFlags
}

// Run submits the intent.
func (c *NodeDrainCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentDrain, Node: c.Node}, c.Node)
}

// NodeUndrainCmd undrains a node.
type NodeUndrainCmd struct {
	Node string `arg:"" help:"The node." completion:"node"`
	commitWait
	controlFlags
}

// Run submits the intent.
func (c *NodeUndrainCmd) Run(out io.Writer) error {
	return c.submit(out, c, daemon.IntentArgs{Kind: daemon.IntentUndrain, Node: c.Node}, c.Node)
}
