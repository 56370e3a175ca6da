package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// KindReplyUpdate replaces a keyed reply in its thread in place
// (chat.update of the reply's ts).
const KindReplyUpdate = "reply_update"

// A keyed reply is a follow-up in a thread that is later updated in place
// (an approval request's state, an execution's progress): the first
// UpsertKeyedReply posts it, later ones update it.
const migrationKeyedReplies = `CREATE TABLE keyed_replies (
		reply_key  TEXT PRIMARY KEY,
		thread_key TEXT NOT NULL,
		outbox_id  INTEGER NOT NULL,
		ts         TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE keyed_reply_updates (
		outbox_id INTEGER PRIMARY KEY,
		reply_key TEXT NOT NULL
	);`

// UpsertKeyedReply makes body the content of the thread's reply under key:
// the first call queues the reply, later calls queue an update of it. A
// reply or update not yet handed to Slack is replaced rather than queued
// behind, so a burst of progress costs one Slack call. It returns the
// outbox id.
func (s *Store) UpsertKeyedReply(ctx context.Context, threadKey, key string, body []byte) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var ch string
		if err := tx.QueryRowContext(ctx, `SELECT channel FROM slack_threads WHERE thread_key = ?`, threadKey).Scan(&ch); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("no such thread: %w", ErrNotFound)
			}
			return err
		}
		now := millis(s.now())
		var first int64
		var ts string
		err := tx.QueryRowContext(ctx, `SELECT outbox_id, ts FROM keyed_replies WHERE reply_key = ?`, key).Scan(&first, &ts)
		if errors.Is(err, sql.ErrNoRows) {
			id, err = insertOutbox(tx, ctx, threadKey, KindReply, ch, body, now)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO keyed_replies (reply_key, thread_key, outbox_id) VALUES (?, ?, ?)`, key, threadKey, id)
			return err
		}
		if err != nil {
			return err
		}
		// The reply itself is still waiting: give it the new body.
		var state, sentTS string
		err = tx.QueryRowContext(ctx, `SELECT state, ts FROM outbox WHERE id = ?`, first).Scan(&state, &sentTS)
		switch {
		case err == nil && state == OutboxPending:
			id = first
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET body = ? WHERE id = ?`, body, first)
			return err
		case err == nil && state == OutboxSent && ts == "" && sentTS != "":
			// Remember the reply's ts before retention prunes its entry.
			if _, err := tx.ExecContext(ctx, `UPDATE keyed_replies SET ts = ? WHERE reply_key = ?`, sentTS, key); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		// Replace an update still waiting.
		err = tx.QueryRowContext(ctx, `SELECT o.id FROM outbox o JOIN keyed_reply_updates u ON u.outbox_id = o.id
			WHERE u.reply_key = ? AND o.state = ? ORDER BY o.id DESC LIMIT 1`, key, OutboxPending).Scan(&id)
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET body = ? WHERE id = ?`, body, id)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id, err = insertOutbox(tx, ctx, threadKey, KindReplyUpdate, ch, body, now)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO keyed_reply_updates (outbox_id, reply_key) VALUES (?, ?)`, id, key)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: reply %q in %q: %w", key, threadKey, err)
	}
	return id, nil
}

// KeyedReplyTS returns the ts of the reply a reply_update entry replaces,
// or "" when that reply was never delivered.
func (s *Store) KeyedReplyTS(ctx context.Context, updateID int64) (string, error) {
	var ts string
	err := s.db.QueryRowContext(ctx, `SELECT CASE WHEN r.ts <> '' THEN r.ts ELSE COALESCE(o.ts, '') END
		FROM keyed_reply_updates u JOIN keyed_replies r ON r.reply_key = u.reply_key
		LEFT JOIN outbox o ON o.id = r.outbox_id AND o.state = ?
		WHERE u.outbox_id = ?`, OutboxSent, updateID).Scan(&ts)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("reply update %d: %w", updateID, ErrNotFound)
	}
	return ts, err
}
