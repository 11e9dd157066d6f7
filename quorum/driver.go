package quorum

import "time"

// Effects are the operating-system edges the machine's decisions act on.
// The daemon implements them with a UDP transport, the quorum disk's
// Device, the watchdog device and the package manager; the simulation
// with its fakes. Every method must return at once: a disk request is
// started and its result comes back later as a DiskDone event.
type Effects interface {
	// Broadcast sends hb to every peer on the network.
	Broadcast(hb Heartbeat)
	// StartDisk starts one quorum-disk I/O with an IOTimeout deadline.
	StartDisk(req DiskRequest)
	// FeedWatchdog feeds the hardware watchdog.
	FeedWatchdog()
	// StopPackages stops every package on this node at once.
	StopPackages()
	// Fence asks the fencing component to cut t off the shared storage;
	// success comes back as a Fenced event.
	Fence(t Target)
	// WithdrawFence takes back a Fence(t) asked for earlier: a request
	// not yet begun is dropped, no outcome comes for it; one that has
	// begun runs to its end.
	WithdrawFence(t Target)
	// Takeover hands t's packages to placement.
	Takeover(t Takeover)
	// Rejoin asks the fencing component to register this node's key again
	// on every LUN (fence.Fencer.Rejoin); the outcome comes back as a
	// Rejoined event.
	Rejoin()
	// CheckRegistration asks the fencing component to read the
	// registered keys of every fenced LUN (fence.Fencer.CheckRegistration)
	// within RegistrationTimeouts' deadline; the outcome comes back as a
	// RegistrationChecked event with c.Op, a LUN that could not be read
	// reported in its Err, never as gone.
	CheckRegistration(c RegistrationCheck)
	// Decided records a decision (logs, event ring).
	Decided(d Decision)
	// WakeAt asks for a Tick at local time t (replacing any earlier request).
	WakeAt(t time.Duration)
}

// Driver connects a Node to its Effects. It is deliberately thin: it only
// steps the machine and performs its Ready in order, so the daemon and the
// simulation share every decision.
type Driver struct {
	Node *Node
	FX   Effects
}

// Step feeds ev at local time now and performs the resulting actions:
// packages are stopped before anything is sent, fencing and takeover come
// after the decisions are recorded.
func (d *Driver) Step(now time.Duration, ev Event) Ready {
	d.Node.Step(now, ev)
	rd := d.Node.Ready()
	d.Node.Advance()
	for _, dec := range rd.Decisions {
		d.FX.Decided(dec)
	}
	if rd.StopPackages {
		d.FX.StopPackages()
	}
	if rd.FeedWatchdog {
		d.FX.FeedWatchdog()
	}
	for _, hb := range rd.Send {
		d.FX.Broadcast(hb)
	}
	for _, r := range rd.Disk {
		d.FX.StartDisk(r)
	}
	for _, t := range rd.WithdrawFence {
		d.FX.WithdrawFence(t)
	}
	for _, t := range rd.Fence {
		d.FX.Fence(t)
	}
	for _, t := range rd.Takeover {
		d.FX.Takeover(t)
	}
	if rd.Rejoin {
		d.FX.Rejoin()
	}
	for _, c := range rd.CheckRegistration {
		d.FX.CheckRegistration(c)
	}
	d.FX.WakeAt(rd.NextTick)
	return rd
}
