package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

// stormReport is an incident of 1,000 groups over 15 alert names, as the
// incident processor builds it (bounded lists, totals).
func stormReport(t *testing.T) *report.Report {
	set := builtinSet(t)
	pb, _ := set.Get("keeper-down")
	r := report.Build(inputFor(pb, true, alertData("ZookeeperDown", "firing", 3)))
	inc := &report.Incident{Total: 1000, FiringGroups: 940, ResolvedGroups: 60, FiringAlerts: 9400, MoreAlertNames: 3,
		Latest: &report.Group{Title: "KeeperLastGroup", Status: "firing", Firing: 7, Labels: "instance=ch-9 <!here>"}}
	for i := range 12 {
		inc.ByAlert = append(inc.ByAlert, report.AlertCount{Name: fmt.Sprintf("ClickHouseAlert%02d", i), Firing: 200 - 10*i, Resolved: i, FiringAlerts: 2000 - 100*i})
	}
	for i := range 15 {
		inc.Groups = append(inc.Groups, report.Group{Title: fmt.Sprintf("ClickHouseAlert%02d", i%12), Status: "firing", Firing: 50 - i})
	}
	r.Incident = inc
	return r
}

// TestRenderIncidentStorm: the incident message of a 1,000-group storm is
// the one place to look and stays within Slack's limits: the totals, the
// latest change (its alert and the new totals), the counts by alert name
// with "and N more", the top groups with "and N more", the worst findings.
func TestRenderIncidentStorm(t *testing.T) {
	r := stormReport(t)
	msg, blocks := golden(t, "incident-storm", r)
	if h := textOf(blocks[0]["text"]); h != ":fire: FIRING: Incident on prod: 1000 alert groups" {
		t.Errorf("header %q", h)
	}
	want := map[string][]string{
		"meta":     {"*Groups:* 940 firing, 60 resolved", "*Alerts:* 9400 firing"},
		"latest":   {"*KeeperLastGroup*", "firing (7 alerts)", "now 940 of 1000 groups firing", "&lt;!here&gt;"},
		"by-alert": {"*ClickHouseAlert00*: 200 firing (2000 alerts), 0 resolved", "… and 7 more alert names"},
		"incident": {"*Top alert groups* (of 1000)", "… and 990 more groups"},
	}
	for id, parts := range want {
		b, ok := blockByID(blocks, id)
		if !ok {
			t.Errorf("no %q block", id)
			continue
		}
		text := textOf(b["text"])
		if text == "" {
			if els, ok := b["elements"].([]any); ok && len(els) > 0 {
				text = textOf(els[0])
			}
		}
		for _, p := range parts {
			if !strings.Contains(text, p) {
				t.Errorf("%s block lacks %q:\n%s", id, p, text)
			}
		}
	}
	if strings.Contains(mustMarshal(t, msg), "<!here>") {
		t.Error("a label pings the channel")
	}
	if _, ok := blockByID(blocks, "summary"); ok {
		t.Error("the incident message lists the alerts of the group that changed last as if they were the incident's")
	}
	if n := len(mustMarshal(t, msg.Blocks)); n > 16000 {
		t.Errorf("the incident message is %d bytes of blocks; it must stay bounded", n)
	}
}

func mustMarshal(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRenderSummary: the batched summary reply states the net change in
// firing and resolved groups since the previous summary, by alert name,
// the latest groups and the totals now; text from alerts is escaped.
func TestRenderSummary(t *testing.T) {
	b := summaryFixture()
	msg := RenderSummary(b)
	checkValid(t, msg)
	for _, want := range []string{
		"*+37 groups firing, 12 resolved* since 03:04:05 UTC (49 changes)",
		"ClickHouseReadonlyReplica +30 firing, +2 resolved",
		"KeeperDown +7 firing",
		"Latest: KeeperLastGroup firing (3 alerts), &lt;!here&gt; resolved.",
		"Now: 412 of 449 groups firing (1203 alerts), 37 resolved.",
	} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("summary lacks %q:\n%s", want, msg.Text)
		}
	}
	if strings.Contains(msg.Text, "<!here>") || !strings.Contains(msg.Plain, "<!here>") {
		t.Errorf("escaping: text %q plain %q", msg.Text, msg.Plain)
	}
}

func summaryFixture() store.SummaryBatch {
	since := time.Date(2026, 11, 23, 3, 4, 5, 0, time.UTC)
	return store.SummaryBatch{
		Since: since, Until: since.Add(58 * time.Second), Changes: 49,
		Start: store.IncidentTotals{Groups: 400, FiringGroups: 375, ResolvedGroups: 25, FiringAlerts: 1100,
			ByAlert: []store.AlertTotals{{Name: "ClickHouseReadonlyReplica", Firing: 300, Resolved: 20}, {Name: "KeeperDown", Firing: 75, Resolved: 5}, {Name: "Quiet", Firing: 1}}},
		Now: store.IncidentTotals{Groups: 449, FiringGroups: 412, ResolvedGroups: 37, FiringAlerts: 1203,
			ByAlert: []store.AlertTotals{{Name: "ClickHouseReadonlyReplica", Firing: 330, Resolved: 22}, {Name: "KeeperDown", Firing: 82, Resolved: 5}, {Name: "Quiet", Firing: 1}}},
		Latest: []store.SummaryGroup{{Title: "KeeperLastGroup", Status: "firing", Firing: 3}, {Title: "<!here>", Status: "resolved"}},
	}
}

// TestRenderIncidentResolved: a resolved incident says all its groups
// resolved, not the alerts of the group that resolved last.
func TestRenderIncidentResolved(t *testing.T) {
	r := stormReport(t)
	r.Status = "resolved"
	r.Incident.FiringGroups, r.Incident.ResolvedGroups, r.Incident.FiringAlerts = 0, 1000, 0
	r.Incident.Latest = &report.Group{Title: "KeeperLastGroup", Status: "resolved"}
	msg := Render(r)
	blocks := checkValid(t, msg)
	b, ok := blockByID(blocks, "resolved")
	if !ok || textOf(b["text"]) != ":white_check_mark: *Resolved:* all 1000 alert groups of this incident resolved." {
		t.Errorf("resolved block %v", b)
	}
	if h := textOf(blocks[0]["text"]); h != ":white_check_mark: RESOLVED: Incident on prod: 1000 alert groups" {
		t.Errorf("header %q", h)
	}
	if _, ok := blockByID(blocks, "actions"); ok {
		t.Error("a resolved incident offers actions")
	}
}
