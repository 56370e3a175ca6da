package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IncidentTopGroups is how many of an incident's groups RouteGroup returns
// (firing first, the most firing alerts first, the most recently changed
// first); the counts cover all.
const IncidentTopGroups = 15

// Incident folds several alert groups of one cluster into one message.
type Incident struct {
	ID        int64
	Cluster   string
	ThreadKey string
	OpenedAt  time.Time
	// Groups are the incident's top groups, at most IncidentTopGroups:
	// those not resolved first, the most firing alerts first, the most
	// recently changed first.
	Groups []IncidentGroup
	// GroupCount is the number of groups in the incident, OpenGroups those
	// of them not resolved.
	GroupCount int
	OpenGroups int
	// Titles counts all the incident's groups by title (the alert name)
	// and status, sorted by title then status.
	Titles []IncidentTitle
}

// IncidentGroup is one alert group inside an incident.
type IncidentGroup struct {
	GroupKey string
	Title    string
	Status   string
	Firing   int
}

// IncidentTitle counts an incident's groups of one title and status, and
// the alerts firing in them.
type IncidentTitle struct {
	Title  string
	Status string
	Groups int
	Firing int
}

// GroupView is what the storm decision needs about one alert group.
type GroupView struct {
	Cluster  string
	GroupKey string
	Title    string
	Status   string
	Firing   int
}

// The statements of RouteGroup, run for every notification processed:
// each reads a bounded number of rows through an index, whatever the size
// of the incident (TestHotQueriesUseIndexes checks their plans).
const (
	qGroupIncident = `SELECT g.incident_id, g.title, g.status, g.firing FROM incident_groups g JOIN incidents i ON i.id = g.incident_id
		WHERE g.group_key = ? AND i.closed_at IS NULL`
	qGroupHasOwn  = `SELECT EXISTS (SELECT 1 FROM group_threads WHERE group_key = ?) OR EXISTS (SELECT 1 FROM slack_threads WHERE thread_key = ?)`
	qOpenIncident = `SELECT id FROM incidents WHERE cluster = ? AND closed_at IS NULL ORDER BY id DESC LIMIT 1`
	// The groups of the cluster that started a message of their own within
	// the window: decided by RouteGroup (group_threads, in the decision's
	// transaction) or posted before group_threads existed.
	qRecentOwn = `SELECT (SELECT COUNT(*) FROM group_threads WHERE cluster = ? AND created_at >= ?)
		+ (SELECT COUNT(*) FROM slack_threads t WHERE t.cluster = ? AND t.created_at >= ? AND t.thread_key LIKE 'group:%'
			AND NOT EXISTS (SELECT 1 FROM group_threads g WHERE g.group_key = substr(t.thread_key, 7)))`
	qRecordOwn    = `INSERT INTO group_threads (group_key, cluster, created_at) VALUES (?, ?, ?) ON CONFLICT (group_key) DO NOTHING`
	qNewIncident  = `INSERT INTO incidents (cluster, thread_key, opened_at, updated_at) VALUES (?, ?, ?, ?)`
	qUpsertMember = `INSERT INTO incident_groups (incident_id, group_key, title, status, firing, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (incident_id, group_key) DO UPDATE SET title = excluded.title, status = excluded.status, firing = excluded.firing, updated_at = excluded.updated_at`
	qTitleLeave = `UPDATE incident_titles SET groups = groups - 1, firing = firing - ? WHERE incident_id = ? AND title = ? AND status = ?`
	qTitleGone  = `DELETE FROM incident_titles WHERE incident_id = ? AND title = ? AND status = ? AND groups <= 0`
	qTitleJoin  = `INSERT INTO incident_titles (incident_id, title, status, groups, firing) VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (incident_id, title, status) DO UPDATE SET groups = groups + 1, firing = firing + excluded.firing`
	// The incident closes when every group in it has resolved.
	qIncidentCounts = `UPDATE incidents SET groups = groups + ?, open_groups = open_groups + ?, updated_at = ?,
		closed_at = CASE WHEN open_groups + ? <= 0 THEN ? ELSE NULL END WHERE id = ?`
	qIncident       = `SELECT cluster, thread_key, opened_at, groups, open_groups FROM incidents WHERE id = ?`
	qIncidentTitles = `SELECT title, status, groups, firing FROM incident_titles WHERE incident_id = ? ORDER BY title, status`
	qTopGroups      = `SELECT group_key, title, status, firing FROM incident_groups WHERE incident_id = ?
		ORDER BY status = 'resolved', firing DESC, updated_at DESC LIMIT ?`
)

// RouteGroup decides which thread carries an alert group's message.
//
// A group already in an open incident stays there, and a group that has
// (or was given) its own message keeps it. Otherwise, when the cluster has
// an open incident, or when with this group at least threshold groups of
// the cluster started messages within window, the group joins (or opens)
// the cluster's incident. Otherwise it gets its own thread, keyed by its
// group key. It returns the thread key and the incident (nil for a group
// of its own).
//
// The decision is atomic: it is taken and recorded in one write
// transaction (SQLite serializes them), so groups routed at the same time
// by several workers see each other's decisions before their messages are
// queued. The incident's counts are kept incrementally: the cost does not
// grow with the number of groups in it.
func (s *Store) RouteGroup(ctx context.Context, g GroupView, threshold int, window time.Duration) (string, *Incident, error) {
	now := s.now()
	own := "group:" + g.GroupKey
	var key string
	var inc *Incident
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		var old IncidentGroup
		member := true
		err := tx.QueryRowContext(ctx, qGroupIncident, g.GroupKey).Scan(&id, &old.Title, &old.Status, &old.Firing)
		if errors.Is(err, sql.ErrNoRows) {
			member = false
		} else if err != nil {
			return err
		}
		if !member {
			var hasOwn bool
			if err := tx.QueryRowContext(ctx, qGroupHasOwn, g.GroupKey, own).Scan(&hasOwn); err != nil {
				return err
			}
			if hasOwn || g.Cluster == "" || threshold <= 0 || g.Status != "firing" {
				key = own
				_, err := tx.ExecContext(ctx, qRecordOwn, g.GroupKey, g.Cluster, millis(now))
				return err
			}
			err = tx.QueryRowContext(ctx, qOpenIncident, g.Cluster).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				since := millis(now.Add(-window))
				var recent int
				if err := tx.QueryRowContext(ctx, qRecentOwn, g.Cluster, since, g.Cluster, since).Scan(&recent); err != nil {
					return err
				}
				if recent+1 < threshold {
					key = own
					_, err := tx.ExecContext(ctx, qRecordOwn, g.GroupKey, g.Cluster, millis(now))
					return err
				}
				res, err := tx.ExecContext(ctx, qNewIncident, g.Cluster, fmt.Sprintf("incident:%s:%d", g.Cluster, now.UnixMilli()), millis(now), millis(now))
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
		if _, err := tx.ExecContext(ctx, qUpsertMember, id, g.GroupKey, g.Title, g.Status, g.Firing, millis(now)); err != nil {
			return err
		}
		dGroups, dOpen := 1, 0
		if member {
			dGroups = 0
			if _, err := tx.ExecContext(ctx, qTitleLeave, old.Firing, id, old.Title, old.Status); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, qTitleGone, id, old.Title, old.Status); err != nil {
				return err
			}
			if old.Status != "resolved" {
				dOpen--
			}
		}
		if g.Status != "resolved" {
			dOpen++
		}
		if _, err := tx.ExecContext(ctx, qTitleJoin, id, g.Title, g.Status, g.Firing); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qIncidentCounts, dGroups, dOpen, millis(now), dOpen, millis(now), id); err != nil {
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

// loadIncident reads an incident's counts and its top groups.
func loadIncident(ctx context.Context, tx *sql.Tx, id int64) (*Incident, error) {
	inc := &Incident{ID: id}
	var opened int64
	if err := tx.QueryRowContext(ctx, qIncident, id).Scan(&inc.Cluster, &inc.ThreadKey, &opened, &inc.GroupCount, &inc.OpenGroups); err != nil {
		return nil, err
	}
	inc.OpenedAt = fromMillis(opened)
	rows, err := tx.QueryContext(ctx, qIncidentTitles, id)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var t IncidentTitle
		if err := rows.Scan(&t.Title, &t.Status, &t.Groups, &t.Firing); err != nil {
			rows.Close()
			return nil, err
		}
		inc.Titles = append(inc.Titles, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, qTopGroups, id, IncidentTopGroups)
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
