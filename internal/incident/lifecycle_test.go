package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/webhook"
)

var errCrash = errors.New("crash")

// crashingStore lets the first write of a thread's message commit, then
// fails every later store call, as a process killed right after it would.
type crashingStore struct {
	*store.Store
	crashed bool
}

func (c *crashingStore) UpsertThreadMessage(ctx context.Context, t store.Thread, body []byte) (int64, error) {
	if c.crashed {
		return 0, errCrash
	}
	c.crashed = true
	return c.Store.UpsertThreadMessage(ctx, t, body)
}

func (c *crashingStore) ApplyThreadChange(ctx context.Context, ch store.ThreadChange) (store.ThreadChangeResult, error) {
	if c.crashed {
		return store.ThreadChangeResult{}, errCrash
	}
	c.crashed = true
	return c.Store.ApplyThreadChange(ctx, ch)
}

func (c *crashingStore) EnqueueReply(ctx context.Context, key string, body []byte) (int64, error) {
	if c.crashed {
		return 0, errCrash
	}
	return c.Store.EnqueueReply(ctx, key, body)
}

func sendAll(t *testing.T, st *store.Store, ts string) {
	t.Helper()
	ctx := context.Background()
	for range 5 {
		for _, e := range due(t, st) {
			st.MarkSending(ctx, e.ID)
			st.MarkSent(ctx, e.ID, "C1", ts)
		}
	}
}

// TestResolveNoteSurvivesACrash: the thread's new state and its follow-up
// note are one transaction. A process killed right after the message was
// stored, replayed, still notes "Resolved at ..." in the thread, once.
func TestResolveNoteSurvivesACrash(t *testing.T) {
	p, st, _ := newProcessor(t)
	ctx := context.Background()
	if err := p.Process(ctx, store.Notification{ID: 1}, message("g", "ClickHouseReadonlyReplica", "firing", nil)); err != nil {
		t.Fatal(err)
	}
	sendAll(t, st, "1.000100")
	resolved := message("g", "ClickHouseReadonlyReplica", "resolved", nil)
	p.Store = &crashingStore{Store: st}
	_ = p.Process(ctx, store.Notification{ID: 2}, resolved) // killed mid-way (or not)
	p.Store = st
	if err := p.Process(ctx, store.Notification{ID: 2}, resolved); err != nil { // replay at start
		t.Fatal(err)
	}
	notes := 0
	for _, e := range allOutbox(t, st) {
		if e.Kind == store.KindReply && strings.Contains(outboxBody(t, st, e.ID).Text, "Resolved at") {
			notes++
		}
	}
	if notes != 1 {
		t.Fatalf("%d 'Resolved at' notes after a crash and a replay, want 1", notes)
	}
}

func offerStates(t *testing.T, st *store.Store, ids string) []string {
	t.Helper()
	var out []string
	for _, id := range strings.Split(ids, ",") {
		a, err := st.ActionRequestByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.State)
	}
	return out
}

// TestRerenderSupersedesOlderOffers: each notification mints new offers;
// the ones on the message it replaces are superseded, and a resolved
// message (no buttons) leaves none offered.
func TestRerenderSupersedesOlderOffers(t *testing.T) {
	p, st, _ := newProcessor(t)
	ctx := context.Background()
	if err := p.Process(ctx, store.Notification{ID: 1}, message("g", "ClickHouseReadonlyReplica", "firing", nil)); err != nil {
		t.Fatal(err)
	}
	first := ids(t, outboxBody(t, st, due(t, st)[0].ID))
	sendAll(t, st, "1.000100")
	if err := p.Process(ctx, store.Notification{ID: 2}, message("g", "ClickHouseReadonlyReplica", "firing", map[string]string{"instance": "ch-2"})); err != nil {
		t.Fatal(err)
	}
	second := ids(t, outboxBody(t, st, due(t, st)[0].ID))
	if first == second || first == "" {
		t.Fatalf("offers %q then %q", first, second)
	}
	for _, s := range offerStates(t, st, first) {
		if s != store.ActionSuperseded {
			t.Fatalf("offers of the replaced message: %v, want superseded", offerStates(t, st, first))
		}
	}
	for _, s := range offerStates(t, st, second) {
		if s != store.ActionOffered {
			t.Fatalf("offers of the current message: %v, want offered", offerStates(t, st, second))
		}
	}
	sendAll(t, st, "1.000100")
	if err := p.Process(ctx, store.Notification{ID: 3}, message("g", "ClickHouseReadonlyReplica", "resolved", nil)); err != nil {
		t.Fatal(err)
	}
	for _, s := range offerStates(t, st, second) {
		if s != store.ActionSuperseded {
			t.Fatalf("offers after the resolve: %v, want superseded", offerStates(t, st, second))
		}
	}
}

func at(m *webhook.Message, start time.Time) *webhook.Message {
	for i := range m.Alerts {
		m.Alerts[i].StartsAt = start
		if m.Alerts[i].Status == "resolved" {
			m.Alerts[i].EndsAt = start.Add(4 * time.Minute)
		}
	}
	return m
}

// TestRefireAfterAnOldResolveIsANewMessage: a group that fires again long
// after it resolved (beyond slack.refire_window) gets a new top-level
// message linking the previous one, and later changes update the new
// message; a quick flap updates in place and broadcasts the note.
func TestRefireAfterAnOldResolveIsANewMessage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		fresh bool
	}{
		{"two days later", 48 * time.Hour, true},
		{"a flap ten minutes later", 10 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, st, _ := newProcessor(t)
			ctx := context.Background()
			t0 := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
			p.Now = func() time.Time { return t0.Add(5 * time.Minute) }
			if err := p.Process(ctx, store.Notification{ID: 1}, at(message("g", "ClickHouseReadonlyReplica", "firing", nil), t0)); err != nil {
				t.Fatal(err)
			}
			sendAll(t, st, "1.000100")
			if err := p.Process(ctx, store.Notification{ID: 2}, at(message("g", "ClickHouseReadonlyReplica", "resolved", nil), t0)); err != nil {
				t.Fatal(err)
			}
			sendAll(t, st, "1.000100")
			again := t0.Add(4*time.Minute + tc.after)
			p.Now = func() time.Time { return again.Add(30 * time.Second) }
			if err := p.Process(ctx, store.Notification{ID: 3}, at(message("g", "ClickHouseReadonlyReplica", "firing", nil), again)); err != nil {
				t.Fatal(err)
			}
			es := due(t, st)
			if tc.fresh {
				if len(es) != 1 || es[0].Kind != store.KindPost || es[0].Channel != "#alerts" {
					t.Fatalf("outbox %s, want one new post", brief(es))
				}
				b := outboxBody(t, st, es[0].ID)
				if b.Previous == nil || b.Previous.TS != "1.000100" || b.Previous.Channel != "C1" {
					t.Fatalf("the new message does not link the previous one: %+v", b.Previous)
				}
				st.MarkSending(ctx, es[0].ID)
				st.MarkSent(ctx, es[0].ID, "C1", "2.000200")
				// The next change goes to the new message.
				if err := p.Process(ctx, store.Notification{ID: 4}, at(message("g", "ClickHouseReadonlyReplica", "resolved", nil), again)); err != nil {
					t.Fatal(err)
				}
				es = due(t, st)
				if len(es) != 1 || es[0].Kind != store.KindUpdate || es[0].ThreadTS != "2.000200" {
					t.Fatalf("after the new message: %s", brief(es))
				}
				return
			}
			if len(es) != 1 || es[0].Kind != store.KindUpdate || es[0].ThreadTS != "1.000100" {
				t.Fatalf("a flap: %s, want an update in place", brief(es))
			}
			sendAll(t, st, "1.000100")
			var note *store.OutboxEntry
			for _, e := range allOutbox(t, st) {
				if e.Kind == store.KindReply && strings.Contains(outboxBody(t, st, e.ID).Text, "Firing again") {
					note = &e
				}
			}
			if note == nil || !outboxBody(t, st, note.ID).Broadcast {
				t.Fatalf("the 'Firing again' note of a flap is not broadcast to the channel (found: %v)", note != nil)
			}
		})
	}
}

func brief(es []store.OutboxEntry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("{%d %s %s thread_ts=%s %s}", e.ID, e.Kind, e.Channel, e.ThreadTS, e.State))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
