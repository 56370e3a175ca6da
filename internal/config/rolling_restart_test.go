package config

import (
	"strings"
	"testing"
	"time"
)

func TestRollingRestartDefaults(t *testing.T) {
	c := mustParse(t, "alertmanager: {url: 'http://am:9093'}\n"+clusterWithActions(
		"      rolling_restart:",
		"        command: [ssh, '{{.Host}}', sudo, systemctl, restart, clickhouse-server]",
		"        silence: {matchers: ['instance=~\"{{.Host}}:.*\"']}",
	), nil, nil)
	r := c.Clusters[0].Actions.RollingRestart
	if r.Executor != RestartExecutorCommand || r.Timeout != 5*time.Minute || r.Order != RestartOrderAlertLast || r.HerdWindow != 10*time.Minute {
		t.Errorf("rolling_restart = %+v", r)
	}
	// One default each: the gate thresholds are the diagnosis', the
	// silence's URL Alertmanager's.
	if r.MaxReplicaDelay != c.Diagnosis.Thresholds.ReplicaDelayWarn || r.MaxKeeperLatency != c.Diagnosis.Thresholds.KeeperLatencyWarn || r.MaxReplicationQueue != 100 {
		t.Errorf("thresholds = %s %s %d", r.MaxReplicaDelay, r.MaxKeeperLatency, r.MaxReplicationQueue)
	}
	if r.Silence.URL != "http://am:9093" || !r.Silence.Enabled() || r.Silence.CreatedBy != "chmedic" {
		t.Errorf("silence = %+v", r.Silence)
	}
	if r.Timeouts != (RestartTimeouts{Before: 2 * time.Minute, Drain: 5 * time.Minute, Up: 5 * time.Minute, Tables: 5 * time.Minute, CatchUp: 10 * time.Minute}) {
		t.Errorf("timeouts = %+v", r.Timeouts)
	}
	m, err := RenderMatcher(r.Silence.Matchers[0], CommandFields{Host: "10.0.0.1"})
	if err != nil || m.String() != `instance=~"10.0.0.1:.*"` {
		t.Errorf("matcher %v %v", m, err)
	}
}

func TestRollingRestartErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"unknown executor", []string{"      rolling_restart: {executor: ssh}"}, `clusters[0].actions.rolling_restart.executor: unknown executor "ssh"`},
		{"command with sql", []string{"      rolling_restart: {executor: sql, command: [x]}"}, "clusters[0].actions.rolling_restart.command: is not used with executor sql"},
		{"bad template", []string{"      rolling_restart: {command: [ssh, '{{.Hots}}']}"}, "clusters[0].actions.rolling_restart.command: invalid template"},
		{"unknown order", []string{"      rolling_restart: {order: random}"}, `clusters[0].actions.rolling_restart.order: unknown order "random"`},
		{"zero herd window", []string{"      rolling_restart: {herd_window: 0s}"}, "clusters[0].actions.rolling_restart.herd_window: must be greater than 0"},
		{"zero timeout", []string{"      rolling_restart: {timeouts: {up: 0s}}"}, "clusters[0].actions.rolling_restart.timeouts.up: must be greater than 0"},
		{"bad matcher", []string{"      rolling_restart: {silence: {url: 'http://am', matchers: ['instance']}}"}, "clusters[0].actions.rolling_restart.silence.matchers[0]: matcher"},
		{"silence without url", []string{"      rolling_restart: {silence: {matchers: ['a=\"b\"']}}"}, "clusters[0].actions.rolling_restart.silence.url: is required"},
		{"negative queue", []string{"      rolling_restart: {max_replication_queue: -1}"}, "max_replication_queue: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(clusterWithActions(tt.lines...)), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
