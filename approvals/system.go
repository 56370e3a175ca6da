package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// ChmedicActor is who chmedic's own requests are recorded and audited as.
const ChmedicActor = "chmedic"

// RunAsChmedic requests an action on chmedic's own authority and runs it:
// only for the undo of an action already approved (the lift of a DDL
// freeze at its expiry), which needs no approval of its own. No policy and
// no votes: the request is recorded approved by "chmedic" with the reason,
// audited (requested, approved, started, finished) and executed like any
// other, through the Executor and its lease. threadKey, when set, is the
// thread the result is posted in. It returns the final request; an
// execution another process claimed first returns it unchanged.
func (s *Service) RunAsChmedic(ctx context.Context, kind, cluster, threadKey, reason string) (store.ApprovalRequest, error) {
	if s.o.Planner == nil || s.o.Executor == nil {
		return store.ApprovalRequest{}, ErrUnavailable
	}
	received := s.now().UTC().Truncate(time.Millisecond)
	params := map[string]string{}
	plan, err := s.o.Planner.Plan(ctx, kind, s.actionRequest(ctx, threadKey, cluster, params, time.Time{}, received, ChmedicActor, ChmedicActor))
	if err != nil {
		s.audit.append(ctx, store.AuditEntry{Actor: ChmedicActor, Via: ChmedicActor, Event: EventRefused, Kind: kind, Cluster: cluster,
			Outcome: "refused at plan time", Detail: reason + ": " + err.Error()})
		return store.ApprovalRequest{}, fmt.Errorf("%s on %s: %w", kind, cluster, err)
	}
	b, _ := json.Marshal(plan)
	r, _, err := s.st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: kind, Cluster: cluster, Params: params, ThreadKey: threadKey,
		RequestedBy: ChmedicActor, RequestedVia: ChmedicActor, State: store.ReqApproved, Reason: "by chmedic: " + reason,
		Plan: b, PlanHash: plan.Hash(), CreatedAt: received, ExpiresAt: received.Add(time.Hour)})
	if err != nil {
		return r, err
	}
	s.audit.append(ctx, store.AuditEntry{Actor: ChmedicActor, Via: ChmedicActor, Event: EventRequested, RequestID: r.ID, Kind: kind, Cluster: cluster,
		Nodes: PlanNodes(plan), PlanHash: r.PlanHash, Outcome: store.ReqApproved, Detail: plan.Summary})
	s.audit.append(ctx, store.AuditEntry{Actor: ChmedicActor, Via: ChmedicActor, Event: EventApproved, RequestID: r.ID, Kind: kind, Cluster: cluster,
		Nodes: PlanNodes(plan), PlanHash: r.PlanHash, Outcome: store.ReqApproved, Detail: reason + " (the undo of an approved action needs no approval)"})
	s.publish(ctx, r.ID)
	return s.Execute(ctx, r.ID)
}

// Notice posts text as a new reply in a thread (a reminder, an
// announcement); nothing when threadKey is empty.
func (s *Service) Notice(ctx context.Context, threadKey string, body []byte) error {
	if threadKey == "" {
		return nil
	}
	_, err := s.st.EnqueueReply(context.WithoutCancel(ctx), threadKey, body)
	if err == nil && s.o.Kick != nil {
		s.o.Kick()
	}
	return err
}

// Append records an audit entry written by another part of chmedic (the
// DDL freeze keeper's reminders).
func (a Audit) Append(ctx context.Context, e store.AuditEntry) error { return a.append(ctx, e) }
