package store

import (
	"context"
	"fmt"
	"time"
)

// PostsByThread counts the top-level posts queued (in any state) per
// thread key: how many messages a storm started (tests and the bench read it).
func (s *Store) PostsByThread(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT thread_key, COUNT(*) FROM outbox WHERE kind = ? GROUP BY thread_key`, KindPost)
	if err != nil {
		return nil, fmt.Errorf("posts by thread: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("posts by thread: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// migrationIncidentState (storm ingest): the routing decisions of groups
// that got a message of their own (recorded in the transaction that takes
// them, so that concurrent workers fold a storm correctly), and each
// incident's counts kept incrementally (groups, open groups, groups and
// firing alerts by title and status) with the indexes that make every
// per-notification statement a bounded lookup. The two outbox indexes
// cover a thread's entries by kind and state (its live post, superseding
// its pending updates) and by state in id order (its newest pending
// message, whether an earlier entry is pending or in flight) without
// reading the rows, whose bodies are large. Existing incidents are
// counted once here.
const migrationIncidentState = `CREATE TABLE group_threads (
		group_key  TEXT PRIMARY KEY,
		cluster    TEXT NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE INDEX group_threads_cluster ON group_threads (cluster, created_at);
	ALTER TABLE incidents ADD COLUMN groups INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE incidents ADD COLUMN open_groups INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE incident_titles (
		incident_id INTEGER NOT NULL REFERENCES incidents (id),
		title       TEXT NOT NULL,
		status      TEXT NOT NULL,
		groups      INTEGER NOT NULL,
		firing      INTEGER NOT NULL,
		PRIMARY KEY (incident_id, title, status)
	);
	CREATE INDEX incident_groups_key ON incident_groups (group_key);
	CREATE INDEX outbox_thread_kind_state ON outbox (thread_key, kind, state, id);
	CREATE INDEX outbox_thread_state ON outbox (thread_key, state, id, kind);
	CREATE INDEX incident_groups_top ON incident_groups (incident_id, status = 'resolved', firing DESC, updated_at DESC);
	UPDATE incidents SET
		groups = (SELECT COUNT(*) FROM incident_groups g WHERE g.incident_id = incidents.id),
		open_groups = (SELECT COUNT(*) FROM incident_groups g WHERE g.incident_id = incidents.id AND g.status <> 'resolved');
	INSERT INTO incident_titles (incident_id, title, status, groups, firing)
		SELECT incident_id, title, status, COUNT(*), SUM(firing) FROM incident_groups GROUP BY incident_id, title, status;`

// ProcessedTimes lists when the notifications finished processing (done,
// failed or stale), in order (benchmarks read processing rates from it).
func (s *Store) ProcessedTimes(ctx context.Context) ([]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT processed_at FROM notifications WHERE processed_at IS NOT NULL ORDER BY processed_at`)
	if err != nil {
		return nil, fmt.Errorf("processed times: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, fmt.Errorf("processed times: %w", err)
		}
		out = append(out, fromMillis(ms))
	}
	return out, rows.Err()
}
