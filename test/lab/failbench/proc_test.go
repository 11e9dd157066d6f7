package failbench

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcLifecycle(t *testing.T) {
	var never *Proc
	if never.Running() || never.Err() != nil {
		t.Fatal("a nil Proc runs or has an error")
	}
	never.Kill()
	StopAll(time.Millisecond, never)

	log := filepath.Join(t.TempDir(), "p.log")
	p, err := StartProc(exec.Command("sh", "-c", "echo out; echo err >&2; exit 3"), log)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	var ee *exec.ExitError
	if p.Running() || !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Fatalf("running %v, err %v: want ended with status 3", p.Running(), p.Err())
	}
	b, _ := os.ReadFile(log)
	if got := string(b); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Fatalf("log %q lacks the output", got)
	}

	// A TERM-ignoring group is killed after the grace period; one that
	// honours TERM is stopped by it.
	stubborn, err := StartProc(exec.Command("sh", "-c", "trap '' TERM; sleep 30 & wait"), log)
	if err != nil {
		t.Fatal(err)
	}
	polite, err := StartProc(exec.Command("sleep", "30"), log)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the trap set
	began := time.Now()
	StopAll(200*time.Millisecond, stubborn, polite)
	if stubborn.Running() || polite.Running() {
		t.Fatal("StopAll returned with a process running")
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("StopAll took %v", took)
	}
	if !errors.As(stubborn.Err(), &ee) || ee.ProcessState.String() != "signal: killed" {
		t.Errorf("stubborn ended with %v, want killed", stubborn.Err())
	}
	if !errors.As(polite.Err(), &ee) || ee.ProcessState.String() != "signal: terminated" {
		t.Errorf("polite ended with %v, want terminated", polite.Err())
	}
}
