package actions

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		kind   string
		params map[string]string
		want   string
	}{
		{"ddl_freeze", map[string]string{"duration": "30m"}, ""},
		{"ddl_freeze", map[string]string{"duration": "25h"}, "out of range"},
		{"ddl_freeze", map[string]string{"duration": "soon"}, "not a duration"},
		{"ddl_freeze", map[string]string{"users": "app, etl"}, ""},
		{"ddl_freeze", map[string]string{"users": "app,,etl"}, "empty user"},
		{"ddl_freeze", map[string]string{"colour": "red"}, `unknown parameter "colour"`},
		{"rolling_restart", map[string]string{"max_unavailable": "0"}, "want an integer in [1, 1]"},
		{"rolling_restart", map[string]string{"require_keeper_healthy": "maybe"}, "want true or false"},
		{"collect_logs", map[string]string{"window": "10m", "sources": "clickhouse,keeper"}, ""},
		{"collect_logs", map[string]string{"sources": "kafka"}, `"kafka": want a comma list`},
		{"reboot_everything", nil, `unknown action kind "reboot_everything"`},
	}
	for _, tc := range tests {
		err := Validate(tc.kind, tc.params)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %v: %v", tc.kind, tc.params, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want %q", tc.kind, tc.params, err, tc.want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	got := WithDefaults("collect_logs", map[string]string{"window": "5m"})
	if got["window"] != "5m" || got["sources"] != "clickhouse,keeper" {
		t.Fatalf("got %v", got)
	}
	if !Catalog()["rolling_restart"].Danger || Catalog()["collect_logs"].Danger {
		t.Fatal("danger flags wrong")
	}
}
