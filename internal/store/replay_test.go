package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestSlackReplayRecord(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	exp := now.Add(5 * time.Minute)
	if fresh, err := s.MarkSlackRequestSeen(ctx, "v0=aa", now, exp); err != nil || !fresh {
		t.Fatalf("first: fresh=%v err=%v", fresh, err)
	}
	if fresh, _ := s.MarkSlackRequestSeen(ctx, "v0=aa", now.Add(time.Second), exp); fresh {
		t.Fatal("second sighting reported fresh")
	}
	if fresh, _ := s.MarkSlackRequestSeen(ctx, "v0=bb", now, exp); !fresh {
		t.Fatal("another signature reported seen")
	}
	s.Close()

	// A restart keeps the record.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fresh, _ := s.MarkSlackRequestSeen(ctx, "v0=aa", now.Add(time.Minute), exp); fresh {
		t.Fatal("replay accepted after a restart")
	}
	// Past the expiry the records are pruned.
	later := exp.Add(time.Millisecond)
	if fresh, _ := s.MarkSlackRequestSeen(ctx, "v0=cc", later, later.Add(5*time.Minute)); !fresh {
		t.Fatal("new key not fresh")
	}
	if n, _ := s.SlackRequestsRemembered(ctx); n != 1 {
		t.Fatalf("%d records after pruning, want 1", n)
	}
}
