package slackfake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestFileUpload(t *testing.T) {
	s := New(t, Options{Channels: []string{incidents}})
	api := s.Client()
	_, parent, err := api.PostMessage(incidents, slack.MsgOptionText("INC-9", false))
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("timeline\n12:00 alert\n12:05 ack\n")
	sum, err := api.UploadFile(slack.UploadFileParameters{
		Filename:        "timeline.txt",
		FileSize:        len(content),
		Reader:          bytes.NewReader(content),
		Title:           "Timeline",
		Channel:         incidents,
		ThreadTimestamp: parent,
		InitialComment:  "timeline attached",
	})
	if err != nil {
		t.Fatal(err)
	}
	files := s.Files()
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	f := files[0]
	if f.ID != sum.ID || sum.Title != "Timeline" || f.Name != "timeline.txt" || f.Title != "Timeline" ||
		!bytes.Equal(f.Content, content) || f.Length != len(content) || f.Channel != incidents ||
		f.ThreadTS != parent || f.InitialComment != "timeline attached" || f.UploadFilename != "timeline.txt" {
		t.Errorf("file = %+v", f)
	}
	// The share shows up in the thread.
	replies := s.Replies(incidents, parent)
	if len(replies) != 1 || replies[0].Text != "timeline attached" || len(replies[0].FileIDs) != 1 || replies[0].FileIDs[0] != f.ID {
		t.Errorf("replies = %+v", replies)
	}
	msgs, _, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: incidents, Timestamp: parent})
	if err != nil || len(msgs) != 2 || len(msgs[1].Files) != 1 || msgs[1].Files[0].Name != "timeline.txt" {
		t.Errorf("err=%v replies=%+v", err, msgs)
	}

	// The three steps, as recorded.
	var methods []string
	for _, c := range s.Calls()[:4] {
		methods = append(methods, c.Method)
		if c.Method == "upload" && (c.TokenSource != "header" || c.ContentType != "multipart/form-data" || c.Params.Get("length") != fmt.Sprint(len(content))) {
			t.Errorf("upload call = %+v", c)
		}
	}
	if got := strings.Join(methods, ","); got != "chat.postMessage,files.getUploadURLExternal,upload,files.completeUploadExternal" {
		t.Errorf("calls = %s", got)
	}
}

func TestFileUploadRawBody(t *testing.T) {
	s := New(t, Options{})
	api := s.Client()
	u, err := api.GetUploadURLExternalContext(t.Context(), slack.GetUploadURLExternalParameters{FileName: "raw.bin", FileSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.UploadURL, strings.TrimSuffix(s.URL(), "api/")) {
		t.Errorf("upload URL %q is not on the API host", u.UploadURL)
	}
	resp, err := http.Post(u.UploadURL, "application/octet-stream", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "OK - 3" {
		t.Errorf("upload answered %d %q", resp.StatusCode, b)
	}
	if _, err := api.CompleteUploadExternalContext(t.Context(), slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: u.FileID}}}); err != nil {
		t.Fatal(err)
	}
	f := s.Files()[0]
	if string(f.Content) != "abc" || f.Title != "raw.bin" || f.Channel != "" {
		t.Errorf("file = %+v", f)
	}
}

func TestFileUploadErrors(t *testing.T) {
	s := New(t, Options{Channels: []string{incidents}})
	api := s.Client()
	ctx := t.Context()
	complete := func(id, channel string) error {
		_, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: id}}, Channel: channel})
		return err
	}
	wantCode(t, complete("F0NOSUCHFILE", incidents), "file_not_found")

	u, err := api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: "a.txt", FileSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, complete(u.FileID, incidents), "file_not_found") // not uploaded yet
	if err := api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: u.UploadURL, Content: "a", Filename: "a.txt"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, complete(u.FileID, "C0ELSEWHERE"), "invalid_channel")
	if err := complete(u.FileID, incidents); err != nil {
		t.Fatal(err)
	}
	wantCode(t, complete(u.FileID, incidents), "file_not_found") // already completed

	got := rawCall(t, s, "files.getUploadURLExternal", url.Values{"filename": {"x"}, "length": {"0"}})
	if got["error"] != "missing_argument" {
		t.Errorf("length 0: %v", got)
	}

	// An upload URL elsewhere is refused by slack-go before sending the token.
	err = api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: "http://example.invalid/upload", Content: "a", Filename: "a"})
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("foreign upload URL: %v", err)
	}

	// An injected upload failure surfaces from UploadFile.
	s.FailNext("upload", 1, Failure{Status: 500})
	_, err = api.UploadFile(slack.UploadFileParameters{Filename: "b.txt", FileSize: 1, Content: "b", Channel: incidents})
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != 500 {
		t.Errorf("error = %v", err)
	}
	if len(s.Files()) != 1 {
		t.Errorf("%d files completed", len(s.Files()))
	}
}

func TestHistoryMetadataAndPagination(t *testing.T) {
	s := New(t, Options{Now: func() time.Time { return time.Unix(1700000000, 0) }})
	api := s.Client()
	var tss []string
	for i := range 5 {
		_, ts, err := api.PostMessage(incidents, slack.MsgOptionText(fmt.Sprintf("m%d", i), false),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "incident", EventPayload: map[string]any{"n": i}}))
		if err != nil {
			t.Fatal(err)
		}
		tss = append(tss, ts)
	}

	var texts []string
	cursor := ""
	pages := 0
	for {
		h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents, Limit: 2, Cursor: cursor, IncludeAllMetadata: true})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range h.Messages {
			texts = append(texts, m.Text)
			if m.Metadata.EventType != "incident" || m.Metadata.EventPayload["n"] != float64(m.Text[1]-'0') {
				t.Errorf("%s metadata = %+v", m.Text, m.Metadata)
			}
		}
		if !h.HasMore {
			if h.ResponseMetaData.NextCursor != "" {
				t.Error("next_cursor on the last page")
			}
			break
		}
		cursor = h.ResponseMetaData.NextCursor
		if cursor == "" || pages > 5 {
			t.Fatal("has_more without a usable cursor")
		}
	}
	if pages != 3 || strings.Join(texts, ",") != "m4,m3,m2,m1,m0" {
		t.Errorf("%d pages: %v", pages, texts)
	}

	// Without include_all_metadata the metadata is left out.
	h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if h.Messages[0].Metadata.EventType != "" {
		t.Errorf("metadata without include_all_metadata: %+v", h.Messages[0].Metadata)
	}

	// oldest / latest are exclusive unless inclusive.
	h, _ = api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents, Oldest: tss[1], Latest: tss[3]})
	if len(h.Messages) != 1 || h.Messages[0].Timestamp != tss[2] {
		t.Errorf("exclusive range: %+v", h.Messages)
	}
	h, _ = api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents, Oldest: tss[1], Latest: tss[3], Inclusive: true})
	if len(h.Messages) != 3 {
		t.Errorf("inclusive range: %d messages", len(h.Messages))
	}

	_, err = api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents, Cursor: "garbage"})
	wantCode(t, err, "invalid_cursor")

	s2 := New(t, Options{Channels: []string{incidents}})
	_, err = s2.Client().GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C0ELSEWHERE"})
	wantCode(t, err, "channel_not_found")
}

func TestUsersAndGroups(t *testing.T) {
	s := New(t, Options{})
	api := s.Client()
	s.AddUser(User{ID: "U0ALICE", Name: "alice", RealName: "Alice Doe", Email: "alice@example.com", IsAdmin: true})
	s.AddUser(User{ID: "U0BOB", Name: "bob", RealName: "Bob Roe"})
	s.AddUserGroup("S0ONCALL", "oncall", "U0ALICE", "U0BOB")

	u, err := api.GetUserInfo("U0ALICE")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "U0ALICE" || u.Name != "alice" || u.RealName != "Alice Doe" || !u.IsAdmin || u.Profile.Email != "alice@example.com" || u.TeamID != DefaultTeamID {
		t.Errorf("user = %+v", u)
	}
	_, err = api.GetUserInfo("U0NOBODY")
	wantCode(t, err, "user_not_found")

	members, err := api.GetUserGroupMembers("S0ONCALL")
	if err != nil || strings.Join(members, ",") != "U0ALICE,U0BOB" {
		t.Errorf("members = %v, err = %v", members, err)
	}
	_, err = api.GetUserGroupMembers("S0NOPE")
	wantCode(t, err, "no_such_subteam")
}

func TestSign(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	body := []byte("token=xyz&team_id=T1&command=%2Fincident&text=open")
	h := Sign(secret, time.Now(), body)

	v, err := slack.NewSecretsVerifier(h, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = v.Write(body)
	if err := v.Ensure(); err != nil {
		t.Errorf("valid signature rejected: %v", err)
	}

	v, _ = slack.NewSecretsVerifier(h, secret)
	_, _ = v.Write(append(bytes.Clone(body), '!'))
	if err := v.Ensure(); !errors.Is(err, slack.ErrInvalidSignature) {
		t.Errorf("tampered body: %v", err)
	}
	v, _ = slack.NewSecretsVerifier(h, "other-secret")
	_, _ = v.Write(body)
	if err := v.Ensure(); err == nil {
		t.Error("wrong secret accepted")
	}
	if _, err := slack.NewSecretsVerifier(Sign(secret, time.Now().Add(-10*time.Minute), body), secret); err == nil {
		t.Error("stale timestamp accepted")
	}

	// A known vector: the example from Slack's request-verification guide.
	known := Sign(secret, time.Unix(1531420618, 0), []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"))
	if got := known.Get("X-Slack-Signature"); got != "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503" {
		t.Errorf("known vector signature = %s", got)
	}
}

func TestInteractionRequest(t *testing.T) {
	const secret = "shh"
	payload := map[string]any{"type": "block_actions", "actions": []map[string]any{{"type": "button", "block_id": "acts", "action_id": "ack", "value": "INC-1"}}}
	req, err := InteractionRequest("http://127.0.0.1:1/slack/interactivity", secret, payload)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", req.Header.Get("Content-Type"))
	}
	form, _ := url.ParseQuery(string(body))
	var cb slack.InteractionCallback
	if err := cb.UnmarshalJSON([]byte(form.Get("payload"))); err != nil {
		t.Fatal(err)
	}
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0].ActionID != "ack" {
		t.Errorf("payload = %+v", cb)
	}
	v, err := slack.NewSecretsVerifier(req.Header, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = v.Write(body)
	if err := v.Ensure(); err != nil {
		t.Errorf("signature: %v", err)
	}
}

// The server and the connections slack-go opened to it are gone once the
// test's cleanup has run.
func TestNoGoroutineLeak(t *testing.T) {
	settle := func() int {
		n := runtime.NumGoroutine()
		for range 100 {
			time.Sleep(10 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				return m
			}
			n = m
		}
		return n
	}
	before := settle()
	t.Run("scenario", func(t *testing.T) {
		s := New(t, Options{})
		api := s.Client()
		for i := range 5 {
			if _, _, err := api.PostMessage(incidents, slack.MsgOptionText(fmt.Sprint(i), false)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := api.UploadFile(slack.UploadFileParameters{Filename: "a", FileSize: 1, Content: "a", Channel: incidents}); err != nil {
			t.Fatal(err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := runtime.NumGoroutine()
		if after <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOperatorFaults(t *testing.T) {
	srv := New(t, Options{Channels: []string{"C0ALERTS01"}})
	api := srv.Client()
	if _, _, err := api.PostMessage("C0NEW00001", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Fatalf("unknown channel: %v", err)
	}
	srv.AddChannel("C0NEW00001")
	if _, _, err := api.PostMessage("C0NEW00001", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("after AddChannel: %v", err)
	}
	srv.RemoveChannel("C0NEW00001")
	if _, _, err := api.PostMessage("C0NEW00001", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Fatalf("after RemoveChannel: %v", err)
	}
	srv.RevokeToken("")
	if _, _, err := api.PostMessage("C0ALERTS01", slack.MsgOptionText("x", false)); err == nil || err.Error() != "token_revoked" {
		t.Fatalf("revoked: %v", err)
	}
	srv.RestoreToken()
	srv.FailAlways("conversations.history", Failure{Error: "missing_scope"})
	for range 3 {
		if _, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C0ALERTS01"}); err == nil || err.Error() != "missing_scope" {
			t.Fatalf("missing scope: %v", err)
		}
	}
	srv.ClearFailures("conversations.history")
	if _, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C0ALERTS01"}); err != nil {
		t.Fatal(err)
	}
}
