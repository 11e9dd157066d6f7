package pkgrun

import (
	"testing"
	"time"

	"github.com/mtcluster/mtc/pkgrun/service"
)

func TestMinHaltTimeout(t *testing.T) {
	s := testSpec()
	// pre_stop 1 s + post_stop 1 s + db's halt 100 ms and SIGKILL's
	// grace + two unmounts of 200 ms.
	want := 2*time.Second + 100*time.Millisecond + service.KillGrace + 400*time.Millisecond
	if got := MinHaltTimeout(s); got != want {
		t.Errorf("MinHaltTimeout %v, want %v", got, want)
	}
	s.Services = append(s.Services, service.Spec{Name: "ocf", Agent: &service.Agent{Provider: "heartbeat", Type: "Dummy"}})
	if got := MinHaltTimeout(s); got != want+service.DefaultAgentTimeout {
		t.Errorf("with an agent: %v", got)
	}
}

// The halt plan is the reverse of the start plan's undoable steps,
// between pre_stop and post_stop.
func TestHaltPlanReversesStart(t *testing.T) {
	w := newWorld(t, testSpec())
	var got []string
	for _, s := range HaltPlan(testSpec(), w.pkg.edges) {
		got = append(got, s.Name)
	}
	if len(got) != len(haltSteps) {
		t.Fatalf("halt plan %q", got)
	}
	for i := range got {
		if got[i] != haltSteps[i] {
			t.Errorf("halt step %d: %s, want %s", i, got[i], haltSteps[i])
		}
	}
}
