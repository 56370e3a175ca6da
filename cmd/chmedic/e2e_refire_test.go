package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// TestRefireWithinTheDedupWindowThroughAlertmanager (issue 7 point 7): a
// real Alertmanager sends firing, resolved, then firing again (the same
// alert with a new startsAt) within webhook.dedup_window (5m here). The
// third notification must be processed and the message must say firing
// again. Before the fix it was answered "duplicate" (it matched the first
// firing) and the message stayed "[RESOLVED]" while the alert fired.
func TestRefireWithinTheDedupWindowThroughAlertmanager(t *testing.T) {
	e := newE2E(t, 3*time.Minute)
	env, slk, ctx := e.env, e.slk, e.ctx
	const name = "ClickHouseDistributedFilesToInsertHigh"
	a := alert(name, map[string]string{"e2e": "refire"})
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{a}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the firing message", 30*time.Second, func() bool { return len(messagesAbout(slk, name)) == 1 })
	first := messagesAbout(slk, name)[0]
	if !strings.HasPrefix(first.Text, "[FIRING]") {
		t.Fatalf("text %q", first.Text)
	}

	a.EndsAt = time.Now()
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{a}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the message to say resolved", 30*time.Second, func() bool {
		m, ok := slk.Message(slackChannel, first.TS)
		return ok && strings.HasPrefix(m.Text, "[RESOLVED]")
	})

	// The same alert fires again: a new startsAt after the old endsAt.
	time.Sleep(100 * time.Millisecond)
	a.StartsAt, a.EndsAt = time.Now(), time.Time{}
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{a}); err != nil {
		t.Fatal(err)
	}
	newest := func() string {
		// Updated in place or re-posted: the newest top-level message
		// about the alert.
		msgs := messagesAbout(slk, name)
		if len(msgs) == 0 {
			return ""
		}
		last := msgs[len(msgs)-1]
		if m, ok := slk.Message(slackChannel, last.TS); ok {
			last = m
		}
		return last.Text
	}
	waitUntil(t, "a message saying the alert fires again", 30*time.Second, func() bool {
		return strings.HasPrefix(newest(), "[FIRING]")
	})

	// Leave Alertmanager without this alert firing for the tests after.
	a.EndsAt = time.Now()
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{a}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the final resolve", 30*time.Second, func() bool {
		return strings.HasPrefix(newest(), "[RESOLVED]")
	})
}
