package slack

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

// changeBeforeSending replaces an entry's body (as the approval flow's
// progress and the alert's re-render do) after the outbox has listed it
// and just before it claims it for sending: the race between a worker and
// a publisher.
type changeBeforeSending struct {
	*store.Store
	change func()
}

func (c *changeBeforeSending) ClaimOutbox(ctx context.Context, id int64) ([]byte, string, error) {
	if c.change != nil {
		c.change()
		c.change = nil
	}
	return c.Store.ClaimOutbox(ctx, id)
}

// A message's content changed while the outbox was about to send it: what
// Slack gets is the latest content, not the one listed. Before, the body
// listed was sent and the entry marked sent, so the change was lost: the
// request's message kept showing a step "running" after the execution had
// ended (TestApprovalFlowCrashAndResume, now and then).
func TestOutboxSendsTheLatestBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		upsert func(h *harness, text string)
	}{
		{"keyed reply", func(h *harness, text string) {
			if _, err := h.st.UpsertKeyedReply(context.Background(), "group:a", "request/r1", body(h.t, text)); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"thread message", func(h *harness, text string) { h.upsert("group:a", text) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			h.upsert("group:a", "alert")
			ob := h.outbox(5 * time.Second)
			ob.Step(ctx)
			tc.upsert(h, "first") // the reply, or the message's first update
			if tc.name == "keyed reply" {
				h.clock.Add(2 * time.Second)
				ob.Step(ctx)
				tc.upsert(h, "running")
			}
			cs := &changeBeforeSending{Store: h.st, change: func() { tc.upsert(h, "done") }}
			ob2 := NewOutbox(cs, slack.New(slackfake.DefaultToken, slack.OptionAPIURL(h.fake.URL())), OutboxOptions{Now: h.clock.Now, CallTimeout: 5 * time.Second})
			h.clock.Add(2 * time.Second)
			ob2.Step(ctx)
			h.clock.Add(2 * time.Second)
			ob2.Step(ctx)
			var texts []string
			for _, m := range h.fake.Messages(channel) {
				texts = append(texts, m.Text)
			}
			want := map[string]bool{"done": true}
			found := false
			for _, s := range texts {
				if want[s] {
					found = true
				}
			}
			if !found {
				t.Fatalf("messages in Slack are %q: the latest content %q was never sent", texts, "done")
			}
			if n, _ := h.st.OutboxCounts(ctx); n[store.OutboxPending] != 0 {
				t.Errorf("%d entries still pending", n[store.OutboxPending])
			}
		})
	}
}
