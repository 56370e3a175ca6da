package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/actions"
)

// A plan of a real cluster (collect_logs on 2 nodes has 24 steps, each
// with its SQL) is longer than one section's 3000 characters: the
// approvers must still see every step, and the result of every step once
// it ran. Before, both were clipped to one section ("truncated, 3610 more
// characters": the second node's steps were not shown).
func TestRenderRequestShowsEveryStep(t *testing.T) {
	p := &actions.Plan{Kind: "collect_logs", Cluster: "prod", Summary: "Collect logs"}
	var steps []StepView
	for i := range 40 {
		node := fmt.Sprintf("ch-%d", i/10+1)
		p.Steps = append(p.Steps, actions.Step{ID: fmt.Sprintf("%s/source-%02d", node, i), Node: node, Title: fmt.Sprintf("source-%02d of %s", i, node),
			SQL: []string{"SELECT * FROM system.query_log WHERE event_time >= toDateTime(1796114546) AND event_time <= toDateTime(1796115746) ORDER BY event_time LIMIT 10001"}})
		steps = append(steps, StepView{Title: fmt.Sprintf("source-%02d of %s", i, node), Node: node, State: "done", Output: fmt.Sprintf("%s/source-%02d: collected, 4 rows, 6 KiB", node, i)})
	}
	for _, tc := range []struct {
		name string
		v    RequestView
	}{
		{"plan", RequestView{ID: "req1", Kind: "collect_logs", Cluster: "prod", State: "pending", Plan: p, PlanHash: p.Hash(), Needed: 1, Buttons: []string{ActionApprove, ActionReject}}},
		{"steps", RequestView{ID: "req1", Kind: "collect_logs", Cluster: "prod", State: "succeeded", Plan: p, PlanHash: p.Hash(), Needed: 1, Steps: steps}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := RenderRequest(tc.v)
			blocks := checkValid(t, msg)
			all, _ := json.Marshal(blocks)
			for i := range 40 {
				if w := fmt.Sprintf("source-%02d of ch-%d", i, i/10+1); !strings.Contains(string(all), w) {
					t.Errorf("message lacks %q", w)
				}
			}
			if strings.Contains(string(all), "truncated") {
				t.Error("a section was truncated")
			}
		})
	}
	// More than fits in Slack's 50 blocks: cut, and said so.
	for i := range 400 {
		p.Steps = append(p.Steps, actions.Step{ID: fmt.Sprintf("x/%d", i), Title: strings.Repeat("long title ", 20), SQL: p.Steps[0].SQL})
	}
	msg := RenderRequest(RequestView{ID: "req1", Kind: "collect_logs", Cluster: "prod", State: "pending", Plan: p, PlanHash: p.Hash(), Needed: 1, Buttons: []string{ActionApprove, ActionReject}})
	blocks := checkValid(t, msg)
	all, _ := json.Marshal(blocks)
	if !strings.Contains(string(all), "more not shown") || !strings.Contains(string(all), `"chmedic:approve"`) {
		t.Errorf("an oversized plan: no note of the cut, or no buttons")
	}
}
