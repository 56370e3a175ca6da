package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AlertVersion is one alert as a notification carried it: when it started
// and, once resolved, when it ended (zero while firing, as Alertmanager
// sends it).
type AlertVersion struct {
	StartsAt time.Time `json:"s"`
	EndsAt   time.Time `json:"e,omitzero"`
}

// GroupMark is what chmedic remembers of the last notification it
// processed for an alert group: its id and its alerts by fingerprint. The
// queue compares each new notification of the group with it to drop stale
// ones.
type GroupMark struct {
	GroupKey       string
	NotificationID int64
	Alerts         map[string]AlertVersion
	UpdatedAt      time.Time
}

// GroupMark loads the mark of a group, or ErrNotFound when none of its
// notifications has been processed (or the mark was pruned).
func (s *Store) GroupMark(ctx context.Context, groupKey string) (GroupMark, error) {
	m := GroupMark{GroupKey: groupKey}
	var alerts []byte
	var updated int64
	err := s.db.QueryRowContext(ctx,
		`SELECT notification_id, alerts, updated_at FROM notification_groups WHERE group_key = ?`, groupKey).
		Scan(&m.NotificationID, &alerts, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("group mark %q: %w", groupKey, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("group mark %q: %w", groupKey, err)
	}
	if err := json.Unmarshal(alerts, &m.Alerts); err != nil {
		return m, fmt.Errorf("group mark %q: decoding alerts: %w", groupKey, err)
	}
	m.UpdatedAt = fromMillis(updated)
	return m, nil
}

// FinishProcessed marks notification id done and records mark as its
// group's last processed notification, in one transaction.
func (s *Store) FinishProcessed(ctx context.Context, id int64, mark GroupMark) error {
	now := millis(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error { return finishProcessedTx(ctx, tx, id, mark, now) })
	if err != nil {
		return fmt.Errorf("notification %d: %w", id, err)
	}
	return nil
}

// finishProcessedTx is FinishProcessed's work in a transaction (also
// ApplyThreadChange's, with ThreadChange.Finish).
func finishProcessedTx(ctx context.Context, tx *sql.Tx, id int64, mark GroupMark, now int64) error {
	alerts, err := json.Marshal(mark.Alerts)
	if err != nil {
		return fmt.Errorf("encoding group mark: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE notifications SET state = ?, last_error = '', processed_at = ? WHERE id = ?`, StateDone, now, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO notification_groups (group_key, notification_id, alerts, updated_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (group_key) DO UPDATE SET notification_id = excluded.notification_id, alerts = excluded.alerts, updated_at = excluded.updated_at`,
		mark.GroupKey, id, alerts, now)
	return err
}

// MarkStale records that notification id was dropped without processing
// because its group had already processed a newer state; reason says which.
func (s *Store) MarkStale(ctx context.Context, id int64, reason string) error {
	return s.setState(ctx, id, `UPDATE notifications SET state = ?, last_error = ?, processed_at = ? WHERE id = ?`,
		StateStale, reason, millis(s.now()), id)
}

// QueuedNotification is a notification waiting to be processed.
type QueuedNotification struct {
	ID       int64
	GroupKey string
}

// Queued lists the notifications accepted but not yet processed (pending,
// or processing when a crash interrupted them), oldest first, with their
// group keys.
func (s *Store) Queued(ctx context.Context) ([]QueuedNotification, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, group_key FROM notifications WHERE state IN (?, ?) ORDER BY id`, StatePending, StateProcessing)
	if err != nil {
		return nil, fmt.Errorf("queued notifications: %w", err)
	}
	defer rows.Close()
	var out []QueuedNotification
	for rows.Next() {
		var n QueuedNotification
		if err := rows.Scan(&n.ID, &n.GroupKey); err != nil {
			return nil, fmt.Errorf("queued notifications: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
