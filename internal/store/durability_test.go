package store

import (
	"context"
	"database/sql"
	"testing"
)

// TestEveryConnectionSyncsFull: "nothing answered 200 is lost" must hold
// across power loss, so every pooled connection (the notification path uses
// any of them) runs in WAL mode with synchronous=FULL (2), which syncs the
// WAL on every commit; NORMAL (1) may lose the last commits on a kernel crash.
func TestEveryConnectionSyncsFull(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	// Hold several connections at once so the pool opens more than one.
	var conns []*sql.Conn
	for i := 0; i < 4; i++ {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var sync int
		if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		var mode string
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if sync != 2 || mode != "wal" {
			t.Errorf("connection %d: synchronous=%d journal_mode=%s, want 2 (FULL) and wal", i, sync, mode)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}
