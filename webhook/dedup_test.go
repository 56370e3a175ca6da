package webhook

import (
	"testing"
	"time"
)

// TestDedupComparesWithTheGroupsLatestState: a notification is a duplicate
// only of the group's latest accepted state (same alerts, statuses,
// startsAt/endsAt), as Alertmanager's nflog compares with its latest entry.
// Before the fix the re-fire (step 3) was answered "duplicate" because it
// matched the first firing, and Slack kept saying "resolved".
func TestDedupComparesWithTheGroupsLatestState(t *testing.T) {
	const g = `{}:{alertname="ClickHouseReadonlyReplica"}`
	steps := []struct {
		name string
		body []byte
		want string // accepted or duplicate
	}{
		{"firing", groupPayload(t, g, firingAt("a", 1)), "accepted"},
		{"repeat of the firing (HA twin, repeat_interval)", groupPayload(t, g, firingAt("a", 1)), "duplicate"},
		{"resolved", groupPayload(t, g, resolvedAt("a", 1, 10)), "accepted"},
		{"repeat of the resolve", groupPayload(t, g, resolvedAt("a", 1, 10)), "duplicate"},
		{"firing again: new startsAt, same fingerprint", groupPayload(t, g, firingAt("a", 12)), "accepted"},
		{"repeat of the re-fire", groupPayload(t, g, firingAt("a", 12)), "duplicate"},
		{"resolved again", groupPayload(t, g, resolvedAt("a", 12, 14)), "accepted"},
		// Alertmanager re-sends an alert with its original startsAt when the
		// source resumes after a resolve: not the latest state, so accepted
		// (the queue's ordering rule decides whether it is stale).
		{"firing with the resolved episode's startsAt", groupPayload(t, g, firingAt("a", 12)), "accepted"},
		{"another alert joins", groupPayload(t, g, firingAt("a", 12), firingAt("b", 15)), "accepted"},
		{"same alerts in another order", groupPayload(t, g, firingAt("b", 15), firingAt("a", 12)), "duplicate"},
		{"one of them resolves", groupPayload(t, g, firingAt("a", 12), resolvedAt("b", 15, 16)), "accepted"},
		{"another group with the same alerts", groupPayload(t, g+"x", firingAt("a", 12), resolvedAt("b", 15, 16)), "accepted"},
	}
	q := &fakeQueue{cap: 64}
	h := newTestHandler(t, nil, q)
	for i, s := range steps {
		if got := postTo(t, h, s.body).Status; got != s.want {
			t.Fatalf("step %d (%s): %s, want %s", i+1, s.name, got, s.want)
		}
	}
}

// TestDedupWindowStillBounds: an identical latest state is collapsed only
// within webhook.dedup_window; after it the notification is processed again.
func TestDedupWindowStillBounds(t *testing.T) {
	q := &fakeQueue{cap: 8}
	h := newTestHandler(t, nil, q)
	now := t0
	h.Now = func() time.Time { return now }
	body := groupPayload(t, "g", firingAt("a", 1))
	if r := postTo(t, h, body); r.Status != "accepted" {
		t.Fatal(r)
	}
	now = now.Add(4 * time.Minute)
	if r := postTo(t, h, body); r.Status != "duplicate" {
		t.Fatalf("within the window: %+v", r)
	}
	now = now.Add(2 * time.Minute) // 6m after the accepted one
	if r := postTo(t, h, body); r.Status != "accepted" {
		t.Fatalf("after the window: %+v", r)
	}
	h.DedupWindow = 0
	if r := postTo(t, h, body); r.Status != "accepted" {
		t.Fatalf("window 0 (disabled): %+v", r)
	}
}
