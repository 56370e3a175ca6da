package approvals

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/actions"
)

type planOnly struct{ plan actions.Plan }

func (p planOnly) Kind() string { return p.plan.Kind }
func (p planOnly) Plan(context.Context, actions.Request) (actions.Plan, error) {
	return p.plan, nil
}
func (p planOnly) Execute(context.Context, actions.Plan, actions.Step, map[string]actions.StepResult) (actions.StepResult, error) {
	return actions.StepResult{}, nil
}
func (p planOnly) Verify(context.Context, actions.Plan, actions.Step, actions.StepResult) error {
	return nil
}

func TestActionsPlanner(t *testing.T) {
	p := ActionsPlanner{"collect_logs": planOnly{actions.Plan{Kind: "collect_logs", Summary: "s"}}}
	if got, err := p.Plan(context.Background(), "collect_logs", actions.Request{}); err != nil || got.Summary != "s" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := p.Plan(context.Background(), "ddl_freeze", actions.Request{}); err == nil || !strings.Contains(err.Error(), "not available on this chmedic (configured actions: collect_logs)") {
		t.Fatalf("err %v", err)
	}
}

func TestDiffPlans(t *testing.T) {
	a := actions.Plan{Kind: "ddl_freeze", Cluster: "prod", Params: json.RawMessage(`{"duration":"30m"}`), Summary: "freeze 2 users",
		Gates: []actions.Gate{{Name: "keeper", OK: true, Evidence: "latency 3ms"}},
		Steps: []actions.Step{{ID: "ch-1/freeze", Node: "ch-1", SQL: []string{"ALTER USER app SETTINGS readonly=1"}}, {ID: "ch-2/freeze", Node: "ch-2"}}}
	b := a
	b.Params = json.RawMessage(`{ "duration": "30m" }`) // same, formatted differently
	if d := DiffPlans(a, b); len(d) != 0 {
		t.Fatalf("equal plans differ: %v", d)
	}
	b.Gates = []actions.Gate{{Name: "keeper", OK: false, Evidence: "latency 2.1s"}}
	b.Steps = []actions.Step{{ID: "ch-1/freeze", Node: "ch-1", SQL: []string{"ALTER USER app, etl SETTINGS readonly=1"}}, {ID: "ch-3/freeze", Node: "ch-3"}}
	got := strings.Join(DiffPlans(a, b), "\n")
	for _, w := range []string{"gate keeper: ok (latency 3ms) → NOT ok (latency 2.1s)", `step ch-1/freeze changed: SQL ["ALTER USER app SETTINGS readonly=1"] → ["ALTER USER app, etl SETTINGS readonly=1"]`,
		"step ch-3/freeze added", "step ch-2/freeze removed"} {
		if !strings.Contains(got, w) {
			t.Errorf("diff lacks %q:\n%s", w, got)
		}
	}
	if n := PlanNodes(b); strings.Join(n, ",") != "ch-1,ch-3" {
		t.Errorf("nodes %v", n)
	}
}
