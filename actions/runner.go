package actions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/store"
)

// RunStore is what the Runner records executions in; *store.Store
// implements it.
type RunStore interface {
	Execution(ctx context.Context, id string) (store.ExecutionRecord, error)
	ExecutionsInState(ctx context.Context, state string) ([]store.ExecutionRecord, error)
	StartExecution(ctx context.Context, id, holder string) error
	FinishExecution(ctx context.Context, id, state string, outcome []byte, errMsg string) error
	SetExecutionStateIf(ctx context.Context, id, to, errMsg string, from ...string) (bool, error)
	Steps(ctx context.Context, executionID string) ([]store.StepRecord, error)
	StartStep(ctx context.Context, executionID string, index int, stepID string) error
	FinishStep(ctx context.Context, executionID, stepID, state string, result []byte, errMsg string) error
	AcquireLease(ctx context.Context, cluster, holder, executionID string, ttl time.Duration) (store.Lease, bool, error)
	RenewLease(ctx context.Context, cluster, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, cluster, holder string) error
	LeaseOf(ctx context.Context, cluster string) (store.Lease, bool, error)
}

var _ RunStore = (*store.Store)(nil)

// Step states recorded in the store and reported in Outcome.
const (
	StepRunning    = "running"
	StepDone       = "done"
	StepFailed     = "failed"
	StepSkipped    = "skipped" // done before a resume; not run again
	StepUndone     = "undone"
	StepUndoFailed = "undo_failed"
	StepNotRun     = "not_run"
)

// RunnerOptions tune a Runner.
type RunnerOptions struct {
	// Holder identifies this process in leases (default HolderID()).
	Holder string
	// LeaseTTL is how long a lease lives without renewal (default 30s); it
	// is renewed every LeaseTTL/3 while an execution runs. A crashed
	// holder's lease is taken over after it expires (or at once on the
	// same host once its process is gone).
	LeaseTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Registerer receives the chmedic_action_* metrics (nil: not
	// registered).
	Registerer prometheus.Registerer
}

// Runner is the Executor: it runs executions recorded in the store, one at
// a time per cluster across processes, resuming after the last done step.
type Runner struct {
	st      RunStore
	reg     Registry
	opts    RunnerOptions
	metrics *runnerMetrics

	// running is the execution this process runs per cluster: the store's
	// lease cannot tell two Runs of one holder apart.
	mu      sync.Mutex
	running map[string]string
}

var _ Executor = (*Runner)(nil)

// NewRunner returns a Runner recording into st and running the actions of
// reg.
func NewRunner(st RunStore, reg Registry, opts RunnerOptions) *Runner {
	if opts.Holder == "" {
		opts.Holder = HolderID()
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{st: st, reg: reg, opts: opts, metrics: newRunnerMetrics(opts.Registerer), running: map[string]string{}}
}

// Holder returns this runner's lease holder id.
func (r *Runner) Holder() string { return r.opts.Holder }

// HolderID returns a lease holder id for this process: host/pid/random.
func HolderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// LeaseHeldError is returned by Run when another live holder holds the
// cluster's lease.
type LeaseHeldError struct{ Lease store.Lease }

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("cluster %q is busy: %s runs execution %s (lease until %s)", e.Lease.Cluster, e.Lease.Holder, e.Lease.ExecutionID, e.Lease.ExpiresAt.Format(time.RFC3339))
}

// ErrNotRunnable is returned by Run for an execution that must not run
// (aborted).
var ErrNotRunnable = errors.New("execution cannot run")

// Terminal reports whether an execution state is final.
func Terminal(state string) bool {
	switch state {
	case ExecSucceeded, ExecFailed, ExecPartial, ExecRolledBack, ExecAborted:
		return true
	}
	return false
}

// LeaseHolder returns the cluster's lease when a live holder holds it (not
// expired, and — for a holder on this host — its process still exists).
// The CLI uses it to tell whether a server will execute an approved
// request or it must run in-process.
func (r *Runner) LeaseHolder(ctx context.Context, cluster string) (store.Lease, bool, error) {
	l, ok, err := r.st.LeaseOf(ctx, cluster)
	if err != nil || !ok {
		return store.Lease{}, false, err
	}
	if !r.leaseLive(l) {
		return store.Lease{}, false, nil
	}
	return l, true, nil
}

func (r *Runner) leaseLive(l store.Lease) bool {
	if !l.ExpiresAt.After(r.opts.Now()) {
		return false
	}
	if l.Holder == r.opts.Holder {
		return true
	}
	return !holderGone(l.Holder)
}

// holderGone reports whether holder is a process on this host that no
// longer exists. It reads HolderID's host/pid/… and the process names the
// server and the CLI hold leases under ("server host:pid", "cli host:pid").
func holderGone(holder string) bool {
	hostPart, pidPart, ok := holderHostPID(holder)
	if !ok {
		return false
	}
	host, _ := os.Hostname()
	if hostPart != host {
		return false
	}
	pid, err := strconv.Atoi(pidPart)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false
	}
	return !processAlive(pid)
}

func holderHostPID(holder string) (host, pid string, ok bool) {
	if parts := strings.Split(holder, "/"); len(parts) >= 3 {
		return parts[0], parts[1], true
	}
	if _, rest, found := strings.Cut(holder, " "); found {
		if i := strings.LastIndexByte(rest, ':'); i > 0 {
			return rest[:i], rest[i+1:], true
		}
	}
	return "", "", false
}

// acquire takes the cluster's lease, taking over one held by a process of
// this host that is gone.
func (r *Runner) acquire(ctx context.Context, cluster, execID string) error {
	cur, ok, err := r.st.AcquireLease(ctx, cluster, r.opts.Holder, execID, r.opts.LeaseTTL)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if holderGone(cur.Holder) {
		r.opts.Log.Warn("taking over the lease of a process that is gone", "cluster", cluster, "holder", cur.Holder, "execution", cur.ExecutionID)
		if err := r.st.ReleaseLease(ctx, cluster, cur.Holder); err != nil {
			return err
		}
		cur, ok, err = r.st.AcquireLease(ctx, cluster, r.opts.Holder, execID, r.opts.LeaseTTL)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return &LeaseHeldError{Lease: cur}
}

// Run runs exec to its end (see Executor). exec.ID must be an execution in
// the store (store.CreateExecution); exec.Plan, when set, must hash to the
// recorded plan hash, and is otherwise loaded from the store. An execution
// already ended returns its recorded outcome without running anything; one
// aborted returns ErrNotRunnable, and so does one recorded running whose
// holder is gone (never resumed silently: MarkInterrupted marks it, and the
// approval flow offers Resume or Abort). Steps recorded done are skipped (reported
// "skipped"); a step recorded running (a crash mid-step) runs again, which
// is safe because Execute is idempotent. When ctx ends mid-run the
// execution is recorded interrupted (Resume runs it again with Run). A
// step that fails in an action declaring StopResumer leaves the execution
// stopped; Run of a stopped execution first asks the action to re-check
// (ResumeCheck): a refusal returns a *ResumeRefusedError with the
// execution still stopped and nothing run, otherwise it continues from the
// stopped step.
func (r *Runner) Run(ctx context.Context, exec Execution, progress func(Progress)) (Outcome, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	rec, err := r.st.Execution(ctx, exec.ID)
	if err != nil {
		return Outcome{}, err
	}
	if rec.State == ExecAborted {
		return Outcome{State: ExecAborted}, fmt.Errorf("execution %s: %w: it was aborted", exec.ID, ErrNotRunnable)
	}
	if Terminal(rec.State) {
		var out Outcome
		if len(rec.Outcome) > 0 {
			if err := json.Unmarshal(rec.Outcome, &out); err != nil {
				return Outcome{}, fmt.Errorf("execution %s: recorded outcome: %w", exec.ID, err)
			}
		}
		out.State = rec.State
		return out, nil
	}
	plan := exec.Plan
	if plan.Kind == "" {
		if err := json.Unmarshal(rec.Plan, &plan); err != nil {
			return Outcome{}, fmt.Errorf("execution %s: recorded plan: %w", exec.ID, err)
		}
	}
	if rec.PlanHash != "" && plan.Hash() != rec.PlanHash {
		return Outcome{}, fmt.Errorf("execution %s: the plan given hashes to %s, the recorded one to %s", exec.ID, plan.Hash(), rec.PlanHash)
	}
	action, ok := r.reg[plan.Kind]
	if !ok {
		return Outcome{}, fmt.Errorf("execution %s: no action %q in this chmedic", exec.ID, plan.Kind)
	}
	r.mu.Lock()
	if other, busy := r.running[plan.Cluster]; busy {
		r.mu.Unlock()
		l, _, _ := r.st.LeaseOf(ctx, plan.Cluster)
		if l.Holder == "" {
			l = store.Lease{Cluster: plan.Cluster, Holder: r.opts.Holder, ExecutionID: other}
		}
		return Outcome{}, &LeaseHeldError{Lease: l}
	}
	r.running[plan.Cluster] = exec.ID
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, plan.Cluster)
		r.mu.Unlock()
	}()
	if rec.State == ExecRunning {
		// Left running by a holder that is gone, or running elsewhere now.
		if l, held, err := r.LeaseHolder(ctx, plan.Cluster); err == nil && held && l.Holder != r.opts.Holder {
			return Outcome{}, &LeaseHeldError{Lease: l}
		}
		return Outcome{}, fmt.Errorf("execution %s: %w: it was left running by %s, which stopped; it must be marked interrupted (Runner.MarkInterrupted, done at start-up) and then resumed", exec.ID, ErrNotRunnable, rec.Holder)
	}
	if err := r.acquire(ctx, plan.Cluster, exec.ID); err != nil {
		return Outcome{}, err
	}
	// The lease is released on every return below, with a context that
	// outlives ctx.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.st.ReleaseLease(rctx, plan.Cluster, r.opts.Holder); err != nil {
			r.opts.Log.Error("release lease", "cluster", plan.Cluster, "err", err)
		}
	}()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewDone := make(chan struct{})
	go r.renew(runCtx, cancel, plan.Cluster, renewDone)
	defer func() { cancel(nil); <-renewDone }()

	if rec.State == ExecStopped {
		// Stopped at a failed step: the action re-checks before anything
		// runs again; a refusal leaves it stopped.
		sr, ok := action.(StopResumer)
		if !ok {
			return Outcome{}, fmt.Errorf("execution %s: %w: it is stopped but %s cannot resume after a failure", exec.ID, ErrNotRunnable, plan.Kind)
		}
		if out, err := r.checkResume(runCtx, rec, sr, plan); err != nil {
			return out, err
		}
	}
	if err := r.st.StartExecution(ctx, exec.ID, r.opts.Holder); err != nil {
		return Outcome{}, err
	}
	log := r.opts.Log.With("execution", exec.ID, "kind", plan.Kind, "cluster", plan.Cluster)
	log.Info("execution started", "steps", len(plan.Steps), "holder", r.opts.Holder)
	return r.run(ctx, runCtx, exec.ID, action, plan, progress, log)
}

func (r *Runner) renew(ctx context.Context, cancel context.CancelCauseFunc, cluster string, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := r.st.RenewLease(ctx, cluster, r.opts.Holder, r.opts.LeaseTTL)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.opts.Log.Warn("renew lease", "cluster", cluster, "err", err)
				continue // retried; the lease lasts LeaseTTL
			}
			if !ok {
				cancel(errLeaseLost)
				return
			}
		}
	}
}

var errLeaseLost = errors.New("the cluster's lease was lost (expired and taken over)")

func (r *Runner) run(ctx, runCtx context.Context, id string, action Action, plan Plan, progress func(Progress), log *slog.Logger) (Outcome, error) {
	recs, err := r.st.Steps(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	byID := map[string]store.StepRecord{}
	for _, s := range recs {
		byID[s.StepID] = s
	}
	out := Outcome{Steps: make([]StepOutcome, len(plan.Steps))}
	for i, s := range plan.Steps {
		out.Steps[i] = StepOutcome{Step: s, State: StepNotRun}
	}
	prior := map[string]StepResult{}
	total := len(plan.Steps)
	failed := -1
	var failErr error
	for i, step := range plan.Steps {
		if rec, ok := byID[step.ID]; ok && rec.State == StepDone {
			var res StepResult
			if len(rec.Result) > 0 {
				if err := json.Unmarshal(rec.Result, &res); err != nil {
					return Outcome{}, fmt.Errorf("execution %s step %s: recorded result: %w", id, step.ID, err)
				}
			}
			prior[step.ID] = res
			r.metrics.steps.WithLabelValues(plan.Kind, StepSkipped).Inc()
			out.Steps[i] = StepOutcome{Step: step, State: StepSkipped, Result: res}
			progress(Progress{Index: i + 1, Total: total, Step: step, State: StepSkipped, Output: res.Output})
			continue
		}
		if err := r.st.StartStep(ctx, id, i, step.ID); err != nil {
			return Outcome{}, err
		}
		progress(Progress{Index: i + 1, Total: total, Step: step, State: StepRunning})
		start := r.opts.Now()
		var recorded *store.StepRecord
		if rec, ok := byID[step.ID]; ok {
			recorded = &rec
		}
		stepCtx := r.withCheckpoint(runCtx, id, step, recorded, func(text string) {
			progress(Progress{Index: i + 1, Total: total, Step: step, State: StepRunning, Output: text, Elapsed: r.opts.Now().Sub(start)})
		})
		res, err := action.Execute(stepCtx, plan, step, prior)
		if err == nil {
			if verr := action.Verify(stepCtx, plan, step, res); verr != nil {
				err = fmt.Errorf("verify: %w", verr)
			}
		}
		elapsed := r.opts.Now().Sub(start)
		r.metrics.duration.WithLabelValues(plan.Kind).Observe(elapsed.Seconds())
		if err != nil && runCtx.Err() != nil {
			// Stopped from outside (shutdown, lost lease): not the step's
			// failure. The step stays "running" and runs again on resume.
			cause := context.Cause(runCtx)
			out.Steps[i] = StepOutcome{Step: step, State: StepRunning, Error: cause.Error()}
			out.State, out.Error = ExecInterrupted, fmt.Sprintf("interrupted during step %s: %v", step.ID, cause)
			if errors.Is(cause, errLeaseLost) {
				// Another holder took the execution over: its state is
				// theirs to write now.
				log.Error("lease lost during a step; not recording anything more", "step", step.ID)
				return out, fmt.Errorf("execution %s: %w", id, cause)
			}
			r.finish(ctx, id, plan.Kind, &out, log)
			return out, fmt.Errorf("execution %s: %w", id, cause)
		}
		data, _ := json.Marshal(res)
		if err != nil {
			log.Warn("step failed", "step", step.ID, "err", err)
			if ferr := r.st.FinishStep(ctx, id, step.ID, StepFailed, data, err.Error()); ferr != nil {
				return Outcome{}, ferr
			}
			out.Steps[i] = StepOutcome{Step: step, State: StepFailed, Result: res, Error: err.Error()}
			progress(Progress{Index: i + 1, Total: total, Step: step, State: StepFailed, Output: err.Error(), Elapsed: elapsed})
			failed, failErr = i, err
			prior[step.ID] = res
			r.metrics.steps.WithLabelValues(plan.Kind, StepFailed).Inc()
			break
		}
		if err := r.st.FinishStep(ctx, id, step.ID, StepDone, data, ""); err != nil {
			return Outcome{}, err
		}
		prior[step.ID] = res
		r.metrics.steps.WithLabelValues(plan.Kind, StepDone).Inc()
		out.Steps[i] = StepOutcome{Step: step, State: StepDone, Result: res}
		progress(Progress{Index: i + 1, Total: total, Step: step, State: StepDone, Output: res.Output, Elapsed: elapsed})
	}
	for _, s := range out.Steps {
		if s.State == StepDone || s.State == StepSkipped {
			out.Artifacts = append(out.Artifacts, s.Result.Artifacts...)
		}
	}
	if failed < 0 {
		out.State = ExecSucceeded
		r.finish(ctx, id, plan.Kind, &out, log)
		return out, nil
	}
	if sr, ok := action.(StopResumer); ok && sr.StopsAt(plan, plan.Steps[failed]) {
		// Stopped, resumable: no undo in reverse; the step took back what
		// must not wait for the decision (StopResumer).
		out.State = ExecStopped
		out.Error = fmt.Sprintf("stopped at step %s: %v", plan.Steps[failed].ID, failErr)
		r.finish(ctx, id, plan.Kind, &out, log)
		return out, nil
	}
	out.Error = fmt.Sprintf("step %s failed: %v", plan.Steps[failed].ID, failErr)
	applied := 0
	for _, s := range out.Steps[:failed] {
		if s.State == StepDone || s.State == StepSkipped {
			applied++
		}
	}
	undoer, canUndo := action.(Undoer)
	switch {
	case canUndo:
		out.State = r.undo(ctx, id, undoer, plan, &out, failed, progress, log)
	case applied > 0:
		out.State = ExecPartial
	default:
		out.State = ExecFailed
	}
	r.finish(ctx, id, plan.Kind, &out, log)
	return out, nil
}

// undo undoes the failed step (Undo must accept a step that did not take
// effect) and the done ones before it, in reverse order, and returns the
// outcome: rolled_back when every undo succeeded, partial otherwise.
func (r *Runner) undo(ctx context.Context, id string, u Undoer, plan Plan, out *Outcome, failed int, progress func(Progress), log *slog.Logger) string {
	state := ExecRolledBack
	total := len(plan.Steps)
	for i := failed; i >= 0; i-- {
		so := &out.Steps[i]
		if i != failed && so.State != StepDone && so.State != StepSkipped {
			continue
		}
		// Undo gets its own bound: the execution's context may be ending,
		// and a half-applied change must still be taken back.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		err := u.Undo(uctx, plan, so.Step, so.Result)
		cancel()
		st, msg := StepUndone, ""
		if err != nil {
			st, msg, state = StepUndoFailed, err.Error(), ExecPartial
			log.Error("undo failed", "step", so.Step.ID, "err", err)
		}
		if i == failed {
			// The failed step keeps "failed" as its state; the undo is in
			// its error text.
			if err != nil {
				so.Error += "; undo failed: " + msg
			} else {
				so.Error += "; undone"
			}
			r.st.FinishStep(ctx, id, so.Step.ID, StepFailed, nil, so.Error)
			continue
		}
		so.State, so.Error = st, msg
		if ferr := r.st.FinishStep(ctx, id, so.Step.ID, st, nil, msg); ferr != nil {
			log.Error("record undo", "step", so.Step.ID, "err", ferr)
		}
		progress(Progress{Index: i + 1, Total: total, Step: so.Step, State: st, Output: msg})
	}
	return state
}

func (r *Runner) finish(ctx context.Context, id, kind string, out *Outcome, log *slog.Logger) {
	r.metrics.executions.WithLabelValues(kind, out.State).Inc()
	data, _ := json.Marshal(out)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.st.FinishExecution(fctx, id, out.State, data, out.Error); err != nil {
		log.Error("record outcome", "err", err)
	}
	log.Info("execution ended", "state", out.State, "err", out.Error)
}

// Abort marks an execution that is not running (interrupted, stopped, or
// pending)
// aborted: it will never run. A running one with a live lease is refused.
// What the interrupted step left behind is then taken back (CleanUp; see
// AbortAndCleanUp for its report).
func (r *Runner) Abort(ctx context.Context, id, reason string) error {
	_, err := r.AbortAndCleanUp(ctx, id, reason)
	return err
}

func (r *Runner) abort(ctx context.Context, id, reason string) error {
	ok, err := r.st.SetExecutionStateIf(ctx, id, ExecAborted, reason, ExecInterrupted, ExecStopped, store.ExecutionPending)
	if err != nil {
		return err
	}
	if !ok {
		rec, err := r.st.Execution(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("execution %s is %s: only an interrupted, stopped or pending execution can be aborted", id, rec.State)
	}
	return nil
}

// MarkInterrupted marks the executions recorded running whose process is
// gone (and kills the commands they left running past their deadline, see
// OrphanReaper; the others are named in the execution's error) — the cluster's lease expired, released, held for another
// execution, or held by a process of this host that no longer exists — as
// interrupted, and returns them. Call it at start-up: the approval flow
// reports them in their threads and offers Resume or Abort. An execution
// whose holder still holds a live lease (a CLI break-glass run, another
// server) is left alone.
func (r *Runner) MarkInterrupted(ctx context.Context) ([]store.ExecutionRecord, error) {
	running, err := r.st.ExecutionsInState(ctx, ExecRunning)
	if err != nil {
		return nil, err
	}
	var out []store.ExecutionRecord
	for _, e := range running {
		l, ok, err := r.st.LeaseOf(ctx, e.Cluster)
		if err != nil {
			return out, err
		}
		if ok && l.ExecutionID == e.ID && r.leaseLive(l) {
			continue
		}
		why := fmt.Sprintf("chmedic (%s) stopped while this execution ran", e.Holder)
		changed, err := r.st.SetExecutionStateIf(ctx, e.ID, ExecInterrupted, why, ExecRunning)
		if err != nil {
			return out, err
		}
		if ok && l.ExecutionID == e.ID && l.Holder != r.opts.Holder {
			r.st.ReleaseLease(ctx, e.Cluster, l.Holder)
		}
		if changed {
			if note := r.reapAtStartup(ctx, e.ID, e.Plan); note != "" {
				why += StartupNoteSep + note
				if _, err := r.st.SetExecutionStateIf(ctx, e.ID, ExecInterrupted, why, ExecInterrupted); err != nil {
					r.opts.Log.Error("record the commands found at start-up", "execution", e.ID, "err", err)
				}
				r.opts.Log.Warn("command left running by the stopped chmedic", "execution", e.ID, "found", note)
			}
			e.State, e.Error = ExecInterrupted, why
			out = append(out, e)
			r.opts.Log.Warn("execution interrupted by a stop of chmedic", "execution", e.ID, "kind", e.Kind, "cluster", e.Cluster, "holder", e.Holder)
		}
	}
	return out, nil
}
