package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDueOutbox: one due-query with a storm thread holding a delivered
// history of 0, 10,000 or 100,000 entries and 50 live entries across 50
// threads: the time per query must not grow with the history.
//
//	go test ./internal/store/ -run '^$' -bench DueOutbox -benchtime 200x
func BenchmarkDueOutbox(b *testing.B) {
	for _, history := range []int{0, 10_000, 100_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "s.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			err = s.tx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO slack_threads (thread_key, channel, ts, created_at, updated_at) VALUES ('incident:a', 'C1', '1.0', 0, 0)`); err != nil {
					return err
				}
				for i := range history {
					if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (thread_key, kind, channel, body, state, created_at, sent_at) VALUES ('incident:a', 'update', 'C1', x'7b7d', 'sent', ?, ?)`, i, i); err != nil {
						return err
					}
				}
				for i := range 50 {
					key := fmt.Sprintf("incident:%d", i)
					if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO slack_threads (thread_key, channel, ts, created_at, updated_at) VALUES (?, 'C1', '1.0', 0, 0)`, key); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (thread_key, kind, channel, body, state, created_at) VALUES (?, 'reply', 'C1', x'7b7d', 'pending', 0)`, key); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO outbox (thread_key, kind, channel, body, state, created_at) VALUES ('incident:a', 'update', 'C1', x'7b7d', 'pending', 0)`)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				es, err := s.DueOutbox(ctx, time.Now(), 50)
				if err != nil || len(es) != 50 {
					b.Fatalf("%d due, %v", len(es), err)
				}
			}
		})
	}
}
