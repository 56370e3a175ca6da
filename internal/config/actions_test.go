package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func clusterWithActions(lines ...string) string {
	head := []string{
		"clusters:",
		"  - name: c",
		"    clickhouse: {nodes: [{name: ch-1, address: 'h:9000'}]}",
		"    keeper: {nodes: [{name: k-1, address: 'h:2181'}]}",
		"    actions:",
	}
	return y(append(head, lines...)...)
}

func TestActionsValues(t *testing.T) {
	c := mustParse(t, clusterWithActions(
		"      clickhouse: {user: act, password_env: PW}",
		"      collect_logs:",
		"        command: [ssh, '{{.Host}}', journalctl, --since, '{{.Since}}']",
		"        keeper_path: '/var/log/zk/{{.Name}}*.log'",
		"        window_before: 5m",
		"        sources: [query_log, keeper_4lw]",
		"        max_source_bytes: 1MiB",
	), map[string]string{"PW": "s3cret"}, nil)
	a := c.Clusters[0].Actions
	if a.ClickHouse.User != "act" || a.ClickHouse.Password.Value() != "s3cret" {
		t.Errorf("clickhouse = %+v", a.ClickHouse)
	}
	cl := a.CollectLogs
	if len(cl.Command) != 5 || cl.KeeperPath == "" || cl.WindowBefore != 5*time.Minute || cl.WindowAfter != 10*time.Minute {
		t.Errorf("collect_logs = %+v", cl)
	}
	if !cl.Wants(SourceQueryLog) || cl.Wants(SourceTextLog) || cl.MaxSourceBytes != MiB || cl.Timeout != 30*time.Second {
		t.Errorf("collect_logs = %+v", cl)
	}
}

func TestActionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"command and path", []string{"      collect_logs: {command: [cat, x], path: '/x'}"}, "clusters[0].actions.collect_logs.path: cannot be combined with command"},
		{"bad template", []string{"      collect_logs: {command: [cat, '{{.Hots}}']}"}, "clusters[0].actions.collect_logs.command: invalid template"},
		{"unclosed template", []string{"      collect_logs: {keeper_command: [cat, '{{.Host']}"}, "clusters[0].actions.collect_logs.keeper_command: invalid template"},
		{"empty program", []string{"      collect_logs: {command: ['', x]}"}, "clusters[0].actions.collect_logs.command[0]: the program must not be empty"},
		{"unknown source", []string{"      collect_logs: {sources: [query_log, journald]}"}, `clusters[0].actions.collect_logs.sources[1]: unknown source "journald"`},
		{"duplicate source", []string{"      collect_logs: {sources: [events, events]}"}, `clusters[0].actions.collect_logs.sources[1]: duplicate source "events"`},
		{"zero window", []string{"      collect_logs: {window_after: 0s}"}, "clusters[0].actions.collect_logs.window_after: must be greater than 0"},
		{"bundle too big", []string{"      collect_logs: {max_bundle_bytes: 2GiB}"}, "clusters[0].actions.collect_logs.max_bundle_bytes: must be between 64KiB and 1GiB"},
		{"bad zone", []string{"      collect_logs: {log_timezone: Mars/Olympus}"}, `clusters[0].actions.collect_logs.log_timezone: unknown time zone`},
		{"unknown key", []string{"      collect_logs: {comand: [x]}"}, `clusters[0].actions.collect_logs.comand: unknown key (did you mean "command"?)`},
		{"inline password", []string{"      clickhouse: {user: a, password: x}"}, "inline secrets are not allowed"},
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

func TestErrorAt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	src := clusterWithActions(
		"      collect_logs:",
		"        window_before: 5m",
	)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// A missing key is located at its nearest present parent.
	got := c.ErrorAt("clusters[0].actions.clickhouse.user", "is required by collect_logs").Error()
	if want := path + ":5:5: clusters[0].actions.clickhouse.user: is required by collect_logs"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = c.ErrorAt("clusters[0].actions.collect_logs.window_before", "x").Error()
	if want := path + ":7:9: clusters[0].actions.collect_logs.window_before: x"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
