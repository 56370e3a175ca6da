package slackfake

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// amPayload is what Alertmanager 0.25's slack_configs posts, as
// application/json (captured from the real Alertmanager of internal/testenv
// by cmd/chmedic-bench's TestSmoke, which logs it).
const amPayload = `{"attachments":[{"title":"[FIRING:1] Smoke47290N000 chmedic_test (Smoke47290 warning)","title_link":"http://vm:20339/#/alerts?receiver=both","text":"","fallback":"[FIRING:1] Smoke47290N000 chmedic_test (Smoke47290 warning) | http://vm:20339/#/alerts?receiver=both","callback_id":"","footer":"","color":"danger","mrkdwn_in":["fallback","pretext","text"]}],"channel":"#am","username":"Alertmanager"}`

func TestIncomingWebhook(t *testing.T) {
	s := New(t, Options{Channels: []string{"C0CHMEDIC1"}})
	hook := s.IncomingWebhookURL("C0AM")
	for _, tc := range []struct {
		name, method, url, ctype, body string
		status                         int
		answer                         string
	}{
		{"alertmanager 0.25", http.MethodPost, hook, "application/json", amPayload, 200, "ok"},
		{"text only", http.MethodPost, hook, "application/json", `{"text":"hello"}`, 200, "ok"},
		{"form payload", http.MethodPost, hook, "application/x-www-form-urlencoded", "payload=" + `%7B%22text%22%3A%22hi%22%7D`, 200, "ok"},
		{"unknown url", http.MethodPost, s.BaseURL() + "/services/T0/B0/nope", "application/json", `{"text":"x"}`, 404, "no_service"},
		{"get", http.MethodGet, hook, "", "", 405, "invalid_method"},
		{"not json", http.MethodPost, hook, "application/json", `{"text":`, 400, "invalid_payload"},
		{"array", http.MethodPost, hook, "application/json", `[{"text":"x"}]`, 400, "invalid_payload"},
		{"empty", http.MethodPost, hook, "application/json", `{"channel":"#x"}`, 400, "no_text"},
		{"empty attachment", http.MethodPost, hook, "application/json", `{"attachments":[{"color":"danger"}]}`, 400, "no_text"},
		{"attachments not array", http.MethodPost, hook, "application/json", `{"attachments":{"text":"x"}}`, 400, "invalid_attachments"},
		{"bad blocks", http.MethodPost, hook, "application/json", `{"blocks":[{"type":"nope"}]}`, 400, "invalid_blocks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || string(b) != tc.answer {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b, tc.status, tc.answer)
			}
		})
	}
	msgs := s.Messages("C0AM")
	if len(msgs) != 3 {
		t.Fatalf("want the 3 accepted messages in the webhook's channel, got %d", len(msgs))
	}
	if !strings.Contains(string(msgs[0].Attachments), "Smoke47290N000") || msgs[0].Params.Get("channel") != "#am" {
		t.Errorf("first message: %+v", msgs[0])
	}
	if n := s.CallCount(IncomingWebhookMethod); n != 11 {
		t.Errorf("recorded %d incoming-webhook calls, want 11", n)
	}
	s.SetOutage(true)
	resp, err := http.Post(hook, "application/json", strings.NewReader(`{"text":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("outage: %d", resp.StatusCode)
	}
}

func TestSetRateLimited(t *testing.T) {
	s := Start(Options{})
	defer s.Close()
	s.SetRateLimited(1500 * time.Millisecond)
	_, _, err := s.Client().PostMessage("C1", slack.MsgOptionText("x", false))
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("rate-limited post: %v", err)
	}
	calls := s.Calls()
	if c := calls[len(calls)-1]; c.Status != http.StatusTooManyRequests {
		t.Errorf("status %d", c.Status)
	}
	s.ClearRateLimited()
	if _, _, err := s.Client().PostMessage("C1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
}
