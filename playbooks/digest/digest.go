// Package digest owns chmedic's scheduled health digests: per cluster, the
// figures an engineer reads before anything pages (nodes up, read-only
// replicas, replication and DDL queues, coordination load per node,
// replicated tables, DDL volume), the change against the previous digest
// of the same cluster with growth flagged, chmedic's own health, and one
// verdict line: healthy, watch or act.
//
// A digest is computed with the same bounded diagnosis engine as alerts
// (playbooks/diagnose: one round in flight per cluster, shared by every
// caller), plus two small read-only figures that round does not read (the
// DDL count over the digest's period, from system.query_log). The model
// here has no Slack types; internal/slack renders it as Block Kit, and
// WriteText renders it for a terminal.
package digest

import (
	"time"
)

// Verdict is a digest's one-word answer.
type Verdict string

// Verdicts, from best to worst.
const (
	Healthy Verdict = "healthy"
	Watch   Verdict = "watch"
	Act     Verdict = "act"
)

func (v Verdict) rank() int {
	switch v {
	case Act:
		return 2
	case Watch:
		return 1
	}
	return 0
}

// Worse returns the worse of v and o.
func (v Verdict) Worse(o Verdict) Verdict {
	if o.rank() > v.rank() {
		return o
	}
	if v == "" {
		return Healthy
	}
	return v
}

// Sources of a digest.
const (
	SourceScheduled = "scheduled"
	SourceMissed    = "missed" // a scheduled run posted late, at start-up
	SourceCLI       = "cli"
	SourceSlack     = "slack"
)

// Digest is one digest over one or more clusters.
type Digest struct {
	// Name is the configured digest's name ("" when asked for on demand).
	Name   string `json:"name"`
	Source string `json:"source"`
	// ScheduledAt is the scheduled time a scheduled or missed run stands for.
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	GeneratedAt time.Time  `json:"generated_at"`
	// Verdict is the worst of the clusters' verdicts and chmedic's own.
	Verdict Verdict `json:"verdict"`
	// Headline is the verdict line's text.
	Headline string     `json:"headline"`
	Clusters []*Cluster `json:"clusters"`
	// Chmedic is chmedic's own health since the previous digest.
	Chmedic Health `json:"chmedic"`
	// Notes are things the reader should know about this digest itself
	// (a run skipped because the previous one was still going, a figure
	// that could not be stored).
	Notes []string `json:"notes,omitempty"`
	// Stored says whether this digest was stored as the "previous" of the
	// next one (false with --no-store).
	Stored bool `json:"stored"`
}

// Cluster is the digest of one cluster. Figures the digest could not read
// are null in JSON (nil here) and say why in Notes.
type Cluster struct {
	Name    string   `json:"name"`
	Verdict Verdict  `json:"verdict"`
	Reasons []Reason `json:"reasons,omitempty"`
	// PreviousAt is when the previous digest of this cluster was computed.
	PreviousAt *time.Time `json:"previous_at"`

	// Diagnosis is the round the figures come from.
	Diagnosis DiagnosisSummary `json:"diagnosis"`

	NodesUp                    int      `json:"nodes_up"`
	NodesTotal                 int      `json:"nodes_total"`
	ReadonlyReplicas           *int64   `json:"readonly_replicas"`
	MaxReplicationDelaySeconds *float64 `json:"max_replication_delay_seconds"`
	MaxReplicationQueue        *int64   `json:"max_replication_queue"`
	StuckQueueEntries          *int64   `json:"stuck_queue_entries"`
	DDLQueue                   DDLQueue `json:"ddl_queue"`
	// ReplicatedTables is the largest count on one node (the runbooks'
	// per-server scale); per node in Nodes.
	ReplicatedTables *int64   `json:"replicated_tables"`
	DDL              DDLCount `json:"ddl"`

	Nodes  []Node       `json:"nodes"`
	Keeper []KeeperNode `json:"keeper"`
	// Trends compare the growth figures with the previous digest.
	Trends []Trend `json:"trends"`

	// Alerts are the alerts received for this cluster since the previous digest.
	Alerts Alerts `json:"alerts"`
	// Freezes are the active DDL freezes; Approvals the requests waiting
	// for approval; ActionsRun the actions run since the previous digest.
	Freezes    List `json:"freezes"`
	Approvals  List `json:"approvals"`
	ActionsRun List `json:"actions_run"`

	// Actions are what the matching playbook offers where something needs
	// action (verdict act).
	Actions []Action `json:"actions,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// DiagnosisSummary is what the digest keeps of the round it read.
type DiagnosisSummary struct {
	Verdict  string        `json:"verdict"`
	Status   string        `json:"status"`
	Checks   int           `json:"checks"`
	Findings []string      `json:"findings,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Shared is true when the round was shared with concurrent alerts or
	// reused from the engine's cache.
	Shared       bool     `json:"shared"`
	NotAvailable []string `json:"not_available,omitempty"`
	Skipped      []string `json:"skipped,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// Reason is one thing behind a cluster's verdict.
type Reason struct {
	Level Verdict `json:"level"`
	Text  string  `json:"text"`
	// Advice is what the runbooks say to do about it.
	Advice string `json:"advice,omitempty"`
	// Playbook names the matching playbook.
	Playbook string `json:"playbook,omitempty"`
}

// DDLQueue is the distributed DDL queue.
type DDLQueue struct {
	Unfinished    *int64   `json:"unfinished"`
	OldestSeconds *float64 `json:"oldest_seconds"`
	// NotAvailable says why the queue could not be read (e.g. the server
	// has no system.distributed_ddl_queue).
	NotAvailable string `json:"not_available,omitempty"`
}

// DDLCount is the DDL started over the digest's period, on every node.
type DDLCount struct {
	Count   *int64    `json:"count"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	PerHour *float64  `json:"per_hour"`
	Note    string    `json:"note,omitempty"`
}

// Node is one ClickHouse node's figures.
type Node struct {
	Name              string   `json:"name"`
	Up                bool     `json:"up"`
	Version           string   `json:"version,omitempty"`
	ReplicatedTables  *int64   `json:"replicated_tables"`
	ReadonlyReplicas  *int64   `json:"readonly_replicas"`
	MaxDelaySeconds   *float64 `json:"max_replication_delay_seconds"`
	MaxQueueSize      *int64   `json:"max_replication_queue"`
	StuckQueueEntries *int64   `json:"stuck_queue_entries"`
	DDLCount          *int64   `json:"ddl_count"`
	Note              string   `json:"note,omitempty"`
}

// KeeperNode is one coordination node's figures.
type KeeperNode struct {
	Name         string   `json:"name"`
	Up           bool     `json:"up"`
	State        string   `json:"state"`
	AvgLatencyMs *float64 `json:"avg_latency_ms"`
	MaxLatencyMs *float64 `json:"max_latency_ms"`
	Outstanding  *int64   `json:"outstanding_requests"`
	Znodes       *int64   `json:"znodes"`
	Watches      *int64   `json:"watches"`
	Ephemerals   *int64   `json:"ephemerals"`
	Connections  *int64   `json:"connections"`
	OpenFDs      *int64   `json:"open_fds"`
	MaxFDs       *int64   `json:"max_fds"`
	FDRatio      *float64 `json:"fd_ratio"`
	Note         string   `json:"note,omitempty"`
}

// Trend names: the growth figures compared between digests.
const (
	TrendZnodes           = "znodes"
	TrendWatches          = "watches"
	TrendReplicatedTables = "replicated_tables"
	TrendDDL              = "ddl" // DDL statements per hour over the period
	TrendConnections      = "connections"
)

// TrendNames lists the growth figures in display order.
func TrendNames() []string {
	return []string{TrendZnodes, TrendWatches, TrendReplicatedTables, TrendDDL, TrendConnections}
}

// Trend is one growth figure against the previous digest.
type Trend struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	// Value is now; Previous the previous digest's value (nil when there is
	// none or it was not read); Delta = Value − Previous.
	Value        *float64 `json:"value"`
	Previous     *float64 `json:"previous"`
	Delta        *float64 `json:"delta"`
	DeltaPercent *float64 `json:"delta_percent"`
	// Flagged is set when the growth passes the configured threshold.
	Flagged   bool   `json:"flagged"`
	Threshold string `json:"threshold"`
	Advice    string `json:"advice,omitempty"`
}

// Alerts are the alerts received for a cluster since the previous digest.
type Alerts struct {
	Available bool         `json:"available"`
	Note      string       `json:"note,omitempty"`
	Since     time.Time    `json:"since"`
	ByName    []AlertCount `json:"by_name"`
	// Truncated is set when more notifications arrived than were read.
	Truncated bool `json:"truncated,omitempty"`
}

// AlertCount is one alert name: distinct alerts that fired and the
// notifications Alertmanager sent about them.
type AlertCount struct {
	Name          string `json:"name"`
	Firing        int    `json:"firing"`
	Notifications int    `json:"notifications"`
}

// List is a figure another part of chmedic provides (DDL freezes,
// approvals, actions run). Available is false, and Note says why, when
// this chmedic cannot tell yet: the digest never shows "none" for a thing
// it could not look at.
type List struct {
	Available bool     `json:"available"`
	Note      string   `json:"note,omitempty"`
	Items     []string `json:"items"`
}

// Action is a remediation the matching playbook offers.
type Action struct {
	Kind     string            `json:"kind"`
	Label    string            `json:"label"`
	Params   map[string]string `json:"params"`
	Reason   string            `json:"reason"`
	Playbook string            `json:"playbook"`
	Danger   bool              `json:"danger,omitempty"`
	Confirm  string            `json:"confirm,omitempty"`
	// RequestID is the offered request a button carries (set when the
	// digest is posted; empty in a printed digest).
	RequestID string `json:"request_id,omitempty"`
}

// Health is chmedic's own health since the previous digest.
type Health struct {
	Since time.Time `json:"since"`
	// OutboxBacklog is the number of Slack messages waiting now.
	OutboxBacklog *int64 `json:"outbox_backlog"`
	// GivenUp is the number of messages queued since Since that Slack
	// refused for good.
	GivenUp *int64 `json:"given_up"`
	// Rejections are webhook requests rejected since Since, by reason.
	Rejections     map[string]float64 `json:"rejections"`
	RejectionsNote string             `json:"rejections_note,omitempty"`
	// RejectionCounters is the raw counter snapshot the next digest
	// subtracts, and CountersStarted the start of the process counting.
	RejectionCounters map[string]float64 `json:"rejection_counters,omitempty"`
	CountersStarted   *time.Time         `json:"counters_started,omitempty"`
	// Approvals are requests pending approval (all clusters).
	Approvals List     `json:"approvals"`
	Notes     []string `json:"notes,omitempty"`
	Verdict   Verdict  `json:"verdict"`
}

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }
