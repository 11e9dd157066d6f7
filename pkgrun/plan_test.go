package pkgrun

import (
	"context"
	"strings"
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

type envServices struct{ env []string }

func (s *envServices) Start(_ context.Context, sp service.Spec) error {
	s.env = sp.Env
	return nil
}
func (s *envServices) Stop(context.Context, string) error { return nil }

// A start's environment reaches its scripts and services, before their
// own settings; the halt plan's scripts run without it.
func TestStartEnvironment(t *testing.T) {
	spec := testSpec()
	spec.Services[0].Env = []string{"PGDATA=/srv/orders"}
	svc := &envServices{}
	scripts := map[string][]string{}
	e := Edges{Services: svc, Scripts: func(_ context.Context, s service.Script) error {
		scripts[s.Name] = s.Env
		return nil
	}}
	env := []string{"MTC_NODE=alpha", "MTC_EPOCH=7"}
	for _, s := range Plan(spec, e, nil, env...) {
		if s.Name == "pre_start" || s.Name == "post_start" || s.Name == "service db" {
			if err := s.Do(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range HaltPlan(spec, e) {
		if s.Name == "pre_stop" {
			if err := s.Do(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := "MTC_PACKAGE=orders MTC_NODE=alpha MTC_EPOCH=7 PGDATA=/srv/orders"
	if got := strings.Join(svc.env, " "); got != want {
		t.Errorf("service environment %q, want %q", got, want)
	}
	if got := strings.Join(scripts["pre_start"], " "); got != "MTC_PACKAGE=orders MTC_PHASE=pre_start MTC_NODE=alpha MTC_EPOCH=7" {
		t.Errorf("pre_start environment %q", got)
	}
	if got := strings.Join(scripts["pre_stop"], " "); got != "MTC_PACKAGE=orders MTC_PHASE=pre_stop" {
		t.Errorf("pre_stop environment %q", got)
	}
}
