// Package service runs a package's scripts and supervises its services on
// one node.
//
// A script is an argument vector with an environment and a timeout; at the
// timeout its whole session gets SIGTERM, then SIGKILL. Processes a script
// leaves running in its session when it exits are terminated too: what
// must keep running belongs in a service, where it is supervised.
//
// A service is a supervised child: the leader of its own session and
// process group, its output logged line by line with the package and
// service names. When it exits or fails its health check, the supervisor
// stops what is left of its session and starts it again after a delay that
// doubles with every restart (RestartDelay, 2xRestartDelay, ... capped at
// MaxRestartDelay), at most Restarts times; after that, or at the first
// failure of a FailFast service, the service is failed and the supervisor
// reports it (OnFailed), which fails the package on this node. Halting a
// service sends SIGTERM to its session and SIGKILL at its halt timeout; a
// process that survives SIGKILL (uninterruptible sleep on dead storage)
// makes the halt fail: the node must be reset.
//
// A service may instead be an OCF resource agent (Agent, "ocf:PROVIDER:TYPE",
// run from $OCF_ROOT/resource.d/PROVIDER/TYPE with its parameters as
// OCF_RESKEY_NAME): start, stop and monitor are the agent's actions with
// their own timeouts, and their exit codes mean what the OCF standard says:
// 0 success (running), 7 not running, 1-6 errors (generic, invalid
// argument, unimplemented, insufficient privileges, not installed, not
// configured). A failed monitor is a failure like a service's exit; a
// failed or timed-out stop is a halt failure.
package service
