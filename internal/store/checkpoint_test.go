package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWALCheckpointedInTheBackground: commits do not checkpoint
// (wal_autocheckpoint 0 on every connection), and the background
// checkpointer copies the WAL into the database file within seconds.
func TestWALCheckpointedInTheBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ck.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var ac int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&ac); err != nil || ac != 0 {
		t.Fatalf("wal_autocheckpoint %d (%v), want 0", ac, err)
	}
	payload := bytes.Repeat([]byte("x"), 5000)
	for i := 0; i < 400; i++ {
		if _, _, err := s.Accept(ctx, Notification{GroupKey: fmt.Sprint(i), Status: "firing", DedupKey: "k", Payload: payload}, 0); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 400*5000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes 10 s after 2 MB were committed: not checkpointed", fi.Size())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
