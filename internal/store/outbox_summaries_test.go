package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestSummaryBatchWaitsForThePreviousOne: an incident thread's changes
// accumulate in one pending summary; it is queued as a reply at most once
// per interval, not while the previous summary is undelivered (Slack
// down), and the batch then carries every change since, with the totals
// before the first and after the last. It survives a restart (the store).
func TestSummaryBatchWaitsForThePreviousOne(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(ctx, path, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	th := Thread{Key: "incident:c:1", Channel: "C1", Cluster: "c", Status: "firing"}
	change := func(firing int, batch bool) {
		t.Helper()
		_, err := s.ApplyThreadChange(ctx, ThreadChange{Thread: th, Body: []byte(`{"text":"m"}`), Summary: &SummaryChange{
			Totals: IncidentTotals{Groups: firing, FiringGroups: firing}, Group: SummaryGroup{Title: "A", Status: "firing", Firing: 1},
			Batch: batch, Interval: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
	}
	flush := func() int {
		t.Helper()
		n, err := s.FlushDueSummaries(ctx, clock(), 10)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	summaries := func() []OutboxEntry {
		es, err := s.queryOutbox(ctx, `o.kind = ? ORDER BY o.id`, KindReply)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	change(3, false) // the incident's first message
	for i := 4; i <= 6; i++ {
		advance(5 * time.Second)
		change(i, true)
	}
	if flush() != 0 {
		t.Fatal("a summary was queued within the first interval")
	}
	advance(45 * time.Second)
	if flush() != 1 {
		t.Fatal("no summary an interval after the incident's message")
	}
	first := summaries()[0]
	var b SummaryBody
	if err := json.Unmarshal(first.Body, &b); err != nil || b.Summary == nil {
		t.Fatalf("summary body %s: %v", first.Body, err)
	}
	if b.Summary.Changes != 3 || b.Summary.Start.FiringGroups != 3 || b.Summary.Now.FiringGroups != 6 {
		t.Fatalf("first batch %+v", b.Summary)
	}
	// Slack is down: the first summary stays pending; changes accumulate.
	for i := 7; i <= 9; i++ {
		advance(30 * time.Second)
		change(i, true)
		if flush() != 0 {
			t.Fatal("a second summary was queued while the first is undelivered")
		}
	}
	s.Close()
	if s, err = Open(ctx, path, WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSending(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, first.ID, "C1", "1.1"); err != nil {
		t.Fatal(err)
	}
	advance(30 * time.Second)
	if flush() != 0 {
		t.Fatal("the second summary was queued 30s after the first was sent")
	}
	advance(31 * time.Second)
	if flush() != 1 {
		t.Fatal("no second summary an interval after the first was sent")
	}
	es := summaries()
	if err := json.Unmarshal(es[1].Body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Summary.Changes != 3 || b.Summary.Start.FiringGroups != 6 || b.Summary.Now.FiringGroups != 9 {
		t.Fatalf("second batch %+v", b.Summary)
	}
}
