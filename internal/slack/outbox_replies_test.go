package slack

import (
	"context"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// A keyed reply (an execution's progress) is posted once in the thread and
// then updated in place: one reply, its latest text.
func TestOutboxKeyedReplyUpdatedInPlace(t *testing.T) {
	h := newHarness(t)
	ob := h.outbox(5 * time.Second)
	ctx := context.Background()
	post := h.upsert("group:a", "alert")
	first, err := h.st.UpsertKeyedReply(ctx, "group:a", "progress", body(t, "step 1/2 running"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ob.Step(ctx)
		h.clock.Add(2 * time.Second)
	}
	if e := h.entry(first); e.State != store.OutboxSent {
		t.Fatalf("reply: %+v", e)
	}
	upd, _ := h.st.UpsertKeyedReply(ctx, "group:a", "progress", body(t, "step 2/2 running"))
	h.st.UpsertKeyedReply(ctx, "group:a", "progress", body(t, "done: 2/2 steps succeeded"))
	for range 3 {
		ob.Step(ctx)
		h.clock.Add(2 * time.Second)
	}
	if e := h.entry(upd); e.State != store.OutboxSent {
		t.Fatalf("update: %+v", e)
	}
	top := h.entry(post).TS
	rs := h.fake.Replies(channel, top)
	if len(rs) != 1 || rs[0].Text != "done: 2/2 steps succeeded" || rs[0].Updated != 1 {
		t.Fatalf("replies: %+v", rs)
	}
}

// An update of a reply that was never delivered fails for good rather than
// retrying forever.
func TestOutboxKeyedReplyUpdateWithoutReply(t *testing.T) {
	h := newHarness(t)
	ob := h.outbox(5 * time.Second)
	ctx := context.Background()
	h.upsert("group:a", "alert")
	first, _ := h.st.UpsertKeyedReply(ctx, "group:a", "progress", body(t, "v1"))
	ob.Step(ctx)
	h.st.MarkSending(ctx, first)
	h.st.MarkFailed(ctx, first, "channel_not_found")
	upd, _ := h.st.UpsertKeyedReply(ctx, "group:a", "progress", body(t, "v2"))
	h.clock.Add(2 * time.Second)
	ob.Step(ctx)
	if e := h.entry(upd); e.State != store.OutboxFailed || e.LastError != "message_not_found" {
		t.Fatalf("update of an undelivered reply: %+v", e)
	}
}
