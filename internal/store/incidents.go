package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Incident folds several alert groups of one cluster into one message.
type Incident struct {
	ID        int64
	Cluster   string
	ThreadKey string
	OpenedAt  time.Time
	Groups    []IncidentGroup
}

// IncidentGroup is one alert group inside an incident.
type IncidentGroup struct {
	GroupKey string
	Title    string
	Status   string
	Firing   int
}

// GroupView is what the storm decision needs about one alert group.
type GroupView struct {
	Cluster  string
	GroupKey string
	Title    string
	Status   string
	Firing   int
}

// RouteGroup decides which thread carries an alert group's message.
//
// A group already in an open incident stays there. Otherwise, when the
// cluster has an open incident, or when with this group at least threshold
// groups of the cluster started messages within window, the group joins
// (or opens) the cluster's incident. Otherwise it gets its own thread,
// keyed by its group key. It returns the thread key and the incident (nil
// for a group of its own).
func (s *Store) RouteGroup(ctx context.Context, g GroupView, threshold int, window time.Duration) (string, *Incident, error) {
	now := s.now()
	own := "group:" + g.GroupKey
	var key string
	var inc *Incident
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT i.id FROM incidents i JOIN incident_groups g ON g.incident_id = i.id
			WHERE g.group_key = ? AND i.closed_at IS NULL`, g.GroupKey).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if errors.Is(err, sql.ErrNoRows) {
			// A group with its own message keeps it.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slack_threads WHERE thread_key = ?`, own).Scan(&n); err != nil {
				return err
			}
			if n > 0 || g.Cluster == "" || threshold <= 0 || g.Status != "firing" {
				key = own
				return nil
			}
			err = tx.QueryRowContext(ctx, `SELECT id FROM incidents WHERE cluster = ? AND closed_at IS NULL ORDER BY id DESC LIMIT 1`, g.Cluster).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				var recent int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slack_threads WHERE cluster = ? AND created_at >= ? AND thread_key LIKE 'group:%'`,
					g.Cluster, millis(now.Add(-window))).Scan(&recent); err != nil {
					return err
				}
				if recent+1 < threshold {
					key = own
					return nil
				}
				res, err := tx.ExecContext(ctx, `INSERT INTO incidents (cluster, thread_key, opened_at, updated_at) VALUES (?, ?, ?, ?)`,
					g.Cluster, fmt.Sprintf("incident:%s:%d", g.Cluster, now.UnixMilli()), millis(now), millis(now))
				if err != nil {
					return err
				}
				if id, err = res.LastInsertId(); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_groups (incident_id, group_key, title, status, firing, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (incident_id, group_key) DO UPDATE SET title = excluded.title, status = excluded.status, firing = excluded.firing, updated_at = excluded.updated_at`,
			id, g.GroupKey, g.Title, g.Status, g.Firing, millis(now)); err != nil {
			return err
		}
		// The incident closes when every group in it has resolved.
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_groups WHERE incident_id = ? AND status <> 'resolved'`, id).Scan(&open); err != nil {
			return err
		}
		closed := sql.NullInt64{}
		if open == 0 {
			closed = sql.NullInt64{Int64: millis(now), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE incidents SET updated_at = ?, closed_at = ? WHERE id = ?`, millis(now), closed, id); err != nil {
			return err
		}
		inc, err = loadIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		key = inc.ThreadKey
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("route group %q: %w", g.GroupKey, err)
	}
	return key, inc, nil
}

func loadIncident(ctx context.Context, tx *sql.Tx, id int64) (*Incident, error) {
	inc := &Incident{ID: id}
	var opened int64
	if err := tx.QueryRowContext(ctx, `SELECT cluster, thread_key, opened_at FROM incidents WHERE id = ?`, id).Scan(&inc.Cluster, &inc.ThreadKey, &opened); err != nil {
		return nil, err
	}
	inc.OpenedAt = fromMillis(opened)
	rows, err := tx.QueryContext(ctx, `SELECT group_key, title, status, firing FROM incident_groups WHERE incident_id = ? ORDER BY status = 'resolved', updated_at DESC`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var g IncidentGroup
		if err := rows.Scan(&g.GroupKey, &g.Title, &g.Status, &g.Firing); err != nil {
			return nil, err
		}
		inc.Groups = append(inc.Groups, g)
	}
	return inc, rows.Err()
}
