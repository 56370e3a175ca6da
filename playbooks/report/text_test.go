package report

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

var textNow = time.Date(2026, 11, 23, 3, 4, 5, 0, time.UTC)

func testData(status string) *template.Data {
	start := textNow.Add(-10 * time.Minute)
	d := &template.Data{
		Status:            status,
		GroupLabels:       template.KV{"alertname": "ZookeeperDown", "cluster": "c"},
		CommonLabels:      template.KV{"alertname": "ZookeeperDown", "cluster": "c", "severity": "critical"},
		CommonAnnotations: template.KV{"summary": "ZooKeeper is down", "runbook_url": "https://wiki.example.com/zk"},
		ExternalURL:       "http://am.example.com:9093/",
	}
	for i, inst := range []string{"zk-2", "zk-1", "zk-3"} {
		a := template.Alert{
			Status:       status,
			Labels:       template.KV{"alertname": "ZookeeperDown", "cluster": "c", "severity": "critical", "instance": inst},
			Annotations:  template.KV{"summary": inst + " is down"},
			StartsAt:     start.Add(time.Duration(i) * time.Minute),
			GeneratorURL: "http://prom.example.com/graph?g0.expr=up",
		}
		if status == "resolved" {
			a.EndsAt = textNow.Add(-time.Duration(3-i) * time.Minute)
		}
		d.Alerts = append(d.Alerts, a)
	}
	return d
}

func testDiagnosis() *diagnose.Diagnosis {
	results := []probe.Result{
		{Probe: "keeper.ruok", Node: "zk-1", Status: probe.Crit, Summary: "no answer to ruok", Duration: 3 * time.Millisecond},
		{Probe: "clickhouse.replicas", Node: "ch-1", Status: probe.Warn, Summary: "1 replica read-only",
			Evidence: []probe.Table{{Title: "Read-only replicas", Columns: []string{"database", "table"}, Rows: [][]string{{"chmedic_test", "events"}}, Omitted: 4}}},
		{Probe: "clickhouse.ping", Node: "ch-1", Status: probe.OK, Summary: "up"},
		{Probe: "clickhouse.ddl_queue", Node: "ch-1", Status: probe.Unknown, Summary: "not available"},
	}
	return &diagnose.Diagnosis{
		Cluster:  "c",
		Duration: 1234 * time.Millisecond,
		Results:  results,
		// Deliberately not worst first: the report orders them.
		Findings: []diagnose.Finding{
			{Status: probe.Unknown, Probe: "clickhouse.ddl_queue", Node: "ch-1", Summary: "not available"},
			{Status: probe.Warn, Probe: "clickhouse.replicas", Node: "ch-1", Summary: "1 replica read-only", Evidence: results[1].Evidence},
			{Status: probe.Crit, Probe: "keeper.ruok", Node: "zk-1", Summary: "no answer to ruok"},
		},
		Causes: []diagnose.Cause{
			{Name: "keeper_down", Title: "the coordination service is down", Score: 0.9, Likelihood: diagnose.Likely,
				For: []string{"no coordination node answers ruok (zk-1)"}, Against: []string{"a leader is elected"}},
			{Name: "network_partition", Title: "a network partition", Score: 0.4, Likelihood: diagnose.Possible, For: []string{"ch-1 cannot reach it"}},
			{Name: "node_down", Title: "a ClickHouse node is down", Likelihood: diagnose.Unlikely},
		},
		Verdict: "Coordination lost: replicas are read-only on ch-1 (chmedic_test.events).",
		Status:  probe.Crit,
	}
}

func testInput(status string) Input {
	return Input{
		Data:     testData(status),
		GroupKey: "{}:{alertname=\"ZookeeperDown\"}",
		Cluster:  "c",
		Playbook: Playbook{Name: "keeper-down", Title: "Keeper is down", Matched: true},
		Sections: []Section{
			{Name: "meaning", Title: "What it means", Body: "The coordination service is not serving.\n"},
			{Name: "impact", Title: "Impact", Body: "Inserts into replicated tables fail."},
			{Name: "diagnosis", Title: "How to confirm", Body: "1. echo ruok | nc HOST 2181"},
			{Name: "mitigation", Title: "Mitigation", Body: "Bring the lost nodes back."},
		},
		Focus:     []string{"keeper.ruok"},
		Diagnosis: testDiagnosis(),
		Actions: []Action{
			{Kind: "ddl_freeze", Label: "Freeze DDL 30m", RequestID: "req-ddl_freeze"},
			{Kind: "rolling_restart", Label: "Rolling restart", RequestID: "req-rolling_restart", Danger: true},
		},
		Now: textNow,
	}
}

// inOrder fails unless every part occurs in s, each after the previous one.
func inOrder(t *testing.T, s string, parts ...string) {
	t.Helper()
	at := 0
	for _, p := range parts {
		i := strings.Index(s[at:], p)
		if i < 0 {
			t.Errorf("%q missing (or out of order) in:\n%s", p, s)
			return
		}
		at += i + len(p)
	}
}

func TestWriteText(t *testing.T) {
	r := Build(testInput("firing"))
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	inOrder(t, out,
		"[FIRING] ZookeeperDown\n",
		"severity critical · cluster c · 3 firing, 0 resolved · since 2026-11-23T02:54:05Z\n",
		"ZooKeeper is down\n",
		"Diagnosis: Coordination lost: replicas are read-only on ch-1 (chmedic_test.events).\n",
		"== What it means ==\nThe coordination service is not serving.\n",
		"== Impact ==\nInserts into replicated tables fail.\n",
		"== Live findings ==\n",
		"CRIT zk-1 keeper.ruok: no answer to ruok\n",
		"WARN ch-1 clickhouse.replicas: 1 replica read-only\n",
		"Read-only replicas\n",
		"chmedic_test  events",
		"… 4 more rows\n",
		"UNKN ch-1 clickhouse.ddl_queue: not available\n",
		"== Likely cause ==\nThe coordination service is down (likely)\n",
		"  + no coordination node answers ruok (zk-1)\n",
		"  - a leader is elected\n",
		"Also possible: a network partition (ch-1 cannot reach it)\n",
		"== How to confirm ==\n1. echo ruok | nc HOST 2181\n",
		"== Mitigation ==\nBring the lost nodes back.\n",
		"== Alerts ==\n",
		`[FIRING] ZookeeperDown {instance="zk-2"} — zk-2 is down`,
		`[FIRING] ZookeeperDown {instance="zk-1"} — zk-1 is down`,
		`[FIRING] ZookeeperDown {instance="zk-3"} — zk-3 is down`,
		"== Actions (approval required) ==\n",
		"  - Freeze DDL 30m [ddl_freeze] request req-ddl_freeze\n",
		"  - Rolling restart (disruptive) [rolling_restart] request req-rolling_restart\n",
		"== Links ==\n",
		"  Runbook: https://wiki.example.com/zk\n",
		"  Source (Prometheus): http://prom.example.com/graph?g0.expr=up\n",
		"  Silence in Alertmanager: http://am.example.com:9093/#/silences/new?filter=%7Balertname%3D%22ZookeeperDown%22%2Ccluster%3D%22c%22%7D\n",
		"playbook keeper-down · generated 2026-11-23T03:04:05Z\n",
	)
	if strings.Contains(out, "node_down") || strings.Contains(out, "a ClickHouse node is down") {
		t.Errorf("an unlikely cause is listed:\n%s", out)
	}

	// Offline, unmatched: the note and the fallback say so.
	in := testInput("firing")
	in.Diagnosis = nil
	in.Note = "Offline render: no probes were run."
	in.Playbook = Playbook{Name: "generic", Matched: false}
	b.Reset()
	if err := WriteText(&b, Build(in)); err != nil {
		t.Fatal(err)
	}
	inOrder(t, b.String(), "== Live findings ==\nOffline render: no probes were run.\n", "playbook generic (no specific playbook matched)")
	if strings.Contains(b.String(), "Diagnosis:") || strings.Contains(b.String(), "Likely cause") {
		t.Errorf("offline text has a diagnosis:\n%s", b.String())
	}
}

func TestWriteDiagnosis(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDiagnosis(&b, testDiagnosis()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	inOrder(t, out,
		"cluster c · CRIT · 4 checks in 1.234s\n",
		"Coordination lost: replicas are read-only on ch-1 (chmedic_test.events).\n",
		// WriteDiagnosis keeps the diagnosis' own finding order.
		"UNKN ch-1 clickhouse.ddl_queue: not available\n",
		"WARN ch-1 clickhouse.replicas: 1 replica read-only\n",
		"CRIT zk-1 keeper.ruok: no answer to ruok\n",
		"== Likely cause ==\nThe coordination service is down (likely)\n",
		"== All checks ==\n",
		"UNKN clickhouse.ddl_queue",
		"OK   clickhouse.ping",
		"WARN clickhouse.replicas",
		"CRIT keeper.ruok",
	)

	// Healthy: every check passed, no cause section.
	d := &diagnose.Diagnosis{Cluster: "c", Results: []probe.Result{{Probe: "clickhouse.ping", Node: "ch-1", Summary: "up"}}, Verdict: "Cluster healthy: all 1 checks passed.",
		Causes: []diagnose.Cause{{Name: "keeper_down", Likelihood: diagnose.Unlikely}}}
	b.Reset()
	if err := WriteDiagnosis(&b, d); err != nil {
		t.Fatal(err)
	}
	inOrder(t, b.String(), "cluster c · OK · 1 checks", "All 1 checks passed.\n", "== All checks ==\n")
	if strings.Contains(b.String(), "Likely cause") {
		t.Errorf("healthy diagnosis names a cause:\n%s", b.String())
	}

	// Unhealthy with no cause at least possible: say the evidence is thin.
	d.Status = probe.Warn
	d.Findings = []diagnose.Finding{{Status: probe.Warn, Probe: "clickhouse.replication_queue", Node: "ch-1", Summary: "stuck"}}
	b.Reset()
	if err := WriteDiagnosis(&b, d); err != nil {
		t.Fatal(err)
	}
	inOrder(t, b.String(), "== Likely cause ==\nNo clear cause: the evidence is thin.\n")
}

func TestFindingsInOrderFocusFirst(t *testing.T) {
	r := &Report{Diagnosis: &diagnose.Diagnosis{Findings: []diagnose.Finding{
		{Status: probe.Warn, Probe: "a"}, {Status: probe.Crit, Probe: "b"}, {Status: probe.Warn, Probe: "focus"}, {Status: probe.Crit, Probe: "c"},
	}}, FocusProbes: []string{"focus", "c"}}
	var got []string
	for _, f := range r.FindingsInOrder() {
		got = append(got, f.Probe)
	}
	if want := "c b focus a"; strings.Join(got, " ") != want {
		t.Errorf("order %q, want %q", strings.Join(got, " "), want)
	}
	if (&Report{}).FindingsInOrder() != nil {
		t.Error("findings without a diagnosis")
	}
}

func TestSilenceURL(t *testing.T) {
	got := SilenceURL("http://am.example.com:9093/", template.KV{"cluster": "c", "alertname": "X"})
	want := "http://am.example.com:9093/#/silences/new?filter=%7Balertname%3D%22X%22%2Ccluster%3D%22c%22%7D"
	if got != want {
		t.Errorf("SilenceURL = %s\nwant          %s", got, want)
	}
	if got := SilenceURL("http://am", template.KV{"alertname": `a "quoted" name`}); got != "http://am/#/silences/new?filter=%7Balertname%3D%22a+%5C%22quoted%5C%22+name%22%7D" {
		t.Errorf("quoted value: %s", got)
	}
	if SilenceURL("", template.KV{"alertname": "X"}) != "" || SilenceURL("http://am", nil) != "" {
		t.Error("a silence link without a base URL or group labels")
	}
}

func TestBuild(t *testing.T) {
	r := Build(testInput("firing"))
	if r.Title != "ZookeeperDown" || r.Status != "firing" || r.Severity != "critical" || r.Cluster != "c" || r.Summary != "ZooKeeper is down" {
		t.Errorf("header fields: %+v", r)
	}
	if r.Firing != 3 || r.Resolved != 0 || !r.ResolvedAt.IsZero() {
		t.Errorf("firing %d resolved %d resolvedAt %v", r.Firing, r.Resolved, r.ResolvedAt)
	}
	if want := textNow.Add(-10 * time.Minute); !r.StartsAt.Equal(want) {
		t.Errorf("StartsAt %v, want the earliest alert's %v", r.StartsAt, want)
	}
	if !r.GeneratedAt.Equal(textNow) {
		t.Errorf("GeneratedAt %v", r.GeneratedAt)
	}
	for i, inst := range []string{"zk-2", "zk-1", "zk-3"} {
		a := r.Alerts[i]
		if len(a.Labels) != 1 || a.Labels["instance"] != inst || a.Name != "ZookeeperDown" || a.Summary != inst+" is down" {
			t.Errorf("alert %d: %+v, want only the distinct label instance=%s", i, a, inst)
		}
	}
	if len(r.Links) != 3 || r.Links[0].Title != "Runbook" || r.Links[1].Title != "Source (Prometheus)" || r.Links[2].Title != "Silence in Alertmanager" {
		t.Errorf("links %+v", r.Links)
	}

	// Mixed group: firing first, then resolved; counts split.
	in := testInput("firing")
	in.Data.Alerts[0].Status = "resolved"
	in.Data.Alerts[0].EndsAt = textNow.Add(-time.Minute)
	r = Build(in)
	if r.Firing != 2 || r.Resolved != 1 || !r.ResolvedAt.IsZero() {
		t.Errorf("mixed group: firing %d resolved %d resolvedAt %v", r.Firing, r.Resolved, r.ResolvedAt)
	}
	if r.Alerts[2].Status != "resolved" || r.Alerts[2].EndsAt.IsZero() || !r.Alerts[0].EndsAt.IsZero() {
		t.Errorf("mixed group alerts: %+v", r.Alerts)
	}

	// Resolved group: ResolvedAt is the last alert's end.
	r = Build(testInput("resolved"))
	if r.Firing != 0 || r.Resolved != 3 || !r.ResolvedAt.Equal(textNow.Add(-time.Minute)) {
		t.Errorf("resolved group: firing %d resolved %d resolvedAt %v", r.Firing, r.Resolved, r.ResolvedAt)
	}

	// Links that are not http(s) are dropped; the override URL wins.
	in = testInput("firing")
	in.Data.CommonAnnotations["runbook_url"] = "javascript:alert(1)"
	for i := range in.Data.Alerts {
		in.Data.Alerts[i].GeneratorURL = "file:///etc/passwd"
	}
	in.AlertmanagerURL = "https://am.internal"
	r = Build(in)
	if len(r.Links) != 1 || !strings.HasPrefix(r.Links[0].URL, "https://am.internal/#/silences/new?filter=") {
		t.Errorf("links %+v, want only the silence link on the override URL", r.Links)
	}

	// No alertname anywhere: the title says Alert.
	in = testInput("firing")
	delete(in.Data.CommonLabels, "alertname")
	delete(in.Data.GroupLabels, "alertname")
	for i := range in.Data.Alerts {
		delete(in.Data.Alerts[i].Labels, "alertname")
	}
	if r = Build(in); r.Title != "Alert" {
		t.Errorf("title %q", r.Title)
	}
}

func TestWriteTableKeepsUTF8(t *testing.T) {
	d := testDiagnosis()
	d.Findings = []diagnose.Finding{{Status: probe.Warn, Probe: "p", Summary: "s",
		Evidence: []probe.Table{{Columns: []string{"c"}, Rows: [][]string{{strings.Repeat("é", 40)}}}}}}
	var b bytes.Buffer
	if err := WriteDiagnosis(&b, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "é") || !utf8.ValidString(b.String()) {
		t.Fatalf("table cell cut inside a character:\n%q", b.String())
	}
}
