package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// Processor turns one accepted notification into chmedic's response
// (diagnosis, report, Slack outbox entry). It must be idempotent: after a
// crash the same notification may be processed again.
type Processor interface {
	Process(ctx context.Context, n store.Notification, m *Message) error
}

// QueueStore is the part of the store the queue needs.
type QueueStore interface {
	Notification(ctx context.Context, id int64) (store.Notification, error)
	Unfinished(ctx context.Context) ([]int64, error)
	StartProcessing(ctx context.Context, id int64) error
	FinishProcessing(ctx context.Context, id int64, procErr error) error
	Requeue(ctx context.Context, id int64, reason string) error
}

// Queue is a bounded queue of accepted notification ids served by a fixed
// pool of workers.
type Queue struct {
	store       QueueStore
	proc        Processor
	workers     int
	maxAttempts int
	retryDelay  time.Duration
	slots       chan struct{}
	items       chan int64
	metrics     *Metrics
	log         *slog.Logger

	wg      sync.WaitGroup
	retries sync.WaitGroup
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	Size        int
	Workers     int
	MaxAttempts int           // default 3
	RetryDelay  time.Duration // default 2s, doubled per attempt
}

// NewQueue builds a queue; call Start to run it.
func NewQueue(st QueueStore, p Processor, o QueueOptions, m *Metrics, log *slog.Logger) *Queue {
	if o.Size <= 0 {
		o.Size = 256
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	return &Queue{
		store: st, proc: p, workers: o.Workers, maxAttempts: o.MaxAttempts, retryDelay: o.RetryDelay,
		slots: make(chan struct{}, o.Size), items: make(chan int64, o.Size), metrics: m, log: log,
	}
}

// TryReserve takes a slot without blocking.
func (q *Queue) TryReserve() bool {
	select {
	case q.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release returns an unused slot.
func (q *Queue) Release() { <-q.slots }

// Push enqueues an id for which a slot was reserved; it never blocks.
func (q *Queue) Push(id int64) {
	q.items <- id
	q.metrics.QueueDepth.Inc()
}

// Saturated reports whether no slot is free (for /readyz).
func (q *Queue) Saturated() bool { return len(q.slots) == cap(q.slots) }

// Start replays notifications left unfinished by an earlier run and starts
// the workers. Workers stop taking new work when ctx ends; work in progress
// continues under workCtx, which the caller cancels when its drain bound
// expires (interrupted notifications go back to pending for the next start).
// Wait blocks until all workers have returned.
func (q *Queue) Start(ctx, workCtx context.Context) error {
	ids, err := q.store.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("replay: listing unfinished notifications: %w", err)
	}
	if len(ids) > 0 {
		q.log.Info("replaying notifications accepted but not processed before the last stop", "count", len(ids))
	}
	for i := 0; i < q.workers; i++ {
		q.wg.Add(1)
		go q.worker(ctx, workCtx)
	}
	if len(ids) > 0 {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			for _, id := range ids {
				select {
				case q.slots <- struct{}{}:
					q.Push(id)
				case <-ctx.Done():
					return // still pending in the store; replayed next start
				}
			}
		}()
	}
	return nil
}

// Wait blocks until the workers and the replay have stopped.
func (q *Queue) Wait() {
	q.wg.Wait()
	q.retries.Wait()
}

func (q *Queue) worker(ctx, workCtx context.Context) {
	defer q.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-q.items:
			<-q.slots
			q.metrics.QueueDepth.Dec()
			q.handle(ctx, workCtx, id)
		}
	}
}

func (q *Queue) handle(ctx, workCtx context.Context, id int64) {
	q.metrics.InFlight.Inc()
	defer q.metrics.InFlight.Dec()
	start := time.Now()
	log := q.log.With("notification_id", id)
	n, err := q.store.Notification(workCtx, id)
	if err != nil {
		log.Error("loading notification failed", "err", err)
		return
	}
	if n.State == store.StateDone || n.State == store.StateFailed {
		return // already handled (a replay raced a live push)
	}
	if err := q.store.StartProcessing(workCtx, id); err != nil {
		log.Error("marking notification processing failed", "err", err)
		return
	}
	msg, perr := Parse(n.Payload)
	if perr == nil {
		perr = q.proc.Process(workCtx, n, msg)
	}
	q.metrics.Duration.Observe(time.Since(start).Seconds())
	switch {
	case perr == nil:
		q.metrics.Processed.WithLabelValues("done").Inc()
		if err := q.store.FinishProcessing(context.WithoutCancel(workCtx), id, nil); err != nil {
			log.Error("marking notification done failed", "err", err)
		}
	case workCtx.Err() != nil || (ctx.Err() != nil && errors.Is(perr, context.Canceled)):
		// Shutdown interrupted the work: leave it for the next start.
		q.metrics.Processed.WithLabelValues("requeued").Inc()
		if err := q.store.Requeue(context.WithoutCancel(workCtx), id, "interrupted by shutdown"); err != nil {
			log.Error("requeueing interrupted notification failed", "err", err)
		}
		log.Warn("notification processing interrupted by shutdown; it will be replayed on the next start")
	case n.Attempts+1 < q.maxAttempts && ctx.Err() == nil:
		q.metrics.Processed.WithLabelValues("retried").Inc()
		delay := q.retryDelay << n.Attempts
		log.Warn("notification processing failed; retrying", "err", perr, "attempt", n.Attempts+1, "retry_in", delay)
		if err := q.store.Requeue(context.WithoutCancel(workCtx), id, perr.Error()); err != nil {
			log.Error("requeueing failed notification failed", "err", err)
			return
		}
		q.retries.Add(1)
		go func() {
			defer q.retries.Done()
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			select {
			case q.slots <- struct{}{}:
				q.Push(id)
			case <-ctx.Done():
			}
		}()
	default:
		q.metrics.Processed.WithLabelValues("failed").Inc()
		log.Error("notification processing failed", "err", perr, "attempts", n.Attempts+1)
		if err := q.store.FinishProcessing(context.WithoutCancel(workCtx), id, perr); err != nil {
			log.Error("marking notification failed failed", "err", err)
		}
	}
}
