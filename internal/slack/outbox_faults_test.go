package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

// TestOutboxConfigErrorsKeepMessagesPending: a revoked or rotated token, a
// bot not in the channel, a channel that does not exist yet are operator
// errors. The messages stay pending, are retried slowly (not on every
// step), the outbox reports itself degraded and counts the errors as
// class "config", and everything is delivered once the operator fixes it.
func TestOutboxConfigErrorsKeepMessagesPending(t *testing.T) {
	for _, tc := range []struct {
		name        string
		break_, fix func(*slackfake.Server)
	}{
		{"invalid_auth", func(f *slackfake.Server) { f.RevokeToken("invalid_auth") }, (*slackfake.Server).RestoreToken},
		{"token_revoked", func(f *slackfake.Server) { f.RevokeToken("token_revoked") }, (*slackfake.Server).RestoreToken},
		{"not_in_channel", func(f *slackfake.Server) {
			f.FailAlways("chat.postMessage", slackfake.Failure{Error: "not_in_channel"})
		},
			func(f *slackfake.Server) { f.ClearFailures("chat.postMessage") }},
		{"channel_not_found", func(f *slackfake.Server) { f.RemoveChannel(channel) }, func(f *slackfake.Server) { f.AddChannel(channel) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			ob := h.outbox(5 * time.Second)
			tc.break_(h.fake)
			a := h.upsert("group:a", "first alert")
			b := h.upsert("group:b", "second alert")
			ob.Step(ctx)
			if e := h.entry(a); e.State != store.OutboxPending {
				t.Fatalf("after %s: %+v, want it kept pending", tc.name, e)
			}
			if got := testutil.ToFloat64(ob.errs.WithLabelValues(store.KindPost, "config")); got != 1 {
				t.Fatalf("chmedic_slack_errors_total{class=\"config\"} = %v, want 1", got)
			}
			if r := ob.Degraded(); !strings.Contains(r, tc.name) {
				t.Fatalf("Degraded() = %q, want it to name %s", r, tc.name)
			}
			// Slowly: nothing is tried again within the next half minute.
			calls := h.fake.CallCount("chat.postMessage")
			for range 3 {
				h.clock.Add(10 * time.Second)
				ob.Step(ctx)
			}
			if n := h.fake.CallCount("chat.postMessage") - calls; n != 0 {
				t.Fatalf("%d more posts within 30s of a configuration error", n)
			}
			// The operator fixes it: everything is delivered, once.
			tc.fix(h.fake)
			for i := 0; i < 10 && (h.entry(a).State != store.OutboxSent || h.entry(b).State != store.OutboxSent); i++ {
				h.clock.Add(time.Minute)
				ob.Step(ctx)
			}
			if h.entry(a).State != store.OutboxSent || h.entry(b).State != store.OutboxSent {
				t.Fatalf("after the fix: a %+v b %+v", h.entry(a), h.entry(b))
			}
			if n := len(h.fake.Messages(channel)); n != 2 {
				t.Fatalf("%d messages, want 2", n)
			}
			if r := ob.Degraded(); r != "" {
				t.Fatalf("still degraded after the fix: %q", r)
			}
		})
	}
}

// failingStore makes chosen store calls fail.
type failingStore struct {
	OutboxStore
	fail map[string]bool
}

var errStore = errors.New("disk I/O error")

func (f *failingStore) MarkSent(ctx context.Context, id int64, channel, ts string) error {
	if f.fail["MarkSent"] {
		return errStore
	}
	return f.OutboxStore.MarkSent(ctx, id, channel, ts)
}

func (f *failingStore) MarkRetry(ctx context.Context, id int64, next time.Time, errText string, countAttempt bool) error {
	if f.fail["MarkRetry"] {
		return errStore
	}
	return f.OutboxStore.MarkRetry(ctx, id, next, errText, countAttempt)
}

func (f *failingStore) MarkFailed(ctx context.Context, id int64, errText string) error {
	if f.fail["MarkFailed"] {
		return errStore
	}
	return f.OutboxStore.MarkFailed(ctx, id, errText)
}

func (f *failingStore) ReplaceOutboxBody(ctx context.Context, id int64, body []byte) error {
	if f.fail["ReplaceOutboxBody"] {
		return errStore
	}
	return f.OutboxStore.ReplaceOutboxBody(ctx, id, body)
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestOutboxStoreErrorsAreLogged: every failure to record an outcome in
// the store (Mark*, ReplaceOutboxBody) is logged at error level with the
// entry's id, never dropped; a body that could not be replaced is not
// retried at once (no hot loop on refused blocks).
func TestOutboxStoreErrorsAreLogged(t *testing.T) {
	tooMany := func() []byte {
		var blocks []slack.Block
		for i := 0; i < 60; i++ {
			blocks = append(blocks, slack.NewDividerBlock())
		}
		b, _ := json.Marshal(Message{Text: "too many blocks", Blocks: slack.Blocks{BlockSet: blocks}})
		return b
	}
	for _, tc := range []struct {
		name   string
		fail   string
		body   func(t *testing.T) []byte
		inject func(*slackfake.Server)
		noAPI  bool
	}{
		{name: "log mode, MarkSent", fail: "MarkSent", noAPI: true},
		{name: "transient, MarkRetry", fail: "MarkRetry", inject: func(f *slackfake.Server) {
			f.FailNext("chat.postMessage", 1, slackfake.Failure{Error: "internal_error"})
		}},
		{name: "permanent, MarkFailed", fail: "MarkFailed", inject: func(f *slackfake.Server) {
			f.FailNext("chat.postMessage", 1, slackfake.Failure{Error: "invalid_arguments"})
		}},
		{name: "undecodable, MarkFailed", fail: "MarkFailed", body: func(*testing.T) []byte { return []byte("{not json") }},
		{name: "rate limited, MarkRetry", fail: "MarkRetry", inject: func(f *slackfake.Server) {
			f.FailNext("chat.postMessage", 1, slackfake.Failure{Status: 429, RetryAfter: time.Second})
		}},
		{name: "refused blocks, ReplaceOutboxBody", fail: "ReplaceOutboxBody", body: func(*testing.T) []byte { return tooMany() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			var logs logBuffer
			var api API = slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL()))
			if tc.noAPI {
				api = nil
			}
			fs := &failingStore{OutboxStore: h.st, fail: map[string]bool{tc.fail: true}}
			ob := NewOutbox(fs, api, OutboxOptions{Now: h.clock.Now, CallTimeout: 5 * time.Second,
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			b := body(t, "x")
			if tc.body != nil {
				b = tc.body(t)
			}
			id, err := h.st.UpsertThreadMessage(ctx, store.Thread{Key: "group:a", Channel: channel, Status: "firing"}, b)
			if err != nil {
				t.Fatal(err)
			}
			if tc.inject != nil {
				tc.inject(h.fake)
			}
			ob.Step(ctx)
			out := logs.String()
			found := false
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "level=ERROR") && strings.Contains(line, errStore.Error()) && strings.Contains(line, "outbox_id=") {
					found = true
				}
			}
			if !found {
				t.Fatalf("the failed %s is not logged at error level with the entry id:\n%s", tc.fail, out)
			}
			if tc.fail == "ReplaceOutboxBody" {
				if e := h.entry(id); !e.NextAttemptAt.After(h.clock.Now()) {
					t.Fatalf("refused blocks that could not be replaced are retried at once: %+v", e)
				}
			}
		})
	}
}

// TestOutboxReconcileBacksOffAndDecides: a post whose outcome is unknown
// (Slack answered 500) cannot be looked up because conversations.history
// fails (missing_scope). The lookups back off and are bounded; then the
// outbox decides: it sends the message again (with the same metadata, so a
// duplicate is identifiable), counts it, and the message is delivered.
// Meanwhile another thread's message is not held up: it goes out before
// the first lookup.
func TestOutboxReconcileBacksOffAndDecides(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ob := h.outbox(5 * time.Second)
	h.fake.FailNext("chat.postMessage", 1, slackfake.Failure{Status: 500})
	h.fake.FailAlways("conversations.history", slackfake.Failure{Error: "missing_scope"})
	stuck := h.upsert("group:stuck", "outcome unknown")
	ob.Step(ctx)
	if e := h.entry(stuck); e.State != store.OutboxSending {
		t.Fatalf("after a 500: %+v, want it in flight (outcome unknown)", e)
	}
	other := h.upsert("group:other", "another thread")
	h.clock.Add(time.Second)
	ob.Step(ctx)
	if e := h.entry(other); e.State != store.OutboxSent {
		t.Fatalf("another thread waits behind the stuck lookup: %+v", e)
	}
	var order []string
	for _, c := range h.fake.Calls() {
		if c.Method == "chat.postMessage" || c.Method == "conversations.history" {
			order = append(order, c.Method)
		}
	}
	if len(order) < 2 || order[1] != "chat.postMessage" {
		t.Fatalf("calls %v: the other thread's post must go before any lookup", order)
	}
	// Two minutes of steps every second: the lookups back off and stop.
	for range 120 {
		h.clock.Add(time.Second)
		ob.Step(ctx)
	}
	lookups := h.fake.CallCount("conversations.history")
	if lookups == 0 || lookups > 6 {
		t.Fatalf("%d lookups in two minutes, want a few with backoff, bounded", lookups)
	}
	e := h.entry(stuck)
	if e.State != store.OutboxSent {
		t.Fatalf("after the bounded lookups: %+v, want it decided and sent", e)
	}
	if got := testutil.ToFloat64(ob.reconciled.WithLabelValues("resent_unverified")); got != 1 {
		t.Fatalf("chmedic_slack_reconcile_total{result=\"resent_unverified\"} = %v", got)
	}
	if got := testutil.ToFloat64(ob.errs.WithLabelValues("lookup", "config")); got == 0 {
		t.Fatal("missing_scope on the lookup is not counted as a configuration error")
	}
	msgs := h.fake.Messages(channel)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the stuck one once and the other one", len(msgs))
	}
	// More steps do not look it up again.
	for range 60 {
		h.clock.Add(time.Second)
		ob.Step(ctx)
	}
	if n := h.fake.CallCount("conversations.history"); n != lookups {
		t.Fatalf("looked up again after deciding: %d → %d", lookups, n)
	}
}

// TestOutboxThreadNeverWedges: the thread's first post is refused for good
// while an update and a reply already wait on it. What waited is
// re-parented: the newest content is posted, the reply follows into the
// new message's thread, nothing is left pending; with or without a next
// change of the group.
func TestOutboxThreadNeverWedges(t *testing.T) {
	for _, nextChange := range []bool{false, true} {
		t.Run(map[bool]string{false: "no further change", true: "a further change"}[nextChange], func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			ob := h.outbox(5 * time.Second)
			post := h.upsert("group:w", "first")
			if err := h.st.MarkSending(ctx, post); err != nil { // handed to Slack...
				t.Fatal(err)
			}
			upd := h.upsert("group:w", "second") // ...while the group changes
			if _, err := h.st.EnqueueReply(ctx, "group:w", body(t, "a note")); err != nil {
				t.Fatal(err)
			}
			if err := h.st.MarkFailed(ctx, post, "refused for good"); err != nil { // ...and Slack refuses it for good
				t.Fatal(err)
			}
			want := "second"
			if nextChange {
				h.upsert("group:w", "third")
				want = "third"
			}
			for range 5 {
				h.clock.Add(2 * time.Second)
				ob.Step(ctx)
			}
			var msgs []slackfake.Message
			for _, m := range h.fake.Messages(channel) {
				if m.ThreadTS == "" {
					msgs = append(msgs, m)
				}
			}
			if len(msgs) != 1 || msgs[0].Text != want {
				t.Fatalf("top-level messages %+v, want one saying %q", msgs, want)
			}
			if r := h.fake.Replies(channel, msgs[0].TS); len(r) != 1 || r[0].Text != "a note" {
				t.Fatalf("replies %+v, want the note in the new message's thread", r)
			}
			counts, _ := h.st.OutboxCounts(ctx)
			if counts[store.OutboxPending] != 0 || counts[store.OutboxSending] != 0 {
				t.Fatalf("left waiting: %v", counts)
			}
			if e := h.entry(upd); e.State != store.OutboxSent && e.State != store.OutboxSuperseded {
				t.Fatalf("the update that waited on the dead post: %+v", e)
			}
		})
	}
}

// TestOutboxRefireLinksThePreviousMessageAndBroadcasts: a post that follows
// an earlier message of the group carries a link to it (its permalink); a
// reply marked broadcast is also sent to the channel.
func TestOutboxRefireLinksThePreviousMessageAndBroadcasts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ob := h.outbox(5 * time.Second)
	first := h.upsert("group:r", "first occurrence")
	ob.Step(ctx)
	old := h.entry(first)
	b, _ := json.Marshal(Message{Text: "again", Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewHeaderBlock(plain("FIRING")), slack.NewContextBlock("meta", mrkdwn("meta")), section("x", "again")}},
		Previous: &PreviousMessage{Channel: channel, TS: old.TS, ResolvedText: "2026-11-23 03:04 UTC"}})
	id, err := h.st.ApplyThreadChange(ctx, store.ThreadChange{Thread: store.Thread{Key: "group:r", Channel: channel, Status: "firing"}, Body: b, NewMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Add(2 * time.Second)
	ob.Step(ctx)
	e := h.entry(id.MessageID)
	if e.State != store.OutboxSent || e.TS == old.TS {
		t.Fatalf("the re-fire was not posted as a new message: %s ts %s (old %s)", e.State, e.TS, old.TS)
	}
	m, _ := h.fake.Message(channel, e.TS)
	if !strings.Contains(string(m.Blocks), "/archives/"+channel+"/p"+strings.ReplaceAll(old.TS, ".", "")) || !strings.Contains(string(m.Blocks), "2026-11-23 03:04 UTC") {
		t.Fatalf("the new message does not link the previous one: %s", m.Blocks)
	}
	rb, _ := json.Marshal(Message{Text: "Firing again", Broadcast: true})
	if _, err := h.st.EnqueueReply(ctx, "group:r", rb); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(2 * time.Second)
	ob.Step(ctx)
	r := h.fake.Replies(channel, e.TS)
	if len(r) != 1 || !r[0].ReplyBroadcast {
		t.Fatalf("replies %+v, want one broadcast to the channel", r)
	}
}

// TestOutboxNewMessageKeepsOrder: a note queued for the old message before
// a re-fire's new message goes to the old thread; the new message's later
// updates and notes go to the new one; a pending update of the old message
// is superseded.
func TestOutboxNewMessageKeepsOrder(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ob := h.outbox(5 * time.Second)
	first := h.upsert("group:o", "first")
	ob.Step(ctx)
	old := h.entry(first).TS
	if _, err := h.st.EnqueueReply(ctx, "group:o", body(t, "resolved note")); err != nil {
		t.Fatal(err)
	}
	stale := h.upsert("group:o", "resolved")
	res, err := h.st.ApplyThreadChange(ctx, store.ThreadChange{Thread: store.Thread{Key: "group:o", Channel: channel, Status: "firing"}, Body: body(t, "fired again"), NewMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	if e := h.entry(stale); e.State != store.OutboxSuperseded {
		t.Fatalf("the old message's pending update: %s, want superseded", e.State)
	}
	for range 4 {
		h.clock.Add(2 * time.Second)
		ob.Step(ctx)
	}
	if r := h.fake.Replies(channel, old); len(r) != 1 || r[0].Text != "resolved note" {
		t.Fatalf("old thread replies %+v", r)
	}
	fresh := h.entry(res.MessageID)
	if fresh.State != store.OutboxSent || fresh.TS == old {
		t.Fatalf("new message %s ts %s", fresh.State, fresh.TS)
	}
	h.upsert("group:o", "fired again, updated")
	if _, err := h.st.EnqueueReply(ctx, "group:o", body(t, "new note")); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		h.clock.Add(2 * time.Second)
		ob.Step(ctx)
	}
	if m, _ := h.fake.Message(channel, fresh.TS); m.Text != "fired again, updated" {
		t.Fatalf("new message reads %q", m.Text)
	}
	if m, _ := h.fake.Message(channel, old); m.Text != "first" {
		t.Fatalf("old message reads %q, want it untouched", m.Text)
	}
	if r := h.fake.Replies(channel, fresh.TS); len(r) != 1 || r[0].Text != "new note" {
		t.Fatalf("new thread replies %+v", r)
	}
}
