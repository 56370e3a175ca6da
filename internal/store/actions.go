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

// Action request states. The approval flow adds its own states after
// ActionOffered; these three are the life of an offer before anyone acts:
//
//   - ActionOffered: the button carrying the request id is on the thread's
//     current message (or on its way there). Only an offered request may be
//     approved.
//   - ActionSuperseded: the thread's message was re-rendered (a newer
//     notification, with newly minted offers, or the group resolved and the
//     buttons went away); the old button may still show until Slack has the
//     update, and a click on it must be refused ("replaced by a newer
//     message").
//   - ActionExpired: still offered OfferTTL after it was made (its group kept
//     firing without a new notification); a click on it must be refused.
//
// Superseded and expired requests are deleted by PruneOffers once older
// than the store's retention.
const (
	ActionOffered    = "offered"
	ActionSuperseded = "superseded"
	ActionExpired    = "expired"
)

// OfferScopeReply is the scope of an offer whose button is on a reply in
// the thread (a DDL freeze's reminder or partial notice), not on the
// thread's message: a re-render of the message does not supersede it (its
// button is still there); it expires after OfferTTL like any offer. The
// empty scope is the thread message's own offers.
const OfferScopeReply = "reply"

// OfferTTL is how long an offer stays valid without being superseded.
const OfferTTL = 24 * time.Hour

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
	// Scope is "" for the offers of the thread's message (superseded when
	// it is re-rendered) or OfferScopeReply.
	Scope     string
	State     string
	CreatedAt time.Time
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
		_, err = tx.ExecContext(ctx, `INSERT INTO action_requests (id, offer_key, kind, params, cluster, group_key, thread_key, alert_start, state, created_at, scope)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, a.OfferKey, a.Kind, string(params), a.Cluster, a.GroupKey, a.ThreadKey, millis(a.AlertStart), ActionOffered, millis(s.now()), a.Scope)
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
	err := s.db.QueryRowContext(ctx, `SELECT id, offer_key, kind, params, cluster, group_key, thread_key, alert_start, state, created_at, scope FROM action_requests WHERE id = ?`, id).
		Scan(&a.ID, &a.OfferKey, &a.Kind, &params, &a.Cluster, &a.GroupKey, &a.ThreadKey, &start, &a.State, &created, &a.Scope)
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

// supersedeOffers marks the thread message's own offered requests (scope
// "") other than keep superseded (in the transaction that re-renders the
// thread's message); offers on replies (OfferScopeReply) keep their buttons.
func supersedeOffers(ctx context.Context, tx *sql.Tx, threadKey string, keep []string) error {
	q := `UPDATE action_requests SET state = ? WHERE thread_key = ? AND state = ? AND scope = ''`
	args := []any{ActionSuperseded, threadKey, ActionOffered}
	if len(keep) > 0 {
		q += ` AND id NOT IN (?` + strings.Repeat(", ?", len(keep)-1) + `)`
		for _, id := range keep {
			args = append(args, id)
		}
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("superseding offers: %w", err)
	}
	return nil
}

// ExpireOffers marks offers made before now-OfferTTL and still offered
// expired; it returns how many.
func (s *Store) ExpireOffers(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE action_requests SET state = ? WHERE state = ? AND created_at < ?`, ActionExpired, ActionOffered, millis(now.Add(-OfferTTL)))
	if err != nil {
		return 0, fmt.Errorf("expire offers: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// PruneOffers deletes superseded and expired requests made before cutoff
// (requests in the approval flow's states are kept for the audit).
func (s *Store) PruneOffers(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM action_requests WHERE state IN (?, ?) AND created_at < ?`, ActionSuperseded, ActionExpired, millis(cutoff))
	if err != nil {
		return 0, fmt.Errorf("prune offers: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
