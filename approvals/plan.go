package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/chmedic/chmedic/actions"
)

// Planner computes an action's plan, read-only (the actions Registry).
type Planner interface {
	Plan(ctx context.Context, kind string, req actions.Request) (actions.Plan, error)
}

// DiffPlans says, one line per difference, how plan b differs from plan a
// (what changed on the cluster between the approval and the execution).
func DiffPlans(a, b actions.Plan) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if a.Kind != b.Kind || a.Cluster != b.Cluster {
		add("action %s on %s became %s on %s", a.Kind, a.Cluster, b.Kind, b.Cluster)
	}
	if !jsonEqual(a.Params, b.Params) {
		add("parameters %s → %s", compact(a.Params), compact(b.Params))
	}
	if a.Summary != b.Summary {
		add("summary %q → %q", a.Summary, b.Summary)
	}
	if a.Method != b.Method {
		add("method %q → %q", a.Method, b.Method)
	}
	gates := map[string]actions.Gate{}
	for _, g := range a.Gates {
		gates[g.Name] = g
	}
	for _, g := range b.Gates {
		old, ok := gates[g.Name]
		delete(gates, g.Name)
		switch {
		case !ok:
			add("gate %s added: %s", g.Name, g.Evidence)
		case old.OK != g.OK || old.Evidence != g.Evidence:
			add("gate %s: %s → %s", g.Name, gateText(old), gateText(g))
		}
	}
	for _, g := range a.Gates {
		if _, gone := gates[g.Name]; gone {
			add("gate %s removed", g.Name)
		}
	}
	steps := map[string]actions.Step{}
	var aIDs, bIDs []string
	for _, s := range a.Steps {
		steps[s.ID] = s
		aIDs = append(aIDs, s.ID)
	}
	for _, s := range b.Steps {
		bIDs = append(bIDs, s.ID)
		old, ok := steps[s.ID]
		if !ok {
			add("step %s added: %s", s.ID, stepText(s))
			continue
		}
		if d := stepDiff(old, s); d != "" {
			add("step %s changed: %s", s.ID, d)
		}
	}
	for _, id := range aIDs {
		if !slices.Contains(bIDs, id) {
			add("step %s removed: %s", id, stepText(steps[id]))
		}
	}
	if len(out) == 0 && len(aIDs) == len(bIDs) && !slices.Equal(aIDs, bIDs) {
		add("step order %s → %s", strings.Join(aIDs, ", "), strings.Join(bIDs, ", "))
	}
	if !slices.Equal(a.Notes, b.Notes) {
		add("notes %q → %q", a.Notes, b.Notes)
	}
	if !jsonEqual(a.Details, b.Details) {
		add("details %s → %s", compact(a.Details), compact(b.Details))
	}
	if len(out) == 0 && a.Hash() != b.Hash() {
		add("the plans differ (hash %s → %s)", short(a.Hash()), short(b.Hash()))
	}
	return out
}

func gateText(g actions.Gate) string {
	s := "ok"
	if !g.OK {
		s = "NOT ok"
	}
	return s + " (" + g.Evidence + ")"
}

func stepText(s actions.Step) string {
	t := s.Title
	if s.Node != "" {
		t += " on " + s.Node
	}
	return t
}

func stepDiff(a, b actions.Step) string {
	var d []string
	if a.Node != b.Node {
		d = append(d, fmt.Sprintf("node %s → %s", a.Node, b.Node))
	}
	if a.Title != b.Title {
		d = append(d, fmt.Sprintf("title %q → %q", a.Title, b.Title))
	}
	if !slices.Equal(a.SQL, b.SQL) {
		d = append(d, fmt.Sprintf("SQL %q → %q", a.SQL, b.SQL))
	}
	if !slices.Equal(a.Command, b.Command) {
		d = append(d, fmt.Sprintf("command %q → %q", a.Command, b.Command))
	}
	if a.Undo != b.Undo {
		d = append(d, fmt.Sprintf("undo %q → %q", a.Undo, b.Undo))
	}
	return strings.Join(d, "; ")
}

func jsonEqual(a, b json.RawMessage) bool { return compact(a) == compact(b) }

func compact(m json.RawMessage) string {
	if len(m) == 0 {
		return "{}"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m); err != nil {
		return string(m)
	}
	return buf.String()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// PlanNodes lists the nodes a plan acts on, in step order.
func PlanNodes(p actions.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		if s.Node != "" && !slices.Contains(out, s.Node) {
			out = append(out, s.Node)
		}
	}
	return out
}

// WritePlan prints a plan for the terminal.
func WritePlan(w io.Writer, p actions.Plan) {
	fmt.Fprintf(w, "plan: %s\n", p.Summary)
	if p.Method != "" {
		fmt.Fprintf(w, "method: %s\n", p.Method)
	}
	if len(p.Params) > 0 {
		fmt.Fprintf(w, "params: %s\n", compact(p.Params))
	}
	for _, g := range p.Gates {
		fmt.Fprintf(w, "gate %s: %s\n", g.Name, gateText(g))
	}
	for i, s := range p.Steps {
		fmt.Fprintf(w, "step %d %s: %s\n", i+1, s.ID, stepText(s))
		for _, q := range s.SQL {
			fmt.Fprintf(w, "    sql: %s\n", q)
		}
		if len(s.Command) > 0 {
			fmt.Fprintf(w, "    command: %s\n", strings.Join(s.Command, " "))
		}
		if s.Undo != "" {
			fmt.Fprintf(w, "    undo: %s\n", s.Undo)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, o := range p.Observed {
		fmt.Fprintf(w, "observed at plan time: %s\n", o)
	}
}

// ActionsPlanner adapts the actions registry (kind → Action; an
// actions.Registry is assignable to it) to a Planner.
type ActionsPlanner map[string]actions.Action

// Plan computes kind's plan with its action.
func (p ActionsPlanner) Plan(ctx context.Context, kind string, req actions.Request) (actions.Plan, error) {
	a, ok := p[kind]
	if !ok {
		return actions.Plan{}, fmt.Errorf("action %s is not available on this chmedic (configured actions: %s)", kind, strings.Join(slices.Sorted(maps.Keys(p)), ", "))
	}
	return a.Plan(ctx, req)
}
