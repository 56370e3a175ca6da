package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// At start-up, when the executions a killed chmedic left running are marked
// interrupted, nothing runs them until an operator decides (Resume or
// Abort), which may take long. A command the dead process started (its
// process group, pid and deadline recorded in the step's checkpoint,
// orphan.go) runs on meanwhile with nothing enforcing its timeout: one past
// its deadline is killed there and then, one within it is reported in the
// interrupted message (and killed at its deadline by the Resume, or left to
// the operator by the Abort).

// OrphanReaper is implemented by actions whose interrupted step may have
// left a command running. ReapOrphans is given the step recorded running
// and the data its attempt recorded (nil when none); it kills what is past
// its deadline and returns what it found, in words ("" when nothing runs).
type OrphanReaper interface {
	ReapOrphans(ctx context.Context, plan Plan, step Step, checkpoint json.RawMessage) string
}

// StartupNoteSep separates, in an interrupted execution's error, why it
// was interrupted from what MarkInterrupted found of its commands.
const StartupNoteSep = "; at start-up: "

// reapAtStartup runs the action's ReapOrphans for each step of the
// execution recorded running, and returns the notes joined.
func (r *Runner) reapAtStartup(ctx context.Context, id string, planJSON []byte) string {
	var plan Plan
	if json.Unmarshal(planJSON, &plan) != nil {
		return ""
	}
	or, ok := r.reg[plan.Kind].(OrphanReaper)
	if !ok {
		return ""
	}
	recs, err := r.st.Steps(ctx, id)
	if err != nil {
		return ""
	}
	var notes []string
	for _, s := range recs {
		if s.State != StepRunning {
			continue
		}
		var res StepResult
		if len(s.Result) > 0 {
			json.Unmarshal(s.Result, &res)
		}
		if n := or.ReapOrphans(ctx, plan, planStep(plan, s.StepID), res.Data); n != "" {
			notes = append(notes, n)
		}
	}
	return strings.Join(notes, "; ")
}

var _ OrphanReaper = (*RollingRestart)(nil)

// ReapOrphans implements OrphanReaper: the restart command recorded
// running by the interrupted attempt of a <node>/restart step.
func (a *RollingRestart) ReapOrphans(ctx context.Context, _ Plan, step Step, checkpoint json.RawMessage) string {
	if !strings.HasSuffix(step.ID, "/restart") || len(checkpoint) == 0 {
		return ""
	}
	var rd restartData
	if json.Unmarshal(checkpoint, &rd) != nil || rd.Running == nil || !rd.Running.running() {
		return ""
	}
	o := *rd.Running
	deadline := o.Deadline.UTC().Format("15:04:05")
	if a.deps.Now().Before(o.Deadline) {
		return fmt.Sprintf("%s: restart command pid %d still running, deadline %s UTC (process group %d; Resume waits for it up to then and kills it after, Abort leaves it alone)", step.Node, o.PID, deadline, o.PID)
	}
	if err := killProcessGroup(o.PID); err != nil {
		return fmt.Sprintf("%s: restart command pid %d still running past its deadline %s UTC could not be killed: %v; kill process group %d by hand", step.Node, o.PID, deadline, err, o.PID)
	}
	for i := 0; i < 50 && o.running(); i++ {
		select {
		case <-ctx.Done():
			return fmt.Sprintf("%s: restart command pid %d passed its deadline %s UTC: its process group was sent SIGKILL", step.Node, o.PID, deadline)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Sprintf("%s: restart command pid %d passed its deadline %s UTC: its process group was killed", step.Node, o.PID, deadline)
}
