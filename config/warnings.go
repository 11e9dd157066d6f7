package config

import "fmt"

// Warnings lists choices that are valid but weaken the cluster: a single
// heartbeat network, self-fencing disabled or only simulated, a one-node
// cluster. They are FieldErrors (with positions when the Cluster came from
// a file) wrapping no sentinel. Warnings does not look at the machine.
func (c *Cluster) Warnings() []*FieldError {
	var ws []*FieldError
	add := func(field, what, hint string) {
		ws = append(ws, newFieldError(nil, field, "", what, hint))
	}
	if len(c.Networks) == 1 {
		add("network", fmt.Sprintf("only one heartbeat network (%q): when it fails, nodes see each other only through the quorum disk", c.Networks[0].Name),
			"add a second [[network]] on separate switches and interfaces")
	}
	switch c.Watchdog.Mode {
	case WatchdogNone:
		add("watchdog.mode", `watchdog mode "none": a node that loses quorum stops its packages, but nothing resets it if it hangs`,
			`use mode = "device" in production`)
	case WatchdogProcess:
		add("watchdog.mode", `watchdog mode "process" is for tests on one machine: killing the node's processes does not stop a hung kernel or its queued I/O`,
			`use mode = "device" in production`)
	}
	if len(c.Nodes) == 1 {
		add("node", "a one-node cluster has no other node to move packages to", "add at least one more [[node]]")
	}
	for i, n := range c.Nodes {
		if n.Votes == 0 {
			add(fmt.Sprintf("node[%d].votes", i), fmt.Sprintf("node %q has no vote: it runs packages but never counts towards quorum", n.Name), "")
		}
	}
	c.src.place(ws)
	sortFieldErrors(ws)
	return ws
}

// Annotate returns a FieldError about field carrying msg, placed at the
// field's line in the file the Cluster was parsed from (or its nearest
// enclosing table). It is for problems found outside this package, such as
// a key file or device missing on this machine. err may be nil.
func (c *Cluster) Annotate(field, msg string, err error) *FieldError {
	fe := &FieldError{Field: field, Msg: msg, Cause: err}
	if c.src != nil {
		fe.File = c.src.file
		if pos, _ := c.src.ix.lookup(field); pos.Line > 0 {
			fe.Line, fe.Col = pos.Line, pos.Col
		}
	}
	return fe
}
