package daemon

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/mtcluster/mtc/diskhb"
	"github.com/mtcluster/mtc/hbwire"
	"github.com/mtcluster/mtc/quorum"
)

// The quorum disk carries the placement envelope too: every node writes
// its latest envelope to its own report area (diskhb.Disk.WriteReport)
// when it changed, at most once per heartbeat interval. Its peers read it
// from the network, inside every heartbeat: a member is a node heard on
// the network, so a disk copy would reach no member the network does not.
// The disk copy shows what every node last ran, incarnation by
// incarnation (`mtc disk dump`), also after the whole cluster stopped.

// reportIO is one report-area write.
type reportIO struct {
	env []byte
	err error
}

// reportLoop performs report-area I/O off the event loop.
func (d *Daemon) reportLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-d.reportReq:
			ictx, cancel := context.WithTimeout(ctx, d.stateIOTimeout())
			req.err = d.disk.WriteReport(ictx, diskhb.Record{Generation: 1, Writer: d.self.ID, Incarnation: d.Incarnation(), Payload: req.env})
			cancel()
			select {
			case d.reportOut <- req:
			case <-ctx.Done():
				return
			}
		}
	}
}

// pumpReports writes this node's envelope when it changed.
func (d *Daemon) pumpReports(now time.Duration) {
	p := d.pl
	if p.reportBusy || p.noReportArea || now < p.reportNextWrite {
		return
	}
	if env := d.envelope(); env != nil && !bytes.Equal(env, p.reportWritten) {
		p.reportBusy = true
		p.reportNextWrite = now + d.timing.HeartbeatInterval
		d.reportReq <- reportIO{env: bytes.Clone(env)}
	}
}

// reportDone handles a report-area write's outcome.
func (d *Daemon) reportDone(r reportIO) {
	p := d.pl
	p.reportBusy = false
	switch {
	case errors.Is(r.err, diskhb.ErrNoStateArea):
		if !p.noReportArea {
			d.log.Warn("the quorum disk has no report areas (an earlier format): placement reports travel on the network only")
		}
		p.noReportArea = true
	case r.err != nil:
		d.log.Warn("placement report not written to the quorum disk", "err", r.err)
	default:
		p.reportWritten = r.env
	}
}

// envelopeError logs a peer's undecodable envelope once per kind of
// error.
func (d *Daemon) envelopeError(from quorum.NodeID, err error) {
	p := d.pl
	msg := err.Error()
	if p.envErr[from] == msg {
		return
	}
	p.envErr[from] = msg
	if errors.Is(err, hbwire.ErrPackages) {
		d.log.Error("the peer's package files differ from this node's: its placement reports are ignored and packages wait until every node has the same package files",
			"peer", d.names[from], "err", err)
		return
	}
	d.log.Warn("placement envelope ignored (repeats are not logged)", "peer", d.names[from], "err", err)
}
