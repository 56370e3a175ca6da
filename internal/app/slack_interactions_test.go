package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/slackfake"
)

const ixSigningSecret = "test-signing-secret"

type ixClickRecorder struct {
	mu     sync.Mutex
	clicks []approvals.Click
}

func (r *ixClickRecorder) HandleClick(_ context.Context, c approvals.Click) (approvals.Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clicks = append(r.clicks, c)
	return approvals.Reply{Ephemeral: "recorded " + c.Value}, nil
}

type ixCommandRecorder struct {
	mu   sync.Mutex
	cmds []approvals.Command
}

func (r *ixCommandRecorder) HandleCommand(_ context.Context, c approvals.Command) (approvals.Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, c)
	return approvals.Reply{Ephemeral: "digest for " + c.UserID}, nil
}

func (r *ixClickRecorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clicks)
}

// ixConfig writes a config using the fake for Slack, with extra
// slack keys, into dir (reused across a restart).
func ixConfig(t *testing.T, dir string, slk *slackfake.Server, extra string) *config.Config {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "slack-token"), []byte(slackfake.DefaultToken), 0o600)
	os.WriteFile(filepath.Join(dir, "signing-secret"), []byte(ixSigningSecret), 0o600)
	os.WriteFile(filepath.Join(dir, "app-token"), []byte(slackfake.DefaultAppToken), 0o600)
	yaml := fmt.Sprintf(`store: {path: chmedic.db}
clusters:
  - name: test
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:1"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:1"}]}
slack:
  bot_token_file: slack-token
  signing_secret_file: signing-secret
  channel: C0INCIDENT
  api_url: %s
%s`, slk.URL(), extra)
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func ixButtonMessage(t *testing.T, slk *slackfake.Server) string {
	t.Helper()
	_, ts, err := slk.Client().PostMessage("C0INCIDENT", slack.MsgOptionBlocks(
		slack.NewActionBlock("req", slack.NewButtonBlockElement("approve", "req-0001", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func ixQuietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ixPost(t *testing.T, url string, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestInteractionsOverHTTP(t *testing.T) {
	slk := slackfake.New(t, slackfake.Options{})
	ts := ixButtonMessage(t, slk)
	dir := t.TempDir()
	cfg := ixConfig(t, dir, slk, "  public_url: https://chmedic.example.com\n")

	// The approval flow answers the click: chmedic never offered this
	// button, so it is refused privately and nothing runs.
	a, err := New(context.Background(), cfg, ixQuietLog(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	click := slackfake.ClickSpec{Channel: "C0INCIDENT", TS: ts, ActionID: "approve", UserID: "U0ALICE"}
	req, err := slk.ClickRequest(srv.URL+"/slack/interactions", ixSigningSecret, click)
	if err != nil {
		t.Fatal(err)
	}
	replay := req.Clone(context.Background())
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	if st, text := ixPost(t, srv.URL, req); st != 200 {
		t.Fatalf("%d %s", st, text)
	}
	a.Interactions.Wait()
	if eph := slk.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0].Text, "does not know this button") || eph[0].User != "U0ALICE" {
		t.Fatalf("ephemerals %+v", eph)
	}
	srv.Close()
	a.Close()

	// After a restart, with a handler: the same request is a replay; a
	// fresh click is delivered.
	clicks := &ixClickRecorder{}
	a, err = New(context.Background(), cfg, ixQuietLog(), Options{InteractionOptions: InteractionOptions{Clicks: clicks}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv = httptest.NewServer(a.Handler())
	defer srv.Close()
	replay.URL, _ = replay.URL.Parse(srv.URL + "/slack/interactions")
	replay.Body = io.NopCloser(strings.NewReader(string(body)))
	if st, text := ixPost(t, srv.URL, replay); st != 401 || !strings.HasPrefix(text, "replay") {
		t.Fatalf("replay after a restart: %d %s", st, text)
	}
	req, _ = slk.ClickRequest(srv.URL+"/slack/interactions", ixSigningSecret, click)
	if st, text := ixPost(t, srv.URL, req); st != 200 || clicks.n() != 1 {
		t.Fatalf("%d %s, %d clicks", st, text, clicks.n())
	}
	a.Interactions.Wait()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`chmedic_slack_interactions_rejected_total{reason="replay"} 1`, `chmedic_slack_interactions_total{transport="http",type="block_actions"} 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestInteractionsOverSocketMode(t *testing.T) {
	slk := slackfake.New(t, slackfake.Options{SocketPingInterval: 100 * time.Millisecond})
	ts := ixButtonMessage(t, slk)
	cfg := ixConfig(t, t.TempDir(), slk, "  socket_mode: true\n  app_token_file: app-token\n")
	clicks, cmds := &ixClickRecorder{}, &ixCommandRecorder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, ixQuietLog(), Options{Listener: ln, InteractionOptions: InteractionOptions{Clicks: clicks, Commands: cmds}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	slk.WaitFor(t, func() bool { return slk.SocketConnections() == 1 }, 10*time.Second)
	id, err := slk.SendClick(slackfake.ClickSpec{Channel: "C0INCIDENT", TS: ts, ActionID: "approve", UserID: "U0BOB"})
	if err != nil {
		t.Fatal(err)
	}
	slk.WaitFor(t, func() bool { a, ok := slk.AckFor(id); return ok && a.Known }, 10*time.Second)
	if clicks.n() != 1 || clicks.clicks[0].UserID != "U0BOB" || clicks.clicks[0].Value != "req-0001" {
		t.Fatalf("clicks %+v", clicks.clicks)
	}
	slk.WaitFor(t, func() bool { return len(slk.Ephemerals()) == 1 }, 10*time.Second)
	if eph := slk.Ephemerals(); eph[0].Text != "recorded req-0001" || eph[0].User != "U0BOB" {
		t.Errorf("ephemerals %+v", eph)
	}
	// A slash command reaches the command handler; its reply is the ack's
	// payload.
	id, _ = slk.SendSlashCommand(map[string]string{"command": "/chmedic", "text": "digest", "user_id": "U0BOB", "channel_id": "C0INCIDENT"})
	slk.WaitFor(t, func() bool { _, ok := slk.AckFor(id); return ok }, 10*time.Second)
	if ack, _ := slk.AckFor(id); string(ack.Payload) != `{"response_type":"ephemeral","text":"digest for U0BOB"}` {
		t.Errorf("slash command ack %s", ack.Payload)
	}
	cmds.mu.Lock()
	if len(cmds.cmds) != 1 || cmds.cmds[0].Command != "/chmedic" || cmds.cmds[0].Text != "digest" || cmds.cmds[0].TeamID != slackfake.DefaultTeamID {
		t.Errorf("commands %+v", cmds.cmds)
	}
	cmds.mu.Unlock()
}
