package fence

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/fence/scsi"
)

// Report is what a LUN's PR state looks like to an operator: the basis of
// `mtc fence status` and `mtc fence keys`. Inspect builds it with PR IN
// commands only; it changes nothing.
type Report struct {
	LUN          string       `json:"lun"`
	Paths        []PathReport `json:"paths"`
	Capabilities *CapsReport  `json:"capabilities,omitempty"`
	Generation   uint32       `json:"generation"`
	Keys         []KeyReport  `json:"keys"`
	Reservation  ResReport    `json:"reservation"`
	Findings     []Finding    `json:"findings"`
	readable     bool
}

// PathReport is one path device.
type PathReport struct {
	Device  string  `json:"device"`
	Backend Backend `json:"backend"`
	Reads   bool    `json:"reads"` // PR state can be read through it
	Error   string  `json:"error,omitempty"`
}

// CapsReport is REPORT CAPABILITIES in operator terms.
type CapsReport struct {
	Types             []string `json:"types"`
	TypesReported     bool     `json:"types_reported"` // TMV
	PersistCapable    bool     `json:"ptpl_capable"`   // PTPL_C
	PersistActive     bool     `json:"ptpl_active"`    // PTPL_A: APTPL in effect
	AllTargetPorts    bool     `json:"atp_capable"`    // ATP_C
	SpecifyInitiators bool     `json:"sip_capable"`    // SIP_C
	CompatibleRes     bool     `json:"crh"`            // CRH
	supportsDefault   bool
}

// KeyReport is one registered key and how many I_T nexuses hold it.
type KeyReport struct {
	Key   Key    `json:"key"`
	Owner string `json:"owner"`
	Node  int    `json:"node,omitempty"` // 0 for a foreign key
	Count int    `json:"nexuses"`
}

// ResReport is the reservation.
type ResReport struct {
	Held  bool   `json:"held"`
	Key   Key    `json:"key,omitempty"`
	Owner string `json:"owner,omitempty"`
	Type  string `json:"type,omitempty"`
}

// Finding is something wrong, with what to do about it.
type Finding struct {
	Severity string `json:"severity"` // "error": fencing will not work; "warning": it works with a risk
	What     string `json:"what"`
	Do       string `json:"do"`
}

// Inspect reads l's PR state through its paths. want is the reservation
// type fencing is configured for (0: DefaultType).
func Inspect(ctx context.Context, cluster uuid.UUID, want scsi.Type, l *LUN) Report {
	if want == 0 {
		want = DefaultType
	}
	r := Report{LUN: l.Name, Keys: []KeyReport{}, Findings: []Finding{}}
	var keys *scsi.Keys
	var res *scsi.Reservation
	for _, p := range l.Paths {
		pr := PathReport{Device: p.Name(), Backend: p.Backend()}
		k, err := p.ReadKeys(ctx)
		if err == nil {
			var rv scsi.Reservation
			if rv, err = p.ReadReservation(ctx); err == nil {
				pr.Reads = true
				if keys == nil {
					keys, res = &k, &rv
				}
			}
		}
		if err != nil {
			pr.Error = err.Error()
		}
		if r.Capabilities == nil {
			if c, err := p.Capabilities(ctx); err == nil {
				r.Capabilities = capsReport(c, want)
			}
		}
		r.Paths = append(r.Paths, pr)
	}
	for _, pr := range r.Paths {
		if pr.Error != "" && !pr.Reads && keys != nil {
			r.add("warning", fmt.Sprintf("path %s does not answer PR IN: %s", pr.Device, pr.Error),
				"check the path (multipath -ll, iscsiadm -m session); registration must reach every path")
		}
	}
	if keys == nil {
		what := "no path could read the PR state"
		if len(r.Paths) > 0 {
			what += ": " + r.Paths[0].Error
		}
		do := "check the paths to the LUN; until PR state can be read, fencing this LUN cannot be verified and takeover waits for the watchdog deadline"
		for _, pr := range r.Paths {
			if pr.Backend == BackendBlockPR {
				do = "the block layer cannot read PR state here (no IOC_PR_READ_KEYS in this kernel, or no PR support in the device's driver): use a device SG_IO reaches, or rely on the watchdog deadline for this LUN"
			}
		}
		r.add("error", what, do)
		return r
	}
	r.readable = true
	r.Generation = keys.Generation
	count := map[Key]int{}
	for _, k := range keys.Keys {
		count[Key(k)]++
	}
	for k, n := range count {
		kr := KeyReport{Key: k, Owner: k.Owner(cluster), Count: n}
		if node, err := KeyOwner(cluster, k); err == nil {
			kr.Node = int(node)
		}
		r.Keys = append(r.Keys, kr)
	}
	sort.Slice(r.Keys, func(a, b int) bool { return r.Keys[a].Key < r.Keys[b].Key })
	if res.Held {
		r.Reservation = ResReport{Held: true, Key: Key(res.Key), Owner: Key(res.Key).Owner(cluster), Type: res.Type.String()}
	}
	r.findings(cluster, want, res, count)
	return r
}

func capsReport(c scsi.Capabilities, want scsi.Type) *CapsReport {
	cr := &CapsReport{Types: []string{}, TypesReported: c.TMV, PersistCapable: c.PTPLC, PersistActive: c.PTPLA,
		AllTargetPorts: c.ATPC, SpecifyInitiators: c.SIPC, CompatibleRes: c.CRH, supportsDefault: c.Supports(want)}
	for _, t := range c.Types {
		cr.Types = append(cr.Types, t.String())
	}
	return cr
}

func (r *Report) add(sev, what, do string) {
	r.Findings = append(r.Findings, Finding{Severity: sev, What: what, Do: do})
}

func (r *Report) findings(cluster uuid.UUID, want scsi.Type, res *scsi.Reservation, count map[Key]int) {
	ours := 0
	for _, k := range r.Keys {
		if k.Node == 0 {
			r.add("warning", fmt.Sprintf("key %v is not a key of cluster %v", k.Key, cluster),
				"another cluster or tool (fence_scsi?) uses this LUN: give each cluster its own LUNs; remove stale keys with `mtc fence clear` only after a total outage")
		} else {
			ours++
		}
	}
	switch {
	case ours == 0:
		r.add("error", "no node of this cluster is registered: fencing this LUN cannot work",
			"start the daemons (they unfence on join) or run `mtc fence register` on every node")
	case !res.Held:
		r.add("error", "no reservation is held: every host, registered or not, may write",
			"run `mtc fence register` on a node of the cluster: it reserves as "+want.String())
	case res.Type != want:
		r.add("error", fmt.Sprintf("reserved as %v, fencing is configured for %v", res.Type, want),
			"find who reserved it (key "+Key(res.Key).String()+"); after a total outage `mtc fence clear` and unfence again")
	case count[Key(res.Key)] == 0 && res.Key != 0:
		r.add("warning", "the reservation holder's key is not registered", "unfence a node again (`mtc fence register`)")
	}
	if c := r.Capabilities; c != nil {
		if !c.supportsDefault {
			r.add("error", fmt.Sprintf("the target does not report support for %v", want), "configure a reservation type the target lists, or fix the target")
		}
		if !c.PersistCapable {
			r.add("warning", "the target cannot keep registrations across its power loss (PTPL_C 0)",
				"after a target restart every node must unfence again; the daemons do so on their next session")
		} else if !c.PersistActive {
			r.add("warning", "registrations are lost when the target restarts (APTPL not active)",
				"set aptpl in the fencing configuration, or rely on the daemons unfencing after a target restart")
		}
	}
}

// OK reports whether the report has no error-level findings.
func (r Report) OK() bool {
	for _, f := range r.Findings {
		if f.Severity == "error" {
			return false
		}
	}
	return r.readable
}

// ErrUnhealthy: a report has error-level findings.
var ErrUnhealthy = errors.New("fencing is not ready on this LUN")
