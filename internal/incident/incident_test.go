package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
	"github.com/chmedic/chmedic/webhook"
)

const cfgYAML = `
clusters:
  - name: prod
    match: ['cluster="prod"']
    clickhouse:
      nodes: [{name: ch-1, address: "127.0.0.1:9000"}]
    keeper:
      nodes: [{name: zk-1, address: "127.0.0.1:2181"}]
slack:
  channel: "#alerts"
  routes:
    - match: ['severity="page"']
      channel: "#pager"
  storm_threshold: 3
  storm_window: 2m
`

type fakeDiagnoser struct {
	calls int
	err   error
}

func (f *fakeDiagnoser) Diagnose(_ context.Context, cluster string) (*diagnose.Diagnosis, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &diagnose.Diagnosis{Cluster: cluster, Status: probe.Crit, Verdict: "Coordination lost: replicas are read-only on ch-1 (db.t).",
		Findings: []diagnose.Finding{{Status: probe.Crit, Probe: "clickhouse.replicas", Node: "ch-1", Summary: "1 read-only replica"}},
		Results:  []probe.Result{{Probe: "clickhouse.replicas", Node: "ch-1", Status: probe.Crit}}}, nil
}

type kicks int

func (k *kicks) Kick() { *k++ }

func newProcessor(t *testing.T) (*Processor, *store.Store, *fakeDiagnoser) {
	t.Helper()
	cfg, err := config.Parse("chmedic.yaml", []byte(cfgYAML), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pbs, err := playbooks.Load("", playbooks.Validator{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := &fakeDiagnoser{}
	var k kicks
	return &Processor{Config: cfg, Playbooks: pbs, Diagnoser: d, Store: st, Outbox: &k,
		Now: func() time.Time { return time.Date(2026, 11, 23, 3, 5, 0, 0, time.UTC) }}, st, d
}

func message(groupKey, alertname, status string, labels map[string]string) *webhook.Message {
	l := template.KV{"alertname": alertname, "cluster": "prod", "severity": "critical"}
	for k, v := range labels {
		l[k] = v
	}
	a := template.Alert{Status: status, Labels: l, Annotations: template.KV{"summary": alertname},
		StartsAt: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC), Fingerprint: "f-" + groupKey}
	if status == "resolved" {
		a.EndsAt = time.Date(2026, 11, 23, 3, 4, 0, 0, time.UTC)
	}
	return &webhook.Message{Version: "4", GroupKey: groupKey, Data: &template.Data{
		Status: status, Alerts: template.Alerts{a}, GroupLabels: template.KV{"alertname": alertname, "cluster": "prod"},
		CommonLabels: l, CommonAnnotations: template.KV{"summary": alertname}, ExternalURL: "http://am:9093"}}
}

func outboxBody(t *testing.T, st *store.Store, id int64) chslack.Message {
	t.Helper()
	e, err := st.OutboxEntry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var m chslack.Message
	if err := json.Unmarshal(e.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func due(t *testing.T, st *store.Store) []store.OutboxEntry {
	es, err := st.DueOutbox(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestProcessPostsThenUpdatesOneMessage(t *testing.T) {
	p, st, d := newProcessor(t)
	ctx := context.Background()
	m := message("g1", "ClickHouseReadonlyReplica", "firing", nil)
	if err := p.Process(ctx, store.Notification{ID: 1}, m); err != nil {
		t.Fatal(err)
	}
	es := due(t, st)
	if len(es) != 1 || es[0].Kind != store.KindPost || es[0].ThreadKey != "group:g1" || es[0].Channel != "#alerts" {
		t.Fatalf("outbox %+v", es)
	}
	body := outboxBody(t, st, es[0].ID)
	blocks, _ := json.Marshal(body.Blocks)
	for _, want := range []string{"Coordination lost", "keeper-readonly-replicas", "chmedic:ddl_freeze", "chmedic:rolling_restart"} {
		if !strings.Contains(string(blocks)+body.Text, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if !strings.Contains(body.Plain, "== Mitigation ==") {
		t.Error("no plain rendering for the log")
	}
	// Processing the same notification again (a replay after a crash) offers
	// the same requests and replaces the pending post rather than adding one.
	if err := p.Process(ctx, store.Notification{ID: 1}, m); err != nil {
		t.Fatal(err)
	}
	if es2 := due(t, st); len(es2) != 1 || es2[0].ID != es[0].ID {
		t.Fatalf("after replay: %+v", es2)
	}
	again := outboxBody(t, st, es[0].ID)
	if ids(t, body) != ids(t, again) {
		t.Fatalf("request ids changed on replay: %s vs %s", ids(t, body), ids(t, again))
	}
	if d.calls != 2 {
		t.Fatalf("diagnoser called %d times", d.calls)
	}
	// Each button id is an offered request the store knows.
	for _, id := range strings.Split(ids(t, body), ",") {
		if _, err := st.ActionRequestByID(ctx, id); err != nil {
			t.Errorf("button id %q: %v", id, err)
		}
	}
	// Posted, then resolved: one update in place and a note in the thread.
	st.MarkSending(ctx, es[0].ID)
	st.MarkSent(ctx, es[0].ID, "C1", "1.000100")
	if err := p.Process(ctx, store.Notification{ID: 2}, message("g1", "ClickHouseReadonlyReplica", "resolved", nil)); err != nil {
		t.Fatal(err)
	}
	es = due(t, st)
	if len(es) != 1 || es[0].Kind != store.KindUpdate {
		t.Fatalf("after resolve: %+v", es)
	}
	upd := outboxBody(t, st, es[0].ID)
	if !strings.HasPrefix(upd.Text, "[RESOLVED]") || strings.Contains(mustJSON(upd.Blocks), `"type":"actions"`) {
		t.Fatalf("resolved update: %s", upd.Text)
	}
	st.MarkSending(ctx, es[0].ID)
	st.MarkSent(ctx, es[0].ID, "C1", "1.000100")
	es = due(t, st)
	if len(es) != 1 || es[0].Kind != store.KindReply || !strings.Contains(outboxBody(t, st, es[0].ID).Text, "Resolved at 03:04:00") {
		t.Fatalf("resolve note: %+v", es)
	}
}

func ids(t *testing.T, m chslack.Message) string {
	s := mustJSON(m.Blocks)
	var out []string
	for _, part := range strings.Split(s, `"value":"`)[1:] {
		out = append(out, part[:strings.Index(part, `"`)])
	}
	return strings.Join(out, ",")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestProcessRoutesAndFallsBack(t *testing.T) {
	p, st, d := newProcessor(t)
	ctx := context.Background()
	// Route by label.
	if err := p.Process(ctx, store.Notification{ID: 1}, message("g-page", "ZookeeperDown", "firing", map[string]string{"severity": "page"})); err != nil {
		t.Fatal(err)
	}
	// No cluster matches: a useful message, no diagnosis.
	other := message("g-other", "SomethingElse", "firing", map[string]string{"cluster": "staging"})
	if err := p.Process(ctx, store.Notification{ID: 2}, other); err != nil {
		t.Fatal(err)
	}
	es := due(t, st)
	if len(es) != 2 || es[0].Channel != "#pager" || es[1].Channel != "#alerts" {
		t.Fatalf("%+v", es)
	}
	if b := outboxBody(t, st, es[0].ID); !strings.Contains(mustJSON(b.Blocks), "keeper-down") {
		t.Error("ZookeeperDown did not get the keeper-down playbook")
	}
	b := outboxBody(t, st, es[1].ID)
	if !strings.Contains(b.Plain, "No configured cluster matches") || !strings.Contains(b.Plain, "no specific playbook matched") {
		t.Fatalf("fallback message:\n%s", b.Plain)
	}
	if d.calls != 1 {
		t.Fatalf("diagnoser calls %d, want 1 (not for the unmatched cluster)", d.calls)
	}
	// A failing diagnosis is a note, not an error.
	d.err = errors.New("engine on fire")
	if err := p.Process(ctx, store.Notification{ID: 3}, message("g3", "ClickHouseReadonlyReplica", "firing", map[string]string{"severity": "warning"})); err != nil {
		t.Fatal(err)
	}
	es = due(t, st)
	if b := outboxBody(t, st, es[len(es)-1].ID); !strings.Contains(b.Plain, "The live diagnosis failed: engine on fire") {
		t.Fatalf("%s", b.Plain)
	}
}

func TestProcessStormFoldsGroupsIntoOneIncident(t *testing.T) {
	p, st, _ := newProcessor(t)
	ctx := context.Background()
	for i, name := range []string{"ClickHouseReadonlyReplica", "ZookeeperHighLatency", "ClickHouseZooKeeperHardwareExceptions", "ZookeeperOutstandingRequests"} {
		if err := p.Process(ctx, store.Notification{ID: int64(i + 1)}, message(fmt.Sprintf("g%d", i), name, "firing", nil)); err != nil {
			t.Fatal(err)
		}
	}
	es := due(t, st)
	// Two groups got their own message before the storm; the third opened an
	// incident and the fourth joined it (its pending post was replaced).
	if len(es) != 3 {
		t.Fatalf("%d posts, want 3: %+v", len(es), es)
	}
	inc := es[2]
	if !strings.HasPrefix(inc.ThreadKey, "incident:prod:") {
		t.Fatalf("third thread %q", inc.ThreadKey)
	}
	b := outboxBody(t, st, inc.ID)
	if !strings.Contains(b.Plain, "Incident: 2 alert groups") || !strings.Contains(b.Plain, "ZookeeperOutstandingRequests") || !strings.Contains(b.Plain, "ClickHouseZooKeeperHardwareExceptions") {
		t.Fatalf("incident message:\n%s", b.Plain)
	}
	if !strings.Contains(mustJSON(b.Blocks), "Incident on prod: 2 alert groups") {
		t.Fatal("incident header missing")
	}
	// The incident follows the highest-priority runbook of its groups
	// (ZookeeperOutstandingRequests 75 over the hardware exceptions' 50),
	// whichever group changed last.
	if !strings.Contains(b.Plain, "playbook keeper-outstanding-requests") {
		t.Fatalf("incident playbook:\n%s", b.Plain)
	}
	if err := p.Process(ctx, store.Notification{ID: 9}, message("g2", "ClickHouseZooKeeperHardwareExceptions", "firing", map[string]string{"extra": "1"})); err != nil {
		t.Fatal(err)
	}
	es = due(t, st)
	if b := outboxBody(t, st, es[len(es)-1].ID); !strings.Contains(b.Plain, "playbook keeper-outstanding-requests") {
		t.Fatalf("after the lower-priority group changed:\n%s", b.Plain)
	}
}

func TestProcessNotesGroupChangesInTheThread(t *testing.T) {
	p, st, _ := newProcessor(t)
	ctx := context.Background()
	one := message("g", "ClickHouseReadonlyReplica", "firing", map[string]string{"instance": "ch-1"})
	if err := p.Process(ctx, store.Notification{ID: 1}, one); err != nil {
		t.Fatal(err)
	}
	es := due(t, st)
	st.MarkSending(ctx, es[0].ID)
	st.MarkSent(ctx, es[0].ID, "C1", "1.000100")
	two := message("g", "ClickHouseReadonlyReplica", "firing", map[string]string{"instance": "ch-1"})
	second := two.Alerts[0]
	second.Labels = template.KV{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod", "severity": "critical", "instance": "ch-2"}
	second.Fingerprint = "f-g-2"
	two.Alerts = append(two.Alerts, second)
	delete(two.CommonLabels, "instance")
	if err := p.Process(ctx, store.Notification{ID: 2}, two); err != nil {
		t.Fatal(err)
	}
	es = due(t, st)
	if len(es) != 1 || es[0].Kind != store.KindUpdate {
		t.Fatalf("%+v", es)
	}
	st.MarkSending(ctx, es[0].ID)
	st.MarkSent(ctx, es[0].ID, "C1", "1.000100")
	es = due(t, st)
	if len(es) != 1 || es[0].Kind != store.KindReply || !strings.Contains(outboxBody(t, st, es[0].ID).Text, "2 alerts firing now (was 1)") {
		t.Fatalf("follow-up: %+v", es)
	}
}
