package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DigestRecord is one cluster's digest as stored: the "previous" of the
// next digest of that cluster, whatever asked for it (schedule, CLI, Slack).
type DigestRecord struct {
	ID        int64
	Cluster   string
	Name      string // the configured digest's name, "" on demand
	Source    string
	Verdict   string
	CreatedAt time.Time
	Body      []byte // the digest (holding this one cluster) as JSON
}

// SaveDigest stores one cluster's digest and returns its id.
func (s *Store) SaveDigest(ctx context.Context, r DigestRecord) (int64, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO digests (cluster, name, source, verdict, created_at, body) VALUES (?, ?, ?, ?, ?, ?)`,
		r.Cluster, r.Name, r.Source, r.Verdict, millis(r.CreatedAt), r.Body)
	if err != nil {
		return 0, fmt.Errorf("save digest of %q: %w", r.Cluster, err)
	}
	return res.LastInsertId()
}

// LatestDigest returns the cluster's latest stored digest (ErrNotFound when none).
func (s *Store) LatestDigest(ctx context.Context, cluster string) (DigestRecord, error) {
	var r DigestRecord
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, cluster, name, source, verdict, created_at, body FROM digests
		WHERE cluster = ? ORDER BY created_at DESC, id DESC LIMIT 1`, cluster).
		Scan(&r.ID, &r.Cluster, &r.Name, &r.Source, &r.Verdict, &created, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("digest of %q: %w", cluster, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("digest of %q: %w", cluster, err)
	}
	r.CreatedAt = fromMillis(created)
	return r, nil
}

// RecordDigestRun records that the scheduled run of digest name for
// scheduledAt has started (so that it is neither missed nor posted twice).
func (s *Store) RecordDigestRun(ctx context.Context, name string, scheduledAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO digest_runs (name, scheduled_at, started_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET scheduled_at = excluded.scheduled_at, started_at = excluded.started_at
		WHERE excluded.scheduled_at >= digest_runs.scheduled_at`,
		name, millis(scheduledAt), millis(s.now()))
	if err != nil {
		return fmt.Errorf("record run of digest %q: %w", name, err)
	}
	return nil
}

// LastDigestRun returns the scheduled time of the digest's last recorded
// run; ok is false when it never ran.
func (s *Store) LastDigestRun(ctx context.Context, name string) (scheduledAt time.Time, ok bool, err error) {
	var ms int64
	err = s.db.QueryRowContext(ctx, `SELECT scheduled_at FROM digest_runs WHERE name = ?`, name).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last run of digest %q: %w", name, err)
	}
	return fromMillis(ms), true, nil
}

// OutboxGivenUpSince counts the outbox entries queued since `since` that
// were given up on (state failed). The outbox records when an entry was
// queued, not when it failed, so an entry queued before `since` that
// failed after it is not counted.
func (s *Store) OutboxGivenUpSince(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE state = ? AND created_at >= ?`, OutboxFailed, millis(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("outbox given up since %s: %w", since.Format(time.RFC3339), err)
	}
	return n, nil
}

// NotificationPayloadsSince returns the payloads of the notifications
// received since `since`, newest first, at most limit; truncated says
// whether there were more.
func (s *Store) NotificationPayloadsSince(ctx context.Context, since time.Time, limit int) (payloads [][]byte, truncated bool, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT payload FROM notifications WHERE received_at >= ? ORDER BY id DESC LIMIT ?`, millis(since), limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("notifications since %s: %w", since.Format(time.RFC3339), err)
	}
	defer rows.Close()
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return nil, false, err
		}
		payloads = append(payloads, p)
	}
	if len(payloads) > limit {
		payloads, truncated = payloads[:limit], true
	}
	return payloads, truncated, rows.Err()
}

// PruneDigests deletes stored digests older than cutoff, always keeping
// each cluster's latest (the "previous" of its next digest).
func (s *Store) PruneDigests(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM digests WHERE created_at < ?
		AND id NOT IN (SELECT MAX(id) FROM digests d WHERE d.created_at = (SELECT MAX(created_at) FROM digests e WHERE e.cluster = d.cluster) GROUP BY d.cluster)`,
		millis(cutoff))
	if err != nil {
		return 0, fmt.Errorf("prune digests: %w", err)
	}
	return res.RowsAffected()
}
