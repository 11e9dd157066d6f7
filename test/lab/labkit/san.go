package labkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// LUNs names the SAN's LUNs by LUN number, in the order test/lab/image/san.sh
// exports them.
var LUNs = []string{"quorum", "data1", "data2"}

// ErrNoPath means the SAN has no path from that node to that LUN.
var ErrNoPath = errors.New("no such path on the lab SAN")

// Path is one node's view of one LUN: the SCSI disk of that node's iSCSI
// session for that LUN.
type Path struct {
	Node string // node1, node2, ...: the suffix of the session's initiator name
	LUN  string // a name from LUNs
	Dev  string // /dev/sdX
}

// SAN is the set of paths found in sysfs.
type SAN struct {
	Paths []Path // sorted by node, then LUN number
}

// Discover reads the SAN's paths from the sysfs tree at sysfs ("/sys" in
// the guest). A SCSI disk belongs to node N when it sits under an iSCSI
// session whose initiator name ends in ":nodeN"; its LUN is the last field
// of its H:C:T:L address.
func Discover(sysfs string) (*SAN, error) {
	disks, err := filepath.Glob(filepath.Join(sysfs, "block", "sd*"))
	if err != nil {
		return nil, err
	}
	san := &SAN{}
	for _, d := range disks {
		dev, err := filepath.EvalSymlinks(filepath.Join(d, "device"))
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", d, err)
		}
		var session string
		for _, part := range strings.Split(dev, string(filepath.Separator)) {
			if strings.HasPrefix(part, "session") {
				session = part
			}
		}
		if session == "" {
			continue // not an iSCSI disk
		}
		iname, err := os.ReadFile(filepath.Join(sysfs, "class", "iscsi_session", session, "initiatorname"))
		if err != nil {
			return nil, fmt.Errorf("discover %s: initiator name of %s: %w", d, session, err)
		}
		name := strings.TrimSpace(string(iname))
		i := strings.LastIndexByte(name, ':')
		if i < 0 || !strings.HasPrefix(name[i+1:], "node") {
			continue // a session that is not one of the lab's nodes
		}
		hctl := strings.Split(filepath.Base(dev), ":")
		if len(hctl) != 4 {
			return nil, fmt.Errorf("discover %s: device %s is not named H:C:T:L", d, dev)
		}
		lun, err := strconv.Atoi(hctl[3])
		if err != nil || lun < 0 || lun >= len(LUNs) {
			return nil, fmt.Errorf("discover %s: LUN %q is not one of the %d lab LUNs %v", d, hctl[3], len(LUNs), LUNs)
		}
		san.Paths = append(san.Paths, Path{Node: name[i+1:], LUN: LUNs[lun], Dev: "/dev/" + filepath.Base(d)})
	}
	sort.Slice(san.Paths, func(a, b int) bool {
		pa, pb := san.Paths[a], san.Paths[b]
		if pa.Node != pb.Node {
			return nodeLess(pa.Node, pb.Node)
		}
		return lunIndex(pa.LUN) < lunIndex(pb.LUN)
	})
	return san, nil
}

func nodeLess(a, b string) bool {
	na, ea := strconv.Atoi(strings.TrimPrefix(a, "node"))
	nb, eb := strconv.Atoi(strings.TrimPrefix(b, "node"))
	if ea == nil && eb == nil {
		return na < nb
	}
	return a < b
}

func lunIndex(name string) int {
	for i, n := range LUNs {
		if n == name {
			return i
		}
	}
	return len(LUNs)
}

// Dev returns node's device for lun.
func (s *SAN) Dev(node, lun string) (string, error) {
	for _, p := range s.Paths {
		if p.Node == node && p.LUN == lun {
			return p.Dev, nil
		}
	}
	return "", fmt.Errorf("%s to LUN %s: %w (found %d paths; is the SAN up? see `labctl paths`)", node, lun, ErrNoPath, len(s.Paths))
}

// Nodes lists the nodes that have at least one path, in order.
func (s *SAN) Nodes() []string {
	var out []string
	for _, p := range s.Paths {
		if len(out) == 0 || out[len(out)-1] != p.Node {
			out = append(out, p.Node)
		}
	}
	return out
}
