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

	OutboxPending = "pending"
	OutboxSending = "sending" // handed to Slack; outcome unknown until marked
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
	// OutboxSuperseded: a newer message of the same thread made it moot (an
	// update of a message that was refused for good or replaced by a new
	// post); it is never sent.
	OutboxSuperseded = "superseded"
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
	// Lookups counts the searches for an entry whose outcome was unknown.
	Lookups   int
	CreatedAt time.Time
	SentAt    time.Time
	TS        string
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
	Firing int
	// ResolvedAt is when the group last resolved (Alertmanager's endsAt;
	// zero while it never did).
	ResolvedAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ThreadChange is one new state of a thread's message, stored in one
// transaction: the message, the follow-up reply it calls for, and the
// offers it carries.
type ThreadChange struct {
	// Thread is the new state (Key, Channel, Cluster, Status, Firing, and
	// ResolvedAt when the group resolved).
	Thread Thread
	Body   []byte
	// NewMessage posts Body as a new top-level message (a re-fire long
	// after the resolve) instead of updating the thread's message. Pending
	// updates of the old message are superseded; replies already queued go
	// to the old thread, later ones to the new message.
	NewMessage bool
	// Reply, if set, is queued as a follow-up in the thread after the
	// message.
	Reply []byte
	// SupersedeOffers marks every offered action request of the thread not
	// in Offers superseded: their buttons are no longer on the message.
	SupersedeOffers bool
	Offers          []string
	// Summary, for an incident thread, is the group change this message
	// reflects: batched into the thread's next summary reply instead of a
	// reply per group (outbox_summaries.go).
	Summary *SummaryChange
	// NewOffers are the offers the message carries (PrepareOffers gave
	// them their ids), recorded with it unless already recorded; Report,
	// if set, is the thread's report (SaveThreadReport); Finish, if set,
	// is the outcome of the notification the change comes from
	// (FinishProcessed). All in the change's transaction
	// (thread_change_more.go).
	NewOffers []ActionRequest
	Report    []byte
	Finish    *FinishMark
}

// ThreadChangeResult holds the outbox ids ApplyThreadChange queued.
type ThreadChangeResult struct {
	MessageID int64
	ReplyID   int64 // 0 without a reply
}

// UpsertThreadMessage makes body the current content of the thread's
// message (ApplyThreadChange without a reply or offers) and returns the
// outbox id.
func (s *Store) UpsertThreadMessage(ctx context.Context, t Thread, body []byte) (int64, error) {
	res, err := s.ApplyThreadChange(ctx, ThreadChange{Thread: t, Body: body})
	return res.MessageID, err
}

// ApplyThreadChange makes c.Body the current content of the thread's
// message: the first change posts, later ones update in place (or post a
// new message, c.NewMessage). A post or an update not yet handed to Slack
// is replaced rather than queued behind, so a burst of changes costs one
// Slack call. The reply and the offers are stored in the same transaction:
// a crash never keeps the message and loses its follow-up.
func (s *Store) ApplyThreadChange(ctx context.Context, c ThreadChange) (ThreadChangeResult, error) {
	t := c.Thread
	threadKey := t.Key
	now := millis(s.now())
	var res ThreadChangeResult
	resolvedAt := int64(0)
	if t.Status == "resolved" {
		resolvedAt = now
		if !t.ResolvedAt.IsZero() {
			resolvedAt = millis(t.ResolvedAt)
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertOffers(ctx, tx, c.NewOffers, now); err != nil {
			return err
		}
		id, err := upsertMessage(ctx, tx, c, now, resolvedAt)
		if err != nil {
			return err
		}
		res.MessageID = id
		if c.Reply != nil {
			var ch string
			if err := tx.QueryRowContext(ctx, `SELECT channel FROM slack_threads WHERE thread_key = ?`, threadKey).Scan(&ch); err != nil {
				return err
			}
			if res.ReplyID, err = insertOutbox(tx, ctx, threadKey, KindReply, ch, c.Reply, now); err != nil {
				return err
			}
		}
		if c.Summary != nil {
			if err := recordSummary(ctx, tx, threadKey, *c.Summary, now); err != nil {
				return err
			}
		}
		if c.SupersedeOffers {
			if err := supersedeOffers(ctx, tx, threadKey, c.Offers); err != nil {
				return err
			}
		}
		return finishThreadChange(ctx, tx, c, now)
	})
	if err != nil {
		return ThreadChangeResult{}, fmt.Errorf("outbox: thread %q: %w", threadKey, err)
	}
	return res, nil
}

func upsertMessage(ctx context.Context, tx *sql.Tx, c ThreadChange, now, resolvedAt int64) (int64, error) {
	t, body := c.Thread, c.Body
	threadKey, channel := t.Key, t.Channel
	var ch string
	err := tx.QueryRowContext(ctx, `SELECT channel FROM slack_threads WHERE thread_key = ?`, threadKey).Scan(&ch)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO slack_threads (thread_key, channel, ts, cluster, status, firing, resolved_at, created_at, updated_at) VALUES (?, ?, '', ?, ?, ?, ?, ?, ?)`,
			threadKey, channel, t.Cluster, t.Status, t.Firing, resolvedAt, now, now); err != nil {
			return 0, err
		}
		return insertOutbox(tx, ctx, threadKey, KindPost, channel, body, now)
	}
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE slack_threads SET updated_at = ?, status = ?, firing = ?, resolved_at = CASE WHEN ? > 0 THEN ? ELSE resolved_at END WHERE thread_key = ?`,
		now, t.Status, t.Firing, resolvedAt, resolvedAt, threadKey); err != nil {
		return 0, err
	}
	var ts string
	var live int
	// EXISTS, not COUNT: the thread's post is among its first entries, so
	// this does not read the thread's whole history.
	if err := tx.QueryRowContext(ctx, `SELECT ts, EXISTS (SELECT 1 FROM outbox WHERE thread_key = ? AND kind = ? AND state IN (?, ?, ?))
		FROM slack_threads WHERE thread_key = ?`, threadKey, KindPost, OutboxPending, OutboxSending, OutboxSent, threadKey).Scan(&ts, &live); err != nil {
		return 0, err
	}
	// Replace a post or update still waiting (not yet handed to Slack).
	var id int64
	var kind string
	// Through the live entries' index: not the thread's history.
	err = tx.QueryRowContext(ctx, `SELECT id, kind FROM outbox INDEXED BY outbox_live WHERE thread_key = ? AND kind IN (?, ?)
		AND state IN ('`+OutboxPending+`', '`+OutboxSending+`') AND state = ? ORDER BY id DESC LIMIT 1`,
		threadKey, KindPost, KindUpdate, OutboxPending).Scan(&id, &kind)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	waiting := err == nil
	switch {
	case ts == "" && live == 0:
		// The first post was refused for good (e.g. a message Slack would
		// not take): post again, to the channel configured now, rather
		// than queue updates of a message that does not exist. What waited
		// on the dead post: updates are superseded by this post, replies
		// follow it into its thread.
		if _, err := tx.ExecContext(ctx, `UPDATE slack_threads SET channel = ? WHERE thread_key = ?`, channel, threadKey); err != nil {
			return 0, err
		}
		if err := supersedeUpdates(ctx, tx, threadKey, 0, "replaced by a new post: the thread's first message was refused"); err != nil {
			return 0, err
		}
		return insertOutbox(tx, ctx, threadKey, KindPost, channel, body, now)
	case c.NewMessage && ts != "" && !(waiting && kind == KindPost):
		// A new top-level message: updates of the old one are moot.
		if err := supersedeUpdates(ctx, tx, threadKey, 0, "replaced by a new message (the group fired again long after it resolved)"); err != nil {
			return 0, err
		}
		return insertOutbox(tx, ctx, threadKey, KindPost, channel, body, now)
	case waiting:
		if kind == KindPost {
			// Not posted yet: it goes where the configuration says now.
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET body = ?, channel = ? WHERE id = ?`, body, channel, id)
			return id, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET body = ? WHERE id = ?`, body, id)
		return id, err
	}
	return insertOutbox(tx, ctx, threadKey, KindUpdate, ch, body, now)
}

// supersedeUpdates marks the thread's pending updates (below id, or all
// with id 0) superseded.
func supersedeUpdates(ctx context.Context, tx *sql.Tx, threadKey string, below int64, why string) error {
	q := `UPDATE outbox SET state = ?, last_error = ? WHERE thread_key = ? AND kind = ? AND state = ?`
	args := []any{OutboxSuperseded, why, threadKey, KindUpdate, OutboxPending}
	if below > 0 {
		q += ` AND id < ?`
		args = append(args, below)
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
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

const outboxCols = `o.id, o.thread_key, o.kind, o.channel, o.body, o.state, o.attempts, o.next_attempt_at, o.last_error, o.lookups, o.created_at, COALESCE(o.sent_at, 0), o.ts, COALESCE(t.ts, ''), COALESCE(t.channel, o.channel)`

func scanOutbox(sc interface{ Scan(...any) error }) (OutboxEntry, error) {
	var e OutboxEntry
	var next, created, sent int64
	err := sc.Scan(&e.ID, &e.ThreadKey, &e.Kind, &e.Channel, &e.Body, &e.State, &e.Attempts, &next, &e.LastError, &e.Lookups, &created, &sent, &e.TS, &e.ThreadTS, &e.ThreadChannel)
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
// or in flight, so a thread's messages go out in order. One exception keeps
// a thread from wedging: a post is not held behind earlier updates and
// replies that themselves wait for the thread's first message (its earlier
// post was refused for good); they follow the post.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	where, args := dueOutboxWhere(now, limit)
	return s.queryOutbox(ctx, where, args...)
}

// dueOutboxWhere is DueOutbox's condition. The states of the per-thread
// check are literals so that SQLite can use the partial index outbox_live
// (the live entries only): its cost does not grow with the thread's
// delivered history.
func dueOutboxWhere(now time.Time, limit int) (string, []any) {
	return `o.state = ? AND o.next_attempt_at <= ?
		AND (o.kind = ? OR COALESCE(t.ts, '') <> '')
		AND NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_live WHERE p.thread_key = o.thread_key AND p.id < o.id
			AND p.state IN ('` + OutboxPending + `', '` + OutboxSending + `')
			AND NOT (o.kind = ? AND p.kind <> ? AND p.state = ? AND COALESCE(t.ts, '') = ''))
		ORDER BY o.id LIMIT ?`,
		[]any{OutboxPending, millis(now), KindPost, KindPost, KindPost, OutboxPending, limit}
}

// InFlightOutbox lists entries handed to Slack whose outcome was never
// recorded (the process stopped mid-call, or the call's outcome is
// unknown); they must be reconciled.
func (s *Store) InFlightOutbox(ctx context.Context) ([]OutboxEntry, error) {
	return s.queryOutbox(ctx, `o.state = ? ORDER BY o.id`, OutboxSending)
}

// DueInFlight lists in-flight entries whose next lookup is due, the
// longest waiting first.
func (s *Store) DueInFlight(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	return s.queryOutbox(ctx, `o.state = ? AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.id LIMIT ?`, OutboxSending, millis(now), limit)
}

// MarkOutcomeUnknown leaves an entry in flight after a call whose outcome
// is unknown, to be looked up at next.
func (s *Store) MarkOutcomeUnknown(ctx context.Context, id int64, next time.Time, errText string) error {
	return s.execOne(ctx, id, `UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND state = ?`, millis(next), errText, id, OutboxSending)
}

// MarkLookupFailed counts a lookup that could not tell whether the entry
// was delivered and schedules the next one at next.
func (s *Store) MarkLookupFailed(ctx context.Context, id int64, next time.Time, errText string) error {
	return s.execOne(ctx, id, `UPDATE outbox SET lookups = lookups + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND state = ?`, millis(next), errText, id, OutboxSending)
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
// After a crash the entry's lookup is due at once.
func (s *Store) MarkSending(ctx context.Context, id int64) error {
	return s.execOne(ctx, id, `UPDATE outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ? WHERE id = ? AND state = ?`, OutboxSending, millis(s.now()), id, OutboxPending)
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

// MarkFailed gives up on an entry (a permanent Slack error). When the entry
// is a post, what waited on it is re-parented rather than left to wait for
// a message that will never exist: the newest pending update of the thread
// becomes the thread's post (it carries the latest content) and the older
// ones are superseded; pending replies follow that post into its thread.
func (s *Store) MarkFailed(ctx context.Context, id int64, errText string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var kind, key string
		if err := tx.QueryRowContext(ctx, `SELECT kind, thread_key FROM outbox WHERE id = ?`, id).Scan(&kind, &key); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("outbox entry %d: %w", id, ErrNotFound)
			}
			return fmt.Errorf("outbox entry %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, last_error = ? WHERE id = ?`, OutboxFailed, errText, id); err != nil {
			return fmt.Errorf("outbox entry %d: %w", id, err)
		}
		if kind != KindPost {
			return nil
		}
		var next int64
		var ch string
		err := tx.QueryRowContext(ctx, `SELECT o.id, COALESCE(t.channel, o.channel) FROM outbox o LEFT JOIN slack_threads t ON t.thread_key = o.thread_key
			WHERE o.thread_key = ? AND o.kind = ? AND o.state = ? AND o.id > ? ORDER BY o.id DESC LIMIT 1`, key, KindUpdate, OutboxPending, id).Scan(&next, &ch)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("outbox entry %d: re-parenting: %w", id, err)
		}
		// The dead post's channel is where the message was meant to go.
		var postCh string
		if err := tx.QueryRowContext(ctx, `SELECT channel FROM outbox WHERE id = ?`, id).Scan(&postCh); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET kind = ?, channel = ? WHERE id = ?`, KindPost, postCh, next); err != nil {
			return fmt.Errorf("outbox entry %d: re-parenting: %w", id, err)
		}
		return supersedeUpdates(ctx, tx, key, next, "replaced by a newer post: the thread's post was refused")
	})
}

// ReplaceOutboxBody swaps the body (e.g. for a text-only fallback).
func (s *Store) ReplaceOutboxBody(ctx context.Context, id int64, body []byte) error {
	return s.execOne(ctx, id, `UPDATE outbox SET body = ? WHERE id = ?`, body, id)
}

// Thread loads a thread by key.
func (s *Store) Thread(ctx context.Context, key string) (Thread, error) {
	var t Thread
	var c, u int64
	var r int64
	err := s.db.QueryRowContext(ctx, `SELECT thread_key, channel, ts, cluster, status, firing, resolved_at, created_at, updated_at FROM slack_threads WHERE thread_key = ?`, key).
		Scan(&t.Key, &t.Channel, &t.TS, &t.Cluster, &t.Status, &t.Firing, &r, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("thread %q: %w", key, ErrNotFound)
	}
	t.CreatedAt, t.UpdatedAt = fromMillis(c), fromMillis(u)
	if r != 0 {
		t.ResolvedAt = fromMillis(r)
	}
	return t, err
}

// OutboxCounts returns how many entries are in each state.
func (s *Store) OutboxCounts(ctx context.Context) (map[string]int, error) {
	return s.countByState(ctx, "outbox")
}

func (s *Store) execOne(ctx context.Context, id int64, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("outbox entry %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("outbox entry %d: %w", id, ErrNotFound)
	}
	return nil
}
