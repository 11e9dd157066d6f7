// The quorum-disk round: the own slot write, the read of every slot and the
// lock, and the lock write a tie needs.

package quorum

import "github.com/mtcluster/mtc/quorum/liveness"

func (n *Node) issue(r DiskRequest) {
	n.opSeq++
	r.Op = n.opSeq
	n.busy = true
	n.cur = r
	n.curIssue = n.now
	n.out.Disk = append(n.out.Disk, r)
}

func (n *Node) onDisk(e DiskDone) {
	if !n.busy || e.Op != n.cur.Op {
		return // a result we no longer wait for
	}
	n.busy = false
	issued := n.curIssue
	if e.Result == IOFenced && n.cur.Kind != DiskRead {
		// Our key is gone from the quorum LUN: a peer fenced us. Nothing
		// this node writes reaches the storage any more; it stops now,
		// unless it never held quorum and may register again
		// (ownWriteFenced).
		n.ownWriteFenced(issued)
	}
	switch n.cur.Kind {
	case DiskWriteSlot:
		if e.Result == IOOK {
			if !n.wroteOK || issued > n.lastWriteOK {
				n.lastWriteOK = issued
			}
			n.wroteOK = true
			if n.writeFailing {
				n.writeFailing = false
				n.decide(Decision{Kind: DiskWriteRecovered})
			}
		} else if !n.writeFailing {
			n.writeFailing = true
			n.decide(Decision{Kind: DiskWriteFailing, Reason: e.Result.String()})
		}
		// The read of this round follows at once.
		n.issue(DiskRequest{Kind: DiskRead})
	case DiskRead:
		if e.Result != IOOK {
			return
		}
		n.readOK = true
		n.lastReadOK = issued
		for _, s := range e.Slots {
			if s.Node == n.self {
				continue
			}
			p := n.peer(s.Node)
			if p == nil {
				continue
			}
			if !s.Valid {
				p.disk.Observe(n.now, liveness.Observation{})
				continue
			}
			hb := s.Heartbeat
			hb.From = s.Node
			n.onHeartbeat(hb, true)
		}
		n.lockAfterRead(issued, e.Lock)
	case DiskWriteLock:
		n.lockWritten(issued, e.Result)
	}
}
