package slack

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/playbooks/report"
)

func goldenMsg(t *testing.T, name string, msg Message) []map[string]any {
	t.Helper()
	got, err := json.MarshalIndent(struct {
		Text   string       `json:"text"`
		Blocks slack.Blocks `json:"blocks"`
	}{msg.Text, msg.Blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	blocks := checkValid(t, msg)
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return blocks
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/slack/ -run TestRenderRequest -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
	return blocks
}

var testPlan = &actions.Plan{
	Kind: "collect_logs", Cluster: "prod", Summary: "Collect ClickHouse and keeper logs from 02:50 to 03:10 UTC on 2 nodes",
	Method: "system.text_log and the server log files",
	Gates:  []actions.Gate{{Name: "disk space", OK: true, Evidence: "12 GiB free on /var/lib/chmedic"}},
	Steps: []actions.Step{
		{ID: "ch-1/text_log", Node: "ch-1", Title: "Export system.text_log", SQL: []string{"SELECT * FROM system.text_log WHERE event_time BETWEEN '2026-11-23 02:50:00' AND '2026-11-23 03:10:00'"}},
		{ID: "ch-2/text_log", Node: "ch-2", Title: "Export system.text_log", Command: []string{"ssh", "ch-2", "journalctl", "-u", "clickhouse-server"}},
	},
	Notes: []string{"The bundle is attached to this thread."},
}

func TestRenderRequest(t *testing.T) {
	exp := time.Date(2026, 11, 23, 3, 19, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    RequestView
		want []string
	}{
		{"request-pending", RequestView{ID: "req1", Kind: "collect_logs", Cluster: "prod", State: "pending", RequestedBy: "U0REQ", RequestedVia: "slack",
			Plan: testPlan, PlanHash: testPlan.Hash(), ExpiresAt: exp, Needed: 2, Approvals: []string{"U0APP"}, Buttons: []string{ActionApprove, ActionReject}},
			[]string{"awaiting approval (1 of 2)", "approved by", "U0APP", "Export system.text_log", "plan hash"}},
		{"request-stale", RequestView{ID: "req1", Kind: "collect_logs", Cluster: "prod", State: "stale", RequestedBy: "U0REQ", RequestedVia: "cli",
			PlanHash: testPlan.Hash(), Needed: 1, Approvals: []string{"U0APP"}, Reason: "The plan was re-computed before running and its hash differs.",
			Changes: []string{"step ch-2/text_log removed (node ch-2 no longer in the cluster)"}},
			[]string{"What changed", "ch-2/text_log removed", "(CLI)"}},
		{"request-running", RequestView{ID: "req1", Kind: "collect_logs", Cluster: "prod", State: "interrupted", RequestedBy: "U0REQ", RequestedVia: "slack",
			Plan: testPlan, PlanHash: testPlan.Hash(), Needed: 1, Approvals: []string{"U0APP"},
			Steps:   []StepView{{Title: "Export system.text_log", Node: "ch-1", State: "done", Output: "1234 rows"}, {Title: "Export system.text_log", Node: "ch-2", State: "pending"}},
			Buttons: []string{ActionResume, ActionAbort}},
			[]string{"interrupted", "1234 rows", "Resume", "Abort"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := RenderRequest(tc.v)
			blocks := goldenMsg(t, tc.name, msg)
			all, _ := json.Marshal(blocks)
			for _, w := range tc.want {
				if !strings.Contains(string(all), w) {
					t.Errorf("message lacks %q", w)
				}
			}
			// Buttons carry the request id and nothing else.
			for _, b := range blocks {
				if b["type"] != "actions" {
					continue
				}
				for _, el := range b["elements"].([]any) {
					if v := el.(map[string]any)["value"]; v != "req1" {
						t.Errorf("button value %v", v)
					}
				}
			}
		})
	}
}

func TestRenderWithRequests(t *testing.T) {
	set := builtinSet(t)
	pb, _ := set.Get("keeper-readonly-replicas")
	r := report.Build(inputFor(pb, true, alertData("ClickHouseReadonlyReplica", "firing", 1)))
	msg := RenderWithRequests(r, []RequestLine{{Kind: "collect_logs", State: "running", RequestedBy: "U0REQ", Approvals: 1, Needed: 1}})
	blocks := goldenMsg(t, "alert-with-requests", msg)
	ids := []string{}
	for _, b := range blocks {
		id, _ := b["block_id"].(string)
		ids = append(ids, id)
	}
	joined := strings.Join(ids, ",")
	if !strings.Contains(joined, "requests,actions") {
		t.Errorf("request states not right above the buttons: %s", joined)
	}
	if !strings.Contains(msg.Plain, "collect_logs requested by U0REQ: running") {
		t.Errorf("plain text: %s", msg.Plain)
	}
	// A message at Slack's block limit stays within it.
	big := Render(r)
	for len(big.Blocks.BlockSet) < MaxBlocks {
		r.Sections = append(r.Sections, report.Section{Name: "extra", Title: "x", Body: "y"})
		big = Render(r)
	}
	if n := len(RenderWithRequests(r, []RequestLine{{Kind: "collect_logs", State: "pending", Needed: 1}}).Blocks.BlockSet); n > MaxBlocks {
		t.Errorf("%d blocks", n)
	}
}
