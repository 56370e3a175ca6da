package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

var _ Cleaner = (*RollingRestart)(nil)

// Cleanup implements Cleaner: the node's step was interrupted by a crash
// and the roll aborted. What the step recorded (the restart step's
// checkpoint, or for the checks after it the restart step's result) is
// taken back: its silence is expired, and SYSTEM STOP MERGES — in memory
// only — is undone with SYSTEM START MERGES unless the server restarted
// since the recorded start time (the restart ended it).
func (a *RollingRestart) Cleanup(ctx context.Context, plan Plan, step Step, checkpoint json.RawMessage, prior map[string]StepResult) (string, error) {
	d, cl, err := a.details(plan)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(d.Nodes, func(n RestartNode) bool { return n.Name == step.Node })
	if i < 0 {
		return "", nil
	}
	n := d.Nodes[i]
	var rd restartData
	switch {
	case strings.HasSuffix(step.ID, "/restart"):
		if len(checkpoint) > 0 {
			if err := json.Unmarshal(checkpoint, &rd); err != nil {
				return "", fmt.Errorf("the checkpoint of %s cannot be read (%v): check %s's silence and merges by hand", step.ID, err, n.Name)
			}
		}
	case strings.HasSuffix(step.ID, "/after"):
		if r, ok := prior[n.Name+"/restart"]; ok && len(r.Data) > 0 {
			json.Unmarshal(r.Data, &rd)
		}
		// A resumed attempt silences the node again (afterData).
		var ad afterData
		if len(checkpoint) > 0 && json.Unmarshal(checkpoint, &ad) == nil && ad.SilenceID != "" {
			rd.SilenceID = ad.SilenceID
		}
	default:
		return untouched(d, i), nil
	}
	var done []string
	var errs []error
	if rd.Running != nil && rd.Running.running() {
		// Not killed here: a restart cut short may leave the server down.
		errs = append(errs, fmt.Errorf("the restart command of %s left running by the interrupted chmedic (pid %d, process group %d) still runs (deadline %s): it was left alone; kill the process group by hand to stop it",
			n.Name, rd.Running.PID, rd.Running.PID, rd.Running.Deadline.UTC().Format(time.RFC3339)))
	}
	if rd.SilenceID != "" {
		sc := a.silences(d)
		st, err := sc.State(ctx, rd.SilenceID)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("silence %s: %w (it ends by itself at its end time)", rd.SilenceID, err))
		case st == "expired":
			done = append(done, fmt.Sprintf("silence %s had already ended", rd.SilenceID))
		default:
			if err := sc.Expire(ctx, rd.SilenceID); err != nil {
				errs = append(errs, fmt.Errorf("silence %s could not be expired: %w (it ends by itself at its end time)", rd.SilenceID, err))
			} else {
				done = append(done, fmt.Sprintf("silence %s expired", rd.SilenceID))
			}
		}
	}
	if rd.MergesStopped {
		st := a.read(ctx, cl, n)
		switch {
		case st.err != nil:
			errs = append(errs, fmt.Errorf("%s does not answer (%s): chmedic cannot tell whether it restarted; merges were stopped (SYSTEM STOP MERGES): run SYSTEM START MERGES on it by hand if it did not restart", n.Name, clickhouse.Cause(st.err)))
		case restarted(st, rd):
			done = append(done, fmt.Sprintf("%s restarted since (start time %s → %s): its SYSTEM STOP MERGES ended with the restart", n.Name, unixText(rd.StartBefore), unixText(st.start)))
		default:
			if err := a.exec(ctx, cl, n, "SYSTEM START MERGES", cleanupStatementTimeout); err != nil {
				errs = append(errs, fmt.Errorf("SYSTEM START MERGES on %s failed (%v): run it by hand", n.Name, err))
			} else {
				done = append(done, fmt.Sprintf("merges started again on %s (SYSTEM START MERGES; it had not restarted, start time %s)", n.Name, unixText(st.start)))
			}
		}
	}
	if u := untouched(d, i); u != "" {
		done = append(done, u)
	}
	return strings.Join(done, "; "), errors.Join(errs...)
}

// untouched says which nodes an aborted roll leaves untouched: those after
// node i.
func untouched(d RollingRestartDetails, i int) string {
	var rest []string
	for _, n := range d.Nodes[i+1:] {
		rest = append(rest, n.Name)
	}
	if len(rest) == 0 {
		return ""
	}
	return fmt.Sprintf("the roll ends at %s: %s not touched", d.Nodes[i].Name, strings.Join(rest, ", "))
}

const cleanupStatementTimeout = 10 * time.Second
