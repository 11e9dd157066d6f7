// Package placement decides, on every node, which node runs each package,
// and emits the starts and halts this node must perform. It is a pure
// deterministic state machine in the style of package quorum: the daemon
// feeds events with Step(now, ev) and performs the actions collected in
// Ready.
package placement
