package app

import (
	"context"
	"fmt"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// digestListLimit bounds what one digest lists of requests and executions.
const digestListLimit = 200

// storeApprovals lists the requests waiting for a decision (pending
// approval, approved but not started, interrupted or stopped awaiting
// Resume or Abort) for the digest.
type storeApprovals struct{ st *store.Store }

func (a storeApprovals) PendingApprovals(ctx context.Context, cluster string) ([]string, error) {
	rs, err := a.st.ApprovalRequests(ctx, []string{store.ReqPending, store.ReqApproved, store.ReqInterrupted, store.ReqStopped}, "", digestListLimit)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rs {
		if cluster != "" && r.Cluster != cluster {
			continue
		}
		line := fmt.Sprintf("%s %s, requested by %s", r.Kind, r.State, r.RequestedBy)
		if r.State == store.ReqPending && !r.ExpiresAt.IsZero() {
			line += ", expires " + r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		out = append(out, line)
	}
	return out, nil
}

// storeActionLog lists the executions of a cluster since a time, with
// their state.
type storeActionLog struct{ st *store.Store }

func (a storeActionLog) ActionsRunSince(ctx context.Context, cluster string, since time.Time) ([]string, error) {
	es, err := a.st.ExecutionsSince(ctx, cluster, since, digestListLimit)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(es))
	for _, e := range es {
		at := e.CreatedAt
		if !e.StartedAt.IsZero() {
			at = e.StartedAt
		}
		by := "chmedic collect"
		if e.RequestID != "" {
			by = "request " + e.RequestID
		}
		out = append(out, fmt.Sprintf("%s %s at %s (%s)", e.Kind, e.State, at.UTC().Format("2006-01-02 15:04 UTC"), by))
	}
	return out, nil
}
