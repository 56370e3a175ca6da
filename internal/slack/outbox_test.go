package slack

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

const channel = "C0CHMEDIC1"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	clock *fakeClock
	st    *store.Store
	fake  *slackfake.Server
	path  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: &fakeClock{t: time.Now()}, fake: slackfake.New(t, slackfake.Options{}), path: filepath.Join(t.TempDir(), "o.db")}
	h.reopen()
	return h
}

// reopen simulates a chmedic restart: a new store handle on the same file.
func (h *harness) reopen() {
	if h.st != nil {
		h.st.Close()
	}
	st, err := store.Open(context.Background(), h.path, store.WithClock(h.clock.Now))
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	h.t.Cleanup(func() { st.Close() })
}

func (h *harness) outbox(timeout time.Duration) *Outbox {
	api := slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL()))
	return NewOutbox(h.st, api, OutboxOptions{Now: h.clock.Now, CallTimeout: timeout, BackoffBase: time.Second})
}

func body(t *testing.T, text string) []byte {
	b, err := json.Marshal(Message{Text: text, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) upsert(key, text string) int64 {
	id, err := h.st.UpsertThreadMessage(context.Background(), store.Thread{Key: key, Channel: channel, Status: "firing"}, body(h.t, text))
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) entry(id int64) store.OutboxEntry {
	e, err := h.st.OutboxEntry(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func TestOutboxPostUpdateReplyInOrder(t *testing.T) {
	h := newHarness(t)
	ob := h.outbox(5 * time.Second)
	ctx := context.Background()
	post := h.upsert("group:a", "first")
	ob.Step(ctx)
	if e := h.entry(post); e.State != store.OutboxSent || e.TS == "" {
		t.Fatalf("post: %+v", e)
	}
	upd := h.upsert("group:a", "second")
	reply, _ := h.st.EnqueueReply(ctx, "group:a", body(t, "a follow-up"))
	// The update is rate limited (Tier 3) and coalesced (one write of the
	// message per 3s window); the reply waits behind it.
	h.clock.Add(2 * time.Second)
	ob.Step(ctx)
	ob.Step(ctx)
	h.clock.Add(2 * time.Second)
	ob.Step(ctx)
	ob.Step(ctx)
	if e := h.entry(upd); e.State != store.OutboxSent {
		t.Fatalf("update: %+v", e)
	}
	if e := h.entry(reply); e.State != store.OutboxSent {
		t.Fatalf("reply: %+v", e)
	}
	msgs := h.fake.Messages(channel)
	if len(msgs) != 2 {
		t.Fatalf("messages %d, want the post and the reply", len(msgs))
	}
	top, _ := h.fake.Message(channel, h.entry(post).TS)
	if top.Text != "second" || top.Updated != 1 {
		t.Fatalf("top message %q updated %d times", top.Text, top.Updated)
	}
	if r := h.fake.Replies(channel, top.TS); len(r) != 1 || r[0].Text != "a follow-up" {
		t.Fatalf("replies %+v", r)
	}
	if top.Metadata == nil || top.Metadata.EventType != MetadataEventType {
		t.Fatalf("metadata %+v", top.Metadata)
	}
}

// TestOutboxPerChannelPostInterval: with PostBurst 1 posts to one channel
// are paced strictly (the default burst is TestOutboxPostBurstThenPaced).
func TestOutboxPerChannelPostInterval(t *testing.T) {
	h := newHarness(t)
	ob := NewOutbox(h.st, slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL())), OutboxOptions{Now: h.clock.Now, CallTimeout: 5 * time.Second, PostBurst: 1})
	ctx := context.Background()
	a := h.upsert("group:a", "a")
	b := h.upsert("group:b", "b")
	wait := ob.Step(ctx)
	if h.entry(a).State != store.OutboxSent || h.entry(b).State != store.OutboxPending {
		t.Fatalf("two posts to one channel in one instant: a=%s b=%s", h.entry(a).State, h.entry(b).State)
	}
	if wait <= 0 || wait > time.Second {
		t.Fatalf("wait %s, want at most the 1s post interval", wait)
	}
	h.clock.Add(time.Second)
	ob.Step(ctx)
	if h.entry(b).State != store.OutboxSent {
		t.Fatal("second post not sent after the interval")
	}
}

func TestOutboxHonoursRetryAfter(t *testing.T) {
	h := newHarness(t)
	ob := h.outbox(5 * time.Second)
	ctx := context.Background()
	h.fake.FailNext("chat.postMessage", 3, slackfake.Failure{Status: 429, RetryAfter: 3 * time.Second})
	id := h.upsert("group:a", "x")
	ob.Step(ctx)
	e := h.entry(id)
	if e.State != store.OutboxPending || e.Attempts != 0 || e.NextAttemptAt.Before(h.clock.Now().Add(3*time.Second-time.Millisecond)) {
		t.Fatalf("after 429: %+v", e)
	}
	calls := h.fake.CallCount("chat.postMessage")
	h.clock.Add(time.Second)
	ob.Step(ctx)
	if h.fake.CallCount("chat.postMessage") != calls {
		t.Fatal("called Slack again before Retry-After elapsed")
	}
	// A storm of 429s: each honoured, nothing lost, nothing duplicated.
	for i := 0; i < 10 && h.entry(id).State != store.OutboxSent; i++ {
		h.clock.Add(3 * time.Second)
		ob.Step(ctx)
	}
	if h.entry(id).State != store.OutboxSent || len(h.fake.Messages(channel)) != 1 {
		t.Fatalf("state %s, %d messages", h.entry(id).State, len(h.fake.Messages(channel)))
	}
}

func TestOutboxOutageThenRecovery(t *testing.T) {
	h := newHarness(t)
	ob := h.outbox(5 * time.Second)
	ctx := context.Background()
	h.fake.SetOutage(true)
	id := h.upsert("group:a", "during the outage")
	for i := 0; i < 5; i++ {
		ob.Step(ctx)
		h.clock.Add(10 * time.Second)
	}
	if e := h.entry(id); e.State == store.OutboxSent || e.State == store.OutboxFailed {
		t.Fatalf("during outage: %+v", e)
	}
	h.fake.SetOutage(false)
	for i := 0; i < 5 && h.entry(id).State != store.OutboxSent; i++ {
		h.clock.Add(time.Minute)
		ob.Step(ctx)
	}
	if e := h.entry(id); e.State != store.OutboxSent {
		t.Fatalf("after outage: %+v", e)
	}
	if n := len(h.fake.Messages(channel)); n != 1 {
		t.Fatalf("%d messages after the outage, want exactly 1", n)
	}
}

// TestOutboxUnknownOutcomeIsNotResent: Slack posts the message but the
// answer never arrives (a timeout, or chmedic killed mid-call). After a
// restart the entry is found in the channel by its metadata and not posted
// again.
func TestOutboxUnknownOutcomeIsNotResent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.fake.FailNext("chat.postMessage", 1, slackfake.Failure{Delay: 400 * time.Millisecond})
	id := h.upsert("group:a", "maybe delivered")
	h.outbox(100 * time.Millisecond).Step(ctx)
	if e := h.entry(id); e.State != store.OutboxSending {
		t.Fatalf("after a timeout: %+v, want it left in flight", e)
	}
	// Slack finishes posting after chmedic gave up.
	h.fake.WaitFor(t, func() bool { return len(h.fake.Messages(channel)) == 1 }, 5*time.Second)

	h.reopen() // restart
	ob := h.outbox(5 * time.Second)
	h.clock.Add(time.Second) // the lookup comes BackoffBase after the unknown outcome
	ob.Step(ctx)
	e := h.entry(id)
	if e.State != store.OutboxSent || e.TS != h.fake.Messages(channel)[0].TS {
		t.Fatalf("after restart: %+v", e)
	}
	if n := len(h.fake.Messages(channel)); n != 1 {
		t.Fatalf("%d messages, want exactly 1", n)
	}
	// A later update goes to the same message.
	h.upsert("group:a", "resolved")
	h.clock.Add(2 * time.Second)
	ob.Step(ctx)
	if m := h.fake.Messages(channel); len(m) != 1 || m[0].Text != "resolved" {
		t.Fatalf("after update: %+v", m)
	}
}

// TestOutboxInterruptedBeforeSlackIsSentOnce: chmedic marked the entry in
// flight and died before the call reached Slack: after restart it is sent.
func TestOutboxInterruptedBeforeSlackIsSentOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.upsert("group:a", "never reached Slack")
	if err := h.st.MarkSending(ctx, id); err != nil {
		t.Fatal(err)
	}
	h.reopen()
	ob := h.outbox(5 * time.Second)
	ob.Step(ctx) // reconcile: not found → back to pending
	ob.Step(ctx) // send
	if e := h.entry(id); e.State != store.OutboxSent {
		t.Fatalf("%+v", e)
	}
	if n := len(h.fake.Messages(channel)); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestOutboxInvalidBlocksFallsBackToText(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var blocks []slack.Block
	for i := 0; i < 60; i++ { // over Slack's 50-block limit
		blocks = append(blocks, slack.NewDividerBlock())
	}
	b, _ := json.Marshal(Message{Text: "too many blocks", Blocks: slack.Blocks{BlockSet: blocks}})
	id, _ := h.st.UpsertThreadMessage(ctx, store.Thread{Key: "group:a", Channel: channel}, b)
	ob := h.outbox(5 * time.Second)
	ob.Step(ctx)
	h.clock.Add(time.Second)
	ob.Step(ctx)
	e := h.entry(id)
	msgs := h.fake.Messages(channel)
	if e.State != store.OutboxSent || len(msgs) != 1 || len(msgs[0].Blocks) != 0 {
		t.Fatalf("entry %+v messages %+v", e, msgs)
	}
}

func TestOutboxLogModeWithoutToken(t *testing.T) {
	h := newHarness(t)
	ob := NewOutbox(h.st, nil, OutboxOptions{Now: h.clock.Now})
	id := h.upsert("group:a", "to the log")
	ob.Step(context.Background())
	if e := h.entry(id); e.State != store.OutboxSent || e.TS == "" {
		t.Fatalf("%+v", e)
	}
	if h.fake.CallCount("chat.postMessage") != 0 {
		t.Fatal("log mode called Slack")
	}
}

// TestOutboxReconcilesByChannelName: with a channel configured by name,
// the lookup after an unknown outcome resolves the name first.
func TestOutboxReconcilesByChannelName(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.fake.FailNext("chat.postMessage", 1, slackfake.Failure{Delay: 400 * time.Millisecond})
	id, err := h.st.UpsertThreadMessage(ctx, store.Thread{Key: "group:n", Channel: "#alerts"}, body(t, "by name"))
	if err != nil {
		t.Fatal(err)
	}
	h.outbox(100 * time.Millisecond).Step(ctx)
	h.fake.WaitFor(t, func() bool { return len(h.fake.Messages("alerts")) == 1 }, 5*time.Second)
	ob := h.outbox(5 * time.Second)
	h.clock.Add(time.Second)
	ob.Step(ctx)
	if e := h.entry(id); e.State != store.OutboxSent {
		t.Fatalf("%+v", e)
	}
	if n := len(h.fake.Messages("alerts")); n != 1 {
		t.Fatalf("%d messages", n)
	}
	if h.fake.CallCount("conversations.list") == 0 {
		t.Fatal("the channel name was not resolved")
	}
}
