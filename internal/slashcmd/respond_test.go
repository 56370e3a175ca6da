package slashcmd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
)

// TestHTTPResponder: the body is what Slack documents for response_url
// (response_type, replace_original false, text, blocks; no blocks key
// when there are none); only https or loopback URLs are used; a refusal
// by Slack is an error.
func TestHTTPResponder(t *testing.T) {
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		got = append(got, m)
		if r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		if m["text"] == "expired" {
			http.Error(w, "expired_url", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	p := &HTTPResponder{}
	ctx := context.Background()
	if err := p.Respond(ctx, srv.URL+"/commands/T/1", Response{InChannel: true, Message: chslack.TextMessage("hello")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Respond(ctx, srv.URL+"/commands/T/1", Response{Message: chslack.Message{Text: "plain", Plain: "not for slack"}}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["response_type"] != "in_channel" || got[0]["replace_original"] != false || got[0]["blocks"] == nil ||
		got[1]["response_type"] != "ephemeral" || got[1]["text"] != "plain" || got[1]["blocks"] != nil || got[1]["plain"] != nil {
		t.Errorf("bodies %v", got)
	}
	if err := p.Respond(ctx, srv.URL+"/x", Response{Message: chslack.Message{Text: "expired"}}); err == nil || !strings.Contains(err.Error(), "expired_url") {
		t.Errorf("refused post: %v", err)
	}
	for _, u := range []string{"http://hooks.slack.com/commands/T/1", "ftp://127.0.0.1/x", "::"} {
		if err := p.Respond(ctx, u, Response{Message: chslack.Message{Text: "x"}}); err == nil {
			t.Errorf("posted to %q", u)
		}
	}
}

// TestParseCommandKeepsChannelName: the dispatcher's parse keeps
// channel_name, which the in-channel rule matches configured names with.
func TestParseCommandKeepsChannelName(t *testing.T) {
	c, err := approvals.ParseCommand(url.Values{"command": {"/chmedic"}, "user_id": {"U0A"}, "team_id": {"T0A"}, "channel_id": {"C0X"}, "channel_name": {"incidents"}}, time.Now())
	if err != nil || c.ChannelName != "incidents" || !InChannelOf([]string{"#incidents"})(c.ChannelID, c.ChannelName) {
		t.Errorf("%+v %v", c, err)
	}
}

// BenchmarkAck is the cost of acknowledging `/chmedic diagnose` (what Slack
// waits for; the diagnosis itself runs after): the policy with a user group
// (resolved from the cache) and the start of the answer.
func BenchmarkAck(b *testing.B) {
	diag := &fakeDiagnoser{}
	h := New(Options{TeamID: func() string { return team }, Clusters: []string{"prod"}, Diagnoser: diag,
		Policy:    config.SlackCommands{AllowedChannels: []string{postingCh}, AllowedUsers: []string{"U0BOB", "S0ONCALL"}},
		Groups:    fakeGroups{"S0ONCALL": {"U0ALICE"}},
		Responder: &fakeResponder{}, InChannel: InChannelOf([]string{postingCh})})
	defer h.Close()
	c := cmd("diagnose prod")
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := h.HandleCommand(context.Background(), c); !strings.HasPrefix(r.Ephemeral, ":stethoscope:") {
			b.Fatal(r.Ephemeral)
		}
	}
	b.StopTimer()
	h.Wait()
}
