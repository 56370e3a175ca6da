package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// Stopped runs: an action whose failed step is not the end of it — a
// rolling restart that met a failed gate or a timeout at one node — declares
// it with StopResumer. The Runner then records the execution stopped (not
// failed, no undo in reverse: the failing step has already taken back what
// it must not leave behind while nobody decides), the later steps untouched,
// and waits for a human: Resume runs the execution again from the stopped
// step after the action re-checked it (ResumeCheck), Abort ends it and runs
// the action's Cleanup for the stopped step (see cleanup.go).

// StopResumer is implemented by actions whose run stops, resumable, at a
// failed step.
type StopResumer interface {
	// StopsAt reports whether a failure of step stops the run (resumable)
	// rather than ending it failed. A step that stops must leave nothing
	// behind that waits for the decision (a silence, stopped merges): it
	// takes it back as it fails, and does it again when resumed.
	StopsAt(plan Plan, step Step) bool
	// ResumeCheck re-checks, before a stopped execution resumes, what must
	// hold for it to go on: the gates of the whole run and those of the
	// stopped step. checkpoint is the data the stopped step recorded (its
	// failed attempt's result data), prior the results of the steps done.
	// A *Refusal (with the figures) keeps the execution stopped.
	ResumeCheck(ctx context.Context, plan Plan, step Step, checkpoint json.RawMessage, prior map[string]StepResult) error
}

// ResumeRefusedError is returned by Run when ResumeCheck refused to resume
// a stopped execution: nothing ran, the execution is still stopped.
type ResumeRefusedError struct {
	Step   string
	Reason error
}

func (e *ResumeRefusedError) Error() string {
	return fmt.Sprintf("resume refused at step %s: %v", e.Step, e.Reason)
}

func (e *ResumeRefusedError) Unwrap() error { return e.Reason }

// IsResumeRefused reports whether err is (or wraps) a ResumeRefusedError.
func IsResumeRefused(err error) bool {
	var r *ResumeRefusedError
	return errors.As(err, &r)
}

// stoppedStep returns the step a stopped execution stopped at (the first
// one recorded failed), its recorded data and the results of the steps
// done before it.
func stoppedStep(plan Plan, recs []store.StepRecord) (Step, json.RawMessage, map[string]StepResult, bool) {
	byID := map[string]store.StepRecord{}
	for _, s := range recs {
		byID[s.StepID] = s
	}
	prior := map[string]StepResult{}
	for _, s := range plan.Steps {
		rec, ok := byID[s.ID]
		if !ok {
			break
		}
		var res StepResult
		if len(rec.Result) > 0 {
			json.Unmarshal(rec.Result, &res)
		}
		switch rec.State {
		case StepDone:
			prior[s.ID] = res
		case StepFailed:
			return s, res.Data, prior, true
		default:
			return Step{}, nil, nil, false
		}
	}
	return Step{}, nil, nil, false
}

// checkResume runs the action's ResumeCheck for a stopped execution. A
// refusal is recorded in the execution's error and outcome (still
// stopped) and returned as a *ResumeRefusedError.
func (r *Runner) checkResume(ctx context.Context, rec store.ExecutionRecord, sr StopResumer, plan Plan) (Outcome, error) {
	recs, err := r.st.Steps(ctx, rec.ID)
	if err != nil {
		return Outcome{}, err
	}
	step, cp, prior, ok := stoppedStep(plan, recs)
	if !ok {
		return Outcome{}, nil // nothing recorded failed: a plain resume
	}
	cerr := sr.ResumeCheck(ctx, plan, step, cp, prior)
	if cerr == nil {
		return Outcome{}, nil
	}
	if ctx.Err() != nil {
		return Outcome{}, ctx.Err()
	}
	var out Outcome
	if len(rec.Outcome) > 0 {
		json.Unmarshal(rec.Outcome, &out)
	}
	out.State = ExecStopped
	refused := &ResumeRefusedError{Step: step.ID, Reason: cerr}
	out.Error = refused.Error()
	data, _ := json.Marshal(out)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.st.FinishExecution(fctx, rec.ID, ExecStopped, data, out.Error); err != nil {
		return out, err
	}
	r.opts.Log.Warn("resume of a stopped execution refused", "execution", rec.ID, "kind", plan.Kind, "step", step.ID, "err", cerr)
	return out, refused
}
