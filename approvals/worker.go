package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chmedic/chmedic/actions"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
)

// Run works until ctx ends: it computes the plans of requested actions,
// executes approved requests (also those approved from the CLI: it polls
// the store), expires requests nobody approved in time, and marks
// executions whose process died interrupted. Executions in flight when ctx
// ends are interrupted and recorded as such.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		s.wg.Wait()
		s.st.StopHeartbeat(context.WithoutCancel(ctx), s.o.Name)
	}()
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		s.Step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

// Step does one pass of the worker's work; plans and executions it starts
// run in the background (Wait waits for them). Exported for tests.
func (s *Service) Step(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := s.st.Heartbeat(ctx, s.o.Name); err != nil {
		s.o.Log.Warn("approvals: heartbeat failed", "err", err)
	}
	pending, err := s.st.ApprovalRequests(ctx, []string{store.ReqPending}, "", 1000)
	if err != nil {
		s.o.Log.Warn("approvals: listing requests failed", "err", err)
		return
	}
	for _, r := range pending {
		if !s.now().Before(r.ExpiresAt) {
			s.expire(ctx, r)
		}
	}
	s.markInterrupted(ctx)
	work, err := s.st.ApprovalRequests(ctx, []string{store.ReqPlanning, store.ReqApproved}, "", 100)
	if err != nil {
		return
	}
	slices.Reverse(work) // oldest first
	for _, r := range work {
		if !s.claimLocal(r.ID) {
			continue
		}
		s.wg.Add(1)
		go func(r store.ApprovalRequest) {
			defer s.wg.Done()
			defer s.releaseLocal(r.ID)
			var err error
			if r.State == store.ReqPlanning {
				err = s.plan(ctx, r.ID)
			} else {
				_, err = s.Execute(ctx, r.ID)
			}
			if err != nil {
				s.o.Log.Error("approvals: request failed", "request_id", r.ID, "kind", r.Kind, "cluster", r.Cluster, "err", err)
			}
		}(r)
	}
}

// Wait waits for the plans and executions Step started.
func (s *Service) Wait() { s.wg.Wait() }

func (s *Service) claimLocal(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[id] {
		return false
	}
	s.inflight[id] = true
	return true
}

func (s *Service) releaseLocal(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, id)
}

func (s *Service) isLocal(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[id]
}

const claimPrefix = "claimed by "

func isServer(name string) bool { return strings.HasPrefix(name, "server ") }

// markInterrupted marks the running requests whose process is gone (a
// previous server instance, or a CLI without a live heartbeat; and no lease
// held by another process) interrupted, reports them in their thread
// with Resume / Abort, and never re-runs them by itself.
func (s *Service) markInterrupted(ctx context.Context) {
	running, err := s.st.ApprovalRequests(ctx, []string{store.ReqRunning}, "", 1000)
	if err != nil || len(running) == 0 {
		return
	}
	live, _ := s.st.LiveWorkers(ctx, s.now().Add(-5*s.o.Poll))
	for _, r := range running {
		runner := strings.TrimPrefix(r.Reason, claimPrefix)
		e, eerr := s.st.ApprovalExecutionOf(ctx, r.ID)
		if eerr == nil {
			runner = e.Runner
		}
		switch {
		case runner == s.o.Name:
			if s.isLocal(r.ID) {
				continue
			}
		case isServer(runner) && isServer(s.o.Name):
			// One server per store: another server's execution is a
			// previous instance's, whatever its last heartbeat says.
		case slices.Contains(live, runner):
			continue
		}
		if s.o.Leases != nil {
			if holder, held, err := s.o.Leases.LeaseHolder(ctx, r.Cluster); err != nil || (held && holder != s.o.Name) {
				continue
			}
		}
		reason := fmt.Sprintf("interrupted: %s stopped while it ran", runner)
		// What the runner found at start-up of the commands the stopped
		// process left running (actions.OrphanReaper).
		found := ""
		if rec, err := s.st.ExecutionForRequest(ctx, r.ID); err == nil {
			if _, note, ok := strings.Cut(rec.Error, actions.StartupNoteSep); ok {
				found = note
				reason += "; " + note
			}
		}
		if err := s.st.TransitionRequest(ctx, r.ID, []string{store.ReqRunning}, store.ReqInterrupted, reason); err != nil {
			continue
		}
		if eerr == nil {
			s.st.FinishApprovalExecution(ctx, e.ID, actions.ExecInterrupted, e.Outcome)
		}
		s.audit.append(ctx, store.AuditEntry{Actor: "chmedic", Event: EventInterrupted, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
			Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: store.ReqInterrupted, Detail: reason})
		s.o.Log.Warn("approvals: execution interrupted by a stop; offering resume or abort", "request_id", r.ID, "kind", r.Kind, "cluster", r.Cluster, "runner", runner)
		s.publish(ctx, r.ID)
		notice := interruptedNotice(r, runner)
		if found != "" {
			notice += " Found at start-up: " + found + "."
		}
		s.notice(ctx, r, notice)
	}
}

// interruptedNotice is the thread's reply about an interrupted execution
// (a crash found at start, or a stop while it ran): it needs a human.
func interruptedNotice(r store.ApprovalRequest, runner string) string {
	return fmt.Sprintf(":double_vertical_bar: %s on %s was interrupted: %s stopped while it ran. Nothing is re-run by itself: Resume (the steps already done are skipped) or Abort it in the request's message.", r.Kind, r.Cluster, runner)
}

// plan computes a clicked request's plan and posts it for approval.
func (s *Service) plan(ctx context.Context, id string) error {
	r, err := s.st.ApprovalRequest(ctx, id)
	if err != nil || r.State != store.ReqPlanning {
		return err
	}
	pol, perr := s.auth.Policy(r.Kind)
	var plan actions.Plan
	if perr == nil && s.o.Planner == nil {
		perr = ErrUnavailable
	}
	if perr == nil {
		plan, perr = s.o.Planner.Plan(ctx, r.Kind, s.actionRequest(ctx, r.ThreadKey, r.Cluster, r.Params, r.AlertStart, r.CreatedAt, r.RequestedVia, r.RequestedBy))
	}
	if perr != nil {
		if ctx.Err() != nil {
			return nil // stopping: plan again at the next start
		}
		reason := "refused at plan time: " + perr.Error()
		if err := s.st.TransitionRequest(ctx, id, []string{store.ReqPlanning}, store.ReqRefused, reason); err != nil {
			return err
		}
		s.audit.append(ctx, store.AuditEntry{Actor: "chmedic", Event: EventRefused, RequestID: id, Kind: r.Kind, Cluster: r.Cluster,
			Outcome: "refused at plan time", Detail: perr.Error()})
		s.publish(ctx, id)
		return nil
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	if err := s.st.SetRequestPlan(ctx, id, b, plan.Hash(), s.now().Add(pol.ExpireAfter)); err != nil {
		return err
	}
	s.audit.append(ctx, store.AuditEntry{Actor: "chmedic", Event: EventPlanned, RequestID: id, Kind: r.Kind, Cluster: r.Cluster,
		Nodes: PlanNodes(plan), PlanHash: plan.Hash(), Outcome: store.ReqPending, Detail: plan.Summary})
	s.publish(ctx, id)
	return nil
}

// Execute runs an approved request, once: it claims the request (approved
// → running, a compare-and-set across processes), re-computes the plan and
// refuses to run when its hash differs from the approved one (saying what
// changed and offering a fresh request), then runs the stored plan with the
// Executor, posting progress by updating the request's message. A resumed
// execution continues the approved plan (the runner skips the steps
// recorded as done) without re-planning, since its own steps changed the
// cluster. It returns the final request, or the request unchanged with a
// nil error when another process claimed it.
func (s *Service) Execute(ctx context.Context, id string) (store.ApprovalRequest, error) {
	r, err := s.st.ApprovalRequest(ctx, id)
	if err != nil {
		return r, err
	}
	// A resume continues an execution that ran; one created by an attempt
	// that found the cluster busy never ran (pending), and is re-checked.
	prevExec, eerr := s.st.ApprovalExecutionOf(ctx, id)
	resume := eerr == nil && prevExec.State != store.ExecutionPending
	if err := s.st.TransitionRequest(ctx, id, []string{store.ReqApproved}, store.ReqRunning, claimPrefix+s.o.Name); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return r, nil
		}
		return r, err
	}
	s.claimLocal(id)
	defer s.releaseLocal(id)
	if why, busy := s.clusterBusy(ctx, r.Cluster); busy {
		return s.wait(ctx, r, r.Reason, why)
	}
	stop := s.heartbeat(ctx)
	defer stop()
	stored, ok := storedPlan(r)
	if !ok {
		return s.end(ctx, r, store.ReqFailed, "the stored plan cannot be read", EventFinished)
	}
	if s.o.Planner == nil || s.o.Executor == nil {
		return s.end(ctx, r, store.ReqFailed, ErrUnavailable.Error(), EventFinished)
	}
	if !resume {
		fresh, err := s.o.Planner.Plan(ctx, r.Kind, s.actionRequest(ctx, r.ThreadKey, r.Cluster, r.Params, r.AlertStart, r.CreatedAt, r.RequestedVia, r.RequestedBy))
		if err != nil {
			if ctx.Err() != nil {
				s.st.TransitionRequest(context.WithoutCancel(ctx), id, []string{store.ReqRunning}, store.ReqApproved, "stopped before the re-check; runs at the next start")
				return r, ctx.Err()
			}
			return s.end(ctx, r, store.ReqRefused, "not run: the plan could not be re-checked before running: "+err.Error(), EventRefused)
		}
		if h := fresh.Hash(); h != r.PlanHash {
			changes := DiffPlans(stored, fresh)
			reason := fmt.Sprintf("not run: the plan re-computed before running differs from the approved one (hash %s, approved %s)", short(h), short(r.PlanHash))
			out, err := s.end(ctx, r, store.ReqStale, reason+"\n"+strings.Join(changes, "\n"), EventStale)
			s.notice(ctx, r, fmt.Sprintf(":arrows_counterclockwise: %s on %s did not run: its plan, re-computed before running, differs from the approved one (the cluster or chmedic's configuration changed: %s). The request's message says what changed and offers a fresh request.",
				r.Kind, r.Cluster, strings.Join(changes, "; ")))
			return out, err
		}
	}
	exec, err := s.st.StartApprovalExecution(ctx, id, s.o.Name)
	if err != nil {
		return s.end(ctx, r, store.ReqFailed, "could not record the execution: "+err.Error(), EventFinished)
	}
	detail := "started"
	if resume {
		detail = "resumed; steps recorded as done are skipped"
	}
	s.audit.append(ctx, store.AuditEntry{Actor: s.o.Name, Event: EventStarted, RequestID: id, Kind: r.Kind, Cluster: r.Cluster,
		Nodes: PlanNodes(stored), PlanHash: r.PlanHash, Outcome: store.ReqRunning, Detail: detail})
	steps := make([]chslack.StepView, len(stored.Steps))
	for i, st := range stored.Steps {
		steps[i] = chslack.StepView{Title: st.Title, Node: st.Node, State: "pending"}
	}
	s.setProgress(id, steps)
	s.publish(ctx, id)
	outcome, runErr := s.o.Executor.Run(ctx, actions.Execution{ID: exec.ID, RequestID: id, Plan: stored}, func(p actions.Progress) {
		s.stepProgress(id, stored, p)
		s.publish(ctx, id)
		if p.State != actions.StepRunning {
			var nodes []string
			if p.Step.Node != "" {
				nodes = []string{p.Step.Node}
			}
			s.audit.append(ctx, store.AuditEntry{Actor: s.o.Name, Event: EventStep, RequestID: id, Kind: r.Kind, Cluster: r.Cluster,
				Nodes: nodes, PlanHash: r.PlanHash, Outcome: p.State, Detail: firstChars(p.Step.ID+": "+p.Output, 1000)})
		}
	})
	if why, busy := isBusy(runErr); busy && (outcome.State == "" || outcome.State == actions.ExecRunning) {
		// Another execution took the cluster between the check and the
		// run: nothing ran.
		s.clearProgress(id)
		return s.wait(ctx, r, r.Reason, why)
	}
	state := outcome.State
	switch {
	case ctx.Err() != nil && (state == "" || state == actions.ExecRunning || state == actions.ExecInterrupted):
		state = store.ReqInterrupted
	case state == "" || state == actions.ExecRunning:
		state = store.ReqFailed
	}
	if runErr != nil && outcome.Error == "" {
		outcome.Error = runErr.Error()
	}
	outcome.State = state
	ob, _ := json.Marshal(outcome)
	wctx := context.WithoutCancel(ctx)
	if err := s.st.FinishApprovalExecution(wctx, exec.ID, state, ob); err != nil {
		s.o.Log.Error("approvals: recording the outcome failed", "request_id", id, "err", err)
	}
	s.clearProgress(id)
	reason := outcomeText(outcome)
	if state == store.ReqStopped {
		return s.stopped(wctx, r, outcome, runErr)
	}
	if state == store.ReqInterrupted {
		reason = "interrupted: chmedic stopped while it ran"
		// A stop while it ran is reported as a crash found at start is:
		// an update of the request's message notifies nobody.
		out, err := s.end(wctx, r, state, reason, EventFinished)
		s.notice(wctx, r, interruptedNotice(r, s.o.Name))
		return out, err
	}
	return s.end(wctx, r, state, reason, EventFinished)
}

// end moves a running request to its final state, audits and posts it.
func (s *Service) end(ctx context.Context, r store.ApprovalRequest, state, reason, event string) (store.ApprovalRequest, error) {
	ctx = context.WithoutCancel(ctx)
	if err := s.st.TransitionRequest(ctx, r.ID, []string{store.ReqRunning}, state, reason); err != nil {
		return r, err
	}
	switch state {
	case store.ReqInterrupted:
		event = EventInterrupted
	case store.ReqStopped:
		if event != EventResumeRefused {
			event = EventStopped
		}
	}
	s.audit.append(ctx, store.AuditEntry{Actor: s.o.Name, Event: event, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
		Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: state, Detail: reason})
	s.publish(ctx, r.ID)
	out, err := s.st.ApprovalRequest(ctx, r.ID)
	if err != nil {
		return r, err
	}
	return out, nil
}

// outcomeText summarises an outcome per node.
func outcomeText(o actions.Outcome) string {
	counts := map[string]int{}
	var failed []string
	for _, st := range o.Steps {
		counts[st.State]++
		if st.Error != "" {
			where := st.Step.ID
			failed = append(failed, where+": "+st.Error)
		}
	}
	var parts []string
	for _, k := range []string{"done", "skipped", "failed", "rolled_back"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	s := o.State
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + " of " + fmt.Sprint(len(o.Steps)) + " steps)"
	}
	if len(failed) > 0 {
		s += "; " + strings.Join(failed, "; ")
	} else if o.Error != "" {
		s += "; " + o.Error
	}
	for _, a := range o.Artifacts {
		s += fmt.Sprintf("; artifact %s (%d bytes)", a.Name, a.Bytes)
	}
	return s
}

// heartbeat keeps this process's heartbeat fresh while it executes (the
// CLI has no worker loop), so no other process marks it interrupted.
func (s *Service) heartbeat(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.st.Heartbeat(ctx, s.o.Name)
	go func() {
		defer close(done)
		t := time.NewTicker(s.o.Poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.st.Heartbeat(ctx, s.o.Name)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (s *Service) setProgress(id string, steps []chslack.StepView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress[id] = steps
}

func (s *Service) clearProgress(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.progress, id)
}

func (s *Service) stepProgress(id string, plan actions.Plan, p actions.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	steps := s.progress[id]
	for i, st := range plan.Steps {
		if st.ID == p.Step.ID && i < len(steps) {
			steps[i].State, steps[i].Output = p.State, p.Output
		}
	}
}

func (s *Service) progressOf(id string) []chslack.StepView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.progress[id])
}

// firstChars cuts s to n bytes at most (on a rune boundary).
func firstChars(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
