package lvm

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

type cannedRunner map[string]string

func (c cannedRunner) Run(_ context.Context, argv []string) ([]byte, error) {
	out, ok := c[strings.Join(argv, " ")]
	if !ok {
		return nil, &ExitError{Argv: argv, Code: 3, Stderr: "unrecognized option"}
	}
	return []byte(out), nil
}

// configValue reads lvmconfig's NAME=VALUE output, as lvm2 2.03.16
// (Debian 12) prints it: it has no --valuesonly.
func TestConfigValueParsesLVMConfig(t *testing.T) {
	r := cannedRunner{
		"lvmconfig --typeconfig full global/system_id_source": "system_id_source=\"uname\"\n",
		"lvmconfig --typeconfig full global/use_lvmlockd":     "use_lvmlockd=0\n",
		"lvmconfig --typeconfig full activation/volume_list":  "",
		"lvmconfig --typeconfig full local/system_id":         "system_id=\"\"\n",
		"lvmconfig --typeconfig full global/odd":              "something else\n",
	}
	for key, want := range map[string]string{
		"global/system_id_source": "uname",
		"global/use_lvmlockd":     "0",
		"activation/volume_list":  "",
		"local/system_id":         "",
	} {
		got, err := configValue(context.Background(), r, key)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := configValue(context.Background(), r, "global/odd"); err == nil {
		t.Error("unexpected output accepted")
	}
}

// The real lvmconfig, where installed, answers the same way.
func TestConfigValueRealLVMConfig(t *testing.T) {
	if _, err := exec.LookPath("lvmconfig"); err != nil {
		t.Skip("lvmconfig not installed (package lvm2)")
	}
	v, err := configValue(context.Background(), Exec{}, "global/use_lvmlockd")
	if err != nil || (v != "0" && v != "1") {
		t.Fatalf("global/use_lvmlockd: %q, %v", v, err)
	}
}
