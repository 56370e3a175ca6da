package slackfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const incidents = "C0INCIDENTS"

func TestAuthTest(t *testing.T) {
	s := New(t, Options{})
	res, err := s.Client().AuthTest()
	if err != nil {
		t.Fatal(err)
	}
	if res.TeamID != DefaultTeamID || res.UserID != DefaultBotUserID || res.BotID != DefaultBotID || res.User != DefaultBotName {
		t.Errorf("auth.test = %+v", res)
	}
	c := s.Calls()[0]
	if c.Method != "auth.test" || c.TokenSource != "param" || c.Token != DefaultToken || c.Status != 200 {
		t.Errorf("recorded call = %+v", c)
	}
}

func TestPostUpdateReadBack(t *testing.T) {
	s := New(t, Options{Channels: []string{incidents}})
	api := s.Client()

	meta := slack.SlackMetadata{EventType: "incident_opened", EventPayload: map[string]any{"id": "INC-1", "sev": float64(2)}}
	ch, ts, msg, err := api.PostMessageWithResponse(incidents,
		slack.MsgOptionText("DB down", false),
		slack.MsgOptionBlocks(section("*DB down*"), slack.NewActionBlock("acts", button("ack", "Ack", "INC-1"))),
		slack.MsgOptionMetadata(meta),
	)
	if err != nil {
		t.Fatal(err)
	}
	if ch != incidents || ts == "" || msg.Timestamp != ts || msg.Text != "DB down" || msg.Metadata.EventType != "incident_opened" {
		t.Fatalf("post answered ch=%q ts=%q msg=%+v", ch, ts, msg.Msg)
	}
	if len(msg.Blocks.BlockSet) != 2 {
		t.Errorf("response message has %d blocks, want 2", len(msg.Blocks.BlockSet))
	}

	_, uts, text, err := api.UpdateMessage(incidents, ts,
		slack.MsgOptionText("DB recovered", false),
		slack.MsgOptionBlocks(section("*DB recovered*")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if uts != ts || text != "DB recovered" {
		t.Errorf("update answered ts=%q text=%q", uts, text)
	}

	got, ok := s.Message(incidents, ts)
	if !ok {
		t.Fatal("message not found")
	}
	if got.Text != "DB recovered" || got.Updated != 1 || len(got.Edits) != 1 || got.Edits[0].Text != "DB down" || got.EditedTS == "" {
		t.Errorf("after update: %+v", got)
	}
	if !strings.Contains(string(got.Blocks), "DB recovered") || strings.Contains(string(got.Blocks), `"ack"`) {
		t.Errorf("blocks not replaced: %s", got.Blocks)
	}
	if !strings.Contains(string(got.Edits[0].Blocks), `"ack"`) {
		t.Errorf("edit history lost the old blocks: %s", got.Edits[0].Blocks)
	}
	// Metadata is kept when an update does not mention it.
	if got.Metadata == nil || got.Metadata.EventType != "incident_opened" || got.Metadata.EventPayload["id"] != "INC-1" {
		t.Errorf("metadata = %+v", got.Metadata)
	}

	// A text-only update drops the blocks, as Slack does; metadata replaced.
	if _, _, _, err := api.UpdateMessage(incidents, ts, slack.MsgOptionText("closed", false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "incident_closed", EventPayload: map[string]any{"id": "INC-1"}})); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Message(incidents, ts)
	if got.Text != "closed" || got.Blocks != nil || got.Updated != 2 || got.Metadata.EventType != "incident_closed" {
		t.Errorf("after text-only update: text=%q blocks=%s updated=%d meta=%+v", got.Text, got.Blocks, got.Updated, got.Metadata)
	}

	// Read back through the API.
	hist, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents, IncludeAllMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Messages) != 1 || hist.Messages[0].Text != "closed" || hist.Messages[0].Edited == nil || hist.Messages[0].Metadata.EventType != "incident_closed" {
		t.Errorf("history = %+v", hist.Messages)
	}

	// Updating a message that does not exist.
	_, _, _, err = api.UpdateMessage(incidents, "1.000001", slack.MsgOptionText("x", false))
	wantCode(t, err, "message_not_found")
	_, _, _, err = api.UpdateMessage("C0OTHER", ts, slack.MsgOptionText("x", false))
	wantCode(t, err, "channel_not_found")
}

func TestThreadReplies(t *testing.T) {
	s := New(t, Options{})
	api := s.Client()
	_, parent, err := api.PostMessage(incidents, slack.MsgOptionText("INC-7 opened", false))
	if err != nil {
		t.Fatal(err)
	}
	var replies []string
	for i := range 3 {
		_, ts, err := api.PostMessage(incidents, slack.MsgOptionText(fmt.Sprintf("update %d", i), false), slack.MsgOptionTS(parent))
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, ts)
	}
	// A reply to a reply joins the same thread.
	_, _, resp, err := api.PostMessageWithResponse(incidents, slack.MsgOptionText("nested", false), slack.MsgOptionTS(replies[0]))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ThreadTimestamp != parent {
		t.Errorf("reply to a reply has thread_ts %q, want %q", resp.ThreadTimestamp, parent)
	}

	msgs, hasMore, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: incidents, Timestamp: parent})
	if err != nil {
		t.Fatal(err)
	}
	if hasMore || len(msgs) != 5 {
		t.Fatalf("replies: %d messages, has_more=%v", len(msgs), hasMore)
	}
	wantTexts := []string{"INC-7 opened", "update 0", "update 1", "update 2", "nested"}
	for i, m := range msgs {
		if m.Text != wantTexts[i] || m.ThreadTimestamp != parent {
			t.Errorf("replies[%d] = %q thread_ts=%q", i, m.Text, m.ThreadTimestamp)
		}
	}
	if msgs[0].ReplyCount != 4 || msgs[0].LatestReply != resp.Timestamp {
		t.Errorf("parent reply_count=%d latest_reply=%q", msgs[0].ReplyCount, msgs[0].LatestReply)
	}
	if got := s.Replies(incidents, parent); len(got) != 4 || got[0].TS != replies[0] {
		t.Errorf("Replies() = %d messages", len(got))
	}

	// Paging through the thread.
	var paged []string
	cursor := ""
	for range 10 {
		page, more, next, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: incidents, Timestamp: parent, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			paged = append(paged, m.Text)
		}
		if !more {
			break
		}
		cursor = next
	}
	if strings.Join(paged, "|") != strings.Join(wantTexts, "|") {
		t.Errorf("paged replies = %v", paged)
	}

	// History holds the parent only.
	hist, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Messages) != 1 || hist.Messages[0].Timestamp != parent || hist.Messages[0].ReplyCount != 4 {
		t.Errorf("history = %+v", hist.Messages)
	}
	// A broadcast reply shows in history too.
	if _, _, err := api.PostMessage(incidents, slack.MsgOptionText("resolved", false), slack.MsgOptionTS(parent), slack.MsgOptionBroadcast()); err != nil {
		t.Fatal(err)
	}
	hist, _ = api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: incidents})
	if len(hist.Messages) != 2 || hist.Messages[0].Text != "resolved" || hist.Messages[0].SubType != "thread_broadcast" {
		t.Errorf("history after broadcast = %+v", hist.Messages)
	}

	_, _, _, err = api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: incidents, Timestamp: "1.000001"})
	wantCode(t, err, "thread_not_found")
}

func TestReplyToMissingParent(t *testing.T) {
	t.Run("slack un-threads it", func(t *testing.T) {
		s := New(t, Options{})
		_, ts, msg, err := s.Client().PostMessageWithResponse(incidents, slack.MsgOptionText("orphan", false), slack.MsgOptionTS("1700000000.000100"))
		if err != nil {
			t.Fatal(err)
		}
		if msg.ThreadTimestamp != "" {
			t.Errorf("response thread_ts = %q, want none", msg.ThreadTimestamp)
		}
		if m, _ := s.Message(incidents, ts); m.ThreadTS != "" {
			t.Errorf("stored thread_ts = %q", m.ThreadTS)
		}
	})
	t.Run("deleted parent", func(t *testing.T) {
		s := New(t, Options{})
		api := s.Client()
		_, parent, _ := api.PostMessage(incidents, slack.MsgOptionText("p", false))
		if _, _, err := api.DeleteMessage(incidents, parent); err != nil {
			t.Fatal(err)
		}
		_, _, msg, err := api.PostMessageWithResponse(incidents, slack.MsgOptionText("late reply", false), slack.MsgOptionTS(parent))
		if err != nil || msg.ThreadTimestamp != "" {
			t.Errorf("err=%v thread_ts=%q", err, msg.ThreadTimestamp)
		}
		if got := len(s.Messages(incidents)); got != 1 {
			t.Errorf("%d live messages, want 1", got)
		}
	})
	t.Run("StrictThreads", func(t *testing.T) {
		s := New(t, Options{StrictThreads: true})
		_, _, err := s.Client().PostMessage(incidents, slack.MsgOptionText("orphan", false), slack.MsgOptionTS("1700000000.000100"))
		wantCode(t, err, "thread_not_found")
		if len(s.Messages(incidents)) != 0 {
			t.Error("rejected reply was stored")
		}
	})
}

func TestTimestampsUniqueAndIncreasing(t *testing.T) {
	frozen := time.Unix(1700000000, 0)
	s := New(t, Options{Now: func() time.Time { return frozen }})
	api := s.Client()
	prev := ""
	seen := map[string]bool{}
	for i := range 60 {
		_, ts, err := api.PostMessage(incidents, slack.MsgOptionText(fmt.Sprint(i), false))
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != len("1700000000.000100") || ts[10] != '.' {
			t.Fatalf("ts %q is not in Slack's form", ts)
		}
		if seen[ts] || (prev != "" && ts <= prev) {
			t.Fatalf("ts %q after %q: not unique and increasing", ts, prev)
		}
		seen[ts], prev = true, ts
	}
	if !strings.HasPrefix(prev, "1700000000.") {
		t.Errorf("last ts %q left the frozen second", prev)
	}

	// Concurrent posts on the real clock are unique as well.
	s2 := New(t, Options{})
	api2 := s2.Client()
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			if _, _, err := api2.PostMessage(incidents, slack.MsgOptionText(fmt.Sprint(i), false)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	msgs := s2.Messages(incidents)
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Fatalf("ts %q after %q", msgs[i].TS, msgs[i-1].TS)
		}
	}
	if len(msgs) != 60 {
		t.Errorf("%d messages, want 60", len(msgs))
	}
}

func TestPostValidation(t *testing.T) {
	many := make([]slack.Block, 51)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	confirmNoDeny := button("del", "Delete", "x")
	confirmNoDeny.Confirm = &slack.ConfirmationBlockObject{
		Title:   slack.NewTextBlockObject(slack.PlainTextType, "Sure?", false, false),
		Text:    slack.NewTextBlockObject(slack.PlainTextType, "Really?", false, false),
		Confirm: slack.NewTextBlockObject(slack.PlainTextType, "Yes", false, false),
	}
	fields := func(n, size int) *slack.SectionBlock {
		var fs []*slack.TextBlockObject
		for range n {
			fs = append(fs, slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("f", size), false, false))
		}
		return slack.NewSectionBlock(nil, fs, nil)
	}
	buttons := func(n int) *slack.ActionBlock {
		var els []slack.BlockElement
		for i := range n {
			els = append(els, button(fmt.Sprintf("b%d", i), "B", "v"))
		}
		return slack.NewActionBlock("", els...)
	}

	tests := []struct {
		name    string
		opts    Options
		token   string
		channel string
		msg     []slack.MsgOption
		code    string // "" = accepted
		detail  string // substring of a response_metadata message
	}{
		{name: "ok plain text", msg: []slack.MsgOption{slack.MsgOptionText("hi", false)}},
		{name: "51 blocks", msg: []slack.MsgOption{slack.MsgOptionBlocks(many...)}, code: "invalid_blocks", detail: "no more than 50 items allowed [json-pointer:/blocks]"},
		{name: "50 blocks ok", msg: []slack.MsgOption{slack.MsgOptionBlocks(many[:50]...)}},
		{name: "3001-char section", msg: []slack.MsgOption{slack.MsgOptionBlocks(section(strings.Repeat("x", 3001)))}, code: "invalid_blocks", detail: "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"},
		{name: "3000-char section ok", msg: []slack.MsgOption{slack.MsgOptionBlocks(section(strings.Repeat("é", 3000)))}},
		{name: "empty section text", msg: []slack.MsgOption{slack.MsgOptionBlocks(section(""))}, code: "invalid_blocks"},
		{name: "11 fields", msg: []slack.MsgOption{slack.MsgOptionBlocks(fields(11, 5))}, code: "invalid_blocks", detail: "/blocks/0/fields"},
		{name: "2001-char field", msg: []slack.MsgOption{slack.MsgOptionBlocks(fields(2, 2001))}, code: "invalid_blocks", detail: "/blocks/0/fields/0/text"},
		{name: "151-char header", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("h", 151), false, false)))}, code: "invalid_blocks", detail: "/blocks/0/text/text"},
		{name: "mrkdwn header", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(slack.NewTextBlockObject(slack.MarkdownType, "h", false, false)))}, code: "invalid_blocks", detail: "/blocks/0/text/type"},
		{name: "26 buttons", msg: []slack.MsgOption{slack.MsgOptionBlocks(buttons(26))}, code: "invalid_blocks", detail: "no more than 25 items"},
		{name: "25 buttons ok", msg: []slack.MsgOption{slack.MsgOptionBlocks(buttons(25))}},
		{name: "76-char button text", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", button("a", strings.Repeat("b", 76), "v")))}, code: "invalid_blocks", detail: "/blocks/0/elements/0/text/text"},
		{name: "2001-char button value", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", button("a", "B", strings.Repeat("v", 2001))))}, code: "invalid_blocks", detail: "/blocks/0/elements/0/value"},
		{name: "256-char action_id", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", button(strings.Repeat("a", 256), "B", "v")))}, code: "invalid_blocks", detail: "/blocks/0/elements/0/action_id"},
		{name: "duplicate action_id in a block", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", button("ack", "A", "1"), button("ack", "B", "2")))}, code: "invalid_blocks", detail: "duplicate action_id: ack [json-pointer:/blocks/0/elements/1/action_id]"},
		{name: "duplicate action_id across blocks", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", button("ack", "A", "1")), slack.NewActionBlock("", button("ack", "B", "2")))}, code: "invalid_blocks", detail: "/blocks/1/elements/0/action_id"},
		{name: "duplicate action_id across blocks, block-scoped", opts: Options{BlockScopedActionIDs: true}, msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", button("ack", "A", "1")), slack.NewActionBlock("", button("ack", "B", "2")))}},
		{name: "duplicate block_id", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewDividerBlock(), slack.NewActionBlock("x", button("a", "A", "1")), slack.NewActionBlock("x", button("b", "B", "2")))}, code: "invalid_blocks", detail: "/blocks/2/block_id"},
		{name: "confirm without deny", msg: []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("", confirmNoDeny))}, code: "invalid_blocks", detail: "missing required field: deny [json-pointer:/blocks/0/elements/0/confirm]"},
		{name: "bad token", token: "xoxb-wrong", msg: []slack.MsgOption{slack.MsgOptionText("hi", false)}, code: "invalid_auth"},
		{name: "no token", token: "-", msg: []slack.MsgOption{slack.MsgOptionText("hi", false)}, code: "not_authed"},
		{name: "unknown channel", opts: Options{Channels: []string{incidents}}, channel: "C0ELSEWHERE", msg: []slack.MsgOption{slack.MsgOptionText("hi", false)}, code: "channel_not_found"},
		{name: "channel by #name", opts: Options{Channels: []string{"incidents"}}, channel: "#incidents", msg: []slack.MsgOption{slack.MsgOptionText("hi", false)}},
		{name: "no channel", channel: "-", msg: []slack.MsgOption{slack.MsgOptionText("hi", false)}, code: "channel_not_found"},
		{name: "no text", msg: nil, code: "no_text"},
		{name: "empty blocks and no text", msg: []slack.MsgOption{slack.MsgOptionBlocks()}, code: "no_text"},
		{name: "40001-char text", msg: []slack.MsgOption{slack.MsgOptionText(strings.Repeat("x", 40001), false)}, code: "msg_too_long"},
		{name: "40000-char text ok", msg: []slack.MsgOption{slack.MsgOptionText(strings.Repeat("x", 40000), false)}},
		{name: "metadata without event_type", msg: []slack.MsgOption{slack.MsgOptionText("hi", false), slack.MsgOptionMetadata(slack.SlackMetadata{EventPayload: map[string]any{"a": 1}})}, code: "invalid_metadata_schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, tt.opts)
			token := s.Token()
			switch tt.token {
			case "-":
				token = ""
			case "":
			default:
				token = tt.token
			}
			channel := incidents
			switch tt.channel {
			case "-":
				channel = ""
			case "":
			default:
				channel = tt.channel
			}
			api := slack.New(token, slack.OptionAPIURL(s.URL()))
			_, ts, err := api.PostMessage(channel, tt.msg...)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if _, ok := s.Message(channel, ts); !ok {
					t.Fatal("accepted message not stored")
				}
				return
			}
			e := wantCode(t, err, tt.code)
			if tt.detail != "" && !containsAny(e.ResponseMetadata.Messages, tt.detail) {
				t.Errorf("response_metadata.messages = %q, want one containing %q", e.ResponseMetadata.Messages, tt.detail)
			}
			if n := len(s.Messages(channel)); n != 0 {
				t.Errorf("%d messages stored after a rejected post", n)
			}
		})
	}
}

// Arguments slack-go cannot produce, sent as raw form posts.
func TestPostValidationRaw(t *testing.T) {
	s := New(t, Options{})
	tests := []struct {
		name string
		form url.Values
		code string
	}{
		{"blocks not JSON", url.Values{"blocks": {"[object Object]"}}, "invalid_blocks_format"},
		{"blocks not an array", url.Values{"blocks": {`{"type":"divider"}`}}, "invalid_blocks_format"},
		{"block not an object", url.Values{"blocks": {`["divider"]`}}, "invalid_blocks_format"},
		{"unknown block type", url.Values{"blocks": {`[{"type":"banner"}]`}}, "invalid_blocks"},
		{"block without type", url.Values{"blocks": {`[{"text":{"type":"plain_text","text":"x"}}]`}}, "invalid_blocks"},
		{"3001-char context text", url.Values{"blocks": {`[{"type":"context","elements":[{"type":"mrkdwn","text":"` + strings.Repeat("c", 3001) + `"}]}]`}}, "invalid_blocks"},
		{"256-char block_id", url.Values{"blocks": {`[{"type":"divider","block_id":"` + strings.Repeat("b", 256) + `"}]`}}, "invalid_blocks"},
		{"input element in actions", url.Values{"blocks": {`[{"type":"actions","elements":[{"type":"plain_text_input","action_id":"x"}]}]`}}, "invalid_blocks"},
		{"button style", url.Values{"blocks": {`[{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"x"},"style":"blue"}]}]`}}, "invalid_blocks"},
		{"metadata not JSON", url.Values{"text": {"x"}, "metadata": {"event_type=x"}}, "invalid_metadata_format"},
		{"metadata without payload", url.Values{"text": {"x"}, "metadata": {`{"event_type":"x"}`}}, "invalid_metadata_schema"},
		{"attachments not JSON", url.Values{"attachments": {"nope"}}, "invalid_attachments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("channel", incidents)
			got := rawCall(t, s, "chat.postMessage", tt.form)
			if got["ok"] != false || got["error"] != tt.code {
				t.Errorf("answer = %v, want error %q", got, tt.code)
			}
		})
	}
	if n := len(s.Messages(incidents)); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestJSONBodies(t *testing.T) {
	s := New(t, Options{})
	post := func(body, auth string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"chat.postMessage", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return decodeBody(t, resp)
	}
	body := `{"channel":"` + incidents + `","text":"json","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*json*"}}],"metadata":{"event_type":"e","event_payload":{"n":1}}}`
	got := post(body, s.Token())
	if got["ok"] != true {
		t.Fatalf("answer = %v", got)
	}
	m := s.Messages(incidents)[0]
	if m.Text != "json" || !strings.Contains(string(m.Blocks), "*json*") || m.Metadata.EventPayload["n"] != float64(1) {
		t.Errorf("stored %+v", m)
	}
	c := s.Calls()[0]
	if !c.JSON || c.TokenSource != "header" || c.Params.Get("channel") != incidents || !strings.HasPrefix(c.Params.Get("blocks"), `[{"type":"section"`) {
		t.Errorf("call = %+v", c)
	}
	// A token in a JSON body does not count.
	got = post(`{"token":"`+s.Token()+`","channel":"`+incidents+`","text":"x"}`, "")
	if got["error"] != "not_authed" {
		t.Errorf("token in JSON body: %v", got)
	}
}

func TestEphemeral(t *testing.T) {
	s := New(t, Options{})
	api := s.Client()
	ts, err := api.PostEphemeral(incidents, "U0ALICE", slack.MsgOptionText("only you", false))
	if err != nil {
		t.Fatal(err)
	}
	eph := s.Ephemerals()
	if ts == "" || len(eph) != 1 || eph[0].User != "U0ALICE" || eph[0].TS != ts || eph[0].Text != "only you" {
		t.Errorf("ts=%q ephemerals=%+v", ts, eph)
	}
	if len(s.Messages(incidents)) != 0 {
		t.Error("ephemeral message stored as a channel message")
	}
	s.AddUser(User{ID: "U0ALICE", Name: "alice"})
	_, err = api.PostEphemeral(incidents, "U0BOB", slack.MsgOptionText("x", false))
	wantCode(t, err, "user_not_in_channel")
}

func TestUnknownMethod(t *testing.T) {
	s := New(t, Options{})
	got := rawCall(t, s, "chat.frobnicate", url.Values{})
	if got["ok"] != false || got["error"] != "unknown_method" || got["req_method"] != "chat.frobnicate" {
		t.Errorf("answer = %v", got)
	}
}

func TestRateLimit(t *testing.T) {
	s := New(t, Options{})
	api := s.Client()
	s.FailNext("chat.postMessage", 1, Failure{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second})

	_, _, err := api.PostMessage(incidents, slack.MsgOptionText("first", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("error = %v (%T), want *slack.RateLimitedError with RetryAfter 2s", err, err)
	}
	c := s.Calls()[0]
	var body map[string]any
	_ = json.Unmarshal(c.Response, &body)
	if c.Status != 429 || body["error"] != "ratelimited" {
		t.Errorf("recorded %d %s", c.Status, c.Response)
	}
	if len(s.Messages(incidents)) != 0 {
		t.Error("rate-limited post was stored")
	}
	if _, _, err := api.PostMessage(incidents, slack.MsgOptionText("second", false)); err != nil {
		t.Fatalf("after the injected failure: %v", err)
	}

	// Other methods are unaffected; ok:false errors and 5xx.
	s.FailNext("chat.update", 1, Failure{Error: "ratelimited"})
	s.FailNext("chat.update", 1, Failure{Status: 500})
	ts := s.Messages(incidents)[0].TS
	_, _, _, err = api.UpdateMessage(incidents, ts, slack.MsgOptionText("x", false))
	wantCode(t, err, "ratelimited")
	_, _, _, err = api.UpdateMessage(incidents, ts, slack.MsgOptionText("x", false))
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != 500 {
		t.Errorf("error = %v (%T), want StatusCodeError 500", err, err)
	}
	if m, _ := s.Message(incidents, ts); m.Updated != 0 {
		t.Error("failed update was applied")
	}
	if s.CallCount("chat.update") != 2 {
		t.Errorf("CallCount(chat.update) = %d", s.CallCount("chat.update"))
	}
}

func TestRateLimitRetriedBySlackGo(t *testing.T) {
	s := New(t, Options{})
	cfg := slack.DefaultRetryConfig()
	cfg.MaxRetries, cfg.RetryAfterJitter = 2, 0
	api := s.Client(slack.OptionRetryConfig(cfg))
	s.FailNext("chat.postMessage", 1, Failure{Status: 429, RetryAfter: time.Second})
	start := time.Now()
	if _, _, err := api.PostMessage(incidents, slack.MsgOptionText("eventually", false)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before Retry-After", d)
	}
	if n := s.CallCount("chat.postMessage"); n != 2 || len(s.Messages(incidents)) != 1 {
		t.Errorf("%d calls, %d messages", n, len(s.Messages(incidents)))
	}
}

func TestOutage(t *testing.T) {
	s := New(t, Options{})
	api := s.Client()
	s.SetOutage(true)
	_, _, err := api.PostMessage(incidents, slack.MsgOptionText("lost", false))
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != http.StatusServiceUnavailable {
		t.Fatalf("error = %v (%T), want StatusCodeError 503", err, err)
	}
	if _, err := api.AuthTest(); err == nil {
		t.Error("auth.test succeeded during the outage")
	}
	if len(s.Messages(incidents)) != 0 {
		t.Error("a post was stored during the outage")
	}
	if s.CallCount("chat.postMessage") != 1 {
		t.Error("outage call not recorded")
	}
	s.SetOutage(false)
	if _, _, err := api.PostMessage(incidents, slack.MsgOptionText("back", false)); err != nil {
		t.Fatal(err)
	}
	if len(s.Messages(incidents)) != 1 {
		t.Error("post after the outage not stored")
	}
}

func TestDelayHitsClientTimeout(t *testing.T) {
	s := New(t, Options{})
	api := s.Client(slack.OptionHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
	s.FailNext("chat.postMessage", 1, Failure{Delay: 5 * time.Second})
	start := time.Now()
	if _, _, err := api.PostMessage(incidents, slack.MsgOptionText("slow", false)); err == nil {
		t.Fatal("no timeout")
	}
	if time.Since(start) > 2*time.Second {
		t.Error("the delay outlived the client")
	}
	s.WaitFor(t, func() bool { return s.CallCount("chat.postMessage") == 1 }, 2*time.Second)
}
