package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ClaimOutbox marks a pending entry in flight (as MarkSending) and returns
// the body and channel it holds at that moment, which is what must be sent:
// a newer version of the message stored after the entry was listed (a post
// or update not yet handed to Slack is replaced in place) is the one sent,
// and the version listed is never sent. It returns ErrNotFound when the
// entry is no longer pending (superseded, or claimed by another worker).
func (s *Store) ClaimOutbox(ctx context.Context, id int64) ([]byte, string, error) {
	var body []byte
	var channel string
	err := s.db.QueryRowContext(ctx, `UPDATE outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ? WHERE id = ? AND state = ? RETURNING body, channel`,
		OutboxSending, millis(s.now()), id, OutboxPending).Scan(&body, &channel)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("outbox entry %d: not pending: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("outbox entry %d: %w", id, err)
	}
	return body, channel, nil
}
