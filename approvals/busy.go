package approvals

import (
	"context"
	"errors"
	"strings"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/store"
)

// EventWaiting is audited when an approved request finds its cluster busy
// (another execution holds the cluster's lease) and waits for it.
const EventWaiting = "waiting_for_cluster"

// waitingPrefix starts the reason of an approved request that waits for
// its cluster (the request's message shows it).
const waitingPrefix = "waiting: "

// clusterBusy reports whether another process holds the cluster's action
// lease, and who.
func (s *Service) clusterBusy(ctx context.Context, cluster string) (string, bool) {
	if s.o.Leases == nil {
		return "", false
	}
	holder, held, err := s.o.Leases.LeaseHolder(ctx, cluster)
	if err != nil || !held || holder == s.o.Name {
		return "", false
	}
	return "cluster " + cluster + " is busy: " + holder + " runs another action", true
}

// isBusy reports whether an Executor refused to run because another
// execution holds the cluster's lease (nothing ran).
func isBusy(err error) (string, bool) {
	var held *actions.LeaseHeldError
	if errors.As(err, &held) {
		return held.Error(), true
	}
	return "", false
}

// wait puts a claimed request back to approved: one action at a time per
// cluster, so it runs once the cluster is free (the worker retries it at
// each poll, re-checked like any approved request, or resumed). prev is
// its reason before the claim: the first wait is audited and posted, the
// retries are not.
func (s *Service) wait(ctx context.Context, r store.ApprovalRequest, prev, why string) (store.ApprovalRequest, error) {
	ctx = context.WithoutCancel(ctx)
	reason := waitingPrefix + why + "; it runs once the cluster is free"
	if err := s.st.TransitionRequest(ctx, r.ID, []string{store.ReqRunning}, store.ReqApproved, reason); err != nil {
		return r, err
	}
	if !strings.HasPrefix(prev, waitingPrefix) {
		s.audit.append(ctx, store.AuditEntry{Actor: s.o.Name, Event: EventWaiting, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
			Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: store.ReqApproved, Detail: why})
		s.publish(ctx, r.ID)
	}
	out, err := s.st.ApprovalRequest(ctx, r.ID)
	if err != nil {
		return r, err
	}
	return out, nil
}
