package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Cleanup after an abort: a step interrupted by a crash of chmedic may have
// left something behind that its own end (or a Resume) would have taken
// back — rolling_restart's silence and SYSTEM STOP MERGES, a freeze's
// override. When the execution is aborted instead of resumed, nothing runs
// that step again, so the Runner asks the action to take it back.

// Cleaner is implemented by actions whose interrupted step may leave
// something behind. Cleanup is given the step recorded running (the
// interrupted one), the data its attempt recorded with SaveCheckpoint (nil
// when none), and the results of the steps done before it. It returns what
// it did, in words for the thread and the audit; an error says what it
// could not take back (and what to do by hand). It must be safe to call for
// a step that did nothing.
type Cleaner interface {
	Cleanup(ctx context.Context, plan Plan, step Step, checkpoint json.RawMessage, prior map[string]StepResult) (string, error)
}

// Step states recorded by CleanUp for the interrupted step of an aborted
// execution.
const (
	StepCleanedUp     = "cleaned_up"
	StepCleanupFailed = "cleanup_failed"
)

// CleanupReport is what CleanUp did, one line per step it cleaned.
type CleanupReport struct {
	Lines  []string
	Failed bool
}

// cleanupTimeout bounds one step's cleanup.
const cleanupTimeout = 2 * time.Minute

// AbortAndCleanUp is Abort followed by CleanUp: the execution is marked
// aborted first (it can never run again), then what its interrupted step
// left behind is taken back.
func (r *Runner) AbortAndCleanUp(ctx context.Context, id, reason string) (CleanupReport, error) {
	if err := r.abort(ctx, id, reason); err != nil {
		return CleanupReport{}, err
	}
	return r.CleanUp(ctx, id)
}

// CleanUp runs the action's Cleanup (when it is a Cleaner) for each step of
// an aborted execution still recorded running — the step a crash
// interrupted — or recorded failed where the run stopped (StopResumer),
// and records the step as cleaned_up or cleanup_failed, with
// what was done as its error text. An execution in another state is
// refused: a running one cleans up after itself, and an interrupted one may
// still be resumed.
func (r *Runner) CleanUp(ctx context.Context, id string) (CleanupReport, error) {
	var rep CleanupReport
	rec, err := r.st.Execution(ctx, id)
	if err != nil {
		return rep, err
	}
	if rec.State != ExecAborted {
		return rep, fmt.Errorf("execution %s is %s: only an aborted execution is cleaned up", id, rec.State)
	}
	var plan Plan
	if err := json.Unmarshal(rec.Plan, &plan); err != nil {
		return rep, fmt.Errorf("execution %s: recorded plan: %w", id, err)
	}
	cl, ok := r.reg[plan.Kind].(Cleaner)
	if !ok {
		return rep, nil
	}
	recs, err := r.st.Steps(ctx, id)
	if err != nil {
		return rep, err
	}
	prior := map[string]StepResult{}
	for _, s := range recs {
		if s.State != StepDone {
			continue
		}
		var res StepResult
		if len(s.Result) > 0 && json.Unmarshal(s.Result, &res) == nil {
			prior[s.StepID] = res
		}
	}
	log := r.opts.Log.With("execution", id, "kind", plan.Kind, "cluster", plan.Cluster)
	sr, resumable := r.reg[plan.Kind].(StopResumer)
	for _, s := range recs {
		if s.State != StepRunning && !(s.State == StepFailed && resumable && sr.StopsAt(plan, planStep(plan, s.StepID))) {
			continue
		}
		var step Step
		for _, ps := range plan.Steps {
			if ps.ID == s.StepID {
				step = ps
			}
		}
		if step.ID == "" {
			continue
		}
		var cp json.RawMessage
		var res StepResult
		if len(s.Result) > 0 && json.Unmarshal(s.Result, &res) == nil {
			cp = res.Data
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		text, cerr := cl.Cleanup(cctx, plan, step, cp, prior)
		cancel()
		state, msg := StepCleanedUp, "aborted; cleaned up: "+text
		if text == "" {
			msg = "aborted; nothing to clean up"
		}
		if cerr != nil {
			state, rep.Failed = StepCleanupFailed, true
			msg = "aborted; cleanup failed: " + cerr.Error()
			if text != "" {
				msg += " (done: " + text + ")"
			}
			log.Error("cleanup after abort failed", "step", step.ID, "err", cerr)
		} else {
			log.Info("cleaned up after abort", "step", step.ID, "done", text)
		}
		rep.Lines = append(rep.Lines, step.ID+": "+msg)
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := r.st.FinishStep(fctx, id, step.ID, state, nil, msg); err != nil {
			log.Error("record cleanup", "step", step.ID, "err", err)
		}
		fcancel()
	}
	return rep, nil
}

func planStep(plan Plan, id string) Step {
	for _, s := range plan.Steps {
		if s.ID == id {
			return s
		}
	}
	return Step{ID: id}
}
