package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Notification states.
const (
	StatePending    = "pending"
	StateProcessing = "processing"
	StateDone       = "done"
	StateFailed     = "failed"
	// StateStale: dropped unprocessed because its group had already
	// processed a newer notification (see webhook's ordering rule).
	StateStale = "stale"
)

// NotificationStates lists every notification state (for metrics).
var NotificationStates = []string{StatePending, StateProcessing, StateDone, StateFailed, StateStale}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Notification is one webhook delivery accepted from Alertmanager.
type Notification struct {
	ID          int64
	ReceivedAt  time.Time
	GroupKey    string
	Status      string
	Receiver    string
	AlertCount  int
	DedupKey    string
	Payload     []byte
	State       string
	Attempts    int
	LastError   string
	ProcessedAt time.Time
}

// Accept stores n unless it repeats its group's latest state: when the
// group's most recently accepted notification has the same dedup key and was
// received within window (window 0 disables deduplication), it returns that
// notification's id and duplicate=true. Only the latest state counts, as
// Alertmanager's nflog does: firing, resolved, then firing again is three
// events even within the window.
func (s *Store) Accept(ctx context.Context, n Notification, window time.Duration) (id int64, duplicate bool, err error) {
	now := s.now()
	err = s.txUrgent(ctx, func(tx *sql.Tx) error {
		var err error
		id, duplicate, err = acceptTx(ctx, tx, n, window, now)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("accept notification: %w", err)
	}
	return id, duplicate, nil
}

const notificationCols = `id, received_at, group_key, status, receiver, alert_count, dedup_key, payload, state, attempts, last_error, COALESCE(processed_at, 0)`

func scanNotification(sc interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	var recv, proc int64
	err := sc.Scan(&n.ID, &recv, &n.GroupKey, &n.Status, &n.Receiver, &n.AlertCount, &n.DedupKey, &n.Payload, &n.State, &n.Attempts, &n.LastError, &proc)
	if err != nil {
		return n, err
	}
	n.ReceivedAt = fromMillis(recv)
	if proc != 0 {
		n.ProcessedAt = fromMillis(proc)
	}
	return n, nil
}

// Notification loads one notification.
func (s *Store) Notification(ctx context.Context, id int64) (Notification, error) {
	n, err := scanNotification(s.db.QueryRowContext(ctx, `SELECT `+notificationCols+` FROM notifications WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("notification %d: %w", id, ErrNotFound)
	}
	return n, err
}

// Unfinished lists the ids of notifications accepted but not yet processed
// (pending, or processing when a crash interrupted them), oldest first.
func (s *Store) Unfinished(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM notifications WHERE state IN (?, ?) ORDER BY id`, StatePending, StateProcessing)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// StartProcessing marks a notification as being processed and counts the attempt.
func (s *Store) StartProcessing(ctx context.Context, id int64) error {
	return s.setState(ctx, id, `UPDATE notifications SET state = ?, attempts = attempts + 1 WHERE id = ?`, StateProcessing, id)
}

// FinishProcessing marks a notification done, or failed with the error.
func (s *Store) FinishProcessing(ctx context.Context, id int64, procErr error) error {
	if procErr != nil {
		return s.setState(ctx, id, `UPDATE notifications SET state = ?, last_error = ?, processed_at = ? WHERE id = ?`,
			StateFailed, procErr.Error(), millis(s.now()), id)
	}
	return s.setState(ctx, id, `UPDATE notifications SET state = ?, last_error = '', processed_at = ? WHERE id = ?`,
		StateDone, millis(s.now()), id)
}

// Requeue puts a notification back to pending (e.g. when shutdown interrupted it).
func (s *Store) Requeue(ctx context.Context, id int64, reason string) error {
	return s.setState(ctx, id, `UPDATE notifications SET state = ?, last_error = ? WHERE id = ?`, StatePending, reason, id)
}

func (s *Store) setState(ctx context.Context, id int64, query string, args ...any) error {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("notification %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("notification %d: %w", id, ErrNotFound)
	}
	return nil
}

// NotificationCounts returns how many notifications are in each state.
func (s *Store) NotificationCounts(ctx context.Context) (map[string]int, error) {
	return s.countByState(ctx, "notifications")
}

// Prune deletes what is finished and older than cutoff: processed (or
// stale) notifications, the ordering marks of groups idle since, and delivered (or given-up) outbox entries. Threads are
// kept, so a late resolve still updates its message.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE state IN (?, ?, ?) AND received_at < ?`, StateDone, StateFailed, StateStale, millis(cutoff))
		if err != nil {
			return err
		}
		a, _ := res.RowsAffected()
		// Marks of groups idle for longer than the retention: every
		// notification they could order is gone too.
		if _, err := tx.ExecContext(ctx, `DELETE FROM notification_groups WHERE updated_at < ?`, millis(cutoff)); err != nil {
			return err
		}
		// Routing decisions older than the retention: the storm window is
		// long past, and a group's own thread is in slack_threads.
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_threads WHERE created_at < ?`, millis(cutoff)); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM outbox WHERE state IN (?, ?, ?) AND created_at < ?`, OutboxSent, OutboxFailed, OutboxSuperseded, millis(cutoff))
		if err != nil {
			return err
		}
		b, _ := res.RowsAffected()
		n = a + b
		return nil
	})
	return n, err
}

// countByState counts the rows of table by their state column.
func (s *Store) countByState(ctx context.Context, table string) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM `+table+` GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var st string
		var c int
		if err := rows.Scan(&st, &c); err != nil {
			return nil, err
		}
		m[st] = c
	}
	return m, rows.Err()
}
