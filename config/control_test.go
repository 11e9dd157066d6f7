package config

import (
	"errors"
	"strings"
	"testing"
)

func TestControlPort(t *testing.T) {
	if c := mustParse(t, base); c.Control.Port != DefaultControlPort {
		t.Fatalf("default control port %d", c.Control.Port)
	}
	if c := mustParse(t, base+"\n[control]\nport = 7001\n"); c.Control.Port != 7001 {
		t.Fatalf("control port %d", c.Control.Port)
	}
	for _, tc := range []struct{ add, field, msg string }{
		{"port = 0\n", "control.port", "is not a TCP port"},
		{"port = 70000\n", "control.port", "is not a TCP port"},
		{"port = 5405\n", "control.port", `also heartbeat network "lan"'s port`},
	} {
		_, err := Parse("cluster.toml", []byte(base+"\n[control]\n"+tc.add))
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) != 1 {
			t.Errorf("%q: want one error, got %v", tc.add, err)
			continue
		}
		fe := errs.List[0]
		if fe.Field != tc.field || !strings.Contains(fe.Error(), tc.msg) || fe.Line != strings.Count(base, "\n")+3 {
			t.Errorf("%q: got %s (field %s, line %d)", tc.add, fe.Error(), fe.Field, fe.Line)
		}
	}
}
