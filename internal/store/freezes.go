package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Freeze states (the ddl_freeze action writes them; `chmedic freezes`
// shows them).
const (
	// FreezeApplying: the freeze is being applied (or chmedic stopped while
	// it was); its timer already runs, so it is lifted at expiry whatever
	// happened.
	FreezeApplying = "applying"
	// FreezeActive: verified frozen on every node.
	FreezeActive = "active"
	// FreezePartial: frozen on some nodes only (or lifted on some only).
	FreezePartial = "partial"
	// FreezeLifted: lifted by an unfreeze; FreezeExpired: lifted by
	// chmedic at expiry.
	FreezeLifted  = "lifted"
	FreezeExpired = "expired"
)

// OpenFreezeStates are the states of a freeze not lifted yet.
var OpenFreezeStates = []string{FreezeApplying, FreezeActive, FreezePartial}

// FreezeNode is one node of a freeze: its state there and what the freeze
// needs to give back exactly what it took.
type FreezeNode struct {
	Name string `json:"name"`
	// State is pending, applying, frozen, failed, lifted or lift_failed.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Snapshot is what the node held before the freeze changed it (stored
	// before the change), as the action encodes it.
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
	// Applied is what the freeze did on the node (statements, file).
	Applied json.RawMessage `json:"applied,omitempty"`
	// Restored is what the unfreeze did (statements, grants added during
	// the freeze and kept).
	Restored  json.RawMessage `json:"restored,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// FreezeRecord is one DDL freeze of a cluster, with its timer.
type FreezeRecord struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	State   string `json:"state"`
	Method  string `json:"method"`
	// Targets name what is frozen ("user app", "role writer").
	Targets []string `json:"targets"`
	// Privileges (grants method) and Profiles (profile method).
	Privileges []string `json:"privileges,omitempty"`
	Profiles   []string `json:"profiles,omitempty"`
	// PlanHash is the hash of the ddl_freeze plan that made it.
	PlanHash string `json:"plan_hash"`
	// Duration is the freeze's length; ExpiresAt is when chmedic lifts it
	// (set when it starts, then from the time it was verified, and by an
	// extension).
	Duration   time.Duration `json:"duration"`
	StartedAt  time.Time     `json:"started_at"`
	ExpiresAt  time.Time     `json:"expires_at"`
	ReminderAt time.Time     `json:"reminder_at,omitzero"`
	RemindedAt time.Time     `json:"reminded_at,omitzero"`
	// PartialSaidAt is when the keeper offered Retry / Unfreeze all for
	// a partial freeze.
	PartialSaidAt time.Time `json:"partial_said_at,omitzero"`
	EndedAt       time.Time `json:"ended_at,omitzero"`
	// EndedBy says who lifted it ("chmedic (expiry)", "cli:alice").
	EndedBy string `json:"ended_by,omitempty"`
	// LiftAttempts counts chmedic's failed automatic lifts.
	LiftAttempts int          `json:"lift_attempts,omitempty"`
	LastError    string       `json:"last_error,omitempty"`
	Nodes        []FreezeNode `json:"nodes"`
	// Extensions records each extension ("2026-12-01T10:00:00Z by slack:U1 to 11:00").
	Extensions []string  `json:"extensions,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Open reports whether the freeze is not lifted yet.
func (f FreezeRecord) Open() bool {
	return f.State == FreezeApplying || f.State == FreezeActive || f.State == FreezePartial
}

// Node returns the freeze's node of that name.
func (f *FreezeRecord) Node(name string) *FreezeNode {
	for i := range f.Nodes {
		if f.Nodes[i].Name == name {
			return &f.Nodes[i]
		}
	}
	return nil
}

// CreateFreeze records a new freeze. A cluster has at most one open
// freeze: creating a second is ErrConflict.
func (s *Store) CreateFreeze(ctx context.Context, f FreezeRecord) error {
	if f.ID == "" {
		return errors.New("create freeze: no id")
	}
	f.UpdatedAt = s.now().UTC()
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM freezes WHERE cluster = ? AND state IN (?, ?, ?)`, f.Cluster, FreezeApplying, FreezeActive, FreezePartial).Scan(&other)
		if err == nil {
			return fmt.Errorf("cluster %q already has an open freeze %s: %w", f.Cluster, other, ErrConflict)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO freezes (id, cluster, state, expires_at, created_at, updated_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			f.ID, f.Cluster, f.State, millis(f.ExpiresAt), millis(f.StartedAt), millis(f.UpdatedAt), string(body))
		return err
	})
}

// Freeze loads a freeze.
func (s *Store) Freeze(ctx context.Context, id string) (FreezeRecord, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM freezes WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return FreezeRecord{}, fmt.Errorf("freeze %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return FreezeRecord{}, err
	}
	var f FreezeRecord
	if err := json.Unmarshal([]byte(body), &f); err != nil {
		return f, fmt.Errorf("freeze %q: %w", id, err)
	}
	return f, nil
}

// OpenFreeze returns the cluster's open freeze, if any.
func (s *Store) OpenFreeze(ctx context.Context, cluster string) (FreezeRecord, bool, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM freezes WHERE cluster = ? AND state IN (?, ?, ?)`, cluster, FreezeApplying, FreezeActive, FreezePartial).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return FreezeRecord{}, false, nil
	}
	if err != nil {
		return FreezeRecord{}, false, err
	}
	f, err := s.Freeze(ctx, id)
	return f, err == nil, err
}

// Freezes lists freezes, newest first: the open ones and those that ended
// after since (zero: all), at most limit.
func (s *Store) Freezes(ctx context.Context, since time.Time, limit int) ([]FreezeRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM freezes WHERE state IN (?, ?, ?) OR updated_at >= ? ORDER BY created_at DESC, id LIMIT ?`,
		FreezeApplying, FreezeActive, FreezePartial, millis(since), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FreezeRecord
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var f FreezeRecord
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// UpdateFreeze changes a freeze in one transaction: fn gets the stored
// record and edits it.
func (s *Store) UpdateFreeze(ctx context.Context, id string, fn func(*FreezeRecord) error) (FreezeRecord, error) {
	var f FreezeRecord
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var body string
		err := tx.QueryRowContext(ctx, `SELECT body FROM freezes WHERE id = ?`, id).Scan(&body)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("freeze %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return err
		}
		if err := fn(&f); err != nil {
			return err
		}
		f.UpdatedAt = s.now().UTC()
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE freezes SET state = ?, expires_at = ?, updated_at = ?, body = ? WHERE id = ?`,
			f.State, millis(f.ExpiresAt), millis(f.UpdatedAt), string(b), id)
		return err
	})
	return f, err
}
