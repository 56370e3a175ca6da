package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// IncidentTotals are an incident's counts after a change.
type IncidentTotals struct {
	Groups         int `json:"groups"`
	FiringGroups   int `json:"firing_groups"`
	ResolvedGroups int `json:"resolved_groups"`
	FiringAlerts   int `json:"firing_alerts"`
	// ByAlert counts the groups by alert name, the most firing first
	// (bounded by the caller).
	ByAlert []AlertTotals `json:"by_alert,omitempty"`
}

// AlertTotals counts the groups of one alert name.
type AlertTotals struct {
	Name     string `json:"name"`
	Firing   int    `json:"firing"`
	Resolved int    `json:"resolved"`
}

// SummaryGroup is one group change named in a summary.
type SummaryGroup struct {
	Title  string `json:"title"`
	Status string `json:"status"`
	Firing int    `json:"firing"`
}

// SummaryBatch is an incident thread's pending summary reply: the group
// changes since the previous summary, accumulated until it is sent.
type SummaryBatch struct {
	// Since is when its first change was recorded, Until its last.
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Changes int       `json:"changes"`
	// Start are the totals before its first change, Now after its last.
	Start IncidentTotals `json:"start"`
	Now   IncidentTotals `json:"now"`
	// Latest are the last groups changed, newest first (at most
	// summaryLatest).
	Latest []SummaryGroup `json:"latest,omitempty"`
}

const summaryLatest = 5

// SummaryChange is one group change of an incident: the totals after it
// and, with Batch, the change recorded in the thread's next summary reply
// (sent at most once per Interval; the first one Interval after the
// incident's message was first written).
type SummaryChange struct {
	Totals   IncidentTotals
	Group    SummaryGroup
	Batch    bool
	Interval time.Duration
}

// SummaryBody is the outbox body of a summary reply: the slack outbox
// renders the batch when it sends it.
type SummaryBody struct {
	Summary *SummaryBatch `json:"summary"`
}

// recordSummary folds c into the thread's summary state (in
// ApplyThreadChange's transaction): constant work per change.
func recordSummary(ctx context.Context, tx *sql.Tx, threadKey string, c SummaryChange, now int64) error {
	totals, err := json.Marshal(c.Totals)
	if err != nil {
		return err
	}
	var prevTotals, batchJSON []byte
	var due, flushed int64
	err = tx.QueryRowContext(ctx, `SELECT totals, batch, due_at, flushed_at FROM thread_summaries WHERE thread_key = ?`, threadKey).
		Scan(&prevTotals, &batchJSON, &due, &flushed)
	if errors.Is(err, sql.ErrNoRows) {
		if !c.Batch {
			// The incident's first message shows this change itself; the
			// first summary is due an interval after it.
			_, err := tx.ExecContext(ctx, `INSERT INTO thread_summaries (thread_key, totals, interval_ms, flushed_at) VALUES (?, ?, ?, ?)`,
				threadKey, totals, c.Interval.Milliseconds(), now)
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO thread_summaries (thread_key, totals, interval_ms) VALUES (?, ?, ?)`,
			threadKey, []byte("{}"), c.Interval.Milliseconds()); err != nil {
			return err
		}
		prevTotals = []byte("{}")
	} else if err != nil {
		return err
	}
	if !c.Batch {
		_, err := tx.ExecContext(ctx, `UPDATE thread_summaries SET totals = ?, interval_ms = ? WHERE thread_key = ?`, totals, c.Interval.Milliseconds(), threadKey)
		return err
	}
	var b SummaryBatch
	if len(batchJSON) > 0 {
		if err := json.Unmarshal(batchJSON, &b); err != nil {
			return fmt.Errorf("summary batch: %w", err)
		}
	} else {
		b = SummaryBatch{Since: fromMillis(now)}
		if err := json.Unmarshal(prevTotals, &b.Start); err != nil {
			return fmt.Errorf("summary totals: %w", err)
		}
		due = max(now, flushed+c.Interval.Milliseconds())
	}
	b.Until = fromMillis(now)
	b.Changes++
	b.Now = c.Totals
	latest := []SummaryGroup{c.Group}
	for _, g := range b.Latest {
		if len(latest) == summaryLatest {
			break
		}
		if g.Title != c.Group.Title {
			latest = append(latest, g)
		}
	}
	b.Latest = latest
	nb, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE thread_summaries SET totals = ?, batch = ?, due_at = ?, interval_ms = ? WHERE thread_key = ?`,
		totals, nb, due, c.Interval.Milliseconds(), threadKey)
	return err
}

// FlushDueSummaries queues the summary replies whose time has come, at
// most limit: each becomes an ordinary reply of its thread (in order after
// what was queued before it). A batch waits while the thread's previous
// summary is still undelivered, and until an interval after it was sent,
// so that a thread gets at most one summary per interval. It returns how
// many were queued.
func (s *Store) FlushDueSummaries(ctx context.Context, now time.Time, limit int) (int, error) {
	// Called on every outbox step: a read first, so that the write lock
	// is taken only when a summary is due.
	var any int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM thread_summaries WHERE due_at > 0 AND due_at <= ? LIMIT 1)`, millis(now)).Scan(&any)
	if err != nil {
		return 0, fmt.Errorf("outbox: due summaries: %w", err)
	}
	if any == 0 {
		return 0, nil
	}
	n := 0
	err = s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT thread_key, batch, interval_ms, last_outbox_id FROM thread_summaries WHERE due_at > 0 AND due_at <= ? ORDER BY due_at LIMIT ?`,
			millis(now), limit)
		if err != nil {
			return err
		}
		type due struct {
			key      string
			batch    []byte
			interval int64
			last     int64
		}
		var ds []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.key, &d.batch, &d.interval, &d.last); err != nil {
				rows.Close()
				return err
			}
			ds = append(ds, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range ds {
			if d.last > 0 {
				var state string
				var sent int64
				err := tx.QueryRowContext(ctx, `SELECT state, COALESCE(sent_at, 0) FROM outbox WHERE id = ?`, d.last).Scan(&state, &sent)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				next := int64(0)
				switch {
				case err != nil: // pruned: long delivered
				case state == OutboxPending || state == OutboxSending:
					// The previous summary is not delivered yet (Slack
					// down?): keep accumulating, look again in a while.
					next = millis(now) + 5000
				case state == OutboxSent && sent+d.interval > millis(now):
					next = sent + d.interval
				}
				if next > 0 {
					if _, err := tx.ExecContext(ctx, `UPDATE thread_summaries SET due_at = ? WHERE thread_key = ?`, next, d.key); err != nil {
						return err
					}
					continue
				}
			}
			var b SummaryBatch
			if err := json.Unmarshal(d.batch, &b); err != nil {
				return fmt.Errorf("thread %q: summary batch: %w", d.key, err)
			}
			body, err := json.Marshal(SummaryBody{Summary: &b})
			if err != nil {
				return err
			}
			var ch string
			if err := tx.QueryRowContext(ctx, `SELECT channel FROM slack_threads WHERE thread_key = ?`, d.key).Scan(&ch); err != nil {
				return fmt.Errorf("thread %q: %w", d.key, err)
			}
			id, err := insertOutbox(tx, ctx, d.key, KindReply, ch, body, millis(now))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE thread_summaries SET batch = NULL, due_at = 0, last_outbox_id = ?, flushed_at = ? WHERE thread_key = ?`,
				id, millis(now), d.key); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: flushing summaries: %w", err)
	}
	return n, nil
}
