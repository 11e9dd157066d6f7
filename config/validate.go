package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxNetworks bounds the heartbeat networks: each one costs a socket and a
// packet per peer per heartbeat interval, and more than a few add nothing.
const MaxNetworks = 8

// validate checks c without changing it. skip holds the fields whose value
// could not be converted (already reported), so that a malformed value is
// not reported a second time as missing.
func (c *Cluster) validate(skip map[string]bool) []*FieldError {
	var errs []*FieldError
	add := func(sentinel error, field, related, what, hint string) *FieldError {
		fe := newFieldError(sentinel, field, related, what, hint)
		errs = append(errs, fe)
		return fe
	}

	// [cluster]
	switch {
	case c.Name == "":
		add(ErrMissing, "cluster.name", "", "the cluster has no name",
			`add name = "payments" (any name of lowercase letters, digits and '-', at most 32) to [cluster]`)
	case hasControl(c.Name):
		add(ErrInvalid, "cluster.name", "", controlWhat("the cluster name", c.Name),
			"use 1 to 32 lowercase letters, digits and '-'")
	case !validName(c.Name, MaxNameLen):
		add(ErrInvalid, "cluster.name", "", fmt.Sprintf("%q is not a valid cluster name", c.Name),
			"use 1 to 32 lowercase letters, digits and '-'")
	}
	if c.UUID == uuid.Nil && !skip["cluster.uuid"] {
		add(ErrMissing, "cluster.uuid", "", "the cluster has no UUID",
			`run uuidgen and add its output as uuid = "..." to [cluster]; the same UUID must be on every node`)
	}
	switch {
	case c.KeyFile == "":
		add(ErrMissing, "cluster.key_file", "", "no heartbeat key file is set",
			`add key_file = "/etc/mtc/cluster.key" to [cluster] and create the key with: head -c 32 /dev/urandom > /etc/mtc/cluster.key; chmod 600 /etc/mtc/cluster.key`)
	case hasControl(c.KeyFile):
		add(ErrInvalid, "cluster.key_file", "", controlWhat("the path", c.KeyFile), "write the path without control characters")
	case !filepath.IsAbs(c.KeyFile):
		add(ErrInvalid, "cluster.key_file", "", fmt.Sprintf("%q is not an absolute path", c.KeyFile),
			"write the full path, such as \"/etc/mtc/cluster.key\"")
	}

	if hasControl(c.PackagesDir) {
		add(ErrInvalid, "cluster.packages_dir", "", controlWhat("the path", c.PackagesDir), "write the path without control characters")
	}

	// [timing]
	timingOK := true
	for f := range skip {
		if strings.HasPrefix(f, "timing.") {
			timingOK = false
		}
	}
	if timingOK {
		for _, err := range c.Timing.Validate() {
			var te *TimingError
			if !errors.As(err, &te) {
				continue
			}
			related := ""
			if te.Other != "" {
				related = "timing." + te.Other
			}
			fe := add(ErrTiming, "timing."+te.Field, related, te.Msg, te.Hint)
			fe.Cause = te
		}
	}

	// [watchdog]
	switch c.Watchdog.Mode {
	case WatchdogDevice:
		switch {
		case c.Watchdog.Device == "":
			add(ErrMissing, "watchdog.device", "", "mode \"device\" needs a watchdog device",
				`set device = "/dev/watchdog" in [watchdog] (load softdog if the machine has no hardware watchdog)`)
		case hasControl(c.Watchdog.Device):
			add(ErrInvalid, "watchdog.device", "", controlWhat("the path", c.Watchdog.Device), "write the path without control characters")
		case !filepath.IsAbs(c.Watchdog.Device):
			add(ErrInvalid, "watchdog.device", "", fmt.Sprintf("%q is not an absolute path", c.Watchdog.Device),
				`write the device's full path, such as "/dev/watchdog"`)
		}
	case WatchdogProcess:
	case WatchdogNone:
		if !c.Watchdog.AllowNone {
			add(ErrInvalid, "watchdog.mode", "", `mode "none" disables self-fencing: a node that hangs while holding packages is never reset`,
				`use mode = "device" in production; if you accept the risk (a test cluster), also set allow_none = true in [watchdog]`)
		}
	default:
		add(ErrInvalid, "watchdog.mode", "", fmt.Sprintf("%q is not a watchdog mode", c.Watchdog.Mode),
			`use "device" (production), "process" (tests on one machine) or "none"`)
	}

	// [quorum_disk]
	if hasControl(c.QuorumDisk.Path) {
		add(ErrInvalid, "quorum_disk.path", "", controlWhat("the path", c.QuorumDisk.Path), "write the path without control characters")
	} else if c.QuorumDisk.Path != "" && !filepath.IsAbs(c.QuorumDisk.Path) {
		add(ErrInvalid, "quorum_disk.path", "", fmt.Sprintf("%q is not an absolute path", c.QuorumDisk.Path),
			`write the device's full path; a stable one such as "/dev/disk/by-id/wwn-0x600..." is best`)
	}
	if c.QuorumDisk.Path == "" {
		var without []int
		for i, n := range c.Nodes {
			if n.QuorumDisk == "" {
				without = append(without, i)
			}
		}
		if len(without) == len(c.Nodes) {
			add(ErrMissing, "quorum_disk.path", "", "no quorum disk is set",
				`add path = "/dev/disk/by-id/..." to [quorum_disk] (the shared LUN, the same disk on every node)`)
		} else {
			for _, i := range without {
				add(ErrMissing, fmt.Sprintf("node[%d].quorum_disk", i), "",
					fmt.Sprintf("node %q has no quorum disk path and [quorum_disk] sets no default", c.Nodes[i].Name),
					"set quorum_disk for this node or path in [quorum_disk]")
			}
		}
	}

	// [[network]]
	netFirst := make(map[string]int)
	switch {
	case len(c.Networks) == 0:
		add(ErrMissing, "network", "", "no heartbeat network is defined",
			`add a [[network]] table with name = "lan" and port = 5405; two networks on separate switches are better`)
	case len(c.Networks) > MaxNetworks:
		add(ErrInvalid, fmt.Sprintf("network[%d]", MaxNetworks), "",
			fmt.Sprintf("%d heartbeat networks are defined", len(c.Networks)),
			fmt.Sprintf("use at most %d", MaxNetworks))
	}
	for i, nw := range c.Networks {
		field := fmt.Sprintf("network[%d]", i)
		switch {
		case nw.Name == "":
			add(ErrMissing, field+".name", "", "the network has no name",
				`add name = "lan"; nodes give their address on it under [node.addresses] by this name`)
		case hasControl(nw.Name):
			add(ErrInvalid, field+".name", "", controlWhat("the network name", nw.Name),
				"use 1 to 32 lowercase letters, digits and '-'")
		case !validName(nw.Name, MaxNameLen):
			add(ErrInvalid, field+".name", "", fmt.Sprintf("%q is not a valid network name", nw.Name),
				"use 1 to 32 lowercase letters, digits and '-'")
		default:
			if j, dup := netFirst[nw.Name]; dup {
				add(ErrDuplicate, field+".name", fmt.Sprintf("network[%d].name", j),
					fmt.Sprintf("network %q is already defined{line}", nw.Name), "give each network a unique name")
			} else {
				netFirst[nw.Name] = i
			}
		}
		if nw.Port == 0 && !skip[field+".port"] {
			add(ErrMissing, field+".port", "", fmt.Sprintf("network %q has no port", nw.Name),
				fmt.Sprintf("add port = %d (the UDP port heartbeats use on this network)", c.freePort()))
		} else if nw.Port < 0 || nw.Port > 65535 {
			add(ErrInvalid, field+".port", "", fmt.Sprintf("%d is not a UDP port", nw.Port), "use a port from 1 to 65535")
		}
	}

	// [[node]]
	switch {
	case len(c.Nodes) == 0:
		add(ErrMissing, "node", "", "no nodes are defined",
			fmt.Sprintf("add one [[node]] table per server, with name, id and addresses (2 to %d nodes)", MaxNodes))
	case len(c.Nodes) > MaxNodes:
		add(ErrInvalid, fmt.Sprintf("node[%d]", MaxNodes), "",
			fmt.Sprintf("the cluster has %d nodes", len(c.Nodes)),
			fmt.Sprintf("at most %d nodes are supported: remove the extra ones", MaxNodes))
	}
	nameFirst := make(map[string]int)
	idFirst := make(map[int]int)
	type addrUse struct {
		node int
		net  string
	}
	addrFirst := make(map[string]addrUse)
	familyFirst := make(map[string]int) // network → first node with an address on it
	for i, n := range c.Nodes {
		field := fmt.Sprintf("node[%d]", i)
		switch {
		case n.Name == "":
			add(ErrMissing, field+".name", "", "the node has no name", `add name = "alpha" (the node's host name)`)
		case hasControl(n.Name):
			add(ErrInvalid, field+".name", "", controlWhat("the node name", n.Name),
				"use the host name: 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'")
		case !validNodeName(n.Name):
			add(ErrInvalid, field+".name", "", fmt.Sprintf("%q is not a valid node name", n.Name),
				"use the host name: 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'")
		default:
			if j, dup := nameFirst[n.Name]; dup {
				add(ErrDuplicate, field+".name", fmt.Sprintf("node[%d].name", j),
					fmt.Sprintf("node %q is already defined{line}", n.Name), "give each node a unique name")
			} else {
				nameFirst[n.Name] = i
			}
		}
		switch {
		case n.ID == 0 && !skip[field+".id"]:
			add(ErrMissing, field+".id", "", fmt.Sprintf("node %q has no id", n.Name),
				fmt.Sprintf("add id = %d (ids run from 1 to %d, unique in the cluster; it selects the node's quorum-disk slot)", c.freeID(), MaxNodes))
		case n.ID < 0 || n.ID > MaxNodes:
			add(ErrInvalid, field+".id", "", fmt.Sprintf("%d is out of range", n.ID),
				fmt.Sprintf("give each node a unique id from 1 to %d", MaxNodes))
		case n.ID > 0:
			if j, dup := idFirst[n.ID]; dup {
				hint := fmt.Sprintf("give each node a unique id from 1 to %d", MaxNodes)
				if id := c.freeID(); id != 0 {
					hint += fmt.Sprintf(", such as %d (unused)", id)
				}
				add(ErrDuplicate, field+".id", fmt.Sprintf("node[%d].id", j),
					fmt.Sprintf("%d is already used by node %q{line}", n.ID, c.Nodes[j].Name), hint)
			} else {
				idFirst[n.ID] = i
			}
		}
		if n.Votes != 0 && n.Votes != 1 && !skip[field+".votes"] {
			add(ErrInvalid, field+".votes", "", fmt.Sprintf("%d is not a valid number of votes", n.Votes),
				"use 1 (the default) or 0 for a node that must not count towards quorum")
		}
		if hasControl(n.QuorumDisk) {
			add(ErrInvalid, field+".quorum_disk", "", controlWhat("the path", n.QuorumDisk), "write the path without control characters")
		} else if n.QuorumDisk != "" && !filepath.IsAbs(n.QuorumDisk) {
			add(ErrInvalid, field+".quorum_disk", "", fmt.Sprintf("%q is not an absolute path", n.QuorumDisk),
				"write the device's full path as this node sees it")
		}

		for j, nw := range c.Networks {
			if first, ok := netFirst[nw.Name]; !ok || first != j {
				continue // unnamed, invalid or repeated: reported above
			}
			afield := field + ".addresses." + quoteKey(nw.Name)
			a, ok := n.Addresses[nw.Name]
			if !ok {
				if !skip[afield] {
					add(ErrMissing, afield, "", fmt.Sprintf("node %q has no address on network %q", n.Name, nw.Name),
						fmt.Sprintf(`add %s = "<its IP address on %s>" under [node.addresses]; every node needs an address on every heartbeat network`, quoteKey(nw.Name), nw.Name))
				}
				continue
			}
			switch {
			case !a.IsValid():
				add(ErrInvalid, afield, "", "the address is not set", "give the node's IPv4 or IPv6 address on this network")
				continue
			case a.IsUnspecified() || a.IsMulticast():
				add(ErrInvalid, afield, "", fmt.Sprintf("%s cannot be a node's address", a),
					"give the node's own unicast address on this network")
				continue
			}
			if u, dup := addrFirst[a.String()]; dup {
				add(ErrDuplicate, afield, fmt.Sprintf("node[%d].addresses.%s", u.node, quoteKey(u.net)),
					fmt.Sprintf("%s is already the address of node %q on network %q{line}", a, c.Nodes[u.node].Name, u.net),
					"every node needs its own address on each network")
			} else {
				addrFirst[a.String()] = addrUse{i, nw.Name}
			}
			if j, seen := familyFirst[nw.Name]; seen {
				b := c.Nodes[j].Addresses[nw.Name]
				if b.Is4() != a.Is4() {
					add(ErrInvalid, afield, fmt.Sprintf("node[%d].addresses.%s", j, quoteKey(nw.Name)),
						fmt.Sprintf("%s is %s but node %q uses %s on network %q{line}", a, family(a), c.Nodes[j].Name, family(b), nw.Name),
						"use one address family on each network")
				}
			} else {
				familyFirst[nw.Name] = i
			}
		}
		for _, name := range sortedKeys(n.Addresses) {
			if _, ok := netFirst[name]; ok {
				continue
			}
			if _, _, ok := c.NetworkByName(name); ok {
				continue // a network with an invalid name, reported there
			}
			what := fmt.Sprintf("there is no heartbeat network %q", name)
			hint := fmt.Sprintf("remove this address or add a [[network]] named %q", name)
			if sug := suggest(name, sortedKeys(netFirst)); sug != "" {
				what += fmt.Sprintf(" (did you mean %q?)", sug)
				hint = "correct the network name"
			}
			add(ErrInvalid, field+".addresses."+quoteKey(name), "", what, hint)
		}
	}
	if len(c.Nodes) > 0 && c.TotalVotes() == 0 {
		add(ErrInvalid, "node", "", "no node has a vote, so no partition can ever hold quorum",
			"leave votes at its default of 1 on at least one node (normally all)")
	}
	c.validateFence(add)
	c.validateEvents(add)
	c.validateControl(add)
	return errs
}

// freeID is the lowest node id no node uses, for hints; 0 when all are
// taken.
func (c *Cluster) freeID() int {
	for id := 1; id <= MaxNodes; id++ {
		if _, used := c.NodeByID(id); !used {
			return id
		}
	}
	return 0
}

// freePort is the first port from 5405 up that no network uses, for hints.
func (c *Cluster) freePort() int {
	for p := 5405; ; p++ {
		used := false
		for _, nw := range c.Networks {
			used = used || nw.Port == p
		}
		if !used {
			return p
		}
	}
}

func family(a interface{ Is4() bool }) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// hasControl reports whether s holds a control or format character (an
// escape sequence, a bidirectional override), which must never reach a
// terminal or a log line raw.
func hasControl(s string) bool {
	return strings.IndexFunc(s, isControl) >= 0
}

func isControl(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// controlWhat describes the first control character in s, for an error
// message; s itself is shown escaped.
func controlWhat(what, s string) string {
	i := strings.IndexFunc(s, isControl)
	r, _ := utf8.DecodeRuneInString(s[i:])
	return fmt.Sprintf("%s %q contains the control character %U at byte %d", what, s, r, i)
}

// validName: 1 to max of [a-z0-9-].
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validNodeName: one lowercase DNS label.
func validNodeName(s string) bool {
	return validName(s, MaxNodeNameLen) && s[0] != '-' && s[len(s)-1] != '-'
}
