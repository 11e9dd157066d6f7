package lvm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Problem is one thing lvm.conf (or lvmlocal.conf) must change.
type Problem struct {
	Key  string // e.g. global/system_id_source
	Have string // the value found ("" for not set)
	Want string
	Fix  string // what to change, in words an operator can follow
}

func (p Problem) String() string {
	return fmt.Sprintf("lvm.conf %s = %q: want %s; %s", p.Key, p.Have, p.Want, p.Fix)
}

// configValue reads one setting with `lvmconfig --typeconfig full KEY`
// (the value with its defaults applied), which prints it in lvm.conf's own
// syntax, NAME=VALUE, or nothing for a setting that is unset and has no
// default: a string comes back quoted, a number or a list bare. (lvm2
// before 2.03.17, Debian 12's 2.03.16 among them, has no --valuesonly.)
func configValue(ctx context.Context, r Runner, key string) (string, error) {
	out, err := r.Run(ctx, []string{"lvmconfig", "--typeconfig", "full", key})
	var ee *ExitError
	if errors.As(err, &ee) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(out))
	if line == "" {
		return "", nil
	}
	name := key[strings.LastIndexByte(key, '/')+1:]
	got, v, ok := strings.Cut(line, "=")
	if !ok || strings.TrimSpace(got) != name || strings.Contains(v, "\n") {
		return "", fmt.Errorf("lvmconfig %s: unexpected output %q (want %s=VALUE)", key, line, name)
	}
	v = strings.TrimSpace(v)
	if u, err := strconv.Unquote(v); err == nil {
		return u, nil
	}
	return v, nil
}

// systemIDSources are the values of global/system_id_source that give a
// host a stable system ID.
var systemIDSources = map[string]bool{"uname": true, "lvmlocal": true, "machineid": true, "appmachineid": true, "file": true}

// CheckConfig reports what lvm.conf must change for the activation modes
// used: with system IDs, global/system_id_source must give this host an ID;
// with tags, activation/volume_list must admit only this node's tag for
// package VGs; in both, lvmlockd must be off (a package VG is not a shared
// VG). node is this node's name.
func CheckConfig(ctx context.Context, r Runner, node string, modes []Activation) ([]Problem, error) {
	var probs []Problem
	want := map[Activation]bool{}
	for _, m := range modes {
		want[m] = true
	}
	if want[SystemID] {
		v, err := configValue(ctx, r, "global/system_id_source")
		if err != nil {
			return nil, err
		}
		if !systemIDSources[v] {
			probs = append(probs, Problem{Key: "global/system_id_source", Have: v, Want: `"uname" or "lvmlocal"`,
				Fix: `set system_id_source = "uname" in the global section of /etc/lvm/lvm.conf on every node (or "lvmlocal" with local/system_id in /etc/lvm/lvmlocal.conf), so lvm2 refuses a VG owned by another node`})
		}
	}
	if want[Tags] {
		v, err := configValue(ctx, r, "activation/volume_list")
		if err != nil {
			return nil, err
		}
		if !strings.Contains(v, `"@`+node+`"`) {
			probs = append(probs, Problem{Key: "activation/volume_list", Have: v, Want: fmt.Sprintf(`a list with "@%s" and no package VG`, node),
				Fix: fmt.Sprintf(`set volume_list = [ "<local VGs>", "@%s" ] in the activation section of /etc/lvm/lvm.conf on %s, so only VGs tagged for this node activate`, node, node)})
		}
	}
	v, err := configValue(ctx, r, "global/use_lvmlockd")
	if err != nil {
		return nil, err
	}
	if v != "" && v != "0" {
		probs = append(probs, Problem{Key: "global/use_lvmlockd", Have: v, Want: "0",
			Fix: "set use_lvmlockd = 0 in the global section of /etc/lvm/lvm.conf: package VGs are owned by one node at a time through their system ID or tag, not through lvmlockd"})
	}
	return probs, nil
}

// LocalSystemID returns the system ID lvm2 gives this host, for the
// sources this package supports: "uname" (the kernel's node name) and
// "lvmlocal" (local/system_id).
func LocalSystemID(ctx context.Context, r Runner) (string, error) {
	src, err := configValue(ctx, r, "global/system_id_source")
	if err != nil {
		return "", err
	}
	switch src {
	case "uname":
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", err
		}
		return unix.ByteSliceToString(u.Nodename[:]), nil
	case "lvmlocal":
		id, err := configValue(ctx, r, "local/system_id")
		if err != nil {
			return "", err
		}
		if id == "" {
			return "", errors.New(`lvm.conf: system_id_source = "lvmlocal" but local/system_id is not set: set system_id = "<node name>" in /etc/lvm/lvmlocal.conf`)
		}
		return id, nil
	}
	return "", fmt.Errorf(`lvm.conf: system_id_source = %q: set it to "uname" or "lvmlocal" (see lvmsystemid(7))`, src)
}
