package main

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mtcluster/mtc/control"
	"github.com/mtcluster/mtc/daemon"
)

// mtc plan sends the case it was given and prints the table placement
// answers; a case placement would refuse exits 4 and says why.
func TestPlanCommand(t *testing.T) {
	asHost(t, "alpha")
	table := []daemon.PlanPackage{
		{Name: "db", Now: "beta", After: "alpha", Change: "moves", Why: "next in the node order"},
		{Name: "web", Now: "gamma", After: "gamma", Change: "stays"},
		{Name: "batch", Change: "down", Why: "no node left that may run it"},
	}
	for _, c := range []struct {
		args    []string
		want    daemon.PlanArgs
		refused string
	}{
		{args: []string{"plan", "--fail", "beta,gamma"}, want: daemon.PlanArgs{Fail: []string{"beta", "gamma"}}},
		{args: []string{"plan", "--fail", "beta", "--fail", "gamma"}, want: daemon.PlanArgs{Fail: []string{"beta", "gamma"}}},
		{args: []string{"plan", "--move", "db", "--to", "alpha"}, want: daemon.PlanArgs{Move: &daemon.PlanMove{Package: "db", To: "alpha"}}},
		{args: []string{"plan", "--drain", "beta"}, want: daemon.PlanArgs{Drain: "beta"}, refused: "db may run only on beta"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			f := newFakeCluster(t, map[string]control.Handler{"alpha": func(_ context.Context, req control.Request) (any, error) {
				if req.Command != daemon.CommandPlan {
					return nil, errors.New("not a plan")
				}
				return daemon.PlanResult{Case: "if beta failed", Node: "alpha", Packages: table, Refused: c.refused}, nil
			}})
			code, out, errOut := f.mtc(t, c.args...)
			var got daemon.PlanArgs
			if r := f.requests(); len(r) != 1 || json.Unmarshal(r[0].req.Args, &got) != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("sent %+v, want %+v", r, c.want)
			}
			norm := strings.Join(strings.Fields(out), " ")
			for _, w := range []string{"if beta failed (from the live state of alpha):", "PACKAGE NOW AFTER CHANGE WHY",
				"db beta alpha moves next in the node order", "web gamma gamma stays", "batch - - down no node left that may run it"} {
				if !strings.Contains(norm, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if c.refused == "" && code != exitOK {
				t.Errorf("exit %d: %s", code, errOut)
			}
			if c.refused != "" && (code != exitRefused || !strings.Contains(out, "refused: "+c.refused) || !strings.Contains(errOut, "placement would refuse it: "+c.refused)) {
				t.Errorf("refused plan: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}

func TestPlanUsage(t *testing.T) {
	asHost(t, "alpha")
	f := newFakeCluster(t, map[string]control.Handler{"alpha": answer(daemon.PlanResult{}, nil)})
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan"}, exitUsage, "give --fail NODE,... or --move PKG --to NODE or --drain NODE"},
		{[]string{"plan", "--move", "db"}, exitUsage, "--move PKG needs --to NODE"},
		{[]string{"plan", "--drain", "beta", "--to", "alpha"}, exitUsage, "--to goes with --move"},
		{[]string{"plan", "--drain", "beta", "--fail", "alpha"}, exitUsage, "can't be used together"},
		{[]string{"plan", "--fail", "zeta"}, exitRefused, "node zeta is not in"},
		{[]string{"plan", "--drain", "beta", "--via", "zeta"}, exitRefused, "--via: node zeta is not in"},
	} {
		code, _, errOut := f.mtc(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if r := f.requests(); len(r) != 0 {
		t.Fatalf("a bad plan was sent: %+v", r)
	}
	// --json prints the answer as it is.
	f = newFakeCluster(t, map[string]control.Handler{"alpha": answer(daemon.PlanResult{Case: "if gamma were drained", Node: "alpha",
		Packages: []daemon.PlanPackage{{Name: "db", Now: "gamma", After: "alpha", Change: "moves"}}}, nil)})
	code, out, _ := f.mtc(t, "plan", "--drain", "gamma", "--json")
	var r daemon.PlanResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || r.Packages[0].After != "alpha" {
		t.Fatalf("exit %d, %q (%v)", code, out, err)
	}
}

// No daemon answering a plan exits 6 and does not speak of a commit.
func TestPlanNobodyAnswers(t *testing.T) {
	asHost(t, "alpha")
	f := newFakeCluster(t, map[string]control.Handler{})
	code, _, errOut := f.mtc(t, "plan", "--drain", "beta")
	if code != exitNoQuorum || !strings.Contains(errOut, "plan: no daemon could answer it") || strings.Contains(errOut, "commit") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
