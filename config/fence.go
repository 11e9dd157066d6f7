package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ReservationType is the SCSI-3 persistent reservation type fencing takes
// on every fenced LUN (the SPC-4 type code).
type ReservationType uint8

// Reservation types fencing accepts. Both let every registered node write,
// so the whole cluster keeps its storage while one reservation is held, and
// removing a node's key cuts that node alone off. The single-holder types
// (Write Exclusive, Exclusive Access) would stop every node but the holder,
// and the all-registrants types hold the reservation by no key that a
// fence could verify: neither fits fencing.
const (
	// WriteExclusiveRegistrantsOnly (5): unregistered nodes may read but
	// not write. What fence_scsi uses; the default.
	WriteExclusiveRegistrantsOnly ReservationType = 5
	// ExclusiveAccessRegistrantsOnly (6): unregistered nodes may neither
	// read nor write.
	ExclusiveAccessRegistrantsOnly ReservationType = 6
	// DefaultReservationType is the type taken unless configured.
	DefaultReservationType = WriteExclusiveRegistrantsOnly
)

// reservationNames maps the file's names to the types; refusedTypes names
// the other SPC-4 types, refused with a reason.
var (
	reservationNames = map[string]ReservationType{
		"write-exclusive-registrants-only":  WriteExclusiveRegistrantsOnly,
		"exclusive-access-registrants-only": ExclusiveAccessRegistrantsOnly,
	}
	refusedTypes = map[string]string{
		"write-exclusive":                  "only the holder could write: every other node would lose its writes",
		"exclusive-access":                 "only the holder could read or write: every other node would lose its storage",
		"write-exclusive-all-registrants":  "the reservation is held by no key, so a fence cannot verify who holds it",
		"exclusive-access-all-registrants": "the reservation is held by no key, so a fence cannot verify who holds it",
	}
)

// String is the type's name in the file.
func (t ReservationType) String() string {
	for n, v := range reservationNames {
		if v == t {
			return n
		}
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// Fence is the [fence] table: which LUNs are fenced with SCSI-3 persistent
// reservations, and how. The quorum disk is always fenced.
type Fence struct {
	// LUNs are the shared data LUNs fenced besides the quorum disk, as
	// every node that does not list its own (Node.FenceLUNs) sees them.
	LUNs []string
	// ReservationType is the type taken; DefaultReservationType unless set.
	ReservationType ReservationType
	// APTPL asks the target to keep registrations and the reservation
	// across its own power loss.
	APTPL bool
}

type fileFence struct {
	LUNs            []string `toml:"luns"`
	ReservationType *string  `toml:"reservation_type"`
	APTPL           *bool    `toml:"aptpl"`
}

// toFence converts the [fence] table; bad records a malformed value.
func (f *fileFence) toFence(bad func(field, what, hint string)) Fence {
	out := Fence{LUNs: f.LUNs, ReservationType: DefaultReservationType}
	if f.APTPL != nil {
		out.APTPL = *f.APTPL
	}
	if f.ReservationType != nil {
		name := *f.ReservationType
		switch t, ok := reservationNames[name]; {
		case ok:
			out.ReservationType = t
		case refusedTypes[name] != "":
			bad("fence.reservation_type", fmt.Sprintf("%q cannot fence: %s", name, refusedTypes[name]),
				`use "write-exclusive-registrants-only" (the default) or "exclusive-access-registrants-only"`)
		default:
			bad("fence.reservation_type", fmt.Sprintf("%q is not a reservation type", name),
				`use "write-exclusive-registrants-only" (the default) or "exclusive-access-registrants-only"`)
		}
	}
	return out
}

// FenceLUNs is every LUN node nodeName fences, by its own paths: its quorum
// disk first, then the data LUNs (its own fence_luns, else [fence] luns).
// It returns nil for an unknown node.
func (c *Cluster) FenceLUNs(nodeName string) []string {
	n, ok := c.NodeByName(nodeName)
	if !ok {
		return nil
	}
	out := []string{c.QuorumDiskPath(nodeName)}
	data := c.Fence.LUNs
	if n.FenceLUNs != nil {
		data = n.FenceLUNs
	}
	return append(out, data...)
}

// validateFence checks [fence] and every node's fence_luns.
func (c *Cluster) validateFence(add func(sentinel error, field, related, what, hint string) *FieldError) {
	if t := c.Fence.ReservationType; t != 0 && t != WriteExclusiveRegistrantsOnly && t != ExclusiveAccessRegistrantsOnly {
		add(ErrInvalid, "fence.reservation_type", "", fmt.Sprintf("reservation type %d cannot fence", uint8(t)),
			`use "write-exclusive-registrants-only" (the default) or "exclusive-access-registrants-only"`)
	}
	checkList := func(field string, luns []string, quorumDisk string) {
		seen := make(map[string]int)
		for i, p := range luns {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case hasControl(p):
				add(ErrInvalid, f, "", controlWhat("the path", p), "write the path without control characters")
			case !filepath.IsAbs(p) || !strings.HasPrefix(filepath.Clean(p), "/dev/"):
				add(ErrInvalid, f, "", fmt.Sprintf("%q is not a device path under /dev", p),
					"write the LUN's device path, best a stable one such as /dev/disk/by-id/wwn-... or /dev/mapper/NAME")
			case quorumDisk != "" && filepath.Clean(p) == filepath.Clean(quorumDisk):
				add(ErrInvalid, f, "", fmt.Sprintf("%q is the quorum disk, which is always fenced", p),
					"remove it from the list: list only data LUNs")
			default:
				if j, dup := seen[filepath.Clean(p)]; dup {
					add(ErrInvalid, f, "", fmt.Sprintf("%q is listed twice (also at index %d)", p, j), "remove one of them")
				}
				seen[filepath.Clean(p)] = i
			}
		}
	}
	checkList("fence.luns", c.Fence.LUNs, c.QuorumDisk.Path)
	for i, n := range c.Nodes {
		if n.FenceLUNs != nil {
			checkList(fmt.Sprintf("node[%d].fence_luns", i), n.FenceLUNs, c.QuorumDiskPath(n.Name))
		}
	}
}

// fenceCanon is what Generation encodes of fencing: nil for the default
// (no data LUNs, the default type, no APTPL), so that a file without
// [fence] keeps the generation it had before fencing was configurable.
func (c *Cluster) fenceCanon() *Fence {
	if len(c.Fence.LUNs) == 0 && !c.Fence.APTPL &&
		(c.Fence.ReservationType == 0 || c.Fence.ReservationType == DefaultReservationType) {
		return nil
	}
	return &c.Fence
}
