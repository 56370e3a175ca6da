package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDigestHistoryAndRuns(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	if _, err := s.LatestDigest(ctx, "prod"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty history: %v", err)
	}
	for i, body := range []string{`{"n":1}`, `{"n":2}`} {
		c.t = c.t.Add(time.Hour)
		if _, err := s.SaveDigest(ctx, DigestRecord{Cluster: "prod", Name: "daily", Source: "cli", Verdict: "healthy", Body: []byte(body)}); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := s.SaveDigest(ctx, DigestRecord{Cluster: "other", Body: []byte(`{"n":3}`), CreatedAt: c.t.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.LatestDigest(ctx, "prod")
	if err != nil || string(r.Body) != `{"n":2}` || !r.CreatedAt.Equal(c.t) {
		t.Fatalf("latest: %+v %v", r, err)
	}

	if _, ok, err := s.LastDigestRun(ctx, "daily"); ok || err != nil {
		t.Fatalf("never ran: %v %v", ok, err)
	}
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	if err := s.RecordDigestRun(ctx, "daily", at); err != nil {
		t.Fatal(err)
	}
	// An older scheduled time never moves the record back.
	if err := s.RecordDigestRun(ctx, "daily", at.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LastDigestRun(ctx, "daily")
	if err != nil || !ok || !got.Equal(at) {
		t.Fatalf("last run %s %v %v", got, ok, err)
	}
}

func TestOutboxGivenUpSinceAndPayloads(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	start := c.t
	for i := 0; i < 3; i++ {
		id, err := s.UpsertThreadMessage(ctx, Thread{Key: "k" + string(rune('a'+i)), Channel: "#c"}, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := s.MarkFailed(ctx, id, "channel_not_found"); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(time.Hour)
	}
	if n, err := s.OutboxGivenUpSince(ctx, start.Add(30*time.Minute)); err != nil || n != 1 {
		t.Fatalf("given up since: %d %v", n, err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := s.Accept(ctx, Notification{GroupKey: "g", Status: "firing", AlertCount: 1, DedupKey: string(rune('a' + i)), Payload: []byte{byte('0' + i)}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	ps, trunc, err := s.NotificationPayloadsSince(ctx, start, 2)
	if err != nil || !trunc || len(ps) != 2 || string(ps[0]) != "2" {
		t.Fatalf("payloads %q %v %v", ps, trunc, err)
	}
}

func TestPruneDigestsKeepsEachClustersLatest(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		for _, cl := range []string{"a", "b"} {
			if _, err := s.SaveDigest(ctx, DigestRecord{Cluster: cl, Body: []byte(cl + string(rune('0'+i)))}); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(24 * time.Hour)
	}
	if _, err := s.SaveDigest(ctx, DigestRecord{Cluster: "a", Body: []byte("a3")}); err != nil {
		t.Fatal(err)
	}
	// Everything is older than the cutoff: only each cluster's latest stays.
	n, err := s.PruneDigests(ctx, c.t.Add(time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("pruned %d, %v; want 5", n, err)
	}
	for cl, want := range map[string]string{"a": "a3", "b": "b2"} {
		r, err := s.LatestDigest(ctx, cl)
		if err != nil || string(r.Body) != want {
			t.Errorf("%s: %q %v, want %q", cl, r.Body, err, want)
		}
	}
}
