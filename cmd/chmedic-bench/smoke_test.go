package main

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestSmoke runs two tiny scenarios on the real environment and the real
// chmedic binary: one alert through the real Alertmanager to both its own
// slack_configs (the fake's incoming webhook must accept what Alertmanager
// 0.25 sends) and chmedic, and a half-second ingest load whose every 200 is
// in the store after SIGKILL. It asserts what arrived and what was counted,
// never how fast.
func TestSmoke(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	h, err := newHarness(ctx, env, "", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	b := &bench{h: h, logf: t.Logf, opts: options{senders: 2, ingest: 500 * time.Millisecond}}

	res, p, err := b.sideBySide(ctx, "Smoke", 1, time.Second, chOptions{StormThreshold: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	p.stop(sigterm)
	if r := res[0]; !r.amOK || !r.chOK {
		t.Fatalf("alert %s: Alertmanager's message %v, chmedic's %v; Slack calls: %+v", r.token, r.amOK, r.chOK, h.slack.Calls())
	}
	amMsgs := h.slack.Messages(amChannel)
	if len(amMsgs) != 1 || !strings.Contains(string(amMsgs[0].Attachments), res[0].token) {
		t.Errorf("Alertmanager's slack_configs message: %+v", amMsgs)
	}
	for _, c := range h.slack.Calls() {
		if c.Method == "incoming-webhook" {
			t.Logf("Alertmanager's slack_configs call: %s %s %v", c.HTTPMethod, c.ContentType, c.Params)
			if c.ContentType != "application/json" || c.Status != 200 {
				t.Errorf("Alertmanager's call: content type %q, status %d", c.ContentType, c.Status)
			}
		}
	}
	b.sideRows("side", res)

	// Ingest: only the 1-alert size, briefly, against a bare server too.
	bare, stop, err := bareServer()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ref := load(ctx, bare, "smoke-bare", 1, 2, 300*time.Millisecond)
	ip, err := h.startChmedic(ctx, "smoke-ingest", chOptions{LogLevel: "warn", QueueSize: ingestQueue})
	if err != nil {
		t.Fatal(err)
	}
	got := load(ctx, ip.webhookURL(), "smoke", 1, 2, 500*time.Millisecond)
	ip.stop(9) // SIGKILL
	stored, err := ip.storeInt(`SELECT count(*) FROM notifications`)
	if err != nil {
		t.Fatal(err)
	}
	if ref.accepted == 0 || got.accepted == 0 || got.errors != 0 || int(stored) != got.accepted {
		t.Errorf("ingest: bare %+v, chmedic accepted %d errors %d, in the store %d", ref.accepted, got.accepted, got.errors, stored)
	}

	var md strings.Builder
	if err := WriteMarkdown(&md, Results{Machine: machine(), Commit: commit(), Rows: b.rows}); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", md.String())
	for _, r := range b.rows {
		if r.Figure == "alerts measured (of 1)" && r.Value != 1 {
			t.Errorf("row %+v", r)
		}
		if strings.HasPrefix(r.Figure, "posted to Alertmanager") && (math.IsNaN(r.Value) || r.Peer == nil) {
			t.Errorf("row without a measurement: %+v", r)
		}
	}
}
