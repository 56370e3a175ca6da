package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

var _ StopResumer = (*RollingRestart)(nil)

// StopsAt implements StopResumer: a failed gate, timeout or restart at a
// node stops the roll there, resumable; a failed preflight (nothing
// touched yet) ends it failed — request it again.
func (a *RollingRestart) StopsAt(_ Plan, step Step) bool {
	return step.ID != "preflight" && step.Node != ""
}

// ResumeCheck implements StopResumer: before a stopped roll goes on, the
// roll-wide gates (the coordination service: latency, quorum, no herd
// within herd_window; the cluster's lease is the Runner's) and the stopped
// node's own:
//
//   - stopped at <node>/before: the gate is read again (the other
//     replicas of its shard healthy); still failing, the resume is refused
//     with the figures;
//   - stopped at <node>/restart: when the node has not restarted since
//     its recorded start time (the restart failed, or never was issued),
//     it is going to be restarted, so the gate before its restart is read
//     again too; one that did restart goes on with its checks, never
//     restarted again (the step finds it restarted);
//   - stopped at <node>/after: the node is not restarted again; the step
//     waits for it again.
func (a *RollingRestart) ResumeCheck(ctx context.Context, plan Plan, step Step, checkpoint json.RawMessage, prior map[string]StepResult) error {
	d, cl, err := a.details(plan)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(d.Nodes, func(n RestartNode) bool { return n.Name == step.Node })
	if i < 0 {
		return fmt.Errorf("rolling_restart: step %s: node %q is not in the plan", step.ID, step.Node)
	}
	n := d.Nodes[i]
	gates, why := a.keeperGates(ctx, cl.Name, d)
	checkBefore := false
	switch {
	case strings.HasSuffix(step.ID, "/before"):
		checkBefore = true
	case strings.HasSuffix(step.ID, "/restart"):
		var rd restartData
		if len(checkpoint) > 0 {
			json.Unmarshal(checkpoint, &rd)
		}
		st := a.read(ctx, cl, n)
		switch {
		case rd.RecordedAt.IsZero() || (st.err == nil && !restarted(st, rd)):
			checkBefore = true // it will be restarted now
		case st.err != nil && rd.IssuedAt.IsZero():
			why = append(why, fmt.Sprintf("%s is down (%s) and chmedic had not issued its restart: it does not start a server it did not stop", n.Name, clickhouse.Cause(st.err)))
		}
	}
	if checkBefore {
		bad, lines := a.beforeCheck(ctx, cl, d, n, peersOf(d, n))
		if bad != "" {
			why = append(why, "the gate before "+n.Name+"'s restart still fails: "+bad)
		}
		gates = append(gates, Gate{Name: "the other replicas of " + n.Name + "'s shard healthy", OK: bad == "", Evidence: strings.Join(lines, "; ")})
	}
	if len(why) == 0 {
		return nil
	}
	return &Refusal{Reason: fmt.Sprintf("the roll stays stopped at node %d of %d (%s): %s", i+1, len(d.Nodes), n.Name, strings.Join(why, "; ")), Gates: gates}
}
