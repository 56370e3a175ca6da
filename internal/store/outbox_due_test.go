package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDueOutboxPlanIgnoresHistory guards the due query's plan with EXPLAIN
// QUERY PLAN: the outbox is read through indexes only (no full scan), and
// the "is an earlier entry of the thread still pending or in flight" check
// reads the live entries alone (the partial index outbox_live), so that its
// cost does not grow with the thread's delivered or superseded history (a
// storm thread holds thousands). Also checks the plan is the same with a
// large history and that the answer is right.
func TestDueOutboxPlanIgnoresHistory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A thread with a long delivered history and one live update.
	post, err := s.UpsertThreadMessage(ctx, Thread{Key: "incident:a", Channel: "C1", Status: "firing"}, []byte(`{"text":"v0"}`))
	if err != nil {
		t.Fatal(err)
	}
	s.MarkSending(ctx, post)
	s.MarkSent(ctx, post, "C1", "1.0")
	for i := range 300 {
		id, err := s.EnqueueReply(ctx, "incident:a", []byte(fmt.Sprintf(`{"text":"r%d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		s.MarkSending(ctx, id)
		s.MarkSent(ctx, id, "C1", fmt.Sprintf("2.%d", i))
	}
	upd, _ := s.UpsertThreadMessage(ctx, Thread{Key: "incident:a", Channel: "C1", Status: "firing"}, []byte(`{"text":"v1"}`))
	where, args := dueOutboxWhere(time.Now(), 50)
	rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT `+outboxCols+` FROM outbox o LEFT JOIN slack_threads t ON t.thread_key = o.thread_key WHERE `+where, args...)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	rows.Close()
	text := strings.Join(plan, "\n")
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN o") || strings.HasPrefix(line, "SCAN p") || strings.HasPrefix(line, "SCAN outbox") || strings.HasPrefix(line, "SCAN t") {
			t.Errorf("the due query scans the outbox: %q\nplan:\n%s", line, text)
		}
	}
	if !strings.Contains(text, "SEARCH p USING") || !strings.Contains(text, "outbox_live") {
		t.Errorf("the per-thread check does not read the live entries' index outbox_live:\n%s", text)
	}
	due, err := s.DueOutbox(ctx, time.Now(), 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != upd {
		t.Fatalf("due = %+v, want only the update %d", due, upd)
	}
}
