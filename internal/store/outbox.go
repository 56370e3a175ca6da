package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Outbox entry kinds and states.
const (
	KindPost   = "post"   // the thread's first message
	KindUpdate = "update" // replace the thread's message in place
	KindReply  = "reply"  // a follow-up in the thread

	OutboxPending    = "pending"
	OutboxSending    = "sending" // handed to Slack; outcome unknown until marked
	OutboxSent       = "sent"
	OutboxFailed     = "failed"
	OutboxSuperseded = "superseded" // a newer update of the same thread replaced it
)

// OutboxEntry is one message waiting to be delivered.
type OutboxEntry struct {
	ID            int64
	ThreadKey     string
	Kind          string
	Channel       string
	Body          []byte
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        time.Time
	TS            string
	// ThreadTS is the ts of the thread's first message, once posted.
	ThreadTS string
	// ThreadChannel is the channel ID Slack reported for the thread's first
	// message (updates and replies must use the ID, not a #name).
	ThreadChannel string
}

// Thread is the Slack message that stands for one alert group or incident.
type Thread struct {
	Key     string
	Channel string
	TS      string
	Cluster string
	Status  string
	// Firing is how many alerts were firing at the last message.
	Firing    int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UpsertThreadMessage makes body the current content of the thread's
// message: the first call posts, later calls update in place. A post or an
// update not yet handed to Slack is replaced rather than queued behind, so
// a burst of changes costs one Slack call. It returns the outbox id.
func (s *Store) UpsertThreadMessage(ctx context.Context, t Thread, body []byte) (int64, error) {
	threadKey, channel := t.Key, t.Channel
	now := millis(s.now())
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var ch string
		err := tx.QueryRowContext(ctx, `SELECT channel FROM slack_threads WHERE thread_key = ?`, threadKey).Scan(&ch)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO slack_threads (thread_key, channel, ts, cluster, status, firing, created_at, updated_at) VALUES (?, ?, '', ?, ?, ?, ?, ?)`,
				threadKey, channel, t.Cluster, t.Status, t.Firing, now, now); err != nil {
				return err
			}
			id, err = insertOutbox(tx, ctx, threadKey, KindPost, channel, body, now)
			return err
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE slack_threads SET updated_at = ?, status = ?, firing = ? WHERE thread_key = ?`, now, t.Status, t.Firing, threadKey); err != nil {
			return err
		}
		// The first post was refused for good (e.g. a channel that did not
		// exist): post again, to the channel configured now, rather than
		// queue updates of a message that does not exist.
		var ts string
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT ts, (SELECT COUNT(*) FROM outbox WHERE thread_key = ? AND kind = ? AND state IN (?, ?, ?))
			FROM slack_threads WHERE thread_key = ?`, threadKey, KindPost, OutboxPending, OutboxSending, OutboxSent, threadKey).Scan(&ts, &live); err != nil {
			return err
		}
		if ts == "" && live == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE slack_threads SET channel = ? WHERE thread_key = ?`, channel, threadKey); err != nil {
				return err
			}
			id, err = insertOutbox(tx, ctx, threadKey, KindPost, channel, body, now)
			return err
		}
		// Replace a post or update still waiting (not yet handed to Slack).
		err = tx.QueryRowContext(ctx, `SELECT id FROM outbox WHERE thread_key = ? AND kind IN (?, ?) AND state = ? ORDER BY id DESC LIMIT 1`,
			threadKey, KindPost, KindUpdate, OutboxPending).Scan(&id)
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET body = ? WHERE id = ?`, body, id)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id, err = insertOutbox(tx, ctx, threadKey, KindUpdate, ch, body, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: thread %q: %w", threadKey, err)
	}
	return id, nil
}

// EnqueueReply queues a follow-up in the thread (sent after the thread's
// first message exists).
func (s *Store) EnqueueReply(ctx context.Context, threadKey string, body []byte) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var ch string
		if err := tx.QueryRowContext(ctx, `SELECT channel FROM slack_threads WHERE thread_key = ?`, threadKey).Scan(&ch); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("no such thread: %w", ErrNotFound)
			}
			return err
		}
		var err error
		id, err = insertOutbox(tx, ctx, threadKey, KindReply, ch, body, millis(s.now()))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: reply in %q: %w", threadKey, err)
	}
	return id, nil
}

func insertOutbox(tx *sql.Tx, ctx context.Context, threadKey, kind, channel string, body []byte, now int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (thread_key, kind, channel, body, state, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0)`,
		threadKey, kind, channel, body, OutboxPending, now)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

const outboxCols = `o.id, o.thread_key, o.kind, o.channel, o.body, o.state, o.attempts, o.next_attempt_at, o.last_error, o.created_at, COALESCE(o.sent_at, 0), o.ts, COALESCE(t.ts, ''), COALESCE(t.channel, o.channel)`

func scanOutbox(sc interface{ Scan(...any) error }) (OutboxEntry, error) {
	var e OutboxEntry
	var next, created, sent int64
	err := sc.Scan(&e.ID, &e.ThreadKey, &e.Kind, &e.Channel, &e.Body, &e.State, &e.Attempts, &next, &e.LastError, &created, &sent, &e.TS, &e.ThreadTS, &e.ThreadChannel)
	if err != nil {
		return e, err
	}
	e.NextAttemptAt = fromMillis(next)
	e.CreatedAt = fromMillis(created)
	if sent != 0 {
		e.SentAt = fromMillis(sent)
	}
	return e, nil
}

func (s *Store) queryOutbox(ctx context.Context, where string, args ...any) ([]OutboxEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+outboxCols+` FROM outbox o LEFT JOIN slack_threads t ON t.thread_key = o.thread_key WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		e, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// DueOutbox lists pending entries whose time has come, oldest first. Updates
// and replies wait until their thread's first message has been posted, and
// nothing of a thread is due while an earlier entry of it is still pending
// or in flight, so a thread's messages go out in order.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	return s.queryOutbox(ctx, `o.state = ? AND o.next_attempt_at <= ?
		AND (o.kind = ? OR COALESCE(t.ts, '') <> '')
		AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.thread_key = o.thread_key AND p.id < o.id AND p.state IN (?, ?))
		ORDER BY o.id LIMIT ?`,
		OutboxPending, millis(now), KindPost, OutboxPending, OutboxSending, limit)
}

// InFlightOutbox lists entries handed to Slack whose outcome was never
// recorded (the process stopped mid-call); they must be reconciled.
func (s *Store) InFlightOutbox(ctx context.Context) ([]OutboxEntry, error) {
	return s.queryOutbox(ctx, `o.state = ? ORDER BY o.id`, OutboxSending)
}

// OutboxEntry loads one entry.
func (s *Store) OutboxEntry(ctx context.Context, id int64) (OutboxEntry, error) {
	es, err := s.queryOutbox(ctx, `o.id = ?`, id)
	if err != nil {
		return OutboxEntry{}, err
	}
	if len(es) == 0 {
		return OutboxEntry{}, fmt.Errorf("outbox entry %d: %w", id, ErrNotFound)
	}
	return es[0], nil
}

// MarkSending records that the entry is about to be handed to Slack. It is
// written before the call so that a crash leaves a trace to reconcile.
func (s *Store) MarkSending(ctx context.Context, id int64) error {
	return s.execOne(ctx, id, `UPDATE outbox SET state = ?, attempts = attempts + 1 WHERE id = ? AND state = ?`, OutboxSending, id, OutboxPending)
}

// MarkSent records delivery; for a post it also records the thread's ts and
// the channel ID Slack resolved (channel may be empty to keep the old one).
func (s *Store) MarkSent(ctx context.Context, id int64, channel, ts string) error {
	now := millis(s.now())
	return s.tx(ctx, func(tx *sql.Tx) error {
		var kind, key string
		if err := tx.QueryRowContext(ctx, `SELECT kind, thread_key FROM outbox WHERE id = ?`, id).Scan(&kind, &key); err != nil {
			return fmt.Errorf("outbox entry %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, ts = ?, sent_at = ?, last_error = '' WHERE id = ?`, OutboxSent, ts, now, id); err != nil {
			return err
		}
		if kind == KindPost {
			_, err := tx.ExecContext(ctx, `UPDATE slack_threads SET ts = ?, channel = CASE WHEN ? <> '' THEN ? ELSE channel END, updated_at = ? WHERE thread_key = ?`,
				ts, channel, channel, now, key)
			return err
		}
		return nil
	})
}

// MarkRetry puts the entry back to pending with a next attempt time.
// countAttempt=false undoes the attempt count (a rate limit is not a failure).
func (s *Store) MarkRetry(ctx context.Context, id int64, next time.Time, errText string, countAttempt bool) error {
	q := `UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ? WHERE id = ?`
	if !countAttempt {
		q = `UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ?, attempts = MAX(attempts - 1, 0) WHERE id = ?`
	}
	return s.execOne(ctx, id, q, OutboxPending, millis(next), errText, id)
}

// MarkFailed gives up on an entry (a permanent Slack error).
func (s *Store) MarkFailed(ctx context.Context, id int64, errText string) error {
	return s.execOne(ctx, id, `UPDATE outbox SET state = ?, last_error = ? WHERE id = ?`, OutboxFailed, errText, id)
}

// ReplaceOutboxBody swaps the body (e.g. for a text-only fallback).
func (s *Store) ReplaceOutboxBody(ctx context.Context, id int64, body []byte) error {
	return s.execOne(ctx, id, `UPDATE outbox SET body = ? WHERE id = ?`, body, id)
}

// Thread loads a thread by key.
func (s *Store) Thread(ctx context.Context, key string) (Thread, error) {
	var t Thread
	var c, u int64
	err := s.db.QueryRowContext(ctx, `SELECT thread_key, channel, ts, cluster, status, firing, created_at, updated_at FROM slack_threads WHERE thread_key = ?`, key).
		Scan(&t.Key, &t.Channel, &t.TS, &t.Cluster, &t.Status, &t.Firing, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("thread %q: %w", key, ErrNotFound)
	}
	t.CreatedAt, t.UpdatedAt = fromMillis(c), fromMillis(u)
	return t, err
}

// OutboxCounts returns how many entries are in each state.
func (s *Store) OutboxCounts(ctx context.Context) (map[string]int, error) {
	return s.countByState(ctx, "outbox")
}

func (s *Store) execOne(ctx context.Context, id int64, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("outbox entry %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("outbox entry %d: %w", id, ErrNotFound)
	}
	return nil
}
