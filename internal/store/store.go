// Package store owns chmedic's embedded durable state: an SQLite database
// (pure Go, no cgo) holding received Alertmanager notifications and their
// processing state, the Slack outbox and message threads, and, as later
// features land, approvals, actions, audit and digest history.
//
// The database runs in WAL mode with synchronous=FULL (every commit syncs
// the WAL, so a notification answered 200 survives power loss, not only a
// process crash) and a busy timeout; the schema is created and upgraded by
// numbered migrations on Open.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is the database handle. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	now      func() time.Time
	counters *Counters // nil: not counted (see counting.go)
	// wl queues this process's write transactions in Go rather than in
	// SQLite's busy handler, which sleeps and retries (not in order): under
	// load (a storm, a burst of webhooks) a writer could wait out
	// busy_timeout and fail with SQLITE_BUSY. Other processes (the CLI)
	// still meet the busy timeout. Acceptance goes first (writelock.go).
	wl *writeLock
	// batch groups concurrent background write transactions into one
	// commit (txbatch.go); the webhook's own group commit uses txUrgent.
	batch   txBatcher
	noBatch bool // WithoutGroupCommit
	// The background WAL checkpointer (checkpoint.go).
	ckStop, ckDone chan struct{}
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for timestamps (tests fix it).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL, not NORMAL: in WAL mode NORMAL does not sync on commit and can
	// lose the last transactions on a kernel crash or power loss, and the
	// webhook answers 200 only once the notification is committed.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Checkpoints run in the background, not inside a commit (checkpoint.go).
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Set("_txlock", "immediate")
	s := &Store{now: time.Now, wl: newWriteLock()}
	for _, o := range opts {
		o(s)
	}
	db, err := openDB("file:"+path+"?"+q.Encode(), s.counters)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// SQLite has one writer; a small pool avoids lock churn while WAL lets
	// readers proceed.
	db.SetMaxOpenConns(4)
	s.db = db
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s.startCheckpointer()
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stopCheckpointer()
	return s.db.Close()
}

// Ping checks that the database is writable (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'last_ping'`, s.now().UTC().Format(time.RFC3339Nano))
	return err
}

var migrations = []string{
	// 1: notifications and their processing state.
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
	INSERT INTO meta (key, value) VALUES ('last_ping', '');
	CREATE TABLE notifications (
		id           INTEGER PRIMARY KEY AUTOINCREMENT,
		received_at  INTEGER NOT NULL,
		group_key    TEXT NOT NULL,
		status       TEXT NOT NULL,
		receiver     TEXT NOT NULL DEFAULT '',
		alert_count  INTEGER NOT NULL,
		dedup_key    TEXT NOT NULL,
		payload      BLOB NOT NULL,
		state        TEXT NOT NULL DEFAULT 'pending',
		attempts     INTEGER NOT NULL DEFAULT 0,
		last_error   TEXT NOT NULL DEFAULT '',
		processed_at INTEGER
	);
	CREATE INDEX notifications_dedup ON notifications (dedup_key, received_at);
	CREATE INDEX notifications_state ON notifications (state, id);
	CREATE INDEX notifications_group ON notifications (group_key, id);`,
	// 2: Slack threads (one message per alert group or incident) and the outbox.
	`CREATE TABLE slack_threads (
		thread_key  TEXT PRIMARY KEY,
		channel     TEXT NOT NULL,
		ts          TEXT NOT NULL DEFAULT '',
		cluster     TEXT NOT NULL DEFAULT '',
		status      TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL
	);
	CREATE INDEX slack_threads_cluster ON slack_threads (cluster, created_at);
	CREATE TABLE outbox (
		id              INTEGER PRIMARY KEY AUTOINCREMENT,
		thread_key      TEXT NOT NULL,
		kind            TEXT NOT NULL,
		channel         TEXT NOT NULL,
		body            BLOB NOT NULL,
		state           TEXT NOT NULL DEFAULT 'pending',
		attempts        INTEGER NOT NULL DEFAULT 0,
		next_attempt_at INTEGER NOT NULL DEFAULT 0,
		last_error      TEXT NOT NULL DEFAULT '',
		created_at      INTEGER NOT NULL,
		sent_at         INTEGER,
		ts              TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
	CREATE INDEX outbox_thread ON outbox (thread_key, id);`,
	// 3: storm incidents (several alert groups of one cluster in one
	// message) and the actions offered on messages.
	`CREATE TABLE incidents (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		cluster     TEXT NOT NULL,
		thread_key  TEXT NOT NULL UNIQUE,
		opened_at   INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL,
		closed_at   INTEGER
	);
	CREATE INDEX incidents_open ON incidents (cluster, closed_at);
	CREATE TABLE incident_groups (
		incident_id INTEGER NOT NULL REFERENCES incidents (id),
		group_key   TEXT NOT NULL,
		title       TEXT NOT NULL,
		status      TEXT NOT NULL,
		firing      INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL,
		PRIMARY KEY (incident_id, group_key)
	);
	CREATE TABLE action_requests (
		id          TEXT PRIMARY KEY,
		offer_key   TEXT NOT NULL UNIQUE,
		kind        TEXT NOT NULL,
		params      TEXT NOT NULL,
		cluster     TEXT NOT NULL,
		group_key   TEXT NOT NULL,
		thread_key  TEXT NOT NULL,
		alert_start INTEGER NOT NULL,
		state       TEXT NOT NULL DEFAULT 'offered',
		created_at  INTEGER NOT NULL
	);`,
	// 4: how many alerts a thread's group had firing at its last message.
	`ALTER TABLE slack_threads ADD COLUMN firing INTEGER NOT NULL DEFAULT 0;`,
	// 5 (slackio): signed Slack requests already accepted, until their
	// timestamp leaves the 5-minute window (replay rejection across restarts).
	`CREATE TABLE slack_request_replay (
		key        TEXT PRIMARY KEY,
		seen_at    INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX slack_request_replay_expiry ON slack_request_replay (expires_at);`,
	// 6 (Slack lifecycle): how many times an unknown-outcome outbox entry
	// was looked up (bounded, with backoff); when a thread's group last
	// resolved (a late re-fire posts a new message); offers by thread (a
	// re-rendered message supersedes its older offers).
	`ALTER TABLE outbox ADD COLUMN lookups INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE slack_threads ADD COLUMN resolved_at INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX action_requests_thread ON action_requests (thread_key, state);
	CREATE INDEX action_requests_state ON action_requests (state, created_at);`,
	// 7 (approvals): requests (the plan and its hash), one vote per user, one
	// execution per request, the append-only audit log, each thread's
	// report (re-rendered with the request states) and the heartbeats of
	// running servers (see approvals.go).
	migrationApprovals,
	// 8: keyed thread replies updated in place (see replies.go).
	migrationKeyedReplies,
	// 9 (actions): executions (executions.go): approved plans run step by step, each
	// step's state and result, and the per-cluster action lease.
	`CREATE TABLE action_executions (
		id          TEXT PRIMARY KEY,
		request_id  TEXT NOT NULL DEFAULT '',
		cluster     TEXT NOT NULL,
		kind        TEXT NOT NULL,
		plan        BLOB NOT NULL,
		plan_hash   TEXT NOT NULL,
		state       TEXT NOT NULL,
		holder      TEXT NOT NULL DEFAULT '',
		outcome     BLOB,
		error       TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL,
		started_at  INTEGER,
		finished_at INTEGER
	);
	CREATE UNIQUE INDEX action_executions_request ON action_executions (request_id) WHERE request_id != '';
	CREATE INDEX action_executions_state ON action_executions (state, created_at);
	CREATE TABLE action_steps (
		execution_id TEXT NOT NULL REFERENCES action_executions (id),
		idx          INTEGER NOT NULL,
		step_id      TEXT NOT NULL,
		state        TEXT NOT NULL,
		attempts     INTEGER NOT NULL DEFAULT 0,
		result       BLOB,
		error        TEXT NOT NULL DEFAULT '',
		started_at   INTEGER,
		finished_at  INTEGER,
		PRIMARY KEY (execution_id, step_id)
	);
	CREATE TABLE action_leases (
		cluster      TEXT PRIMARY KEY,
		holder       TEXT NOT NULL,
		execution_id TEXT NOT NULL DEFAULT '',
		acquired_at  INTEGER NOT NULL,
		expires_at   INTEGER NOT NULL
	);`,
	// 10 (ingest): deduplication compares with the group's latest
	// notification (notifications_group serves it); the dedup-key index is
	// no longer read.
	`DROP INDEX IF EXISTS notifications_dedup;`,
	// 11 (ingest): the last processed notification of each alert group, so
	// the queue can drop notifications older than it.
	`CREATE TABLE notification_groups (
		group_key       TEXT PRIMARY KEY,
		notification_id INTEGER NOT NULL,
		alerts          TEXT NOT NULL,
		updated_at      INTEGER NOT NULL
	);`,
	// 12 (digests): every digest computed, one row per cluster (the
	// "previous" of the next one), and the last scheduled run per digest.
	`CREATE TABLE digests (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		cluster     TEXT NOT NULL,
		name        TEXT NOT NULL,
		source      TEXT NOT NULL,
		verdict     TEXT NOT NULL,
		created_at  INTEGER NOT NULL,
		body        BLOB NOT NULL
	);
	CREATE INDEX digests_cluster ON digests (cluster, created_at);
	CREATE TABLE digest_runs (
		name         TEXT PRIMARY KEY,
		scheduled_at INTEGER NOT NULL,
		started_at   INTEGER NOT NULL
	);`,
	// 13 (ddlfreeze): DDL freezes with their timers (expiry, reminder) and
	// per-node snapshots, so a restart loses none of them.
	`CREATE TABLE freezes (
		id          TEXT PRIMARY KEY,
		cluster     TEXT NOT NULL,
		state       TEXT NOT NULL,
		expires_at  INTEGER NOT NULL,
		created_at  INTEGER NOT NULL,
		updated_at  INTEGER NOT NULL DEFAULT 0,
		body        TEXT NOT NULL
	);
	CREATE INDEX freezes_cluster ON freezes (cluster, state);`,
	// 14 (storm ingest): routing decisions and incremental incident state (storm.go).
	migrationIncidentState,
	// 15 (storm-proof Slack output) the live outbox entries (pending or in
	// flight) by thread: the due query's per-thread order check reads only
	// them, not the thread's delivered history; and the incident threads'
	// batched summary replies (outbox_summaries.go).
	`CREATE INDEX outbox_live ON outbox (thread_key, id) WHERE state IN ('pending', 'sending');
	CREATE TABLE thread_summaries (
		thread_key     TEXT PRIMARY KEY,
		totals         BLOB NOT NULL,
		batch          BLOB,
		due_at         INTEGER NOT NULL DEFAULT 0,
		interval_ms    INTEGER NOT NULL DEFAULT 0,
		last_outbox_id INTEGER NOT NULL DEFAULT 0,
		flushed_at     INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX thread_summaries_due ON thread_summaries (due_at) WHERE due_at > 0;`,
	// 16 (fix10) an offer's scope: "" for the thread message's own offers
	// (superseded when it is re-rendered), "reply" for buttons on a reply
	// (a DDL freeze's reminder), which a re-render leaves offered.
	`ALTER TABLE action_requests ADD COLUMN scope TEXT NOT NULL DEFAULT '';`,
	// 17 (resume) a request stopped at a failed gate (awaiting Resume or
	// Abort) is live: one live request per offer includes it.
	migrationStoppedLive,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this chmedic (%d): refusing to run an older binary on it", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, s.now().UTC().Format(time.RFC3339))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion returns the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// txUrgent is tx for the webhook's acceptance: ahead of background writers.
func (s *Store) txUrgent(ctx context.Context, fn func(*sql.Tx) error) error {
	s.wl.lockUrgent()
	defer s.wl.unlock()
	return s.runTx(ctx, fn)
}

func (s *Store) runTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after a panic; a no-op once committed
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
