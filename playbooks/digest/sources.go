package digest

import (
	"context"
	"time"

	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// Diagnoser is the bounded diagnosis engine (*diagnose.Engine): one round
// per cluster in flight, shared by every caller, alerts and digests alike.
type Diagnoser interface {
	Diagnose(ctx context.Context, cluster string) (*diagnose.Diagnosis, error)
}

// History stores digests: each one stored is the "previous" of the next
// digest of the same cluster.
type History interface {
	// Previous returns the latest stored digest of the cluster (a digest
	// holding that one cluster), or nil when there is none.
	Previous(ctx context.Context, cluster string) (*Digest, error)
	// Save stores the digest, one record per cluster.
	Save(ctx context.Context, d *Digest) error
}

// AlertsSource counts the alerts received for a cluster.
type AlertsSource interface {
	AlertsSince(ctx context.Context, cluster string, since time.Time) (Alerts, error)
}

// OutboxSource reads the Slack outbox: messages waiting now, and messages
// queued since `since` that were given up on.
type OutboxSource interface {
	OutboxHealth(ctx context.Context, since time.Time) (backlog, givenUp int64, err error)
}

// RejectionsSource reads the webhook rejections counted by this process
// (the chmedic_webhook_rejected_total counter), by reason, and when the
// process started counting. ok is false when this process does not serve
// the webhook (e.g. `chmedic digest` run from a shell).
type RejectionsSource interface {
	Rejections(ctx context.Context) (byReason map[string]float64, started time.Time, ok bool, err error)
}

// FreezesSource lists the active DDL freezes of a cluster (the DDL freeze
// action provides it once it exists).
type FreezesSource interface {
	ActiveFreezes(ctx context.Context, cluster string) ([]string, error)
}

// ApprovalsSource lists the action requests pending approval ("" cluster:
// all clusters); the approval flow provides it.
type ApprovalsSource interface {
	PendingApprovals(ctx context.Context, cluster string) ([]string, error)
}

// ActionsSource lists the actions run on a cluster since a time; the
// approval flow provides it.
type ActionsSource interface {
	ActionsRunSince(ctx context.Context, cluster string, since time.Time) ([]string, error)
}

// PlaybookAction is an action a playbook offers.
type PlaybookAction struct {
	Kind    string
	Label   string
	Params  map[string]string
	Danger  bool
	Confirm string
}

// Playbooks looks up a playbook's title and actions by name (the loaded
// set, so that a playbook replaced in playbooks.dir is honoured).
type Playbooks func(name string) (title string, actions []PlaybookAction, ok bool)

// ClusterNodes returns a cluster's ClickHouse nodes with their bounded
// connections (the same ones the engine uses, so the per-node query bound
// holds for the digest's own reads too).
type ClusterNodes func(cluster string) []diagnose.ClickHouseNode

const (
	notYetFreezes   = "not available yet: this chmedic has no DDL freeze action"
	notYetApprovals = "not available yet: this chmedic has no approval flow"
	notYetActions   = "not available yet: this chmedic runs no actions"
)
