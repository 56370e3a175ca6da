package slackfake

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// TestSlashCommandRequest: the request is signed as Slack signs it (slack-go's
// verifier accepts it), carries Slack's fields, and its response_url takes
// in_channel and ephemeral replies.
func TestSlashCommandRequest(t *testing.T) {
	s := New(t, Options{})
	s.AddUser(User{ID: "U0ALICE", Name: "alice"})
	req, err := s.SlashCommandRequest("http://chmedic.example/slack/commands", "sekrit", SlashCommandSpec{Text: "diagnose prod", UserID: "U0ALICE", ChannelID: incidents})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	sv, err := slack.NewSecretsVerifier(req.Header, "sekrit")
	if err != nil {
		t.Fatal(err)
	}
	sv.Write(body)
	if err := sv.Ensure(); err != nil {
		t.Fatalf("signature: %v", err)
	}
	cmd, err := slack.SlashCommandParse(&http.Request{Method: http.MethodPost, Header: req.Header, Body: io.NopCloser(bytes.NewReader(body))})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Command != "/chmedic" || cmd.Text != "diagnose prod" || cmd.UserID != "U0ALICE" || cmd.UserName != "alice" || cmd.TeamID != DefaultTeamID ||
		cmd.ChannelID != incidents || cmd.ChannelName == "" || cmd.TriggerID == "" || !strings.HasPrefix(cmd.ResponseURL, s.srv.URL) {
		t.Fatalf("command %+v", cmd)
	}
	post := func(js string) int {
		resp, err := http.Post(cmd.ResponseURL, "application/json", strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if post(`{"response_type":"ephemeral","text":"working"}`) != 200 || post(`{"response_type":"in_channel","text":"the result"}`) != 200 {
		t.Fatalf("posts %+v", s.ResponsePosts())
	}
	if eph := s.Ephemerals(); len(eph) != 1 || eph[0].User != "U0ALICE" || eph[0].Text != "working" {
		t.Errorf("ephemerals %+v", eph)
	}
	if ms := s.Messages(incidents); len(ms) != 1 || ms[0].Text != "the result" {
		t.Errorf("channel %+v", ms)
	}
	if ps := s.ResponsePosts(); len(ps) != 2 || ps[1].User != "U0ALICE" || ps[1].Channel != incidents {
		t.Errorf("response posts %+v", ps)
	}
	if _, err := s.SlashCommandForm(SlashCommandSpec{UserID: "U0ALICE"}); err == nil {
		t.Error("a command with no channel was built")
	}
	form, _ := url.ParseQuery(string(body))
	if form.Get("is_enterprise_install") != "false" || form.Get("api_app_id") == "" {
		t.Errorf("form %v", form)
	}
}
