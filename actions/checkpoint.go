package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// Checkpoints: a step that changes the world in several moves (read a
// server's start time, create a silence, restart the server) records what
// it did as it goes, so that the attempt after a crash can tell what the
// interrupted one did and not do it twice. The Runner gives every Execute a
// context carrying the step's checkpoint.

// StepCheckpointer is implemented by a RunStore that can record a running
// step's intermediate result (*store.Store does).
type StepCheckpointer interface {
	CheckpointStep(ctx context.Context, executionID, stepID string, result []byte) error
}

var _ StepCheckpointer = (*store.Store)(nil)

type checkpointKey struct{}

type checkpoint struct {
	prev   json.RawMessage
	save   func(ctx context.Context, data json.RawMessage) error
	report func(text string)
}

// ReportProgress reports what the running step is doing now (e.g. which
// gate it waits for): the Runner passes it on as a "running" Progress with
// the step's elapsed time, and the approval flow updates the thread's
// progress message. Report changes, not every poll.
func ReportProgress(ctx context.Context, text string) {
	if c, ok := ctx.Value(checkpointKey{}).(*checkpoint); ok && c.report != nil {
		c.report(text)
	}
}

// ErrNoCheckpoint is returned by SaveCheckpoint outside a Runner, or when
// the store cannot record checkpoints.
var ErrNoCheckpoint = errors.New("no step checkpoint in this context")

// PreviousCheckpoint returns the data the step's previous attempt recorded
// with SaveCheckpoint before it was interrupted (nil on a first attempt).
func PreviousCheckpoint(ctx context.Context) json.RawMessage {
	if c, ok := ctx.Value(checkpointKey{}).(*checkpoint); ok {
		return c.prev
	}
	return nil
}

// SaveCheckpoint records data as the running step's intermediate result,
// durably, before returning.
func SaveCheckpoint(ctx context.Context, data json.RawMessage) error {
	c, ok := ctx.Value(checkpointKey{}).(*checkpoint)
	if !ok || c.save == nil {
		return ErrNoCheckpoint
	}
	return c.save(ctx, data)
}

// withCheckpoint returns the context an Execute of step gets: the data of
// its previous attempt (rec, when one was recorded and did not finish) and
// a save recording into the store.
func (r *Runner) withCheckpoint(ctx context.Context, execID string, step Step, rec *store.StepRecord, report func(string)) context.Context {
	c := &checkpoint{report: report}
	if rec != nil && rec.State != StepDone && len(rec.Result) > 0 {
		var res StepResult
		if json.Unmarshal(rec.Result, &res) == nil {
			c.prev = res.Data
		}
	}
	if cs, ok := r.st.(StepCheckpointer); ok {
		c.save = func(ctx context.Context, data json.RawMessage) error {
			b, err := json.Marshal(StepResult{Output: "in progress", Data: data})
			if err != nil {
				return err
			}
			// Recorded even when the step's context is ending: what
			// was done must be known to the next attempt.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultCheckpointTimeout)
			defer cancel()
			if err := cs.CheckpointStep(sctx, execID, step.ID, b); err != nil {
				return fmt.Errorf("checkpoint step %s: %w", step.ID, err)
			}
			return nil
		}
	}
	return context.WithValue(ctx, checkpointKey{}, c)
}

const defaultCheckpointTimeout = 5 * time.Second
