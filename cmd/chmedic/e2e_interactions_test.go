package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/testenv"
)

const e2eSigningSecret = "e2e-signing-secret"

var clickActionIDRE = regexp.MustCompile(`"action_id":"(chmedic:[^"]+)"`)

// sendRaw posts body with headers h to chmedic's path.
func (c *chmedic) sendRaw(t *testing.T, path string, h http.Header, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.url(path), bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestClickOnARealMessage: the binary posts an alert's message with its
// action button; a click on it, signed as Slack signs it, is verified and
// answered privately by the approval flow (no policy is configured for the
// action, so it fails closed: nothing runs); the same request replayed, also after a restart on the same store,
// and a forged one are refused and counted.
func TestClickOnARealMessage(t *testing.T) {
	env := testenv.Shared(t)
	slk := slackfake.New(t, slackfake.Options{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "signing-secret"), []byte(e2eSigningSecret), 0o600)
	cfg := writeConfig(t, dir, env, slk.URL(), "  public_url: https://chmedic.example.com\n  signing_secret_file: signing-secret\n")
	ch := startChmedic(t, dir, cfg, env)

	payload := []byte(`{"version":"4","groupKey":"{}:{alertname=\"ChmedicClickE2E\"}","status":"firing","receiver":"chmedic",
		"alerts":[{"status":"firing","labels":{"alertname":"ChmedicClickE2E","cluster":"chmedic_test"},"annotations":{"summary":"click test"},"startsAt":"2026-11-23T03:00:00Z","fingerprint":"00000000000c11c4"}],
		"groupLabels":{"alertname":"ChmedicClickE2E"},"commonLabels":{"alertname":"ChmedicClickE2E","cluster":"chmedic_test"},"commonAnnotations":{},"externalURL":"http://am"}`)
	if code, body := ch.post(t, payload, webhookToken); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	waitUntil(t, "the message", 30*time.Second, func() bool { return len(messagesAbout(slk, "ChmedicClickE2E")) == 1 })
	msg := messagesAbout(slk, "ChmedicClickE2E")[0]
	m := clickActionIDRE.FindSubmatch(msg.Blocks)
	if m == nil {
		t.Fatalf("no action button on the message:\n%s", msg.Blocks)
	}
	spec := slackfake.ClickSpec{Channel: slackChannel, TS: msg.TS, ActionID: string(m[1]), UserID: "U0ALICE"}
	req, err := slk.ClickRequest(ch.url("/slack/interactions"), e2eSigningSecret, spec)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if code, text := ch.sendRaw(t, "/slack/interactions", req.Header, body); code != 200 {
		t.Fatalf("click: %d %s", code, text)
	}
	waitUntil(t, "the private reply", 10*time.Second, func() bool { return len(slk.Ephemerals()) == 1 })
	if eph := slk.Ephemerals()[0]; eph.User != "U0ALICE" || !strings.Contains(eph.Text, "No approval policy for collect_logs") {
		t.Errorf("reply %+v", eph)
	}
	if code, text := ch.sendRaw(t, "/slack/interactions", req.Header, body); code != 401 || !strings.HasPrefix(text, "replay") {
		t.Errorf("replay: %d %s", code, text)
	}

	ch.stop()
	ch = startChmedic(t, dir, cfg, env)
	if code, text := ch.sendRaw(t, "/slack/interactions", req.Header, body); code != 401 || !strings.HasPrefix(text, "replay") {
		t.Errorf("replay after a restart: %d %s", code, text)
	}
	forged := bytes.ReplaceAll(body, []byte("U0ALICE"), []byte("U0MALLORY"))
	if code, text := ch.sendRaw(t, "/slack/interactions", req.Header, forged); code != 401 || !strings.HasPrefix(text, "bad_signature") {
		t.Errorf("forged: %d %s", code, text)
	}
	if v := ch.metric(t, "chmedic_slack_interactions_rejected_total", `reason="replay"`); v != 1 {
		t.Errorf("rejected replay = %v", v)
	}
	if v := ch.metric(t, "chmedic_slack_interactions_rejected_total", `reason="bad_signature"`); v != 1 {
		t.Errorf("rejected bad_signature = %v", v)
	}
	if len(slk.Ephemerals()) != 1 {
		t.Errorf("%d replies, want 1", len(slk.Ephemerals()))
	}
}

// TestClickOverSocketMode: with slack.socket_mode the binary opens a Socket
// Mode connection, acknowledges the click's envelope and answers it with the
// same handler as over HTTP (a button chmedic never offered: refused, nothing
// runs).
func TestClickOverSocketMode(t *testing.T) {
	env := testenv.Shared(t)
	slk := slackfake.New(t, slackfake.Options{SocketPingInterval: 200 * time.Millisecond})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app-token"), []byte(slackfake.DefaultAppToken), 0o600)
	cfg := writeConfig(t, dir, env, slk.URL(), "  socket_mode: true\n  app_token_file: app-token\n")
	ch := startChmedic(t, dir, cfg, env)
	waitUntil(t, "the Socket Mode connection", 15*time.Second, func() bool { return slk.SocketConnections() == 1 })

	_, ts, err := slk.Client().PostMessage(slackChannel, slack.MsgOptionBlocks(slack.NewActionBlock("a",
		slack.NewButtonBlockElement("chmedic:collect_logs:0", "req-e2e", slack.NewTextBlockObject(slack.PlainTextType, "Collect logs", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	id, err := slk.SendClick(slackfake.ClickSpec{Channel: slackChannel, TS: ts, ActionID: "chmedic:collect_logs:0", UserID: "U0BOB"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the ack", 10*time.Second, func() bool { a, ok := slk.AckFor(id); return ok && a.Known })
	waitUntil(t, "the private reply", 10*time.Second, func() bool { return len(slk.Ephemerals()) == 1 })
	if eph := slk.Ephemerals()[0]; eph.User != "U0BOB" || !strings.Contains(eph.Text, "does not know this button") {
		t.Errorf("reply %+v", eph)
	}
	if v := ch.metric(t, "chmedic_slack_socket_connected", ""); v != 1 {
		t.Errorf("chmedic_slack_socket_connected = %v", v)
	}
}
