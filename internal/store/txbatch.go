package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Group commit of the store's write transactions.
//
// Every commit syncs the WAL (synchronous=FULL), and SQLite has one
// writer: in a storm the notification workers, the webhook's group commit
// and the Slack outbox queue behind each other, one sync each, and the
// processing rate is the disk's sync rate divided by the transactions per
// notification. So the transactions that arrive while another one is
// committing are run together: one BEGIN, each caller's work inside a
// savepoint of its own, one COMMIT and one sync for all of them.
//
// Each caller keeps the semantics of a transaction of its own:
//   - atomic: its work is in a savepoint; an error rolls back to it, so
//     the caller's writes are undone and the others' are kept;
//   - isolated: the works run one after the other in arrival order, each
//     seeing the writes of those before it, exactly as serial transactions;
//   - durable: a caller returns only once the COMMIT that carries its work
//     has synced; a crash before that loses the whole batch, and no caller
//     of it has returned (nothing acknowledged is lost, nothing is half
//     written);
//   - its own outcome: when the batch cannot commit (or a statement broke
//     the transaction, e.g. an interrupted statement rolls it back), nothing
//     of it is on disk and every work is run again alone, in a transaction
//     of its own, so that each caller gets its own result.
//
// No goroutine runs in the background: the first caller to find no commit
// under way leads the batch, and hands the lead to the first caller still
// waiting when it is done (as webhook.GroupCommit does for ingest).

// maxTxBatch bounds the works of one batched transaction.
const maxTxBatch = 64

type txWaiter struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	err  error
	done chan struct{} // closed when err is set
	lead chan struct{} // signalled when this waiter leads the next batch
}

type txBatcher struct {
	mu      sync.Mutex
	pending []*txWaiter
	leading bool
}

// WithoutGroupCommit makes every write transaction commit (and sync) on
// its own, as before the group commit: for benchmarks that measure what
// the group commit saves.
func WithoutGroupCommit() Option { return func(s *Store) { s.noBatch = true } }

// tx runs fn in a write transaction, committed (and synced) with the
// write transactions of other goroutines that arrive meanwhile.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.noBatch {
		return s.txAlone(ctx, fn)
	}
	w := &txWaiter{ctx: ctx, fn: fn, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	b := &s.batch
	b.mu.Lock()
	b.pending = append(b.pending, w)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead {
		select {
		case <-w.done:
			return w.err
		case <-w.lead:
		}
	}
	s.commitBatch()
	<-w.done
	return w.err
}

// commitBatch runs the pending works (the leader's first) in one
// transaction, then passes the lead on.
func (s *Store) commitBatch() {
	b := &s.batch
	b.mu.Lock()
	k := min(len(b.pending), maxTxBatch)
	batch := make([]*txWaiter, k)
	copy(batch, b.pending)
	b.pending = append(b.pending[:0:0], b.pending[k:]...)
	b.mu.Unlock()

	released := false
	release := func() {
		released = true
		for _, w := range batch {
			close(w.done)
		}
		b.mu.Lock()
		if len(b.pending) > 0 {
			b.pending[0].lead <- struct{}{}
		} else {
			b.leading = false
		}
		b.mu.Unlock()
	}
	defer func() {
		// A work that panics (rolled back by txShared or txAlone) must not
		// leave the batch's callers, and every later writer, waiting for
		// a lead nobody holds.
		if r := recover(); r != nil {
			if !released {
				for _, w := range batch {
					w.err = fmt.Errorf("store transaction abandoned: a work of its batch panicked: %v", r)
				}
				release()
			}
			panic(r)
		}
	}()
	s.runBatch(batch)
	if s.counters != nil {
		s.counters.Batches.Add(1)
		s.counters.BatchedTx.Add(int64(len(batch)))
	}
	release()
}

// runBatch sets the outcome of every work of batch.
func (s *Store) runBatch(batch []*txWaiter) {
	if len(batch) == 1 {
		w := batch[0]
		w.err = s.txAlone(w.ctx, w.fn)
		return
	}
	if err := s.txShared(batch); err != nil {
		// Nothing of the batch is on disk: each work alone.
		for _, w := range batch {
			w.err = s.txAlone(w.ctx, w.fn)
		}
	}
}

// txShared runs the works of batch in one transaction, each in a
// savepoint, and commits it. It returns an error, having rolled back,
// when the transaction itself failed (begin, a savepoint statement, the
// commit): then no work's outcome is set.
func (s *Store) txShared(batch []*txWaiter) error {
	s.wl.lock()
	defer s.wl.unlock()
	// Not any caller's context: database/sql rolls a transaction back when
	// its context ends, and one caller leaving must not undo the others.
	bg := context.Background()
	tx, err := s.db.BeginTx(bg, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after a panic; a no-op once committed
	errs := make([]error, len(batch))
	for i, w := range batch {
		if err := w.ctx.Err(); err != nil {
			errs[i] = err // never started: nothing to undo
			continue
		}
		if _, err := tx.ExecContext(bg, savepointStatement); err != nil {
			tx.Rollback()
			return fmt.Errorf("savepoint: %w", err)
		}
		if errs[i] = w.fn(tx); errs[i] != nil {
			if _, err := tx.ExecContext(bg, rollbackToStatement); err != nil {
				tx.Rollback()
				return fmt.Errorf("rollback to savepoint: %w", err)
			}
		}
		if _, err := tx.ExecContext(bg, releaseStatement); err != nil {
			tx.Rollback()
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for i, w := range batch {
		w.err = errs[i]
	}
	return nil
}

// The savepoint statements of a shared transaction (not counted as an
// operation's statements, see counting.go).
const (
	savepointStatement  = `SAVEPOINT chmedic_work`
	rollbackToStatement = `ROLLBACK TO chmedic_work`
	releaseStatement    = `RELEASE chmedic_work`
)

// txAlone runs fn in a write transaction of its own.
func (s *Store) txAlone(ctx context.Context, fn func(*sql.Tx) error) error {
	s.wl.lock()
	defer s.wl.unlock()
	return s.runTx(ctx, fn)
}

// exec runs one writing statement as a transaction of the group commit
// (not alone outside it: that would be a sync of its own, and a writer
// waiting in SQLite's busy handler rather than in line).
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}
