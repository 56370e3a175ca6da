package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ExecutionRecord is one approved plan to run (the actions Runner records
// its progress here). Plan and Outcome are JSON as package actions encodes
// them; the store does not interpret them.
type ExecutionRecord struct {
	ID string
	// RequestID is the approval request it executes; one execution per
	// request (CreateExecution with the same non-empty RequestID returns the
	// existing one). Empty for runs without a request (chmedic collect).
	RequestID string
	Cluster   string
	Kind      string
	Plan      []byte
	PlanHash  string
	// State is one of actions.Exec* ("pending" before the first Run).
	State string
	// Holder is the lease holder that last ran it.
	Holder     string
	Outcome    []byte
	Error      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  time.Time // zero before the first Run
	FinishedAt time.Time // zero until it ends
}

// StepRecord is the recorded state of one step of an execution.
type StepRecord struct {
	ExecutionID string
	Index       int
	StepID      string
	// State is running, done, failed, undone or undo_failed.
	State      string
	Attempts   int
	Result     []byte
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Lease is the per-cluster action lock.
type Lease struct {
	Cluster     string
	Holder      string
	ExecutionID string
	AcquiredAt  time.Time
	ExpiresAt   time.Time
}

// ExecutionPending is the state of an execution created but never run.
const ExecutionPending = "pending"

// CreateExecution records an execution in state pending and returns its
// id. With a RequestID that already has an execution, it returns that one's
// id and created=false: a request executes once.
func (s *Store) CreateExecution(ctx context.Context, e ExecutionRecord) (id string, created bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if e.RequestID != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM action_executions WHERE request_id = ?`, e.RequestID).Scan(&id)
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		id, created = newID(), true
		now := millis(s.now())
		_, err := tx.ExecContext(ctx, `INSERT INTO action_executions (id, request_id, cluster, kind, plan, plan_hash, state, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, e.RequestID, e.Cluster, e.Kind, e.Plan, e.PlanHash, ExecutionPending, now, now)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("create execution of %s on %s: %w", e.Kind, e.Cluster, err)
	}
	return id, created, nil
}

const executionColumns = `id, request_id, cluster, kind, plan, plan_hash, state, holder, outcome, error, created_at, updated_at, started_at, finished_at`

func scanExecution(sc interface{ Scan(...any) error }) (ExecutionRecord, error) {
	var e ExecutionRecord
	var created, updated int64
	var started, finished sql.NullInt64
	err := sc.Scan(&e.ID, &e.RequestID, &e.Cluster, &e.Kind, &e.Plan, &e.PlanHash, &e.State, &e.Holder, &e.Outcome, &e.Error, &created, &updated, &started, &finished)
	if err != nil {
		return e, err
	}
	e.CreatedAt, e.UpdatedAt = fromMillis(created), fromMillis(updated)
	if started.Valid {
		e.StartedAt = fromMillis(started.Int64)
	}
	if finished.Valid {
		e.FinishedAt = fromMillis(finished.Int64)
	}
	return e, nil
}

// Execution loads an execution.
func (s *Store) Execution(ctx context.Context, id string) (ExecutionRecord, error) {
	e, err := scanExecution(s.db.QueryRowContext(ctx, `SELECT `+executionColumns+` FROM action_executions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("execution %q: %w", id, ErrNotFound)
	}
	return e, err
}

// ExecutionForRequest loads the execution of an approval request.
func (s *Store) ExecutionForRequest(ctx context.Context, requestID string) (ExecutionRecord, error) {
	e, err := scanExecution(s.db.QueryRowContext(ctx, `SELECT `+executionColumns+` FROM action_executions WHERE request_id = ? AND request_id != ''`, requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("execution of request %q: %w", requestID, ErrNotFound)
	}
	return e, err
}

// ExecutionsInState lists the executions in state, oldest first.
func (s *Store) ExecutionsInState(ctx context.Context, state string) ([]ExecutionRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+executionColumns+` FROM action_executions WHERE state = ? ORDER BY created_at, id`, state)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExecutionRecord
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// StartExecution marks an execution running under holder (first start or
// resume).
func (s *Store) StartExecution(ctx context.Context, id, holder string) error {
	now := millis(s.now())
	res, err := s.db.ExecContext(ctx, `UPDATE action_executions SET state = 'running', holder = ?, error = '', finished_at = NULL,
		started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ?`, holder, now, now, id)
	return affected(res, err, "execution %q", id)
}

// FinishExecution records an execution's final (or interrupted) state and
// its outcome.
func (s *Store) FinishExecution(ctx context.Context, id, state string, outcome []byte, errMsg string) error {
	now := millis(s.now())
	res, err := s.db.ExecContext(ctx, `UPDATE action_executions SET state = ?, outcome = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ?`,
		state, outcome, errMsg, now, now, id)
	return affected(res, err, "execution %q", id)
}

// SetExecutionStateIf changes an execution's state from one of from to to,
// and reports whether it did (e.g. running → interrupted at start-up,
// interrupted → aborted).
func (s *Store) SetExecutionStateIf(ctx context.Context, id, to, errMsg string, from ...string) (bool, error) {
	if len(from) == 0 {
		return false, errors.New("set execution state: no from state")
	}
	q := `UPDATE action_executions SET state = ?, error = ?, updated_at = ? WHERE id = ? AND state IN (?` + repeat(",?", len(from)-1) + `)`
	args := []any{to, errMsg, millis(s.now()), id}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("execution %q: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

// Steps returns the recorded steps of an execution, in plan order.
func (s *Store) Steps(ctx context.Context, executionID string) ([]StepRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT execution_id, idx, step_id, state, attempts, result, error, started_at, finished_at
		FROM action_steps WHERE execution_id = ? ORDER BY idx`, executionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StepRecord
	for rows.Next() {
		var r StepRecord
		var started, finished sql.NullInt64
		if err := rows.Scan(&r.ExecutionID, &r.Index, &r.StepID, &r.State, &r.Attempts, &r.Result, &r.Error, &started, &finished); err != nil {
			return nil, err
		}
		if started.Valid {
			r.StartedAt = fromMillis(started.Int64)
		}
		if finished.Valid {
			r.FinishedAt = fromMillis(finished.Int64)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// StartStep records that a step is running (one more attempt).
func (s *Store) StartStep(ctx context.Context, executionID string, index int, stepID string) error {
	now := millis(s.now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO action_steps (execution_id, idx, step_id, state, attempts, started_at) VALUES (?, ?, ?, 'running', 1, ?)
		ON CONFLICT (execution_id, step_id) DO UPDATE SET state = 'running', attempts = attempts + 1, error = '', started_at = excluded.started_at, finished_at = NULL`,
		executionID, index, stepID, now)
	if err != nil {
		return fmt.Errorf("execution %q step %s: %w", executionID, stepID, err)
	}
	return nil
}

// FinishStep records a step's state (done, failed, undone, undo_failed),
// its result and error.
func (s *Store) FinishStep(ctx context.Context, executionID, stepID, state string, result []byte, errMsg string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE action_steps SET state = ?, result = COALESCE(?, result), error = ?, finished_at = ? WHERE execution_id = ? AND step_id = ?`,
		state, result, errMsg, millis(s.now()), executionID, stepID)
	return affected(res, err, "execution %q step %s", executionID, stepID)
}

// AcquireLease takes the cluster's action lease for holder until now+ttl,
// when it is free, expired, or already holder's. Otherwise it returns the
// live lease of the other holder and false.
func (s *Store) AcquireLease(ctx context.Context, cluster, holder, executionID string, ttl time.Duration) (Lease, bool, error) {
	var cur Lease
	ok := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		var acquired, expires int64
		err := tx.QueryRowContext(ctx, `SELECT cluster, holder, execution_id, acquired_at, expires_at FROM action_leases WHERE cluster = ?`, cluster).
			Scan(&cur.Cluster, &cur.Holder, &cur.ExecutionID, &acquired, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			cur.AcquiredAt, cur.ExpiresAt = fromMillis(acquired), fromMillis(expires)
			if cur.Holder != holder && cur.ExpiresAt.After(now) {
				return nil // held by someone else
			}
		}
		cur = Lease{Cluster: cluster, Holder: holder, ExecutionID: executionID, AcquiredAt: now.UTC().Truncate(time.Millisecond), ExpiresAt: now.Add(ttl).UTC().Truncate(time.Millisecond)}
		ok = true
		_, err = tx.ExecContext(ctx, `INSERT INTO action_leases (cluster, holder, execution_id, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder, execution_id = excluded.execution_id, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
			cluster, holder, executionID, millis(now), millis(now.Add(ttl)))
		return err
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease of cluster %q: %w", cluster, err)
	}
	return cur, ok, nil
}

// RenewLease extends holder's lease to now+ttl; false when holder no longer
// holds it (it expired and another holder took it, or it was released).
func (s *Store) RenewLease(ctx context.Context, cluster, holder string, ttl time.Duration) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE action_leases SET expires_at = ? WHERE cluster = ? AND holder = ?`, millis(s.now().Add(ttl)), cluster, holder)
	if err != nil {
		return false, fmt.Errorf("renew lease of cluster %q: %w", cluster, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ReleaseLease frees holder's lease of the cluster (a no-op when holder does
// not hold it).
func (s *Store) ReleaseLease(ctx context.Context, cluster, holder string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM action_leases WHERE cluster = ? AND holder = ?`, cluster, holder)
	if err != nil {
		return fmt.Errorf("release lease of cluster %q: %w", cluster, err)
	}
	return nil
}

// LeaseOf returns the cluster's lease as recorded, expired or not, and
// whether there is one.
func (s *Store) LeaseOf(ctx context.Context, cluster string) (Lease, bool, error) {
	var l Lease
	var acquired, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT cluster, holder, execution_id, acquired_at, expires_at FROM action_leases WHERE cluster = ?`, cluster).
		Scan(&l.Cluster, &l.Holder, &l.ExecutionID, &acquired, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease of cluster %q: %w", cluster, err)
	}
	l.AcquiredAt, l.ExpiresAt = fromMillis(acquired), fromMillis(expires)
	return l, true, nil
}

func affected(res sql.Result, err error, format string, args ...any) error {
	if err != nil {
		return fmt.Errorf(format+": %w", append(args, err)...)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf(format+": %w", append(args, ErrNotFound)...)
	}
	return nil
}

// ExecutionsSince lists a cluster's executions created at or after since,
// oldest first, at most limit.
func (s *Store) ExecutionsSince(ctx context.Context, cluster string, since time.Time, limit int) ([]ExecutionRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+executionColumns+` FROM action_executions WHERE cluster = ? AND created_at >= ? ORDER BY created_at, id LIMIT ?`,
		cluster, millis(since), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExecutionRecord
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
