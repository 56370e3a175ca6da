package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T) (*Store, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)}
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

func TestMigrationsAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.SchemaVersion(context.Background())
	if v != len(migrations) {
		t.Fatalf("schema version %d, want %d", v, len(migrations))
	}
	id, _, err := s.Accept(context.Background(), Notification{GroupKey: "g", Status: "firing", DedupKey: "k", Payload: []byte("{}")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Notification(context.Background(), id); err != nil || n.GroupKey != "g" {
		t.Fatalf("after reopen: %+v %v", n, err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptDedupWindow(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	n := Notification{GroupKey: "g", Status: "firing", DedupKey: "k", Payload: []byte("{}")}
	a, dup, _ := s.Accept(ctx, n, 5*time.Minute)
	b, dup2, _ := s.Accept(ctx, n, 5*time.Minute)
	if dup || !dup2 || a != b {
		t.Fatalf("first %d dup=%v, second %d dup=%v", a, dup, b, dup2)
	}
	c.t = c.t.Add(6 * time.Minute)
	d, dup3, _ := s.Accept(ctx, n, 5*time.Minute)
	if dup3 || d == a {
		t.Fatalf("after the window: %d dup=%v, want a new event", d, dup3)
	}
}

func TestNotificationLifecycle(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	id, _, _ := s.Accept(ctx, Notification{GroupKey: "g", Status: "firing", DedupKey: "k", Payload: []byte("{}")}, 0)
	if err := s.StartProcessing(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Unfinished(ctx); len(ids) != 1 {
		t.Fatalf("unfinished %v", ids)
	}
	if err := s.FinishProcessing(ctx, id, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	n, _ := s.Notification(ctx, id)
	if n.State != StateFailed || n.LastError != "boom" || n.Attempts != 1 {
		t.Fatalf("%+v", n)
	}
	if ids, _ := s.Unfinished(ctx); len(ids) != 0 {
		t.Fatalf("unfinished %v", ids)
	}
	if err := s.StartProcessing(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
}

func TestOutboxOrderingAndCoalescing(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	th := Thread{Key: "group:g", Channel: "#alerts", Cluster: "prod", Status: "firing"}
	post, _ := s.UpsertThreadMessage(ctx, th, []byte("v1"))
	// A second version before the post went out replaces its body.
	again, _ := s.UpsertThreadMessage(ctx, th, []byte("v2"))
	if again != post {
		t.Fatalf("second upsert made entry %d, want the pending post %d replaced", again, post)
	}
	reply, err := s.EnqueueReply(ctx, "group:g", []byte("r1"))
	if err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueOutbox(ctx, c.t, 10)
	if len(due) != 1 || due[0].ID != post || string(due[0].Body) != "v2" || due[0].Kind != KindPost {
		t.Fatalf("due = %+v, want only the post with v2", due)
	}
	if err := s.MarkSending(ctx, post); err != nil {
		t.Fatal(err)
	}
	// While the post is in flight, an update queues behind it.
	upd, _ := s.UpsertThreadMessage(ctx, th, []byte("v3"))
	if due, _ := s.DueOutbox(ctx, c.t, 10); len(due) != 0 {
		t.Fatalf("due while post in flight: %+v", due)
	}
	if inflight, _ := s.InFlightOutbox(ctx); len(inflight) != 1 || inflight[0].ID != post {
		t.Fatalf("in flight %+v", inflight)
	}
	if err := s.MarkSent(ctx, post, "C0123456789", "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueOutbox(ctx, c.t, 10)
	if len(due) != 1 || due[0].ID != reply || due[0].ThreadTS != "1700000000.000100" || due[0].ThreadChannel != "C0123456789" {
		t.Fatalf("due after post = %+v, want the reply first with the thread ts and channel id", due)
	}
	s.MarkSending(ctx, reply)
	s.MarkSent(ctx, reply, "C0123456789", "1700000000.000200")
	due, _ = s.DueOutbox(ctx, c.t, 10)
	if len(due) != 1 || due[0].ID != upd || due[0].Kind != KindUpdate {
		t.Fatalf("due = %+v, want the update", due)
	}
	// Retry scheduling: not due before its time; a rate limit does not count.
	s.MarkSending(ctx, upd)
	s.MarkRetry(ctx, upd, c.t.Add(time.Minute), "429", false)
	if due, _ := s.DueOutbox(ctx, c.t, 10); len(due) != 0 {
		t.Fatalf("due before retry time: %+v", due)
	}
	e, _ := s.OutboxEntry(ctx, upd)
	if e.Attempts != 0 || e.LastError != "429" {
		t.Fatalf("after rate limit: %+v", e)
	}
	c.t = c.t.Add(time.Minute)
	if due, _ := s.DueOutbox(ctx, c.t, 10); len(due) != 1 {
		t.Fatalf("due at retry time: %+v", due)
	}
	counts, _ := s.OutboxCounts(ctx)
	if counts[OutboxSent] != 2 || counts[OutboxPending] != 1 {
		t.Fatalf("counts %v", counts)
	}
}

func TestRouteGroupStorm(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	route := func(key, status string) (string, *Incident) {
		t.Helper()
		k, inc, err := s.RouteGroup(ctx, GroupView{Cluster: "prod", GroupKey: key, Title: key, Status: status, Firing: 1}, 3, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Emulate the processor creating the thread.
		s.UpsertThreadMessage(ctx, Thread{Key: k, Channel: "#a", Cluster: "prod", Status: status}, []byte("x"))
		return k, inc
	}
	k1, inc1 := route("a", "firing")
	k2, inc2 := route("b", "firing")
	if k1 != "group:a" || k2 != "group:b" || inc1 != nil || inc2 != nil {
		t.Fatalf("first two groups: %s %s %v %v", k1, k2, inc1, inc2)
	}
	k3, inc3 := route("c", "firing")
	if inc3 == nil || k3 == "group:c" {
		t.Fatalf("third group within the window should open an incident, got %s", k3)
	}
	k4, inc4 := route("d", "firing")
	if k4 != k3 || len(inc4.Groups) != 2 {
		t.Fatalf("fourth group: %s (incident %s) groups %+v", k4, k3, inc4)
	}
	// Groups with their own message keep it.
	if k, _ := route("a", "resolved"); k != "group:a" {
		t.Fatalf("group a moved to %s", k)
	}
	// Another cluster is not affected.
	if k, inc, _ := s.RouteGroup(ctx, GroupView{Cluster: "staging", GroupKey: "x", Status: "firing"}, 3, 2*time.Minute); k != "group:x" || inc != nil {
		t.Fatalf("other cluster: %s", k)
	}
	// The incident closes when all its groups resolve; the next group starts fresh.
	route("c", "resolved")
	_, inc := route("d", "resolved")
	if inc == nil || inc.Groups[0].Status != "resolved" {
		t.Fatalf("closing: %+v", inc)
	}
	c.t = c.t.Add(10 * time.Minute)
	if k, inc := route("e", "firing"); k != "group:e" || inc != nil {
		t.Fatalf("after the storm: %s %+v", k, inc)
	}
}

func TestOfferActionIdempotent(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	a := ActionRequest{OfferKey: "n1/0", Kind: "ddl_freeze", Params: map[string]string{"duration": "30m"}, Cluster: "prod", GroupKey: "g", ThreadKey: "group:g"}
	id1, err := s.OfferAction(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := s.OfferAction(ctx, a)
	if id1 != id2 || len(id1) < 20 {
		t.Fatalf("ids %q %q", id1, id2)
	}
	got, err := s.ActionRequestByID(ctx, id1)
	if err != nil || got.Kind != "ddl_freeze" || got.Params["duration"] != "30m" || got.State != "offered" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.ActionRequestByID(ctx, "forged"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forged id: %v", err)
	}
}

func TestUpsertAfterAFailedPostPostsAgain(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	post, _ := s.UpsertThreadMessage(ctx, Thread{Key: "group:g", Channel: "#gone"}, []byte("v1"))
	s.MarkSending(ctx, post)
	s.MarkFailed(ctx, post, "channel_not_found")
	again, err := s.UpsertThreadMessage(ctx, Thread{Key: "group:g", Channel: "#alerts"}, []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueOutbox(ctx, c.t, 10)
	if len(due) != 1 || due[0].ID != again || due[0].Kind != KindPost || due[0].Channel != "#alerts" {
		t.Fatalf("due %+v, want a new post to the new channel", due)
	}
}

func TestPrune(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	old, _, _ := s.Accept(ctx, Notification{GroupKey: "g", Status: "firing", DedupKey: "a", Payload: []byte("{}")}, 0)
	pending, _, _ := s.Accept(ctx, Notification{GroupKey: "g", Status: "firing", DedupKey: "b", Payload: []byte("{}")}, 0)
	s.StartProcessing(ctx, old)
	s.FinishProcessing(ctx, old, nil)
	post, _ := s.UpsertThreadMessage(ctx, Thread{Key: "group:g", Channel: "C1"}, []byte("x"))
	s.MarkSending(ctx, post)
	s.MarkSent(ctx, post, "C1", "1.1")
	c.t = c.t.Add(8 * 24 * time.Hour)
	n, err := s.Prune(ctx, c.t.Add(-7*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want the done notification and the sent post", n, err)
	}
	if _, err := s.Notification(ctx, pending); err != nil {
		t.Fatalf("an unprocessed notification was pruned: %v", err)
	}
	if th, err := s.Thread(ctx, "group:g"); err != nil || th.TS != "1.1" {
		t.Fatalf("thread lost: %+v %v", th, err)
	}
}
