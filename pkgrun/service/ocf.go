package service

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Agent is an OCF resource agent used as a service.
type Agent struct {
	// Provider and Type name the agent: "ocf:heartbeat:Dummy" is provider
	// heartbeat, type Dummy.
	Provider, Type string
	// Params are passed as OCF_RESKEY_<name>.
	Params map[string]string
	// Root is $OCF_ROOT; "" is DefaultOCFRoot.
	Root string
	// Action timeouts; zero takes DefaultAgentTimeout.
	StartTimeout, StopTimeout, MonitorTimeout time.Duration
}

// DefaultOCFRoot is where Debian's resource-agents package installs.
const DefaultOCFRoot = "/usr/lib/ocf"

// DefaultAgentTimeout is Pacemaker's default operation timeout (20 s).
const DefaultAgentTimeout = 20 * time.Second

// OCF exit codes (OCF resource agent API, section "Exit codes").
const (
	OCFSuccess        = 0
	OCFErrGeneric     = 1
	OCFErrArgs        = 2
	OCFErrUnimpl      = 3
	OCFErrPerm        = 4
	OCFErrInstalled   = 5
	OCFErrConfigured  = 6
	OCFNotRunning     = 7
	ocfRunningPromote = 8
	ocfFailedPromoted = 9
)

// OCFCodeName names an OCF exit code.
func OCFCodeName(code int) string {
	switch code {
	case OCFSuccess:
		return "OCF_SUCCESS"
	case OCFErrGeneric:
		return "OCF_ERR_GENERIC"
	case OCFErrArgs:
		return "OCF_ERR_ARGS"
	case OCFErrUnimpl:
		return "OCF_ERR_UNIMPLEMENTED"
	case OCFErrPerm:
		return "OCF_ERR_PERM"
	case OCFErrInstalled:
		return "OCF_ERR_INSTALLED"
	case OCFErrConfigured:
		return "OCF_ERR_CONFIGURED"
	case OCFNotRunning:
		return "OCF_NOT_RUNNING"
	case ocfRunningPromote:
		return "OCF_RUNNING_PROMOTED"
	case ocfFailedPromoted:
		return "OCF_FAILED_PROMOTED"
	}
	return "exit " + strconv.Itoa(code)
}

// OCFError is an agent action that did not succeed.
type OCFError struct {
	Agent  string
	Action string
	Code   int // -1 for a timeout or a signal
	Err    error
}

func (e *OCFError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s %s: %v", e.Agent, e.Action, e.Err)
	}
	return fmt.Sprintf("%s %s: %s (%d)", e.Agent, e.Action, OCFCodeName(e.Code), e.Code)
}

func (e *OCFError) Unwrap() error { return e.Err }

// ParseAgent parses "ocf:PROVIDER:TYPE".
func ParseAgent(s string) (Agent, error) {
	f := strings.Split(s, ":")
	if len(f) != 3 || f[0] != "ocf" || f[1] == "" || f[2] == "" || strings.ContainsAny(f[1]+f[2], "/.") {
		return Agent{}, fmt.Errorf("agent %q: want ocf:PROVIDER:TYPE, e.g. ocf:heartbeat:IPaddr2", s)
	}
	return Agent{Provider: f[1], Type: f[2]}, nil
}

func (a Agent) String() string { return "ocf:" + a.Provider + ":" + a.Type }

func (a Agent) root() string {
	if a.Root == "" {
		return DefaultOCFRoot
	}
	return a.Root
}

// Path is the agent's executable.
func (a Agent) Path() string {
	return filepath.Join(a.root(), "resource.d", a.Provider, a.Type)
}

func (a Agent) timeout(action string) time.Duration {
	t := map[string]time.Duration{"start": a.StartTimeout, "stop": a.StopTimeout, "monitor": a.MonitorTimeout}[action]
	if t == 0 {
		return DefaultAgentTimeout
	}
	return t
}

// env is the agent's environment for one action on instance.
func (a Agent) env(instance, action string) []string {
	env := []string{
		"OCF_ROOT=" + a.root(),
		"OCF_FUNCTIONS_DIR=" + filepath.Join(a.root(), "lib", "heartbeat"),
		"OCF_RA_VERSION_MAJOR=1",
		"OCF_RA_VERSION_MINOR=1",
		"OCF_RESOURCE_INSTANCE=" + instance,
		"OCF_RESOURCE_TYPE=" + a.Type,
		"OCF_RESOURCE_PROVIDER=" + a.Provider,
		"__OCF_ACTION=" + action,
		"OCF_RESKEY_CRM_meta_timeout=" + strconv.FormatInt(a.timeout(action).Milliseconds(), 10),
	}
	keys := make([]string, 0, len(a.Params))
	for k := range a.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, "OCF_RESKEY_"+k+"="+a.Params[k])
	}
	return env
}

// Action runs one agent action and returns its OCF exit code; a timeout
// or a signal is an *OCFError with code -1.
func (a Agent) Action(ctx context.Context, procs Procs, c Cmd, instance, action string) (int, error) {
	c.Argv = []string{a.Path(), action}
	c.Env = append(a.env(instance, action), c.Env...)
	err := run(ctx, procs, c, a.timeout(action), scriptGrace)
	var ee *ExitError
	switch {
	case err == nil:
		return OCFSuccess, nil
	case errors.As(err, &ee) && ee.Code >= 0:
		return ee.Code, nil
	}
	return -1, &OCFError{Agent: a.String(), Action: action, Code: -1, Err: err}
}
