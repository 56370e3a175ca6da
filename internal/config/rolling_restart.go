package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// Rolling-restart executors (actions.rolling_restart.executor).
const (
	RestartExecutorCommand = "command"
	RestartExecutorSQL     = "sql"
)

// Rolling-restart orders (actions.rolling_restart.order): where the node
// the alert is about (the alert_node parameter) goes.
const (
	RestartOrderAlertLast  = "alert_last"
	RestartOrderAlertFirst = "alert_first"
)

// RollingRestart configures the rolling_restart action of one cluster
// (clusters[].actions.rolling_restart).
type RollingRestart struct {
	// Executor is how a node is restarted (executor) [command]: command
	// runs Command; sql sends SYSTEM SHUTDOWN with the actions
	// credentials (for a supervisor that brings the server back).
	Executor string `yaml:"executor"`
	// Command is the restart argv template (command), run once per node,
	// never through a shell; fields as collect_logs.command without the
	// window: {{.Host}} {{.Name}} {{.Shard}} {{.Replica}}. Required with
	// executor command.
	Command []string `yaml:"command"`
	// Timeout bounds the restart command, or the SYSTEM SHUTDOWN
	// statement (timeout) [5m].
	Timeout time.Duration `yaml:"timeout"`
	// Order puts the node of the alert last or first (order)
	// [alert_last]; the other nodes keep the config's order, shard by
	// shard.
	Order string `yaml:"order"`
	// MaxReplicaDelay is the replication delay (absolute_delay) a gate
	// accepts on a replica (max_replica_delay) [diagnosis.thresholds.replica_delay_warn].
	MaxReplicaDelay time.Duration `yaml:"max_replica_delay"`
	// MaxReplicationQueue is the replication queue size a gate accepts
	// on a replica, summed over its tables (max_replication_queue) [100].
	MaxReplicationQueue int `yaml:"max_replication_queue"`
	// MaxKeeperLatency is the coordination latency above which a roll is
	// refused (max_keeper_latency) [diagnosis.thresholds.keeper_latency_warn,
	// the stress threshold].
	MaxKeeperLatency time.Duration `yaml:"max_keeper_latency"`
	// HerdWindow refuses a roll while a reconnection herd happened within
	// it (herd_window) [10m].
	HerdWindow time.Duration `yaml:"herd_window"`
	// StopMerges sends SYSTEM STOP MERGES before the restart and waits for
	// the running merges to finish (stop_merges) [false]; in memory only,
	// so it is undone (START MERGES) when the node does not restart.
	StopMerges bool `yaml:"stop_merges"`
	// PollInterval is how often a gate is re-checked (poll_interval) [1s].
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeouts bound each phase of a node (timeouts).
	Timeouts RestartTimeouts `yaml:"timeouts"`
	// Silence creates an Alertmanager silence per restarting node
	// (silence); off without matchers.
	Silence RestartSilence `yaml:"silence"`
}

// RestartTimeouts bound the phases of one node's restart.
type RestartTimeouts struct {
	// Before bounds waiting for the other replicas of the shard to be up,
	// writable and caught up (before) [2m].
	Before time.Duration `yaml:"before"`
	// Drain bounds waiting for running merges to finish after STOP
	// MERGES (drain) [5m].
	Drain time.Duration `yaml:"drain"`
	// Up bounds waiting for the restarted server to answer with a new
	// start time (up) [5m].
	Up time.Duration `yaml:"up"`
	// Tables bounds waiting for its replicated tables to be attached and
	// writable (tables) [5m].
	Tables time.Duration `yaml:"tables"`
	// CatchUp bounds waiting for its replication delay and queue to fall
	// below the thresholds (catch_up) [10m].
	CatchUp time.Duration `yaml:"catch_up"`
}

// RestartSilence is the Alertmanager silence created for a restarting
// node's alerts.
type RestartSilence struct {
	// URL is Alertmanager's API base (url) [alertmanager.url].
	URL string `yaml:"url"`
	// Matchers are Alertmanager matcher templates (matchers), each
	// rendered with the node's fields, e.g. 'instance=~"{{.Host}}:.*"';
	// empty: no silence.
	Matchers []string `yaml:"matchers"`
	// CreatedBy is the silence's createdBy (created_by) [chmedic].
	CreatedBy string `yaml:"created_by"`
}

// Enabled reports whether a silence is to be created.
func (s RestartSilence) Enabled() bool { return len(s.Matchers) > 0 }

func (r *RollingRestart) setDefaults() {
	r.Executor = RestartExecutorCommand
	r.Timeout = 5 * time.Minute
	r.Order = RestartOrderAlertLast
	r.MaxReplicationQueue = 100
	r.HerdWindow = 10 * time.Minute
	r.PollInterval = time.Second
	r.Timeouts = RestartTimeouts{Before: 2 * time.Minute, Drain: 5 * time.Minute, Up: 5 * time.Minute, Tables: 5 * time.Minute, CatchUp: 10 * time.Minute}
	r.Silence.CreatedBy = "chmedic"
}

// fillRollingRestart completes the defaults taken from elsewhere in the
// config (the diagnosis thresholds, alertmanager.url).
func (c *Config) fillRollingRestart() {
	for i := range c.Clusters {
		r := &c.Clusters[i].Actions.RollingRestart
		if r.MaxReplicaDelay == 0 {
			r.MaxReplicaDelay = c.Diagnosis.Thresholds.ReplicaDelayWarn
		}
		if r.MaxKeeperLatency == 0 {
			r.MaxKeeperLatency = c.Diagnosis.Thresholds.KeeperLatencyWarn
		}
		if r.Silence.URL == "" {
			r.Silence.URL = c.Alertmanager.URL
		}
	}
}

func (d *decoder) validateRollingRestart(path string, r *RollingRestart) {
	p := path + ".rolling_restart"
	switch r.Executor {
	case RestartExecutorCommand, RestartExecutorSQL:
	default:
		d.fail(p+".executor", "unknown executor %q (known: command, sql)", r.Executor)
	}
	if len(r.Command) > 0 {
		if strings.TrimSpace(r.Command[0]) == "" {
			d.fail(p+".command[0]", "the program must not be empty")
		}
		if msg := checkTemplates(r.Command); msg != "" {
			d.fail(p+".command", "invalid template: %s", msg)
		}
	}
	if r.Executor == RestartExecutorSQL && len(r.Command) > 0 {
		d.fail(p+".command", "is not used with executor sql; remove it or set executor: command")
	}
	d.positive(p+".timeout", r.Timeout)
	switch r.Order {
	case RestartOrderAlertLast, RestartOrderAlertFirst:
	default:
		d.fail(p+".order", "unknown order %q (known: alert_last, alert_first)", r.Order)
	}
	d.nonNegative(p+".max_replica_delay", r.MaxReplicaDelay)
	if r.MaxReplicationQueue < 0 {
		d.fail(p+".max_replication_queue", "must not be negative, got %d", r.MaxReplicationQueue)
	}
	d.nonNegative(p+".max_keeper_latency", r.MaxKeeperLatency)
	d.positive(p+".herd_window", r.HerdWindow)
	d.positive(p+".poll_interval", r.PollInterval)
	t := &r.Timeouts
	d.positive(p+".timeouts.before", t.Before)
	d.positive(p+".timeouts.drain", t.Drain)
	d.positive(p+".timeouts.up", t.Up)
	d.positive(p+".timeouts.tables", t.Tables)
	d.positive(p+".timeouts.catch_up", t.CatchUp)
	for i, m := range r.Silence.Matchers {
		mp := fmt.Sprintf("%s.silence.matchers[%d]", p, i)
		if msg := checkTemplates([]string{m}); msg != "" {
			d.fail(mp, "invalid template: %s", msg)
			continue
		}
		if _, err := RenderMatcher(m, CommandFields{Host: "h", Name: "n", Shard: 1, Replica: "r"}); err != nil {
			d.fail(mp, "%v", err)
		}
	}
	if r.Silence.Enabled() && r.Silence.URL == "" {
		d.fail(p+".silence.url", "is required with silence matchers (or set alertmanager.url)")
	}
}

// RenderMatcher renders a silence matcher template with a node's fields
// and parses it as an Alertmanager matcher.
func RenderMatcher(tmpl string, f CommandFields) (*labels.Matcher, error) {
	ts, err := ParseArgv([]string{tmpl})
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := ts[0].Execute(&b, f); err != nil {
		return nil, fmt.Errorf("matcher %q: %w", tmpl, err)
	}
	m, err := labels.ParseMatcher(b.String())
	if err != nil {
		return nil, fmt.Errorf("matcher %q renders %q, not an Alertmanager matcher: %w", tmpl, b.String(), err)
	}
	return m, nil
}
