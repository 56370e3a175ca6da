package slackfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

func postButtonMessage(t *testing.T, s *Server, threadTS string) string {
	t.Helper()
	opts := []slack.MsgOption{slack.MsgOptionBlocks(section("disk full"), slack.NewActionBlock("acts", button("approve", "Approve", "req-1")))}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	_, ts, err := s.Client().PostMessage(incidents, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestBlockActionsPayload(t *testing.T) {
	s := New(t, Options{})
	s.AddUser(User{ID: "U0ALICE", Name: "alice"})
	parent := postButtonMessage(t, s, "")
	reply := postButtonMessage(t, s, parent)

	payload, err := s.BlockActions(ClickSpec{Channel: incidents, TS: reply, ActionID: "approve", UserID: "U0ALICE"})
	if err != nil {
		t.Fatal(err)
	}
	var cb slack.InteractionCallback
	if err := cb.UnmarshalJSON(payload); err != nil {
		t.Fatal(err)
	}
	a := cb.ActionCallback.BlockActions
	switch {
	case cb.Type != slack.InteractionTypeBlockActions, cb.User.ID != "U0ALICE", cb.User.Name != "alice", cb.Team.ID != DefaultTeamID:
		t.Errorf("identity: %+v", cb)
	case cb.Container.MessageTs != reply, cb.Container.ThreadTs != parent, cb.Container.ChannelID != incidents, cb.Channel.ID != incidents:
		t.Errorf("container: %+v", cb.Container)
	case len(a) != 1 || a[0].ActionID != "approve" || a[0].Value != "req-1" || a[0].BlockID != "acts":
		t.Errorf("actions: %+v", a)
	case !strings.HasPrefix(cb.ResponseURL, s.srv.URL+"/actions/"), cb.TriggerID == "":
		t.Errorf("response_url %q trigger %q", cb.ResponseURL, cb.TriggerID)
	}

	if _, err := s.BlockActions(ClickSpec{Channel: incidents, TS: reply, ActionID: "nope", UserID: "U0ALICE"}); err == nil {
		t.Error("a click on a button that does not exist was built")
	}
	if _, err := s.BlockActions(ClickSpec{Channel: incidents, TS: "1.000001", ActionID: "approve", UserID: "U0ALICE"}); err == nil {
		t.Error("a click on a message that does not exist was built")
	}

	// The response_url: an ephemeral reply in the thread, five uses at most.
	post := func(body string) int {
		resp, err := http.Post(cb.ResponseURL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(`{"text":"only you can see this","replace_original":false}`); st != 200 {
		t.Fatalf("status %d", st)
	}
	eph := s.Ephemerals()
	if len(eph) != 1 || eph[0].User != "U0ALICE" || eph[0].ThreadTS != parent || eph[0].Text != "only you can see this" {
		t.Fatalf("ephemerals %+v", eph)
	}
	if st := post(`{"response_type":"ephemeral"}`); st != 400 {
		t.Errorf("no text: status %d", st)
	}
	if st := post(`not json`); st != 400 {
		t.Errorf("invalid: status %d", st)
	}
	for range 4 {
		post(`{"text":"again"}`)
	}
	if st := post(`{"text":"sixth"}`); st != 404 {
		t.Errorf("sixth use: status %d, want 404 used_url", st)
	}
	if got := s.ResponsePosts(); got[len(got)-1].Status != 404 {
		t.Errorf("last post %+v", got[len(got)-1])
	}
}

func TestUserGroupsValidation(t *testing.T) {
	s := New(t, Options{})
	s.AddUserGroup("S0ONCALL", "oncall", "U0ALICE")
	if got := rawCall(t, s, "usergroups.users.list", url.Values{}); got["error"] != "invalid_arguments" {
		t.Errorf("missing usergroup: %v", got)
	}
	s.DisableUserGroup("S0ONCALL")
	if _, err := s.Client().GetUserGroupMembers("S0ONCALL"); err == nil {
		t.Error("disabled group listed")
	}
	if got := rawCall(t, s, "usergroups.users.list", url.Values{"usergroup": {"S0ONCALL"}, "include_disabled": {"true"}}); got["ok"] != true {
		t.Errorf("include_disabled: %v", got)
	}

	scoped := New(t, Options{Scopes: []string{"chat:write"}})
	scoped.AddUserGroup("S0ONCALL", "oncall", "U0ALICE")
	got := rawCall(t, scoped, "usergroups.users.list", url.Values{"usergroup": {"S0ONCALL"}})
	if got["error"] != "missing_scope" || got["needed"] != "usergroups:read" || got["provided"] != "chat:write" {
		t.Errorf("without usergroups:read: %v", got)
	}
}

func TestSocketModeFake(t *testing.T) {
	s := New(t, Options{SocketPingInterval: 50 * time.Millisecond})
	// The bot token cannot open a connection, nor the app token post.
	if got := rawCall(t, s, "apps.connections.open", url.Values{}); got["error"] != "not_allowed_token_type" {
		t.Errorf("bot token: %v", got)
	}
	if got := rawCall(t, s, "chat.postMessage", url.Values{"token": {DefaultAppToken}, "channel": {incidents}, "text": {"x"}}); got["error"] != "not_allowed_token_type" {
		t.Errorf("app token posting: %v", got)
	}
	got := rawCall(t, s, "apps.connections.open", url.Values{"token": {DefaultAppToken}})
	wsURL, _ := got["url"].(string)
	if got["ok"] != true || !strings.HasPrefix(wsURL, "ws://") {
		t.Fatalf("open: %v", got)
	}
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pinged := make(chan struct{}, 1)
	conn.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})
	var hello map[string]any
	if err := conn.ReadJSON(&hello); err != nil || hello["type"] != "hello" {
		t.Fatalf("hello %v %v", hello, err)
	}
	// The ticket is single use.
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reused ticket: %v %v", resp, err)
	}

	id, err := s.SendSlashCommand(map[string]string{"command": "/chmedic", "text": "digest", "user_id": "U0ALICE"})
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		EnvelopeID             string          `json:"envelope_id"`
		Type                   string          `json:"type"`
		Payload                json.RawMessage `json:"payload"`
		AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	}
	// Pings arrive while reading.
	if err := conn.ReadJSON(&env); err != nil || env.EnvelopeID != id || env.Type != "slash_commands" || !env.AcceptsResponsePayload || !bytes.Contains(env.Payload, []byte(`"/chmedic"`)) {
		t.Fatalf("envelope %+v %v", env, err)
	}
	if err := conn.WriteJSON(map[string]any{"envelope_id": id, "payload": map[string]string{"text": "ok"}}); err != nil {
		t.Fatal(err)
	}
	_ = conn.WriteJSON(map[string]any{"envelope_id": "made-up"})
	s.WaitFor(t, func() bool { return len(s.Acks()) == 2 }, 5*time.Second)
	acks := s.Acks()
	if !acks[0].Known || acks[0].EnvelopeID != id || string(acks[0].Payload) != `{"text":"ok"}` || acks[1].Known {
		t.Errorf("acks %+v", acks)
	}
	// Keep reading so that pings are handled, until the disconnect.
	if err := s.SendDisconnect("refresh_requested", time.Second); err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	if err := conn.ReadJSON(&disc); err != nil || disc["type"] != "disconnect" || disc["reason"] != "refresh_requested" {
		t.Fatalf("disconnect %v %v", disc, err)
	}
	// Reading processes the pings sent during the grace, then fails.
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Error("connection still open after the disconnect grace")
	}
	select {
	case <-pinged:
	default:
		t.Error("no websocket ping")
	}
	s.WaitFor(t, func() bool { return s.SocketConnections() == 0 }, 5*time.Second)
}
