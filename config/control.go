package config

import "fmt"

// DefaultControlPort is the TCP port of the control channel (package
// control) on every node's heartbeat addresses.
const DefaultControlPort = 5410

// Control is the [control] table: where nodes take operator commands from
// each other.
type Control struct {
	// Port is the TCP port every node listens on, on each of its
	// heartbeat addresses.
	Port int
}

type fileControl struct {
	Port *int64 `toml:"port"`
}

func (f *fileControl) toControl(bad func(field, what, hint string)) Control {
	out := Control{Port: DefaultControlPort}
	if f.Port != nil {
		if *f.Port < 1 || *f.Port > 65535 {
			bad("control.port", fmt.Sprintf("%d is not a TCP port", *f.Port), fmt.Sprintf("use 1 to 65535 (the default is %d)", DefaultControlPort))
		} else {
			out.Port = int(*f.Port)
		}
	}
	return out
}

// validateControl checks [control] against the heartbeat networks.
func (c *Cluster) validateControl(add func(sentinel error, field, related, what, hint string) *FieldError) {
	for i, nw := range c.Networks {
		if nw.Port == c.Control.Port {
			add(ErrInvalid, "control.port", fmt.Sprintf("network[%d].port", i),
				fmt.Sprintf("%d is also heartbeat network %q's port{line}", nw.Port, nw.Name),
				"give the control channel a port of its own (it is TCP, the heartbeats UDP, but firewalls and readers tell them apart by number)")
		}
	}
}
