package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ActionRequest is an action offered on a message. Its ID is what the
// button carries: opaque and unguessable; the plan lives here.
type ActionRequest struct {
	ID         string
	OfferKey   string
	Kind       string
	Params     map[string]string
	Cluster    string
	GroupKey   string
	ThreadKey  string
	AlertStart time.Time
	State      string
	CreatedAt  time.Time
}

// OfferAction records an offer once per offer key (processing the same
// notification twice offers the same request) and returns its id.
func (s *Store) OfferAction(ctx context.Context, a ActionRequest) (string, error) {
	params, err := json.Marshal(a.Params)
	if err != nil {
		return "", err
	}
	var id string
	err = s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM action_requests WHERE offer_key = ?`, a.OfferKey).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id = newID()
		_, err = tx.ExecContext(ctx, `INSERT INTO action_requests (id, offer_key, kind, params, cluster, group_key, thread_key, alert_start, state, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'offered', ?)`,
			id, a.OfferKey, a.Kind, string(params), a.Cluster, a.GroupKey, a.ThreadKey, millis(a.AlertStart), millis(s.now()))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("offer action %s: %w", a.Kind, err)
	}
	return id, nil
}

// ActionRequestByID loads an offered action.
func (s *Store) ActionRequestByID(ctx context.Context, id string) (ActionRequest, error) {
	var a ActionRequest
	var params string
	var start, created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, offer_key, kind, params, cluster, group_key, thread_key, alert_start, state, created_at FROM action_requests WHERE id = ?`, id).
		Scan(&a.ID, &a.OfferKey, &a.Kind, &params, &a.Cluster, &a.GroupKey, &a.ThreadKey, &start, &a.State, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("action request %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, err
	}
	a.AlertStart, a.CreatedAt = fromMillis(start), fromMillis(created)
	err = json.Unmarshal([]byte(params), &a.Params)
	return a, err
}

func newID() string {
	var b [15]byte
	rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
