package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// MarkSlackRequestSeen records that a signed Slack request (identified by
// key, its signature) was accepted, until expiresAt (the end of the window in
// which its timestamp is still accepted). It reports false when the key was
// already recorded and has not expired: a replay. Records expired at now are
// pruned in the same transaction, so the table holds at most one window of
// requests. The record is durable: a restart does not reopen the window.
func (s *Store) MarkSlackRequestSeen(ctx context.Context, key string, now, expiresAt time.Time) (bool, error) {
	var fresh bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM slack_request_replay WHERE expires_at < ?`, millis(now)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO slack_request_replay (key, seen_at, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			key, millis(now), millis(expiresAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record slack request: %w", err)
	}
	return fresh, nil
}

// SlackRequestsRemembered counts the replay records held (for tests and
// metrics).
func (s *Store) SlackRequestsRemembered(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM slack_request_replay`).Scan(&n)
	return n, err
}
