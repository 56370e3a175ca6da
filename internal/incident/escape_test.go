package incident

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"

	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/webhook"
)

// hostile are the strings an alert can carry to ping a whole channel or
// disguise a link when they reach Slack unescaped.
var hostile = []string{"<!here>", "<!channel>", "<https://x|y>", "<!everyone>", "<@U0BOSS>"}

// TestEveryTextFromAnAlertIsEscaped feeds mentions and links through every
// text field of an alert (alert name, labels, annotations, generator URL,
// runbook URL) and checks every text chmedic queues for Slack: the
// notification text and the mrkdwn of the blocks of the post and the
// update, and the follow-up replies. None may carry them unescaped.
// (plain_text objects are not parsed by Slack: no mention or link in them
// is ever live, so they are not checked.)
func TestEveryTextFromAnAlertIsEscaped(t *testing.T) {
	p, st, _ := newProcessor(t)
	ctx := context.Background()
	evil := strings.Join(hostile, " ")
	build := func(status string) *webhook.Message {
		m := message("g-evil", "Readonly"+evil, status, map[string]string{"severity": "critical " + evil, "instance": evil})
		m.CommonAnnotations = template.KV{"summary": "sum " + evil, "description": "desc " + evil, "runbook_url": "https://runbook.example/x?a=" + evil}
		a := m.Alerts[0]
		a.Annotations = template.KV{"summary": "alert sum " + evil}
		a.GeneratorURL = "http://prom.example/graph?g0.expr=" + evil
		b := a
		b.Labels = template.KV{}
		for k, v := range a.Labels {
			b.Labels[k] = v
		}
		b.Labels["instance"] = "other " + evil
		b.Fingerprint = "f-evil-2"
		m.Alerts = template.Alerts{a, b}
		delete(m.CommonLabels, "instance")
		return m
	}
	if err := p.Process(ctx, store.Notification{ID: 1}, build("firing")); err != nil {
		t.Fatal(err)
	}
	es := due(t, st)
	if len(es) != 1 {
		t.Fatalf("outbox %+v", es)
	}
	checkEscaped(t, "post", outboxBody(t, st, es[0].ID))
	st.MarkSending(ctx, es[0].ID)
	st.MarkSent(ctx, es[0].ID, "C1", "1.000100")

	// One of the two alerts resolves (a "firing now" note), then both.
	part := build("firing")
	part.Alerts[1].Status = "resolved"
	part.Alerts[1].EndsAt = part.Alerts[1].StartsAt.Add(60e9)
	for i, m := range []*webhook.Message{part, build("resolved")} {
		if i == 1 {
			for j := range m.Alerts {
				m.Alerts[j].Status, m.Alerts[j].EndsAt = "resolved", m.Alerts[j].StartsAt.Add(120e9)
			}
		}
		if err := p.Process(ctx, store.Notification{ID: int64(i + 2)}, m); err != nil {
			t.Fatal(err)
		}
		for _, e := range due(t, st) {
			checkEscaped(t, e.Kind, outboxBody(t, st, e.ID))
			st.MarkSending(ctx, e.ID)
			st.MarkSent(ctx, e.ID, "C1", "1.000100")
		}
	}
	var replies int
	for _, e := range allOutbox(t, st) {
		if e.Kind == store.KindReply {
			replies++
		}
	}
	if replies < 2 {
		t.Fatalf("%d follow-up replies, want the 'firing now' and the 'resolved' notes checked", replies)
	}
}

func allOutbox(t *testing.T, st *store.Store) []store.OutboxEntry {
	t.Helper()
	var out []store.OutboxEntry
	for id := int64(1); ; id++ {
		e, err := st.OutboxEntry(context.Background(), id)
		if err != nil {
			return out
		}
		out = append(out, e)
	}
}

// checkEscaped walks the message: the top-level text and every mrkdwn
// text object must carry no hostile string.
func checkEscaped(t *testing.T, what string, m chslack.Message) {
	t.Helper()
	texts := []string{m.Text}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				if s, ok := x["text"].(string); ok {
					texts = append(texts, s)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	raw, _ := json.Marshal(m.Blocks)
	var blocks any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	walk(blocks)
	for _, s := range texts {
		for _, h := range hostile {
			if strings.Contains(s, h) {
				t.Errorf("%s: %q reaches Slack unescaped in %q", what, h, s)
			}
		}
		if strings.Contains(s, "|y>") || strings.Contains(s, "expr=<") {
			t.Errorf("%s: a disguised link survives in %q", what, s)
		}
	}
}
