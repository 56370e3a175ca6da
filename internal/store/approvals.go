package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The approval flow's durable state. A request is created from a click on
// an offered action (or `chmedic request`), holds the plan approvers see and
// its hash, and moves through these states:
//
//	planning → pending → approved → running → succeeded | failed | partial | rolled_back
//	                                        ↘ interrupted → (resume) approved | aborted
//	                                        ↘ stopped (a failed gate) → (resume) approved | aborted
//	planning → refused (a gate said no, no policy, …)
//	pending  → rejected | expired
//	approved → stale (the re-computed plan differs from the approved one)
const migrationApprovals = `CREATE TABLE approval_requests (
		id            TEXT PRIMARY KEY,
		offer_id      TEXT NOT NULL DEFAULT '',
		kind          TEXT NOT NULL,
		cluster       TEXT NOT NULL,
		params        TEXT NOT NULL,
		thread_key    TEXT NOT NULL DEFAULT '',
		group_key     TEXT NOT NULL DEFAULT '',
		channel       TEXT NOT NULL DEFAULT '',
		alert_start   INTEGER NOT NULL DEFAULT 0,
		plan          BLOB NOT NULL DEFAULT '',
		plan_hash     TEXT NOT NULL DEFAULT '',
		requested_by  TEXT NOT NULL,
		requested_via TEXT NOT NULL,
		state         TEXT NOT NULL,
		reason        TEXT NOT NULL DEFAULT '',
		created_at    INTEGER NOT NULL,
		expires_at    INTEGER NOT NULL DEFAULT 0,
		updated_at    INTEGER NOT NULL
	);
	CREATE INDEX approval_requests_state ON approval_requests (state, created_at);
	CREATE INDEX approval_requests_thread ON approval_requests (thread_key, created_at);
	CREATE UNIQUE INDEX approval_requests_live_offer ON approval_requests (offer_id)
		WHERE offer_id <> '' AND state IN ('planning', 'pending', 'approved', 'running', 'interrupted');
	CREATE TABLE approval_votes (
		request_id TEXT NOT NULL REFERENCES approval_requests (id),
		voter      TEXT NOT NULL,
		approve    INTEGER NOT NULL,
		via        TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		PRIMARY KEY (request_id, voter)
	);
	CREATE TABLE audit_log (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		at         INTEGER NOT NULL,
		actor      TEXT NOT NULL,
		via        TEXT NOT NULL DEFAULT '',
		event      TEXT NOT NULL,
		request_id TEXT NOT NULL DEFAULT '',
		kind       TEXT NOT NULL DEFAULT '',
		cluster    TEXT NOT NULL DEFAULT '',
		nodes      TEXT NOT NULL DEFAULT '',
		plan_hash  TEXT NOT NULL DEFAULT '',
		outcome    TEXT NOT NULL DEFAULT '',
		detail     TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX audit_log_at ON audit_log (at);
	CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
	CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
	CREATE TABLE thread_reports (
		thread_key TEXT PRIMARY KEY,
		report     BLOB NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE approval_workers (
		name         TEXT PRIMARY KEY,
		heartbeat_at INTEGER NOT NULL
	);`

// Approval request states (see migrationApprovals).
const (
	ReqPlanning    = "planning"
	ReqPending     = "pending"
	ReqApproved    = "approved"
	ReqRunning     = "running"
	ReqRefused     = "refused"
	ReqRejected    = "rejected"
	ReqExpired     = "expired"
	ReqStale       = "stale"
	ReqSucceeded   = "succeeded"
	ReqFailed      = "failed"
	ReqPartial     = "partial"
	ReqRolledBack  = "rolled_back"
	ReqInterrupted = "interrupted"
	ReqAborted     = "aborted"
	// ReqStopped: the execution stopped at a failed step of an action
	// that resumes after a failure (a rolling restart's gate or timeout);
	// it waits for Resume or Abort (requests_stopped.go).
	ReqStopped = "stopped"
)

// LiveRequestStates are the states in which a request is not yet decided
// or not yet finished.
var LiveRequestStates = []string{ReqPlanning, ReqPending, ReqApproved, ReqRunning, ReqInterrupted, ReqStopped}

// ErrConflict is returned when a state transition found the record in
// another state (someone else moved it first).
var ErrConflict = errors.New("state changed concurrently")

// ApprovalRequest is one request to run an action's plan.
type ApprovalRequest struct {
	ID      string
	OfferID string // the offered action it came from ("" from the CLI)
	Kind    string
	Cluster string
	Params  map[string]string
	// ThreadKey is the Slack thread it is discussed in ("" from the CLI).
	ThreadKey  string
	GroupKey   string
	Channel    string // channel id the request was made in
	AlertStart time.Time
	// Plan is the plan's JSON (an actions.Plan); PlanHash its hash.
	Plan         []byte
	PlanHash     string
	RequestedBy  string // user id
	RequestedVia string // slack | cli
	State        string
	Reason       string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UpdatedAt    time.Time
}

// Terminal reports whether the request can no longer change.
func (r ApprovalRequest) Terminal() bool {
	for _, s := range LiveRequestStates {
		if r.State == s {
			return false
		}
	}
	return true
}

const requestCols = `id, offer_id, kind, cluster, params, thread_key, group_key, channel, alert_start, plan, plan_hash,
	requested_by, requested_via, state, reason, created_at, expires_at, updated_at`

func scanRequest(sc interface{ Scan(...any) error }) (ApprovalRequest, error) {
	var r ApprovalRequest
	var params string
	var start, created, expires, updated int64
	err := sc.Scan(&r.ID, &r.OfferID, &r.Kind, &r.Cluster, &params, &r.ThreadKey, &r.GroupKey, &r.Channel, &start, &r.Plan, &r.PlanHash,
		&r.RequestedBy, &r.RequestedVia, &r.State, &r.Reason, &created, &expires, &updated)
	if err != nil {
		return r, err
	}
	if start != 0 {
		r.AlertStart = fromMillis(start)
	}
	if expires != 0 {
		r.ExpiresAt = fromMillis(expires)
	}
	r.CreatedAt, r.UpdatedAt = fromMillis(created), fromMillis(updated)
	if err := json.Unmarshal([]byte(params), &r.Params); err != nil {
		return r, fmt.Errorf("request %s: params: %w", r.ID, err)
	}
	return r, nil
}

// CreateApprovalRequest stores a new request (ID and UpdatedAt are set
// here, CreatedAt too unless given; it is stored to the millisecond). A request from an offer is created once while it is live:
// when the offer already has a live request (a double click, a retry), that
// one is returned with created false.
func (s *Store) CreateApprovalRequest(ctx context.Context, r ApprovalRequest) (ApprovalRequest, bool, error) {
	params, err := json.Marshal(r.Params)
	if err != nil {
		return r, false, err
	}
	if r.Params == nil {
		params = []byte("{}")
	}
	created := false
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if r.OfferID != "" {
			row := tx.QueryRowContext(ctx, `SELECT `+requestCols+` FROM approval_requests WHERE offer_id = ? AND state IN (`+placeholders(len(LiveRequestStates))+`)`,
				append([]any{r.OfferID}, anys(LiveRequestStates)...)...)
			existing, err := scanRequest(row)
			if err == nil {
				r = existing
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		now := s.now()
		if !r.CreatedAt.IsZero() {
			now = r.CreatedAt // what the plan was computed from
		}
		r.ID, r.CreatedAt, r.UpdatedAt = newID(), now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
		var expires, start int64
		if !r.ExpiresAt.IsZero() {
			expires = millis(r.ExpiresAt)
		}
		if !r.AlertStart.IsZero() {
			start = millis(r.AlertStart)
		}
		if r.Plan == nil {
			r.Plan = []byte{}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO approval_requests (`+requestCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.OfferID, r.Kind, r.Cluster, string(params), r.ThreadKey, r.GroupKey, r.Channel, start, r.Plan, r.PlanHash,
			r.RequestedBy, r.RequestedVia, r.State, r.Reason, millis(now), expires, millis(now))
		created = err == nil
		return err
	})
	if err != nil {
		return r, false, fmt.Errorf("create request %s on %s: %w", r.Kind, r.Cluster, err)
	}
	return r, created, nil
}

// ApprovalRequest loads a request.
func (s *Store) ApprovalRequest(ctx context.Context, id string) (ApprovalRequest, error) {
	r, err := scanRequest(s.db.QueryRowContext(ctx, `SELECT `+requestCols+` FROM approval_requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("request %q: %w", id, ErrNotFound)
	}
	return r, err
}

// ApprovalRequests lists requests, newest first: in one of states (all when
// empty), of one thread when threadKey is not empty, at most limit.
func (s *Store) ApprovalRequests(ctx context.Context, states []string, threadKey string, limit int) ([]ApprovalRequest, error) {
	q := `SELECT ` + requestCols + ` FROM approval_requests WHERE 1 = 1`
	var args []any
	if len(states) > 0 {
		q += ` AND state IN (` + placeholders(len(states)) + `)`
		args = append(args, anys(states)...)
	}
	if threadKey != "" {
		q += ` AND thread_key = ?`
		args = append(args, threadKey)
	}
	q += ` ORDER BY created_at DESC, rowid DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ApprovalRequest
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TransitionRequest moves a request from one of the states from to state
// to, with a reason; it returns ErrConflict when the request was in none of
// them (someone else moved it first): the compare-and-set that makes one
// decision and one execution per request across processes.
func (s *Store) TransitionRequest(ctx context.Context, id string, from []string, to, reason string) error {
	return s.transition(ctx, id, from, `state = ?, reason = ?`, to, reason)
}

// SetRequestPlan records the computed plan of a planning request and moves
// it to pending with its expiry.
func (s *Store) SetRequestPlan(ctx context.Context, id string, plan []byte, hash string, expires time.Time) error {
	return s.transition(ctx, id, []string{ReqPlanning}, `state = ?, plan = ?, plan_hash = ?, expires_at = ?`, ReqPending, plan, hash, millis(expires))
}

func (s *Store) transition(ctx context.Context, id string, from []string, set string, args ...any) error {
	q := `UPDATE approval_requests SET ` + set + `, updated_at = ? WHERE id = ? AND state IN (` + placeholders(len(from)) + `)`
	all := append(append(args, millis(s.now()), id), anys(from)...)
	res, err := s.db.ExecContext(ctx, q, all...)
	if err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.ApprovalRequest(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("request %s: not in %s: %w", id, strings.Join(from, "/"), ErrConflict)
	}
	return nil
}

// ApprovalVote is one recorded vote.
type ApprovalVote struct {
	RequestID string
	Voter     string
	Approve   bool
	Via       string
	At        time.Time
}

// AddVote records a user's vote on a pending request. A user votes once:
// a second vote (a double click, a Slack retry) is not recorded and added
// is false, with the first vote returned. A request no longer pending
// gives ErrConflict.
func (s *Store) AddVote(ctx context.Context, v ApprovalVote) (ApprovalVote, bool, error) {
	added := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM approval_requests WHERE id = ?`, v.RequestID).Scan(&state); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("request %q: %w", v.RequestID, ErrNotFound)
			}
			return err
		}
		var approve int
		var at int64
		err := tx.QueryRowContext(ctx, `SELECT approve, via, created_at FROM approval_votes WHERE request_id = ? AND voter = ?`, v.RequestID, v.Voter).Scan(&approve, &v.Via, &at)
		if err == nil {
			v.Approve, v.At = approve == 1, fromMillis(at)
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if state != ReqPending {
			return fmt.Errorf("request %s is %s: %w", v.RequestID, state, ErrConflict)
		}
		now := s.now()
		v.At = now.UTC().Truncate(time.Millisecond)
		approve = 0
		if v.Approve {
			approve = 1
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO approval_votes (request_id, voter, approve, via, created_at) VALUES (?, ?, ?, ?, ?)`,
			v.RequestID, v.Voter, approve, v.Via, millis(now))
		added = err == nil
		return err
	})
	return v, added, err
}

// Votes lists a request's votes in the order they were cast.
func (s *Store) Votes(ctx context.Context, requestID string) ([]ApprovalVote, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT request_id, voter, approve, via, created_at FROM approval_votes WHERE request_id = ? ORDER BY created_at, rowid`, requestID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ApprovalVote
	for rows.Next() {
		var v ApprovalVote
		var approve int
		var at int64
		if err := rows.Scan(&v.RequestID, &v.Voter, &approve, &v.Via, &at); err != nil {
			return nil, err
		}
		v.Approve, v.At = approve == 1, fromMillis(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// Execution states are the actions.Exec* names.

// ApprovalExecution is the one execution of an approved request: a view of
// its row in action_executions (executions.go), where the actions Runner
// records its state and steps.
type ApprovalExecution struct {
	ID         string
	RequestID  string
	State      string
	Runner     string // who runs it ("server host:pid", "cli host:pid")
	Outcome    []byte // actions.Outcome JSON once finished
	StartedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
}

func approvalExecution(e ExecutionRecord) ApprovalExecution {
	return ApprovalExecution{ID: e.ID, RequestID: e.RequestID, State: e.State, Runner: e.Holder, Outcome: e.Outcome,
		StartedAt: e.StartedAt, UpdatedAt: e.UpdatedAt, FinishedAt: e.FinishedAt}
}

// StartApprovalExecution creates the request's execution from its approved
// plan, or returns the existing one (a resume reuses it, so the runner
// skips the steps recorded as done), and records runner as its holder. Its
// state is left to the Runner, which marks it running when it starts.
func (s *Store) StartApprovalExecution(ctx context.Context, requestID, runner string) (ApprovalExecution, error) {
	var e ExecutionRecord
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := millis(s.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO action_executions (id, request_id, cluster, kind, plan, plan_hash, state, holder, created_at, updated_at)
			SELECT ?, id, cluster, kind, plan, plan_hash, ?, ?, ?, ? FROM approval_requests WHERE id = ?
			AND NOT EXISTS (SELECT 1 FROM action_executions WHERE request_id = ?)`,
			newID(), ExecutionPending, runner, now, now, requestID, requestID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE action_executions SET holder = ?, updated_at = ? WHERE request_id = ?`, runner, now, requestID); err != nil {
			return err
		}
		var err error
		e, err = scanExecution(tx.QueryRowContext(ctx, `SELECT `+executionColumns+` FROM action_executions WHERE request_id = ? AND request_id != ''`, requestID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("request %q: %w", requestID, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return ApprovalExecution{}, fmt.Errorf("start execution of %s: %w", requestID, err)
	}
	return approvalExecution(e), nil
}

// FinishApprovalExecution records an execution's end (or interruption, or
// abort) as the approval flow decided it.
func (s *Store) FinishApprovalExecution(ctx context.Context, id, state string, outcome []byte) error {
	return s.FinishExecution(ctx, id, state, outcome, "")
}

// ApprovalExecutionOf loads a request's execution.
func (s *Store) ApprovalExecutionOf(ctx context.Context, requestID string) (ApprovalExecution, error) {
	e, err := s.ExecutionForRequest(ctx, requestID)
	if err != nil {
		return ApprovalExecution{}, err
	}
	return approvalExecution(e), nil
}

// AuditEntry is one line of the append-only audit log.
type AuditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"` // user id, or "chmedic"
	Via       string    `json:"via,omitempty"`
	Event     string    `json:"event"`
	RequestID string    `json:"request_id,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	Cluster   string    `json:"cluster,omitempty"`
	Nodes     []string  `json:"nodes,omitempty"`
	PlanHash  string    `json:"plan_hash,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// AppendAudit appends an entry (At is set here when zero). The table
// refuses updates and deletes.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (at, actor, via, event, request_id, kind, cluster, nodes, plan_hash, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		millis(e.At), e.Actor, e.Via, e.Event, e.RequestID, e.Kind, e.Cluster, strings.Join(e.Nodes, ","), e.PlanHash, e.Outcome, e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Event, err)
	}
	return nil
}

// Audit lists the entries at or after since, oldest first; requestID
// narrows to one request when not empty.
func (s *Store) Audit(ctx context.Context, since time.Time, requestID string) ([]AuditEntry, error) {
	q := `SELECT id, at, actor, via, event, request_id, kind, cluster, nodes, plan_hash, outcome, detail FROM audit_log WHERE at >= ?`
	args := []any{millis(since)}
	if requestID != "" {
		q += ` AND request_id = ?`
		args = append(args, requestID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		var nodes string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Via, &e.Event, &e.RequestID, &e.Kind, &e.Cluster, &nodes, &e.PlanHash, &e.Outcome, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMillis(at)
		if nodes != "" {
			e.Nodes = strings.Split(nodes, ",")
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SaveThreadReport stores the report model a thread's message was rendered
// from (JSON), so that it can be rendered again — with the states of its
// requests — without diagnosing again.
func (s *Store) SaveThreadReport(ctx context.Context, threadKey string, report []byte) error {
	_, err := s.exec(ctx, qSaveThreadReport, threadKey, report, millis(s.now()))
	if err != nil {
		return fmt.Errorf("save report of %q: %w", threadKey, err)
	}
	return nil
}

// ThreadReport loads a thread's last report.
func (s *Store) ThreadReport(ctx context.Context, threadKey string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT report FROM thread_reports WHERE thread_key = ?`, threadKey).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("report of %q: %w", threadKey, ErrNotFound)
	}
	return b, err
}

// Heartbeat records that the approval worker name is alive.
func (s *Store) Heartbeat(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO approval_workers (name, heartbeat_at) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, name, millis(s.now()))
	return err
}

// StopHeartbeat removes a worker that stops cleanly.
func (s *Store) StopHeartbeat(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM approval_workers WHERE name = ?`, name)
	return err
}

// LiveWorkers lists the workers with a heartbeat at or after since.
func (s *Store) LiveWorkers(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM approval_workers WHERE heartbeat_at >= ? ORDER BY name`, millis(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ApprovalRequestCounts returns how many requests are in each state.
func (s *Store) ApprovalRequestCounts(ctx context.Context) (map[string]int, error) {
	return s.countByState(ctx, "approval_requests")
}
