package slack

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

// TestOutboxLookupIgnoresAnotherStoresMessage: two chmedics with their own
// stores post to one channel (an HA pair, a rebuilt or restored store).
// Entry 1 of the second store was interrupted before reaching Slack; the
// first store's entry 1 is in the channel. The lookup must not take the
// other store's message for its own: it sends its message. Before, the
// match was on the outbox id alone, so the second store's message was
// marked delivered and never sent (found by cmd/chmedic-bench).
func TestOutboxLookupIgnoresAnotherStoresMessage(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	fake := slackfake.New(t, slackfake.Options{})
	open := func(name string) (*store.Store, *Outbox) {
		st, err := store.Open(ctx, filepath.Join(t.TempDir(), name), store.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		id, err := st.InstanceID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		api := slack.New(slackfake.DefaultToken, slack.OptionAPIURL(fake.URL()))
		return st, NewOutbox(st, api, OutboxOptions{Now: clock.Now, CallTimeout: 5 * time.Second, BackoffBase: time.Second, Instance: id})
	}
	a, obA := open("a.db")
	b, obB := open("b.db")
	for _, st := range []*store.Store{a, b} {
		if _, err := st.UpsertThreadMessage(ctx, store.Thread{Key: "group:a", Channel: channel, Status: "firing"}, body(t, "from "+map[*store.Store]string{a: "a", b: "b"}[st])); err != nil {
			t.Fatal(err)
		}
	}
	obA.Step(ctx)
	if n := len(fake.Messages(channel)); n != 1 {
		t.Fatalf("%d messages after a's post", n)
	}
	if err := b.MarkSending(ctx, 1); err != nil { // b died mid-call
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		clock.Add(2 * time.Second)
		obB.Step(ctx)
	}
	var texts []string
	for _, m := range fake.Messages(channel) {
		texts = append(texts, m.Text)
	}
	if len(texts) != 2 {
		t.Fatalf("messages %q: b's message was taken as delivered", texts)
	}
	if e, _ := b.OutboxEntry(ctx, 1); e.State != store.OutboxSent {
		t.Fatalf("b's entry %+v", e)
	}
}
