package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// This file is the contract every action kind implements and every caller
// (the approval flow, the CLI, the runner) relies on. An action is:
//
//   - a read-only Plan, computed from the cluster's live state and the typed
//     parameters, serialisable and hashed (what the approvers see is exactly
//     what runs: the hash is re-computed before execution and must match);
//   - an idempotent Execute of one step at a time, each step recorded in the
//     store by the Runner, so a crash leaves a state that can be resumed
//     without repeating a step recorded as done;
//   - a Verify per step (the gate that says the step really took effect);
//   - an Undo where one exists.

// Plan is what an action will do, computed read-only. Everything an
// approver needs to judge it is here; nothing outside it decides what runs.
type Plan struct {
	// Kind is the action kind (catalog name, e.g. "collect_logs").
	Kind string `json:"kind"`
	// Cluster is the configured cluster name.
	Cluster string `json:"cluster"`
	// Params are the action's typed parameters, as JSON.
	Params json.RawMessage `json:"params"`
	// Summary is one line for the approval message.
	Summary string `json:"summary"`
	// Method says how, and why this way (e.g. "profile: 18.16 has no SQL
	// access control").
	Method string `json:"method,omitempty"`
	// Gates are the checks made at plan time and again before execution.
	Gates []Gate `json:"gates,omitempty"`
	// Steps run in order, one at a time.
	Steps []Step `json:"steps"`
	// Notes are caveats the approvers must read (e.g. "sessions opened
	// before the freeze keep their old settings").
	Notes []string `json:"notes,omitempty"`
	// Details is kind-specific plan data (the window, snapshots, …).
	Details json.RawMessage `json:"details,omitempty"`
	// Observed are facts read at plan time that change by themselves and
	// do not change what runs (the DDL queued or running that a freeze
	// will not stop): shown to the approvers, not part of the hash, so
	// that their change is no reason to refuse an approved plan.
	Observed []string `json:"observed,omitempty"`
	// ComputedAt is when the plan was computed; it is not part of the hash.
	ComputedAt time.Time `json:"computed_at"`
}

// Gate is a precondition with its observed evidence.
type Gate struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Evidence string `json:"evidence"`
}

// Step is one recorded unit of execution.
type Step struct {
	// ID is stable within the plan and unique ("ch-1/query_log").
	ID string `json:"id"`
	// Node is the node the step acts on, if any.
	Node  string `json:"node,omitempty"`
	Title string `json:"title"`
	// SQL are the exact statements the step runs, if any.
	SQL []string `json:"sql,omitempty"`
	// Command is the exact argv the step runs, if any.
	Command []string `json:"command,omitempty"`
	// Undo describes the step's undo, if one exists.
	Undo string `json:"undo,omitempty"`
}

// Hash is the stable hash of the plan: SHA-256 over its canonical JSON
// without ComputedAt and Observed. Two plans with equal content have equal
// hashes.
func (p Plan) Hash() string {
	p.ComputedAt = time.Time{}
	p.Observed = nil
	b, err := json.Marshal(p)
	if err != nil {
		// Plan holds only JSON-safe types; this cannot happen.
		panic(fmt.Sprintf("actions: marshal plan: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Refusal is returned by Action.Plan when a gate says no: the request is
// refused at plan time, with the reason and the figures.
type Refusal struct {
	Reason string
	Gates  []Gate
}

// Error is the reason alone: callers say "refused" in their own words.
func (r *Refusal) Error() string { return r.Reason }

// IsRefusal reports whether err is (or wraps) a Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// StepResult is what one executed step reports.
type StepResult struct {
	// Output is a short human summary (posted in the thread).
	Output string `json:"output,omitempty"`
	// Data is kind-specific result data recorded with the step (e.g. a
	// snapshot taken before a change, needed by the undo).
	Data json.RawMessage `json:"data,omitempty"`
	// Artifacts are files the step produced (e.g. a log bundle).
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Artifact is a file produced by an action.
type Artifact struct {
	Path  string `json:"path"`
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// Action is one action kind.
type Action interface {
	// Kind is the catalog name.
	Kind() string
	// Plan computes, read-only, what Execute will do. A gate that says no
	// is a *Refusal.
	Plan(ctx context.Context, req Request) (Plan, error)
	// Execute runs one step of plan. It must be idempotent: after a crash
	// the runner calls it again for a step that was started but not
	// recorded as done. prior holds the results of the steps already done.
	Execute(ctx context.Context, plan Plan, step Step, prior map[string]StepResult) (StepResult, error)
	// Verify checks that step took effect.
	Verify(ctx context.Context, plan Plan, step Step, res StepResult) error
}

// Undoer is implemented by actions whose steps can be undone.
type Undoer interface {
	Undo(ctx context.Context, plan Plan, step Step, res StepResult) error
}

// Request is what a plan is computed from.
type Request struct {
	Cluster string
	// Params are the raw parameters (from the playbook's offer, a button,
	// or the CLI's --param k=v); the action decodes them into its typed
	// parameters and rejects unknown or invalid ones.
	Params map[string]string
	// AlertStart is the alert group's earliest startsAt (zero when unknown).
	AlertStart time.Time
	// ReceivedAt is when chmedic received the alert (fallback for
	// AlertStart).
	ReceivedAt time.Time
	// RequestedBy names who asked ("slack:U123", "cli:alice").
	RequestedBy string
	// Channel and ThreadTS are the alert's Slack thread (empty from the
	// CLI): an action that produces files (collect_logs) uploads them there.
	Channel  string
	ThreadTS string
	// AnchorSource, when set, says where AlertStart comes from if not from
	// an alert (e.g. "--around 2026-12-01T08:00:00Z"); the manifest shows it.
	AnchorSource string
}

// Execution states.
const (
	ExecRunning     = "running"
	ExecSucceeded   = "succeeded"
	ExecFailed      = "failed"
	ExecPartial     = "partial"     // some steps applied, then one failed
	ExecRolledBack  = "rolled_back" // a failure was undone
	ExecInterrupted = "interrupted" // chmedic stopped mid-run; Resume or Abort
	ExecAborted     = "aborted"
	// ExecStopped: a step of an action that declares itself resumable
	// after a failure (StopResumer) failed — a gate said no, a timeout
	// passed, a command failed — and the run stopped there, waiting for
	// Resume or Abort.
	ExecStopped = "stopped"
)

// Execution is one approved plan to run. ID is the store's execution id;
// the Runner records every step under it.
type Execution struct {
	ID        string
	RequestID string
	Plan      Plan
}

// Progress is reported after each step change (the thread's progress
// message is updated from it).
type Progress struct {
	Index, Total int
	Step         Step
	// State is "running", "done", "failed" or "skipped" (already done
	// before a resume).
	State   string
	Output  string
	Elapsed time.Duration
}

// StepOutcome is a step's final state in an Outcome.
type StepOutcome struct {
	Step   Step       `json:"step"`
	State  string     `json:"state"`
	Result StepResult `json:"result"`
	Error  string     `json:"error,omitempty"`
}

// Outcome is the end of an execution.
type Outcome struct {
	State     string        `json:"state"`
	Steps     []StepOutcome `json:"steps"`
	Artifacts []Artifact    `json:"artifacts,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// Executor runs an execution to its end, step by step, holding the
// cluster's lease (one action at a time per cluster, across processes),
// skipping steps the store records as done (resume), executing and
// verifying the others. The approval flow and the CLI call it.
type Executor interface {
	Run(ctx context.Context, exec Execution, progress func(Progress)) (Outcome, error)
}
