package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/scsi"
)

// FenceCmd groups the SCSI-3 persistent reservation tools. keys and
// status send PR IN commands straight to the LUNs (no daemon needed) and
// change nothing; register and clear change registrations, and only while
// no daemon they could undercut runs.
type FenceCmd struct {
	Keys     FenceKeysCmd     `cmd:"" help:"List the keys registered on a LUN and which node of the cluster each belongs to."`
	Status   FenceStatusCmd   `cmd:"" help:"Show a LUN's fencing state: PR backend, capabilities, keys and whose, reservation, APTPL, and what is wrong with what to do."`
	Register FenceRegisterCmd `cmd:"" help:"Register this node on every LUN it fences, as its daemon does at start (unfence by hand); refused while this node's daemon runs."`
	Clear    FenceClearCmd    `cmd:"" help:"Remove every registration and the reservation from a LUN (recovery after a total outage); refused while any node's daemon runs."`
}

// fenceTarget selects the LUNs and the cluster whose keys to recognise.
type fenceTarget struct {
	Device      []string      `required:"" help:"LUN device (repeatable): a SCSI disk, an NVMe namespace, or a device-mapper device (its path devices are used)." placeholder:"DEV"`
	Config      string        `type:"existingfile" help:"Cluster configuration file (for the cluster UUID the keys derive from)." placeholder:"FILE"`
	ClusterUUID string        `name:"cluster-uuid" help:"Cluster UUID, instead of --config." placeholder:"UUID"`
	Backend     string        `help:"PR backend: auto (SG_IO when the device takes SCSI commands, else the block layer's PR ioctls), sg_io or block_pr." default:"auto" enum:"auto,sg_io,block_pr"`
	Timeout     time.Duration `help:"Deadline for all commands to one LUN." default:"10s"`
}

func (t *fenceTarget) cluster() (uuid.UUID, error) {
	switch {
	case t.ClusterUUID != "" && t.Config != "":
		return uuid.UUID{}, errors.New("--config and --cluster-uuid: give one")
	case t.ClusterUUID != "":
		u, err := uuid.Parse(t.ClusterUUID)
		if err != nil {
			return uuid.UUID{}, fmt.Errorf("--cluster-uuid %q: %w", t.ClusterUUID, err)
		}
		return u, nil
	case t.Config != "":
		c, err := config.Load(t.Config)
		if err != nil {
			return uuid.UUID{}, err
		}
		return c.UUID, nil
	}
	return uuid.UUID{}, errors.New("the cluster is unknown: pass --config FILE or --cluster-uuid UUID (keys are derived from the cluster UUID)")
}

func (t *fenceTarget) backend() fence.Backend {
	if t.Backend == "auto" {
		return ""
	}
	return fence.Backend(t.Backend)
}

// inspect opens each LUN, reads its state and closes it again.
func (t *fenceTarget) inspect(want scsi.Type) (uuid.UUID, []fence.Report, error) {
	cl, err := t.cluster()
	if err != nil {
		return cl, nil, err
	}
	var out []fence.Report
	for _, d := range t.Device {
		lun, err := fence.OpenLUN(d, t.backend())
		if err != nil {
			return cl, nil, fmt.Errorf("--device %s: %w", d, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), t.Timeout)
		out = append(out, fence.Inspect(ctx, cl, want, lun))
		cancel()
		lun.Close()
	}
	return cl, out, nil
}

// FenceKeysCmd lists the keys on LUNs.
type FenceKeysCmd struct {
	fenceTarget
	JSON bool `help:"Print JSON."`
}

// Run prints one line per registered key.
func (c *FenceKeysCmd) Run(out io.Writer) error {
	cl, reps, err := c.inspect(0)
	if err != nil {
		return err
	}
	if c.JSON {
		type lunKeys struct {
			LUN         string            `json:"lun"`
			Generation  uint32            `json:"generation"`
			Keys        []fence.KeyReport `json:"keys"`
			Reservation fence.ResReport   `json:"reservation"`
			Findings    []fence.Finding   `json:"findings,omitempty"`
		}
		var v []lunKeys
		for _, r := range reps {
			v = append(v, lunKeys{r.LUN, r.Generation, r.Keys, r.Reservation, unreadable(r)})
		}
		return writeJSON(out, v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LUN\tKEY\tOWNER\tNEXUSES\tHOLDS")
	for _, r := range reps {
		if f := unreadable(r); f != nil {
			fmt.Fprintf(tw, "%s\t-\t%s\t\t\n", r.LUN, f[0].What)
			continue
		}
		if len(r.Keys) == 0 {
			fmt.Fprintf(tw, "%s\t-\tno keys registered\t\t\n", r.LUN)
		}
		for _, k := range r.Keys {
			holds := ""
			if r.Reservation.Held && r.Reservation.Key == k.Key {
				holds = r.Reservation.Type
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\n", r.LUN, k.Key, k.Owner, k.Count, holds)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "keys derive from cluster %v: bytes 0-5 a hash of the UUID, byte 6 the format (01), byte 7 the node id\n", cl)
	return err
}

// unreadable returns the finding of a LUN whose state could not be read.
func unreadable(r fence.Report) []fence.Finding {
	for _, p := range r.Paths {
		if p.Reads {
			return nil
		}
	}
	return r.Findings
}

// FenceStatusCmd shows the fencing state of LUNs.
type FenceStatusCmd struct {
	fenceTarget
	Type int  `help:"Reservation type fencing uses (SPC-4 numbering): 5 Write Exclusive, Registrants Only (default) or 6 Exclusive Access, Registrants Only." default:"5"`
	JSON bool `help:"Print JSON."`
}

// Run prints each LUN's report; it fails (exit status 1) when a LUN has
// an error-level finding: fencing it would not work.
func (c *FenceStatusCmd) Run(out io.Writer) error {
	want := scsi.Type(c.Type)
	if !want.Valid() {
		return fmt.Errorf("--type %d: not a persistent reservation type (1, 3, 5, 6, 7 or 8)", c.Type)
	}
	_, reps, err := c.inspect(want)
	if err != nil {
		return err
	}
	if c.JSON {
		type withOK struct {
			fence.Report
			OK bool `json:"ok"`
		}
		var v []withOK
		for _, r := range reps {
			v = append(v, withOK{r, r.OK()})
		}
		if err := writeJSON(out, v); err != nil {
			return err
		}
	} else if err := printReports(out, reps); err != nil {
		return err
	}
	var bad []string
	for _, r := range reps {
		if !r.OK() {
			bad = append(bad, r.LUN)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", fence.ErrUnhealthy, strings.Join(bad, ", "))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printReports(out io.Writer, reps []fence.Report) error {
	var b strings.Builder
	for i, r := range reps {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "LUN %s\n", r.LUN)
		for _, p := range r.Paths {
			reads := "reads PR state"
			if !p.Reads {
				reads = "cannot read PR state: " + p.Error
			}
			fmt.Fprintf(&b, "  path %s: backend %s, %s\n", p.Device, p.Backend, reads)
		}
		if c := r.Capabilities; c != nil {
			types := "not reported"
			if c.TypesReported {
				types = strings.Join(c.Types, "; ")
			}
			fmt.Fprintf(&b, "  capabilities: types %s\n", types)
			fmt.Fprintf(&b, "    persist through power loss: capable %s, active (APTPL) %s; all target ports %s; specify initiator ports %s; compatible reservation handling %s\n",
				yesNo(c.PersistCapable), yesNo(c.PersistActive), yesNo(c.AllTargetPorts), yesNo(c.SpecifyInitiators), yesNo(c.CompatibleRes))
		} else {
			fmt.Fprintf(&b, "  capabilities: not reported by the backend\n")
		}
		if unreadable(r) == nil {
			fmt.Fprintf(&b, "  generation %d\n", r.Generation)
			if len(r.Keys) == 0 {
				fmt.Fprintf(&b, "  keys: none\n")
			}
			for _, k := range r.Keys {
				fmt.Fprintf(&b, "  key %v: %s, %d nexus(es)\n", k.Key, k.Owner, k.Count)
			}
			if r.Reservation.Held {
				fmt.Fprintf(&b, "  reservation: %s, held by %v (%s)\n", r.Reservation.Type, r.Reservation.Key, r.Reservation.Owner)
			} else {
				fmt.Fprintf(&b, "  reservation: none\n")
			}
		}
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "  %s: %s\n    do: %s\n", f.Severity, f.What, f.Do)
		}
		if r.OK() {
			fmt.Fprintf(&b, "  fencing: ready\n")
		} else {
			fmt.Fprintf(&b, "  fencing: NOT READY\n")
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}
