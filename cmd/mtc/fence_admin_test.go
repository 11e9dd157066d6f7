package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mtcluster/mtc/fence"
	"github.com/mtcluster/mtc/fence/prfake"
)

// withFakeLUNs makes the fence tools open every LUN as nexus's port to
// one LUN of target.
func withFakeLUNs(t *testing.T, target *prfake.Target, nexus string) {
	t.Helper()
	old := openFenceLUN
	openFenceLUN = func(name string, _ fence.Backend) (*fence.LUN, error) {
		return &fence.LUN{Name: name, Paths: []fence.Path{fence.NewSCSIPath(nexus+":"+name, fence.BackendFake, target.Port("lun", nexus), nil)}}, nil
	}
	t.Cleanup(func() { openFenceLUN = old })
}

func TestFenceRegister(t *testing.T) {
	cfg, disk := testCluster(t, 4<<20)
	if _, err := runCLI(t, "disk", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	target := prfake.New("lun")
	withFakeLUNs(t, target, "alpha")
	// alpha's daemon runs (its slot changes): refused.
	stop := writeSlotLoop(t, cfg, disk, 1, 50*time.Millisecond)
	out, err := runCLI(t, "fence", "register", "--config", cfg, "--node", "alpha")
	stop()
	if err == nil || !strings.Contains(err.Error(), "its daemon runs") {
		t.Fatalf("register while the daemon runs: %v\n%s", err, out)
	}
	if st := target.State("lun"); len(st.Keys) != 0 {
		t.Fatalf("registered although refused: %+v", st)
	}
	// Another node's daemon running does not matter.
	stop = writeSlotLoop(t, cfg, disk, 2, 50*time.Millisecond)
	defer stop()
	out, err = runCLI(t, "fence", "register", "--config", cfg, "--node", "alpha")
	if err != nil {
		t.Fatalf("register: %v\n%s", err, out)
	}
	st := target.State("lun")
	if _, ok := st.Nexus["alpha"]; !ok || !st.Held || st.Type != fence.DefaultType {
		t.Fatalf("after register: %+v", st)
	}
	if !strings.Contains(out, "registered node alpha") {
		t.Fatalf("output: %s", out)
	}
}

func TestFenceClear(t *testing.T) {
	cfg, disk := testCluster(t, 4<<20)
	if _, err := runCLI(t, "disk", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	target := prfake.New("lun")
	withFakeLUNs(t, target, "beta")
	if _, err := runCLI(t, "fence", "register", "--config", cfg, "--node", "beta"); err != nil {
		t.Fatal(err)
	}
	withFakeLUNs(t, target, "alpha")
	if len(target.State("lun").Keys) != 1 {
		t.Fatalf("setup: %+v", target.State("lun"))
	}
	// Not confirmed: nothing changes.
	stdin = strings.NewReader("no\n")
	t.Cleanup(func() { stdin = strings.NewReader("") })
	_, err := runCLI(t, "fence", "clear", "--config", cfg, "--node", "alpha", "--device", "/dev/data1")
	if !errors.Is(err, errNotConfirmed) || len(target.State("lun").Keys) != 1 {
		t.Fatalf("unconfirmed clear: %v, %+v", err, target.State("lun"))
	}
	// Any daemon running (gamma's slot changes): refused.
	stop := writeSlotLoop(t, cfg, disk, 3, 50*time.Millisecond)
	_, err = runCLI(t, "fence", "clear", "--config", cfg, "--node", "alpha", "--device", "/dev/data1", "--yes")
	stop()
	if err == nil || !strings.Contains(err.Error(), "3 (gamma)") || len(target.State("lun").Keys) != 1 {
		t.Fatalf("clear while gamma runs: %v, %+v", err, target.State("lun"))
	}
	stdin = strings.NewReader("yes\n")
	out, err := runCLI(t, "fence", "clear", "--config", cfg, "--node", "alpha", "--device", "/dev/data1")
	if err != nil {
		t.Fatalf("clear: %v\n%s", err, out)
	}
	if st := target.State("lun"); len(st.Keys) != 0 || st.Held {
		t.Fatalf("after clear: %+v", st)
	}
}
