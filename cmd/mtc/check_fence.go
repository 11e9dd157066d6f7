package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mtcluster/mtc/config"
	"github.com/mtcluster/mtc/fence"
)

// checkFence is one LUN a node fences and how.
type checkFence struct {
	Node string `json:"node"`
	LUN  string `json:"lun"`
	// Fencing is "sg_io" (SCSI PR over SG_IO), "block_pr" (the block
	// layer's PR ioctls), "none" (no PR: a departed node's packages wait
	// for its watchdog deadline), or "not probed".
	Fencing string `json:"fencing"`
	Detail  string `json:"detail,omitempty"`
}

// fenceLUNs lists every node's fenced LUNs; those of node probe (if not
// empty) are probed on this machine with PR IN commands only.
func fenceLUNs(c *config.Cluster, probe string) []checkFence {
	var out []checkFence
	for _, n := range c.Nodes {
		for _, lun := range c.FenceLUNs(n.Name) {
			f := checkFence{Node: n.Name, LUN: lun, Fencing: "not probed"}
			if n.Name == probe {
				f.Fencing, f.Detail = probeFence(lun)
			}
			out = append(out, f)
		}
	}
	return out
}

// probeFence says which PR backend a LUN gets, as the daemon chooses it,
// and whether PR state reads back through every path (without which a
// fence cannot be verified and the LUN falls back to the watchdog).
func probeFence(dev string) (fencing, detail string) {
	if fi, err := os.Stat(dev); err == nil && fi.Mode().IsRegular() {
		return "none", "a regular file has no persistent reservations: watchdog fallback"
	}
	l, err := fence.OpenLUN(dev, "")
	switch {
	case errors.Is(err, fence.ErrNotSupported):
		return "none", err.Error() + ": watchdog fallback"
	case err != nil:
		return "unknown", err.Error()
	}
	defer l.Close()
	var names []string
	for _, p := range l.Paths {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		reads := fence.ProbeReads(ctx, p)
		cancel()
		if !reads {
			return "none", fmt.Sprintf("path %s (%s) cannot read PR state, so a fence cannot be verified: watchdog fallback", p.Name(), p.Backend())
		}
		names = append(names, p.Name())
	}
	return string(l.Paths[0].Backend()), "paths " + strings.Join(names, ", ")
}
