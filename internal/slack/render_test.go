package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
	"github.com/chmedic/chmedic/playbooks/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var renderNow = time.Date(2026, 11, 23, 3, 4, 5, 0, time.UTC)

// alertFor names, for each built-in playbook, an alert that selects it.
var alertFor = map[string]string{
	"distributed-ddl-stuck":       "ClickHouseDistributedDDLQueueStuck",
	"generic":                     "DiskSpaceLow",
	"interserver-connections":     "ClickhouseInterserverConnectionIssues",
	"keeper-connections":          "ZookeeperConnectionRejected",
	"keeper-down":                 "ZookeeperDown",
	"keeper-exceptions":           "ClickHouseZooKeeperHardwareExceptions",
	"keeper-latency-high":         "ZookeeperHighLatency",
	"keeper-metadata-growth":      "ZookeeperHighEphemeralNodes",
	"keeper-outstanding-requests": "ZookeeperOutstandingRequests",
	"keeper-readonly-replicas":    "ClickHouseReadonlyReplica",
	"keeper-session-expired":      "ClickhouseZookeeperConnectionIssues",
}

func builtinSet(t *testing.T) *playbooks.Set {
	t.Helper()
	set, err := playbooks.Load("", playbooks.Validator{})
	if err != nil {
		t.Fatalf("load built-in playbooks: %v", err)
	}
	return set
}

// alertData is a fixed Alertmanager group of n alerts (one per node) named
// name with the given status.
func alertData(name, status string, n int) *template.Data {
	start := renderNow.Add(-17 * time.Minute)
	d := &template.Data{
		Receiver:          "chmedic",
		Status:            status,
		GroupLabels:       template.KV{"alertname": name, "cluster": "prod"},
		CommonLabels:      template.KV{"alertname": name, "cluster": "prod", "severity": "critical"},
		CommonAnnotations: template.KV{"summary": name + " on cluster prod", "runbook_url": "https://wiki.example.com/runbooks/" + name},
		ExternalURL:       "http://alertmanager.example.com:9093",
	}
	for i := 0; i < n; i++ {
		a := template.Alert{
			Status:       status,
			Labels:       template.KV{"alertname": name, "cluster": "prod", "severity": "critical", "instance": fmt.Sprintf("ch-%d:9363", i+1)},
			Annotations:  template.KV{"summary": fmt.Sprintf("%s on ch-%d", name, i+1)},
			StartsAt:     start.Add(time.Duration(i) * time.Second),
			GeneratorURL: "http://prometheus.example.com:9090/graph?g0.expr=up%3D%3D0",
			Fingerprint:  fmt.Sprintf("%016x", i+1),
		}
		if status == "resolved" {
			a.EndsAt = renderNow.Add(-time.Minute)
		}
		d.Alerts = append(d.Alerts, a)
	}
	return d
}

// fixedDiagnosis is the diagnosis of a cluster whose ZooKeeper stopped.
func fixedDiagnosis() *diagnose.Diagnosis {
	replicas := func(node string) probe.Result {
		return probe.Result{
			Probe: "clickhouse.replicas", Node: node, Status: probe.Crit,
			Summary: "1 of 3 replicated tables read-only: chmedic_test.events",
			Facts:   map[string]float64{"readonly_replicas": 1, "replicated_tables": 3, "session_expired_replicas": 0},
			Attrs:   map[string]string{"readonly_tables": "chmedic_test.events"},
			Evidence: []probe.Table{{
				Title:   "Read-only replicas",
				Columns: []string{"database", "table", "is_readonly", "is_session_expired", "zookeeper_exception"},
				Rows:    [][]string{{"chmedic_test", "events", "1", "0", "Coordination::Exception: Connection loss"}},
			}},
			Started: renderNow, Duration: 12 * time.Millisecond,
		}
	}
	ruok := probe.Result{
		Probe: "keeper.ruok", Node: "zk-1", Status: probe.Crit,
		Summary: "no answer to ruok: dial tcp 10.0.0.5:2181: connect: connection refused",
		Facts:   map[string]float64{"ok": 0},
		Error:   "dial tcp 10.0.0.5:2181: connect: connection refused",
		Started: renderNow, Duration: 3 * time.Millisecond,
	}
	ping := probe.Result{
		Probe: "clickhouse.ping", Node: "ch-1", Status: probe.OK,
		Summary: "ClickHouse 24.8.4.13 up for 2h13m",
		Facts:   map[string]float64{"up": 1, "uptime_seconds": 7980},
		Started: renderNow, Duration: 2 * time.Millisecond,
	}
	results := []probe.Result{replicas("ch-1"), replicas("ch-2"), ruok, ping}
	var fs []diagnose.Finding
	for _, r := range results[:3] {
		fs = append(fs, diagnose.Finding{Status: r.Status, Probe: r.Probe, Node: r.Node, Summary: r.Summary, Evidence: r.Evidence})
	}
	return &diagnose.Diagnosis{
		Cluster:  "prod",
		Started:  renderNow.Add(-2 * time.Second),
		Duration: 1234 * time.Millisecond,
		Results:  results,
		Findings: fs,
		Causes: []diagnose.Cause{
			{
				Name: "keeper_down", Title: "the coordination service is down or has lost quorum", Score: 0.9, Likelihood: diagnose.Likely,
				For:     []string{"no coordination node answers ruok (zk-1)"},
				Against: []string{"chmedic cannot see whether the ZooKeeper process is running"},
			},
			{
				Name: "network_partition", Title: "a network partition between ClickHouse and the coordination service", Score: 0.3, Likelihood: diagnose.Possible,
				For: []string{"replicas on ch-1, ch-2 are read-only"},
			},
			{
				Name: "node_down", Title: "a ClickHouse node is down", Score: 0, Likelihood: diagnose.Unlikely,
				Against: []string{"all 1 ClickHouse nodes answer"},
			},
		},
		Verdict: "Coordination lost: replicas are read-only on ch-1, ch-2 (chmedic_test.events) and the coordination service is unreachable; inserts into replicated tables fail. Likely cause: the coordination service is down or has lost quorum.",
		Status:  probe.Crit,
	}
}

// sectionsOf maps a playbook's sections as incident.sections does.
func sectionsOf(pb *playbooks.Playbook) []report.Section {
	return []report.Section{
		{Name: "meaning", Title: "What it means", Body: strings.TrimSpace(pb.Sections.Meaning)},
		{Name: "impact", Title: "Impact", Body: strings.TrimSpace(pb.Sections.Impact)},
		{Name: "diagnosis", Title: "How to confirm", Body: strings.TrimSpace(pb.Sections.Diagnosis)},
		{Name: "mitigation", Title: "Mitigation", Body: strings.TrimSpace(pb.Sections.Mitigation)},
	}
}

// actionsOf offers a playbook's actions as incident.offered does, with
// request ids "req-<kind>".
func actionsOf(pb *playbooks.Playbook) []report.Action {
	var out []report.Action
	for _, a := range pb.Actions {
		k := actions.Catalog()[a.Kind]
		label := a.Label
		if label == "" {
			label = k.Label
		}
		ra := report.Action{Kind: a.Kind, Label: label, RequestID: "req-" + a.Kind, Danger: k.Danger}
		if k.Danger || k.Confirm != "" {
			ra.Confirm = &report.Confirm{Title: label + "?", Text: k.Confirm, OK: "Request approval", Deny: "Cancel"}
		}
		out = append(out, ra)
	}
	return out
}

func inputFor(pb *playbooks.Playbook, matched bool, d *template.Data) report.Input {
	return report.Input{
		Data:      d,
		GroupKey:  `{}:{alertname="` + d.CommonLabels["alertname"] + `", cluster="prod"}`,
		Cluster:   "prod",
		Playbook:  report.Playbook{Name: pb.Name, Title: pb.Title, Matched: matched},
		Sections:  sectionsOf(pb),
		Focus:     pb.Probes,
		Diagnosis: fixedDiagnosis(),
		Actions:   actionsOf(pb),
		Now:       renderNow,
	}
}

// golden renders r, checks it against Slack's rules and compares it with
// testdata/golden/<name>.json (rewritten with -update).
func golden(t *testing.T, name string, r *report.Report) (Message, []map[string]any) {
	t.Helper()
	msg := Render(r)
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
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return msg, blocks
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/slack/ -run TestRender -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
	return msg, blocks
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, w, g)
		}
	}
	return "(no line differs)"
}

func textOf(o any) string {
	m, _ := o.(map[string]any)
	s, _ := m["text"].(string)
	return s
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// checkValid applies the Block Kit rules the fake Slack enforces, then posts
// the message to the fake Slack, which must accept it.
func checkValid(t *testing.T, msg Message) []map[string]any {
	t.Helper()
	raw, err := json.Marshal(msg.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	if n := len(blocks); n == 0 || n > MaxBlocks {
		t.Errorf("%d blocks, want 1..%d", n, MaxBlocks)
	}
	if n := runes(msg.Text); n == 0 || n > MaxFallbackText {
		t.Errorf("fallback text has %d characters", n)
	}
	blockIDs, actionIDs := map[string]bool{}, map[string]bool{}
	for i, b := range blocks {
		if id, ok := b["block_id"].(string); ok {
			if blockIDs[id] {
				t.Errorf("block %d: duplicate block_id %q", i, id)
			}
			blockIDs[id] = true
		}
		switch b["type"] {
		case "header":
			if n := runes(textOf(b["text"])); n == 0 || n > MaxHeaderLen {
				t.Errorf("block %d: header text has %d characters", i, n)
			}
		case "section":
			if n := runes(textOf(b["text"])); n == 0 || n > MaxTextLen {
				t.Errorf("block %d (%v): section text has %d characters", i, b["block_id"], n)
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				t.Errorf("block %d: %d context elements", i, len(els))
			}
			for _, e := range els {
				if n := runes(textOf(e)); n == 0 || n > MaxTextLen {
					t.Errorf("block %d: context text has %d characters", i, n)
				}
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 25 {
				t.Errorf("block %d: %d action elements", i, len(els))
			}
			for _, e := range els {
				el := e.(map[string]any)
				id, _ := el["action_id"].(string)
				if id == "" || actionIDs[id] || runes(id) > 255 {
					t.Errorf("block %d: bad or duplicate action_id %q", i, id)
				}
				actionIDs[id] = true
				if v, _ := el["value"].(string); runes(v) > 2000 {
					t.Errorf("action %s: value has %d characters", id, runes(v))
				}
				if n := runes(textOf(el["text"])); n == 0 || n > MaxButtonText {
					t.Errorf("action %s: button text has %d characters", id, n)
				}
				if c, ok := el["confirm"].(map[string]any); ok {
					if n := runes(textOf(c["title"])); n == 0 || n > 100 {
						t.Errorf("action %s: confirm title has %d characters", id, n)
					}
					if n := runes(textOf(c["text"])); n == 0 || n > 300 {
						t.Errorf("action %s: confirm text has %d characters", id, n)
					}
				}
			}
		}
	}
	fake := slackfake.New(t, slackfake.Options{})
	api := slack.New(slackfake.DefaultToken, slack.OptionAPIURL(fake.URL()))
	if _, _, err := api.PostMessage("C0CHMEDIC1", slack.MsgOptionText(msg.Text, false), slack.MsgOptionBlocks(msg.Blocks.BlockSet...)); err != nil {
		t.Errorf("the fake Slack rejects the message: %v", err)
	}
	return blocks
}

func blockByID(blocks []map[string]any, id string) (map[string]any, bool) {
	for _, b := range blocks {
		if b["block_id"] == id {
			return b, true
		}
	}
	return nil, false
}

func hasType(blocks []map[string]any, typ string) bool {
	for _, b := range blocks {
		if b["type"] == typ {
			return true
		}
	}
	return false
}

func TestRenderEveryBuiltinPlaybook(t *testing.T) {
	set := builtinSet(t)
	for _, pb := range set.All() {
		t.Run(pb.Name, func(t *testing.T) {
			name, ok := alertFor[pb.Name]
			if !ok {
				t.Fatalf("built-in playbook %s has no test alert: add one to alertFor", pb.Name)
			}
			d := alertData(name, "firing", 2)
			got, matched := set.MatchGroup(map[string]string(d.CommonLabels), nil)
			if got.Name != pb.Name || matched != (pb.Name != playbooks.GenericName) {
				t.Fatalf("alert %s selects playbook %s (matched %v), want %s", name, got.Name, matched, pb.Name)
			}
			r := report.Build(inputFor(pb, matched, d))
			msg, blocks := golden(t, "playbook-"+pb.Name, r)

			if !strings.HasPrefix(msg.Text, "[FIRING] "+name+" on prod: Coordination lost") {
				t.Errorf("fallback text %q", msg.Text)
			}
			for _, id := range []string{"meta", "verdict", "summary", "meaning", "impact", "findings-0", "cause", "diagnosis", "mitigation", "links", "footer"} {
				if _, ok := blockByID(blocks, id); !ok {
					t.Errorf("no %q block", id)
				}
			}
			if len(pb.Actions) > 0 {
				b, ok := blockByID(blocks, "actions")
				if !ok {
					t.Fatal("no actions block")
				}
				els := b["elements"].([]any)
				if len(els) != len(pb.Actions) {
					t.Errorf("%d buttons, want %d", len(els), len(pb.Actions))
				}
				for i, e := range els {
					if v := e.(map[string]any)["value"]; v != "req-"+pb.Actions[i].Kind {
						t.Errorf("button %d carries %v", i, v)
					}
				}
			}
		})
	}
}

func TestRenderResolvedGroupOffersNoActions(t *testing.T) {
	set := builtinSet(t)
	pb, _ := set.Get("keeper-down")
	d := alertData("ZookeeperDown", "resolved", 2)
	in := inputFor(pb, true, d)
	in.Diagnosis = nil
	in.Note = "The group is resolved; no live diagnosis was run."
	r := report.Build(in)
	if r.ResolvedAt.IsZero() {
		t.Fatal("Build left ResolvedAt zero for a resolved group")
	}
	msg, blocks := golden(t, "resolved", r)
	if hasType(blocks, "actions") {
		t.Error("a resolved group offers actions")
	}
	if h := textOf(blocks[0]["text"]); !strings.HasPrefix(h, ":white_check_mark: RESOLVED: ZookeeperDown") {
		t.Errorf("header %q", h)
	}
	b, ok := blockByID(blocks, "resolved")
	if !ok || !strings.Contains(textOf(b["text"]), "after 16m") || !strings.Contains(textOf(b["text"]), "2 alert(s) resolved") {
		t.Errorf("resolved block %v", b)
	}
	if !strings.HasPrefix(msg.Text, "[RESOLVED] ZookeeperDown") {
		t.Errorf("fallback text %q", msg.Text)
	}
}

func TestRenderHugeGroupStaysWithinLimits(t *testing.T) {
	set := builtinSet(t)
	pb, _ := set.Get("keeper-readonly-replicas")
	longName := "ClickHouseReadonlyReplica" + strings.Repeat("X", 200)
	d := alertData(longName, "firing", 100)
	d.CommonAnnotations["description"] = strings.Repeat("A very long description of the alert. ", 40)
	in := inputFor(pb, true, d)
	in.Truncated = 7
	diag := fixedDiagnosis()
	diag.Findings = nil
	for i := 0; i < 40; i++ {
		var rows [][]string
		for j := 0; j < 200; j++ {
			rows = append(rows, []string{fmt.Sprintf("db_%d", j), strings.Repeat("very_long_table_name_", 10), strings.Repeat("é", 100)})
		}
		diag.Findings = append(diag.Findings, diagnose.Finding{
			Status: probe.Crit, Probe: "clickhouse.replicas", Node: fmt.Sprintf("ch-%02d", i),
			Summary:  strings.Repeat("read-only replicas <everywhere> & more ", 1+99*(i%2)),
			Evidence: []probe.Table{{Title: "Read-only replicas", Columns: []string{"database", "table", "note"}, Rows: rows}, {Columns: []string{"x"}, Rows: [][]string{{"```fence```"}}}},
		})
	}
	diag.Verdict = strings.Repeat("Everything is read-only. ", 200)
	in.Diagnosis = diag
	in.Sections[3].Body = strings.Repeat("1. Do the thing with `code` and *bold*.\n", 200)
	r := report.Build(in)
	if r.Firing != 100 {
		t.Fatalf("Build counted %d firing alerts", r.Firing)
	}
	msg, blocks := golden(t, "huge", r)

	if h := textOf(blocks[0]["text"]); runes(h) > MaxHeaderLen {
		t.Errorf("header has %d characters", runes(h))
	}
	all, _ := json.Marshal(msg.Blocks)
	for _, note := range []string{"(truncated, ", "… and 28 more findings", "more rows", "+7 not sent by Alertmanager"} {
		if !strings.Contains(string(all), note) {
			t.Errorf("no %q note in the rendered blocks", note)
		}
	}
	// Each code fence a section opens is closed.
	for _, b := range blocks {
		if b["type"] == "section" {
			if n := strings.Count(textOf(b["text"]), "```"); n%2 != 0 {
				t.Errorf("block %v leaves a code fence open (%d fences)", b["block_id"], n)
			}
		}
	}

	// A hundred alerts of a normal name are listed up to eight.
	plainGroup := report.Build(inputFor(pb, true, alertData("ClickHouseReadonlyReplica", "firing", 100)))
	b, ok := blockByID(checkValid(t, Render(plainGroup)), "summary")
	if !ok || !strings.Contains(textOf(b["text"]), "_… and 92 more alerts_") || strings.Count(textOf(b["text"]), ":red_circle:") != 8 {
		t.Errorf("summary of a 100-alert group: %v", b)
	}

	// More sections than Slack's 50-block limit: the head and the tail stay.
	for i := 0; i < 60; i++ {
		r.Sections = append(r.Sections, report.Section{Name: fmt.Sprintf("extra-%d", i), Title: "Extra", Body: "more"})
	}
	msg = Render(r)
	blocks = checkValid(t, msg)
	if len(blocks) != MaxBlocks {
		t.Errorf("%d blocks, want exactly %d", len(blocks), MaxBlocks)
	}
	for _, id := range []string{"omitted", "actions", "links", "footer"} {
		if _, ok := blockByID(blocks, id); !ok {
			t.Errorf("no %q block after dropping the middle", id)
		}
	}
}

func TestRenderOfflineNote(t *testing.T) {
	set := builtinSet(t)
	pb, _ := set.Get("keeper-latency-high")
	in := inputFor(pb, true, alertData("ZookeeperHighLatency", "firing", 1))
	in.Diagnosis = nil
	in.Note = "Offline render: no probes were run, so there are no live findings."
	_, blocks := golden(t, "offline", report.Build(in))
	b, ok := blockByID(blocks, "findings-0")
	if !ok || !strings.Contains(textOf(b["text"]), "_Offline render: no probes were run") {
		t.Errorf("findings block %v does not carry the note", b)
	}
	for _, id := range []string{"verdict", "cause"} {
		if _, ok := blockByID(blocks, id); ok {
			t.Errorf("a %q block without a diagnosis", id)
		}
	}
}

func TestRenderIncident(t *testing.T) {
	set := builtinSet(t)
	pb, _ := set.Get("keeper-down")
	r := report.Build(inputFor(pb, true, alertData("ZookeeperDown", "firing", 3)))
	r.Incident = &report.Incident{}
	for i := 0; i < 20; i++ {
		g := report.Group{Title: fmt.Sprintf("ClickHouseReadonlyReplica %02d", i), Status: "firing", Firing: i + 1}
		if i%4 == 3 {
			g.Status, g.Firing = "resolved", 0
		}
		r.Incident.Groups = append(r.Incident.Groups, g)
	}
	_, blocks := golden(t, "incident", r)
	if h := textOf(blocks[0]["text"]); h != ":fire: FIRING: Incident on prod: 20 alert groups" {
		t.Errorf("header %q", h)
	}
	b, ok := blockByID(blocks, "incident")
	if !ok {
		t.Fatal("no incident block")
	}
	text := textOf(b["text"])
	// A report stored before the incident totals existed: its groups are
	// the whole incident; the top 10 are listed.
	if !strings.Contains(text, "… and 10 more groups") || !strings.Contains(text, ":white_check_mark: *ClickHouseReadonlyReplica 03* resolved") {
		t.Errorf("incident block:\n%s", text)
	}
}
