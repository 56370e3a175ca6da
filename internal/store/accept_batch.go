package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AcceptRequest is one notification to accept in a batch, with its
// deduplication window.
type AcceptRequest struct {
	Notification Notification
	Window       time.Duration
}

// AcceptResult is the outcome of one AcceptRequest, as Accept returns it.
type AcceptResult struct {
	ID        int64
	Duplicate bool
	Err       error
}

// AcceptBatch accepts several notifications in one transaction: one commit,
// one sync to disk for all of them (group commit). Each is deduplicated
// exactly as Accept does, in order: a notification compares with its
// group's latest one, which may be an earlier one of the same batch. When
// any of them fails the transaction is rolled back and each is accepted in
// a transaction of its own, so that each gets its own outcome.
func (s *Store) AcceptBatch(ctx context.Context, reqs []AcceptRequest) []AcceptResult {
	out := make([]AcceptResult, len(reqs))
	if len(reqs) == 1 {
		r := reqs[0]
		out[0].ID, out[0].Duplicate, out[0].Err = s.Accept(ctx, r.Notification, r.Window)
		return out
	}
	now := s.now()
	err := s.txUrgent(ctx, func(tx *sql.Tx) error {
		latest, err := tx.PrepareContext(ctx, qGroupLatest)
		if err != nil {
			return err
		}
		defer latest.Close()
		insert, err := tx.PrepareContext(ctx, qInsertNotification)
		if err != nil {
			return err
		}
		defer insert.Close()
		for i, r := range reqs {
			id, dup, err := accept(ctx, latest, insert, r.Notification, r.Window, now)
			if err != nil {
				return err
			}
			out[i].ID, out[i].Duplicate = id, dup
		}
		return nil
	})
	if err == nil {
		return out
	}
	for i, r := range reqs {
		out[i] = AcceptResult{}
		out[i].ID, out[i].Duplicate, out[i].Err = s.Accept(ctx, r.Notification, r.Window)
	}
	return out
}

const (
	qGroupLatest        = `SELECT id, dedup_key, received_at FROM notifications WHERE group_key = ? ORDER BY id DESC LIMIT 1`
	qInsertNotification = `INSERT INTO notifications (received_at, group_key, status, receiver, alert_count, dedup_key, payload, state)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
)

// acceptTx is Accept's work inside a transaction.
func acceptTx(ctx context.Context, tx *sql.Tx, n Notification, window time.Duration, now time.Time) (int64, bool, error) {
	return accept(ctx, txStmt{tx, qGroupLatest}, txStmt{tx, qInsertNotification}, n, window, now)
}

// stmt is a prepared statement or a statement of a transaction.
type stmt interface {
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
}

type txStmt struct {
	tx *sql.Tx
	q  string
}

func (t txStmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.q, args...)
}

func (t txStmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.q, args...)
}

// accept deduplicates n against its group's latest notification and
// stores it (see Accept).
func accept(ctx context.Context, latest, insert stmt, n Notification, window time.Duration, now time.Time) (id int64, duplicate bool, err error) {
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = now
	}
	if window > 0 {
		var key string
		var recv int64
		err := latest.QueryRowContext(ctx, n.GroupKey).Scan(&id, &key, &recv)
		switch {
		case err == nil:
			if key == n.DedupKey && recv >= millis(n.ReceivedAt.Add(-window)) {
				return id, true, nil
			}
		case !errors.Is(err, sql.ErrNoRows):
			return 0, false, err
		}
	}
	res, err := insert.ExecContext(ctx, millis(n.ReceivedAt), n.GroupKey, n.Status, n.Receiver, n.AlertCount, n.DedupKey, n.Payload, StatePending)
	if err != nil {
		return 0, false, err
	}
	id, err = res.LastInsertId()
	return id, false, err
}
