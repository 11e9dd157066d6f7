package daemon

import (
	"strings"

	"github.com/mtcluster/mtc/lvm"
	"github.com/mtcluster/mtc/quorum"
)

// members is the cluster as the package runner's volume-group owner check
// sees it (lvm.Members), from the membership machine's last status. LVM
// system IDs are node names (lvm2's "uname" source, as `mtc check`
// expects).
type members Daemon

var _ lvm.Members = (*members)(nil)

func (m *members) NodeOfSystemID(id string) (string, bool) {
	for _, n := range m.cl.Nodes {
		if strings.EqualFold(n.Name, id) {
			return n.Name, true
		}
	}
	return "", false
}

func (m *members) IsNode(name string) bool { _, ok := m.cl.NodeByName(name); return ok }

func (m *members) NodeID(name string) (quorum.NodeID, bool) {
	n, ok := m.cl.NodeByName(name)
	if !ok {
		return 0, false
	}
	return quorum.NodeID(n.ID), true
}

// Live: this node, or a member of its current view.
func (m *members) Live(name string) bool {
	n, ok := m.cl.NodeByName(name)
	if !ok {
		return false
	}
	if n.ID == m.self.ID {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.qs.Members.Has(quorum.NodeID(n.ID))
}

func (m *members) LastIncarnation(name string) quorum.Incarnation {
	n, ok := m.cl.NodeByName(name)
	if !ok {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.st.qs.Peers {
		if int(p.Node) == n.ID {
			return p.Inc
		}
	}
	return 0
}
