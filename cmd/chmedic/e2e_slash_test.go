package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/testenv"
)

// slashCommand sends the signed slash command Slack would send for spec and
// returns the HTTP answer.
func (c *chmedic) slashCommand(t *testing.T, slk *slackfake.Server, spec slackfake.SlashCommandSpec) (int, string) {
	t.Helper()
	req, err := slk.SlashCommandRequest(c.url("/slack/commands"), e2eSigningSecret, spec)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	body, _ := io.ReadAll(req.Body)
	return c.sendRaw(t, "/slack/commands", req.Header, body)
}

// ackText is the text of an ephemeral slash command answer.
func ackText(t *testing.T, body string) string {
	t.Helper()
	var m struct{ ResponseType, Text string }
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Errorf("answer %q: %v", body, err)
	}
	if !strings.Contains(body, `"response_type":"ephemeral"`) {
		t.Errorf("answer %q is not ephemeral", body)
	}
	return m.Text
}

func responseText(p slackfake.ResponsePost) string {
	b, _ := json.Marshal(p.Body)
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// TestSlashCommandThroughTheBinary: /chmedic reaches the real binary signed
// as Slack signs it: help is the HTTP answer; a forged request is refused
// 401; fifty people typing `/chmedic diagnose test` at once are each
// acknowledged at once and answered through their response_url, from ONE
// probe round, with one message in the channel (the others privately); a
// digest asked in the channel chmedic posts to is posted there, with its
// actions, through the outbox.
func TestSlashCommandThroughTheBinary(t *testing.T) {
	env := testenv.Shared(t)
	slk := slackfake.New(t, slackfake.Options{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "signing-secret"), []byte(e2eSigningSecret), 0o600)
	cfg := writeConfig(t, dir, env, slk.URL(), "  public_url: https://chmedic.example.com\n  signing_secret_file: signing-secret\n  slash_command: /chmedic\n")
	ch := startChmedic(t, dir, cfg, env)

	code, body := ch.slashCommand(t, slk, slackfake.SlashCommandSpec{Text: "help", UserID: "U0ALICE", ChannelID: slackChannel})
	if code != 200 || !strings.Contains(ackText(t, body), "/chmedic diagnose [cluster]") {
		t.Fatalf("help: %d %s", code, body)
	}

	req, err := slk.SlashCommandRequest(ch.url("/slack/commands"), e2eSigningSecret, slackfake.SlashCommandSpec{Text: "diagnose test", UserID: "U0MALLORY", ChannelID: slackChannel})
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := io.ReadAll(req.Body)
	forged := bytes.Replace(signed, []byte("U0MALLORY"), []byte("U0ALICE"), 1)
	if code, text := ch.sendRaw(t, "/slack/commands", req.Header, forged); code != 401 || !strings.HasPrefix(text, "bad_signature") {
		t.Errorf("forged: %d %s", code, text)
	}
	if v := ch.metric(t, "chmedic_slack_interactions_rejected_total", `reason="bad_signature"`); v != 1 {
		t.Errorf("rejected bad_signature = %v", v)
	}

	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			code, body := ch.slashCommand(t, slk, slackfake.SlashCommandSpec{Text: "diagnose test", UserID: fmt.Sprintf("U0USER%02d", i), ChannelID: slackChannel})
			if code != 200 || !strings.Contains(ackText(t, body), "Diagnosing *test*") {
				t.Errorf("user %d: %d %s", i, code, body)
			}
		})
	}
	wg.Wait()
	diagnosed := func() []slackfake.ResponsePost {
		var out []slackfake.ResponsePost
		for _, p := range slk.ResponsePosts() {
			if strings.Contains(responseText(p), "Diagnosis of test") {
				out = append(out, p)
			}
		}
		return out
	}
	waitUntil(t, "fifty answers", 30*time.Second, func() bool { return len(diagnosed()) == n })
	users, inChannel := map[string]bool{}, 0
	for _, p := range diagnosed() {
		if p.Status != 200 {
			t.Errorf("response_url answered %d", p.Status)
		}
		users[p.User] = true
		if p.Body["response_type"] == "in_channel" {
			inChannel++
		}
	}
	if len(users) != n || inChannel != 1 {
		t.Errorf("%d users answered, %d answers in the channel (want %d, 1)", len(users), inChannel, n)
	}
	if v := ch.metric(t, "chmedic_diagnosis_rounds_total", `cluster="test"`); v != 1 {
		t.Errorf("chmedic_diagnosis_rounds_total = %v, want 1: fifty asks must share one probe round", v)
	}
	if ms := messagesAbout(slk, "[DIAGNOSIS] test"); len(ms) != 1 {
		t.Errorf("%d diagnosis messages in the channel, want 1", len(ms))
	}

	code, body = ch.slashCommand(t, slk, slackfake.SlashCommandSpec{Text: "digest", UserID: "U0ALICE", ChannelID: slackChannel})
	if code != 200 || !strings.Contains(ackText(t, body), "health digest of all clusters") {
		t.Fatalf("digest: %d %s", code, body)
	}
	waitUntil(t, "the digest in the channel", 30*time.Second, func() bool { return len(messagesAbout(slk, "Health digest")) == 1 })
	waitUntil(t, "the digest's answer", 10*time.Second, func() bool {
		for _, p := range slk.ResponsePosts() {
			if strings.Contains(responseText(p), "is being posted in this channel") {
				return true
			}
		}
		return false
	})

	code, body = ch.slashCommand(t, slk, slackfake.SlashCommandSpec{Text: "freezes", UserID: "U0ALICE", ChannelID: slackChannel})
	if code != 200 || ackText(t, body) != "No active DDL freeze on `test`." {
		t.Errorf("freezes: %d %s", code, body)
	}
	code, body = ch.slashCommand(t, slk, slackfake.SlashCommandSpec{Text: "diagnose test", UserID: "U0EVE", ChannelID: slackChannel, TeamID: "T0OTHER"})
	if code != 200 || !strings.Contains(ackText(t, body), "serves another Slack workspace") {
		t.Errorf("other workspace: %d %s", code, body)
	}
	audit := exec.Command(binary, "audit", "--config", cfg)
	audit.Env = append(os.Environ(), "CHMEDIC_TEST_CH_PASSWORD="+env.ProbePassword,
		"CHMEDIC_TEST_SLACK_TOKEN="+slackfake.DefaultToken, "CHMEDIC_TEST_WEBHOOK_TOKEN="+webhookToken)
	out, err := audit.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "U0EVE") || !strings.Contains(string(out), "other workspace") {
		t.Errorf("audit (%v):\n%s", err, out)
	}
}

// TestSlashCommandOverSocketMode: with Socket Mode the same handler answers:
// the envelope's ack carries "working on it", the result follows through
// the response_url.
func TestSlashCommandOverSocketMode(t *testing.T) {
	env := testenv.Shared(t)
	slk := slackfake.New(t, slackfake.Options{SocketPingInterval: 200 * time.Millisecond})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app-token"), []byte(slackfake.DefaultAppToken), 0o600)
	cfg := writeConfig(t, dir, env, slk.URL(), "  socket_mode: true\n  app_token_file: app-token\n  slash_command: /chmedic\n")
	startChmedic(t, dir, cfg, env)
	waitUntil(t, "the Socket Mode connection", 15*time.Second, func() bool { return slk.SocketConnections() == 1 })

	id, err := slk.SendCommand(slackfake.SlashCommandSpec{Text: "diagnose --private", UserID: "U0BOB", ChannelID: slackChannel})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the ack", 10*time.Second, func() bool { a, ok := slk.AckFor(id); return ok && a.Known })
	a, _ := slk.AckFor(id)
	if !strings.Contains(string(a.Payload), "Diagnosing *test*") || !strings.Contains(string(a.Payload), "only you will see it") {
		t.Errorf("ack payload %s", a.Payload)
	}
	waitUntil(t, "the private answer", 30*time.Second, func() bool {
		for _, e := range slk.Ephemerals() {
			if e.User == "U0BOB" && strings.Contains(string(e.Blocks), "Diagnosis of test") {
				return true
			}
		}
		return false
	})
}
