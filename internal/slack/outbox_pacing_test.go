package slack

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

// TestOutboxPostBurstThenPaced: posts to one channel are paced by a token
// bucket, as Slack documents chat.postMessage (about one per second per
// channel, short bursts allowed): a burst of 3 goes out at once, then one
// per second. Another channel has its own bucket.
func TestOutboxPostBurstThenPaced(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	api := slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL()))
	ob := NewOutbox(h.st, api, OutboxOptions{Now: h.clock.Now, CallTimeout: 5 * time.Second, PostInterval: time.Second, PostBurst: 3})
	for i := range 6 {
		h.upsert(fmt.Sprintf("group:%d", i), fmt.Sprintf("alert %d", i))
	}
	other, _ := h.st.UpsertThreadMessage(ctx, store.Thread{Key: "group:other", Channel: "C0OTHER001", Status: "firing"}, body(t, "elsewhere"))
	posted := func() int { return len(h.fake.Messages(channel)) }
	ob.Step(ctx)
	if n := posted(); n != 3 {
		t.Fatalf("burst: %d posts at once, want 3", n)
	}
	if e := h.entry(other); e.State != store.OutboxSent {
		t.Fatalf("another channel waited for this one's pacing: %+v", e)
	}
	ob.Step(ctx)
	h.clock.Add(500 * time.Millisecond)
	ob.Step(ctx)
	if n := posted(); n != 3 {
		t.Fatalf("after the burst, %d posts within the second, want 3", n)
	}
	for want := 4; want <= 6; want++ {
		h.clock.Add(500 * time.Millisecond)
		ob.Step(ctx)
		ob.Step(ctx)
		if n := posted(); n != want {
			t.Fatalf("%d posts, want %d (one per second)", n, want)
		}
		h.clock.Add(500 * time.Millisecond)
	}
	// A quiet channel refills its burst.
	h.clock.Add(10 * time.Second)
	for i := range 3 {
		h.upsert(fmt.Sprintf("group:later-%d", i), "later")
	}
	ob.Step(ctx)
	if n := posted(); n != 9 {
		t.Fatalf("after a quiet period, %d posts, want a new burst of 3 (9 in all)", n)
	}
}

// TestOutboxCoalescesUpdates: N changes of one message within the
// coalescing window cost one chat.update carrying the latest body; the
// versions in between are never sent.
func TestOutboxCoalescesUpdates(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	api := slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL()))
	ob := NewOutbox(h.st, api, OutboxOptions{Now: h.clock.Now, CallTimeout: 5 * time.Second, CoalesceWindow: 3 * time.Second})
	post := h.upsert("incident:a", "v0")
	ob.Step(ctx)
	ts := h.entry(post).TS
	var sent []string
	for i := 1; i <= 20; i++ {
		h.clock.Add(100 * time.Millisecond)
		h.upsert("incident:a", fmt.Sprintf("v%d", i))
		ob.Step(ctx)
	}
	// 2 s after the post: nothing sent yet.
	if n := h.fake.CallCount("chat.update"); n != 0 {
		t.Fatalf("%d updates within the window, want 0 so far", n)
	}
	for range 20 {
		h.clock.Add(100 * time.Millisecond)
		ob.Step(ctx)
	}
	if n := h.fake.CallCount("chat.update"); n != 1 {
		t.Fatalf("%d chat.update calls for 20 changes within the window, want 1", n)
	}
	m, _ := h.fake.Message(channel, ts)
	sent = append(sent, m.Text)
	if m.Text != "v20" || m.Updated != 1 {
		t.Fatalf("message %q updated %d times, want the latest body v20 once", m.Text, m.Updated)
	}
	// The next change waits for the window after that update.
	h.upsert("incident:a", "v21")
	ob.Step(ctx)
	if n := h.fake.CallCount("chat.update"); n != 1 {
		t.Fatalf("an update right after the previous one was sent at once (%d calls)", n)
	}
	h.clock.Add(3 * time.Second)
	ob.Step(ctx)
	if m, _ := h.fake.Message(channel, ts); m.Text != "v21" || h.fake.CallCount("chat.update") != 2 {
		t.Fatalf("after the window: %q, %d updates", m.Text, h.fake.CallCount("chat.update"))
	}
	_ = sent
}

// racingStore stores a newer version of the message while the outbox is
// about to hand the version it listed to Slack (the incident processor
// runs concurrently with the outbox).
type racingStore struct {
	OutboxStore
	st   *store.Store
	race func()
}

func (r *racingStore) DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error) {
	es, err := r.OutboxStore.DueOutbox(ctx, now, limit)
	if r.race != nil && len(es) > 0 {
		r.race()
		r.race = nil
	}
	return es, err
}

// TestOutboxSendsTheVersionCurrentWhenClaimed: a newer version stored
// between listing the due entries and handing one to Slack is the one
// sent; the listed one (now superseded) is never sent, and nothing is lost.
func TestOutboxSendsTheVersionCurrentWhenClaimed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	api := slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL()))
	rs := &racingStore{OutboxStore: h.st, st: h.st}
	ob := NewOutbox(rs, api, OutboxOptions{Now: h.clock.Now, CallTimeout: 5 * time.Second})
	rs.race = func() { h.upsert("group:a", "v2") }
	id := h.upsert("group:a", "v1")
	ob.Step(ctx)
	h.clock.Add(5 * time.Second)
	ob.Step(ctx)
	msgs := h.fake.Messages(channel)
	if len(msgs) != 1 || msgs[0].Text != "v2" {
		var texts []string
		for _, m := range msgs {
			texts = append(texts, fmt.Sprintf("%q (updated %d)", m.Text, m.Updated))
		}
		t.Fatalf("Slack shows %v, want one message with the latest version v2", texts)
	}
	if e := h.entry(id); e.State != store.OutboxSent {
		t.Fatalf("%+v", e)
	}
}
