package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chmedic/chmedic/actions"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

// replyKey is the keyed reply that stands for a request in its thread:
// posted when the request is made, updated in place as it is approved,
// runs (progress) and ends (result per step).
func replyKey(id string) string { return "request/" + id }

// publish brings a request's thread up to date: its own message and the
// alert message's request states. Requests without a thread (from the
// CLI) have nothing to publish.
func (s *Service) publish(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	r, err := s.st.ApprovalRequest(ctx, id)
	if err != nil || r.ThreadKey == "" {
		return
	}
	if _, err := s.st.Thread(ctx, r.ThreadKey); err != nil {
		return
	}
	msg := chslack.RenderRequest(s.view(ctx, r))
	body, err := json.Marshal(msg)
	if err == nil {
		_, err = s.st.UpsertKeyedReply(ctx, r.ThreadKey, replyKey(r.ID), body)
	}
	if err != nil {
		s.o.Log.Error("approvals: queueing the request message failed", "request_id", id, "err", err)
	}
	if err := s.rerenderThread(ctx, r.ThreadKey); err != nil {
		s.o.Log.Error("approvals: re-rendering the alert message failed", "thread_key", r.ThreadKey, "err", err)
	}
	if s.o.Kick != nil {
		s.o.Kick()
	}
}

func (s *Service) view(ctx context.Context, r store.ApprovalRequest) chslack.RequestView {
	v := chslack.RequestView{ID: r.ID, Kind: r.Kind, Cluster: r.Cluster, State: r.State, RequestedBy: r.RequestedBy, RequestedVia: r.RequestedVia,
		PlanHash: r.PlanHash, ExpiresAt: r.ExpiresAt}
	reason, changes, _ := strings.Cut(r.Reason, "\n")
	v.Reason = reason
	if changes != "" {
		v.Changes = strings.Split(changes, "\n")
	}
	if p, ok := storedPlan(r); ok {
		v.Plan = &p
	}
	d := s.decide(ctx, r)
	v.Approvals, v.Needed, v.RejectedBy = d.Approvals, d.Needed, d.RejectedBy
	switch r.State {
	case store.ReqPending:
		v.Buttons = []string{chslack.ActionApprove, chslack.ActionReject}
	case store.ReqInterrupted, store.ReqStopped:
		v.Buttons = []string{chslack.ActionResume, chslack.ActionAbort}
	case store.ReqStale:
		v.Reoffer = s.reoffer(ctx, r)
	}
	if steps := s.progressOf(r.ID); len(steps) > 0 {
		v.Steps = steps
	} else if e, err := s.st.ApprovalExecutionOf(ctx, r.ID); err == nil && len(e.Outcome) > 0 {
		var o actions.Outcome
		if json.Unmarshal(e.Outcome, &o) == nil {
			for _, st := range o.Steps {
				v.Steps = append(v.Steps, chslack.StepView{Title: st.Step.Title, Node: st.Step.Node, State: st.State, Output: st.Result.Output, Error: st.Error})
			}
		}
	}
	return v
}

// reoffer offers a fresh request of a stale one in its thread (once: the
// offer key is the request's id).
func (s *Service) reoffer(ctx context.Context, r store.ApprovalRequest) string {
	if r.ThreadKey == "" {
		return ""
	}
	id, err := s.st.OfferAction(ctx, store.ActionRequest{OfferKey: "rerequest/" + r.ID, Kind: r.Kind, Params: r.Params, Cluster: r.Cluster,
		GroupKey: r.GroupKey, ThreadKey: r.ThreadKey, AlertStart: r.AlertStart})
	if err != nil {
		s.o.Log.Error("approvals: offering a fresh request failed", "request_id", r.ID, "err", err)
		return ""
	}
	return id
}

// rerenderThread renders the thread's stored report again with the state
// of its requests and queues it as the alert message's update.
func (s *Service) rerenderThread(ctx context.Context, threadKey string) error {
	b, err := s.st.ThreadReport(ctx, threadKey)
	if err != nil {
		return nil // posted before reports were stored: leave it
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("stored report of %q: %w", threadKey, err)
	}
	body, err := s.encode(ctx, threadKey, &rep)
	if err != nil {
		return err
	}
	t, err := s.st.Thread(ctx, threadKey)
	if err != nil {
		return err
	}
	_, err = s.st.UpsertThreadMessage(ctx, t, body)
	return err
}

// SaveAndRender stores a thread's report (the incident processor calls it
// for every message it queues) and renders it with the thread's request
// states, into an outbox body.
func (s *Service) SaveAndRender(ctx context.Context, threadKey string, r *report.Report) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := s.st.SaveThreadReport(ctx, threadKey, b); err != nil {
		return nil, err
	}
	return s.encode(ctx, threadKey, r)
}

func (s *Service) encode(ctx context.Context, threadKey string, r *report.Report) ([]byte, error) {
	// Fail closed, visibly: a kind without a policy says so on its button.
	shown := *r
	shown.Actions = nil
	for _, a := range r.Actions {
		if _, err := s.auth.Policy(a.Kind); err != nil {
			a.Label += " (no approval policy)"
			a.Danger, a.Confirm = false, nil
		}
		shown.Actions = append(shown.Actions, a)
	}
	r = &shown
	msg := chslack.RenderWithRequests(r, s.requestLines(ctx, threadKey))
	var buf bytes.Buffer
	if err := report.WriteText(&buf, r); err != nil {
		return nil, err
	}
	msg.Plain = buf.String() + msg.Plain
	return json.Marshal(msg)
}

// requestLines are the latest request of each kind in the thread.
func (s *Service) requestLines(ctx context.Context, threadKey string) []chslack.RequestLine {
	rs, err := s.st.ApprovalRequests(ctx, nil, threadKey, 50)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var lines []chslack.RequestLine
	for _, r := range rs { // newest first
		if seen[r.Kind] {
			continue
		}
		seen[r.Kind] = true
		d := s.decide(ctx, r)
		line := chslack.RequestLine{Kind: r.Kind, State: r.State, RequestedBy: r.RequestedBy, Approvals: len(d.Approvals), Needed: d.Needed}
		if r.State == store.ReqApproved && strings.HasPrefix(r.Reason, waitingPrefix) {
			line.Note = r.Reason
		}
		lines = append(lines, line)
	}
	return lines
}

// notice posts a new reply in the request's thread for what needs a human
// (an interruption, a refused re-check): an update in place of the
// request's message notifies nobody.
func (s *Service) notice(ctx context.Context, r store.ApprovalRequest, text string) {
	if r.ThreadKey == "" {
		return
	}
	body, err := json.Marshal(chslack.Message{Text: text, Plain: text})
	if err == nil {
		_, err = s.st.EnqueueReply(context.WithoutCancel(ctx), r.ThreadKey, body)
	}
	if err != nil {
		s.o.Log.Error("approvals: posting a notice failed", "request_id", r.ID, "err", err)
	}
}
