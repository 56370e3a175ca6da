package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGroupMarkLifecycle(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	if _, err := s.GroupMark(ctx, "g"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mark of a new group: %v, want ErrNotFound", err)
	}
	a, _, _ := s.Accept(ctx, Notification{GroupKey: "g", Status: "firing", DedupKey: "1", Payload: []byte("{}")}, 0)
	b, _, _ := s.Accept(ctx, Notification{GroupKey: "g", Status: "resolved", DedupKey: "2", Payload: []byte("{}")}, 0)
	q, err := s.Queued(ctx)
	if err != nil || len(q) != 2 || q[0] != (QueuedNotification{ID: a, GroupKey: "g"}) || q[1].ID != b {
		t.Fatalf("queued %+v %v", q, err)
	}
	start := time.Date(2026, 11, 23, 3, 1, 0, 123456789, time.UTC)
	end := start.Add(9 * time.Minute)
	if err := s.StartProcessing(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishProcessed(ctx, b, GroupMark{GroupKey: "g", Alerts: map[string]AlertVersion{"fp": {StartsAt: start, EndsAt: end}}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.GroupMark(ctx, "g")
	if err != nil || m.NotificationID != b || !m.Alerts["fp"].StartsAt.Equal(start) || !m.Alerts["fp"].EndsAt.Equal(end) {
		t.Fatalf("mark %+v %v", m, err)
	}
	if n, _ := s.Notification(ctx, b); n.State != StateDone {
		t.Fatalf("state %s, want done", n.State)
	}
	if err := s.MarkStale(ctx, a, "stale: older"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Notification(ctx, a); n.State != StateStale || n.LastError != "stale: older" {
		t.Fatalf("%+v", n)
	}
	if q, _ := s.Queued(ctx); len(q) != 0 {
		t.Fatalf("queued after both finished: %+v", q)
	}
	if err := s.FinishProcessed(ctx, 999, GroupMark{GroupKey: "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finishing an unknown id: %v", err)
	}
	if _, err := s.GroupMark(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a failed finish left a mark")
	}
	// Prune removes stale notifications and idle marks.
	c.t = c.t.Add(48 * time.Hour)
	if _, err := s.Prune(ctx, c.t.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Notification(ctx, a); !errors.Is(err, ErrNotFound) {
		t.Errorf("stale notification not pruned: %v", err)
	}
	if _, err := s.GroupMark(ctx, "g"); !errors.Is(err, ErrNotFound) {
		t.Errorf("idle mark not pruned: %v", err)
	}
}
