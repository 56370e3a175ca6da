package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// One notification, one transaction for what it leaves behind.
//
// Processing a notification used to write in five transactions of its own
// after routing: each offer of the playbook's actions, the thread's report,
// the message with its follow-up, and the notification's outcome with its
// group's mark; each commit is a sync of the WAL (synchronous=FULL). The
// message's offers, its report and the notification's outcome are now
// written in ApplyThreadChange's transaction, with the message: a crash
// keeps all of them or none, so a replay never finds the notification done
// without its message, nor a message whose buttons carry offers that were
// never recorded.

// FinishMark is the outcome ApplyThreadChange records with a thread
// change: notification NotificationID is done and Mark is its group's last
// processed notification (as FinishProcessed records it).
type FinishMark struct {
	NotificationID int64
	Mark           GroupMark
}

// PrepareOffers gives each offer its id without writing anything: the id
// already recorded under its offer key (processing a notification again
// offers the same requests, as OfferAction does), else a new one. The new
// ones are recorded by ApplyThreadChange (ThreadChange.NewOffers), in the
// transaction of the message that carries their buttons.
func (s *Store) PrepareOffers(ctx context.Context, offers []ActionRequest) ([]ActionRequest, error) {
	out := make([]ActionRequest, len(offers))
	for i, a := range offers {
		err := s.db.QueryRowContext(ctx, `SELECT id FROM action_requests WHERE offer_key = ?`, a.OfferKey).Scan(&a.ID)
		if errors.Is(err, sql.ErrNoRows) {
			a.ID = newID()
		} else if err != nil {
			return nil, fmt.Errorf("offer action %s: %w", a.Kind, err)
		}
		out[i] = a
	}
	return out, nil
}

// insertOffers records the prepared offers not yet recorded. An offer key
// recorded meanwhile under another id is a conflict: the message would
// carry an id nobody can approve.
func insertOffers(ctx context.Context, tx *sql.Tx, offers []ActionRequest, now int64) error {
	for _, a := range offers {
		params, err := json.Marshal(a.Params)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO action_requests (id, offer_key, kind, params, cluster, group_key, thread_key, alert_start, state, created_at, scope)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (offer_key) DO NOTHING`,
			a.ID, a.OfferKey, a.Kind, string(params), a.Cluster, a.GroupKey, a.ThreadKey, millis(a.AlertStart), ActionOffered, now, a.Scope)
		if err != nil {
			return fmt.Errorf("offer action %s: %w", a.Kind, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			continue
		}
		var id string
		if err := tx.QueryRowContext(ctx, `SELECT id FROM action_requests WHERE offer_key = ?`, a.OfferKey).Scan(&id); err != nil {
			return fmt.Errorf("offer action %s: %w", a.Kind, err)
		}
		if id != a.ID {
			return fmt.Errorf("offer %s: recorded meanwhile as %s, not %s: %w", a.OfferKey, id, a.ID, ErrConflict)
		}
	}
	return nil
}

const qSaveThreadReport = `INSERT INTO thread_reports (thread_key, report, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (thread_key) DO UPDATE SET report = excluded.report, updated_at = excluded.updated_at`

// finishThreadChange stores the change's report and the notification's
// outcome (ApplyThreadChange's last steps).
func finishThreadChange(ctx context.Context, tx *sql.Tx, c ThreadChange, now int64) error {
	if c.Report != nil {
		if _, err := tx.ExecContext(ctx, qSaveThreadReport, c.Thread.Key, c.Report, now); err != nil {
			return fmt.Errorf("save report of %q: %w", c.Thread.Key, err)
		}
	}
	if c.Finish != nil {
		if err := finishProcessedTx(ctx, tx, c.Finish.NotificationID, c.Finish.Mark, now); err != nil {
			return fmt.Errorf("notification %d: %w", c.Finish.NotificationID, err)
		}
	}
	return nil
}
