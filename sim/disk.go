package sim

import (
	"fmt"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/quorum"
)

// sectorSize of the simulated quorum disk.
const sectorSize = 512

// damage tears or corrupts a sector as it lands: half the time only a
// prefix of the new data reaches the disk over the old contents (a torn
// write), otherwise one bit flips. Either way the real CRC32C check makes
// the sector unknown.
func (w *World) damage(old, b []byte) []byte {
	if w.rng.Intn(2) == 0 {
		out := make([]byte, len(b))
		copy(out, old)
		k := 1 + w.rng.Intn(len(b)-1)
		copy(out[:k], b[:k])
		if string(out) != string(b) {
			return out
		}
	}
	b[w.rng.Intn(len(b))] ^= 1 << w.rng.Intn(8)
	return b
}

func (w *World) writeSlot(id quorum.NodeID, hb quorum.Heartbeat, corrupt bool) {
	b, err := diskhb.EncodeSlot(diskhb.SlotOfHeartbeat(&hb, "", 0), sectorSize, w.cluster)
	if err != nil {
		panic(fmt.Sprintf("sim: encoding the slot of node %d: %v", id, err))
	}
	c := &w.slots[id]
	if corrupt {
		b = w.damage(c.data, b)
	}
	c.data = b
	c.obs = quorum.SlotObservation{Node: id}
	s, err := diskhb.DecodeSlot(b, w.cluster, int(id))
	if err != nil {
		return
	}
	if c.obs.Heartbeat, err = diskhb.HeartbeatOfSlot(s); err == nil {
		c.obs.Valid = true
	}
}

func (w *World) writeLock(r quorum.LockRecord, corrupt bool) {
	b, err := diskhb.EncodeLock(diskhb.LockOfRecord(r), sectorSize, w.cluster)
	if err != nil {
		panic(fmt.Sprintf("sim: encoding the lock: %v", err))
	}
	if corrupt {
		b = w.damage(w.lock.data, b)
	}
	w.lock.data = b
	w.lock.obs = quorum.LockObservation{}
	if l, err := diskhb.DecodeLock(b, w.cluster, diskhb.TieBreakLock); err == nil {
		w.lock.obs = quorum.LockObservation{Valid: true, Record: diskhb.RecordOfLock(l)}
	}
	w.chk.lockLanded(w.lock.obs.Record.Owner, w.lock.obs.Valid)
}
