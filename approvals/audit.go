package approvals

import (
	"context"
	"log/slog"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// Audit events.
const (
	EventRequested   = "requested"
	EventPlanned     = "planned"
	EventApproveVote = "vote_approve"
	EventRejectVote  = "vote_reject"
	EventApproved    = "approved"
	EventRejected    = "rejected"
	EventExpired     = "expired"
	EventRefused     = "refused"
	EventStale       = "refused_plan_changed"
	EventStarted     = "execution_started"
	EventFinished    = "execution_finished"
	// EventStep is one step's end (done, failed, skipped on a resume,
	// undone): the audit shows every step of an execution.
	EventStep        = "step"
	EventInterrupted = "execution_interrupted"
	EventResumed     = "resumed"
	EventAborted     = "aborted"
)

// Reasons of refused attempts the Slack transports record.
const (
	RefusedBadSignature = "bad signature"
	RefusedStale        = "stale timestamp"
	RefusedReplay       = "replay"
	RefusedOtherTeam    = "other workspace"
	RefusedMalformed    = "malformed payload"
)

// Attempt is a refused attempt to act, recorded in the audit log: a bad
// signature, a stale timestamp, a replay (reported by the transports), a
// user the policy does not name, an expired or decided request (reported
// by the flow).
type Attempt struct {
	UserID    string // as claimed, when known
	TeamID    string
	Via       string // http | socket | slack | cli
	Reason    string // one of the Refused* constants or a sentence
	Detail    string // e.g. the remote address, the error
	RequestID string
	Kind      string
	Cluster   string
}

// Audit appends to the store's append-only audit log.
type Audit struct {
	Store *store.Store
	Now   func() time.Time
}

// Refused records a refused attempt. The Slack transports call it for
// requests they reject before they reach the ClickHandler.
func (a Audit) Refused(ctx context.Context, at Attempt) error {
	actor := at.UserID
	if actor == "" {
		actor = "unknown"
	}
	detail := at.Detail
	if at.TeamID != "" {
		detail = joinNonEmpty("team "+at.TeamID, detail)
	}
	return a.append(ctx, store.AuditEntry{Actor: actor, Via: at.Via, Event: EventRefused, RequestID: at.RequestID,
		Kind: at.Kind, Cluster: at.Cluster, Outcome: at.Reason, Detail: detail})
}

func (a Audit) append(ctx context.Context, e store.AuditEntry) error {
	if a.Now != nil && e.At.IsZero() {
		e.At = a.Now()
	}
	return a.Store.AppendAudit(context.WithoutCancel(ctx), e)
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// TransportRefusals records the Slack transport's refusals (bad signature,
// stale, replay, malformed) in the audit log: the RefusalRecorder the
// Dispatcher reports to.
type TransportRefusals struct {
	Audit Audit
	Log   *slog.Logger
}

// Refused implements RefusalRecorder.
func (t TransportRefusals) Refused(ctx context.Context, reason, detail string) {
	if err := t.Audit.Refused(ctx, Attempt{Via: "slack", Reason: reason, Detail: detail}); err != nil && t.Log != nil {
		t.Log.Error("audit: recording a refused Slack request failed", "reason", reason, "err", err)
	}
}
