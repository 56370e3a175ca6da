package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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
	Queued(ctx context.Context) ([]store.QueuedNotification, error)
	StartProcessing(ctx context.Context, id int64) error
	FinishProcessing(ctx context.Context, id int64, procErr error) error
	Requeue(ctx context.Context, id int64, reason string) error
	GroupMark(ctx context.Context, groupKey string) (store.GroupMark, error)
	FinishProcessed(ctx context.Context, id int64, mark store.GroupMark) error
	MarkStale(ctx context.Context, id int64, reason string) error
}

// Queue is a bounded queue of accepted notification ids served by a fixed
// pool of workers. One group's notifications are processed one at a time,
// in the order they were accepted, and each is compared with the group's
// last processed one (see the ordering rule in order.go): stale ones are
// dropped. A notification whose processing cannot start (the store cannot
// load or mark it) is retried with backoff while the process runs.
type Queue struct {
	store         QueueStore
	proc          Processor
	workers       int
	maxAttempts   int
	retryDelay    time.Duration
	maxRetryDelay time.Duration
	slots         chan struct{}
	items         chan queuedItem
	metrics       *Metrics
	log           *slog.Logger

	mu sync.Mutex
	// busy holds the groups that have a notification in the items channel
	// or being processed, each with the ids waiting behind it (ascending).
	// A waiting id keeps its queue slot.
	busy map[string][]int64
	// queued holds the ids in the queue (in the channel or waiting) and
	// inFlight those being processed, so an id pushed again meanwhile (a
	// replay racing a live push) is processed once; a retry's own push
	// only checks queued.
	queued   map[int64]bool
	inFlight map[int64]bool
	// startFailures counts, per id, the attempts that could not start.
	startFailures map[int64]int
	yield         func(ctx context.Context)

	wg      sync.WaitGroup
	retries sync.WaitGroup
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	Size          int
	Workers       int
	MaxAttempts   int           // default 3
	RetryDelay    time.Duration // default 2s, doubled per attempt
	MaxRetryDelay time.Duration // bound on the doubling for retries of a start; default 1m
	// Yield, when set, runs before each notification is processed: the
	// app passes GroupCommit.WaitQuiet, so that workers give way to a
	// burst of webhook requests (YieldBound at most each time).
	Yield func(ctx context.Context)
}

// YieldBound is how long a worker gives way to a webhook burst before
// each notification (QueueOptions.Yield). Measured with make bench's
// ingest scenario: with 50 ms the processing still going on (about 2 ms of
// CPU per storm notification) pushed the accepted p99 past twice the bare
// server's on 2 cores; a flood's first notification waits at most this.
const YieldBound = 250 * time.Millisecond

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
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = time.Minute
	}
	if o.MaxRetryDelay < o.RetryDelay {
		o.MaxRetryDelay = o.RetryDelay
	}
	return &Queue{
		store: st, proc: p, workers: o.Workers, maxAttempts: o.MaxAttempts, retryDelay: o.RetryDelay, maxRetryDelay: o.MaxRetryDelay,
		slots: make(chan struct{}, o.Size), items: make(chan queuedItem, o.Size), metrics: m, log: log,
		busy: map[string][]int64{}, queued: map[int64]bool{}, inFlight: map[int64]bool{}, startFailures: map[int64]int{},
		yield: o.Yield,
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

// queuedItem is an id in the items channel.
type queuedItem struct {
	id       int64
	groupKey string
}

// Push enqueues an id of the group for which a slot was reserved; it never
// blocks. When the group already has a notification queued or in progress,
// the id waits behind it, so one group's notifications are processed one at
// a time, in ascending id (acceptance) order among those waiting.
func (q *Queue) Push(id int64, groupKey string) { q.push(id, groupKey, false) }

func (q *Queue) push(id int64, groupKey string, retry bool) {
	q.mu.Lock()
	if q.queued[id] || (q.inFlight[id] && !retry) {
		q.mu.Unlock()
		<-q.slots // already queued: give the slot back
		return
	}
	q.queued[id] = true
	q.metrics.QueueDepth.Inc()
	if waiting, busy := q.busy[groupKey]; busy {
		q.busy[groupKey] = insertID(waiting, id)
		q.mu.Unlock()
		return
	}
	q.busy[groupKey] = nil
	q.mu.Unlock()
	q.items <- queuedItem{id: id, groupKey: groupKey} // at most one per slot: never blocks
}

// Saturated reports whether no slot is free (for /readyz).
func (q *Queue) Saturated() bool { return len(q.slots) == cap(q.slots) }

// Start replays notifications left unfinished by an earlier run and starts
// the workers. Workers stop taking new work when ctx ends; work in progress
// continues under workCtx, which the caller cancels when its drain bound
// expires (interrupted notifications go back to pending for the next start).
// Wait blocks until all workers have returned.
func (q *Queue) Start(ctx, workCtx context.Context) error {
	ids, err := q.store.Queued(ctx)
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
			for _, n := range ids {
				select {
				case q.slots <- struct{}{}:
					q.Push(n.ID, n.GroupKey)
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
		case it := <-q.items:
			q.serve(ctx, workCtx, it)
		}
	}
}

// serve processes the group's queued notification, then those that
// waited behind it, until none is left.
func (q *Queue) serve(ctx, workCtx context.Context, it queuedItem) {
	id := it.id
	for {
		if q.yield != nil {
			t0 := time.Now()
			q.yield(ctx)
			if q.metrics != nil {
				q.metrics.Yielded.Add(time.Since(t0).Seconds())
			}
		}
		q.dequeued(id)
		if n, ok := q.load(ctx, workCtx, id, it.groupKey); ok {
			q.handle(ctx, workCtx, n)
		}
		q.mu.Lock()
		delete(q.inFlight, id)
		q.mu.Unlock()
		var more bool
		if id, more = q.next(ctx, it.groupKey); !more {
			return
		}
	}
}

// next pops the group's next waiting id, or releases the group. On
// shutdown the waiting ids stay pending in the store for the next start.
func (q *Queue) next(ctx context.Context, key string) (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := q.busy[key]
	if len(waiting) == 0 || ctx.Err() != nil {
		delete(q.busy, key)
		return 0, false
	}
	q.busy[key] = waiting[1:]
	return waiting[0], true
}

// insertID inserts id into the ascending ids, once.
func insertID(ids []int64, id int64) []int64 {
	i := sort.Search(len(ids), func(i int) bool { return ids[i] >= id })
	if i < len(ids) && ids[i] == id {
		return ids
	}
	ids = append(ids, 0)
	copy(ids[i+1:], ids[i:])
	ids[i] = id
	return ids
}

// dequeued frees the slot of an id leaving the queue.
func (q *Queue) dequeued(id int64) {
	q.mu.Lock()
	delete(q.queued, id)
	q.inFlight[id] = true
	q.mu.Unlock()
	<-q.slots
	q.metrics.QueueDepth.Dec()
}

// load reads a notification leaving the queue. When it cannot, the
// notification is dropped if it is not in the store, else retried later.
func (q *Queue) load(ctx, workCtx context.Context, id int64, groupKey string) (store.Notification, bool) {
	n, err := q.store.Notification(workCtx, id)
	if err == nil {
		return n, true
	}
	if errors.Is(err, store.ErrNotFound) {
		q.metrics.QueueErrors.WithLabelValues("load").Inc()
		q.log.Error("a queued notification is not in the store; dropping it", "notification_id", id, "err", err)
		return n, false
	}
	q.startFailed(ctx, id, groupKey, "load", err)
	return n, false
}

// startFailed schedules another try of a notification whose processing
// could not start or whose outcome could not be recorded, with a delay
// doubling per failure up to maxRetryDelay, for as long as the process runs.
func (q *Queue) startFailed(ctx context.Context, id int64, groupKey, op string, err error) {
	q.metrics.QueueErrors.WithLabelValues(op).Inc()
	q.mu.Lock()
	q.startFailures[id]++
	k := q.startFailures[id]
	q.mu.Unlock()
	delay := q.retryDelay
	for i := 1; i < k && delay < q.maxRetryDelay; i++ {
		delay *= 2
	}
	delay = min(delay, q.maxRetryDelay)
	if ctx.Err() != nil {
		q.log.Error("notification store error during shutdown; the notification is replayed on the next start",
			"notification_id", id, "op", op, "err", err)
		return
	}
	q.log.Error("notification store error; retrying the notification", "notification_id", id, "op", op,
		"err", err, "failures", k, "retry_in", delay)
	q.retryAfter(ctx, id, groupKey, delay)
}

// retryAfter pushes id again after delay (taking a slot, waiting for one
// if need be), unless ctx ends first: then it stays unfinished in the
// store and is replayed on the next start.
func (q *Queue) retryAfter(ctx context.Context, id int64, groupKey string, delay time.Duration) {
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
			q.push(id, groupKey, true)
		case <-ctx.Done():
		}
	}()
}

// started forgets the start failures of id.
func (q *Queue) started(id int64) {
	q.mu.Lock()
	delete(q.startFailures, id)
	q.mu.Unlock()
}

// handle processes one notification; its group is held by the caller.
func (q *Queue) handle(ctx, workCtx context.Context, n store.Notification) {
	q.metrics.InFlight.Inc()
	defer q.metrics.InFlight.Dec()
	start := time.Now()
	id := n.ID
	log := q.log.With("notification_id", id, "group_key", n.GroupKey)
	if n.State == store.StateDone || n.State == store.StateFailed || n.State == store.StateStale {
		q.started(id)
		return // already handled (a replay raced a live push)
	}
	msg, perr := Parse(n.Payload)
	var versions map[string]store.AlertVersion
	if perr == nil {
		versions = msg.versions()
		mark, err := q.store.GroupMark(workCtx, n.GroupKey)
		switch {
		case err == nil:
			if reason := staleReason(id, versions, mark); reason != "" {
				if err := q.store.MarkStale(context.WithoutCancel(workCtx), id, reason); err != nil {
					q.startFailed(ctx, id, n.GroupKey, "mark_stale", err)
					return
				}
				q.started(id)
				q.metrics.Processed.WithLabelValues("stale").Inc()
				log.Warn("dropped a stale notification: its group already processed a newer one",
					"status", n.Status, "reason", reason)
				return
			}
		case !errors.Is(err, store.ErrNotFound):
			q.startFailed(ctx, id, n.GroupKey, "load_mark", err)
			return
		}
	}
	if err := q.store.StartProcessing(workCtx, id); err != nil {
		q.startFailed(ctx, id, n.GroupKey, "start", err)
		return
	}
	q.started(id)
	mark := store.GroupMark{GroupKey: n.GroupKey, NotificationID: id, Alerts: versions}
	finished := false // recorded done by the processor (finish.go)
	if perr == nil {
		if fp, ok := q.proc.(FinishingProcessor); ok {
			perr = fp.ProcessAndFinish(workCtx, n, msg, mark)
			finished = perr == nil
		} else {
			perr = q.proc.Process(workCtx, n, msg)
		}
	}
	q.metrics.Duration.Observe(time.Since(start).Seconds())
	switch {
	case perr == nil && finished:
		q.metrics.Processed.WithLabelValues("done").Inc()
	case perr == nil:
		q.metrics.Processed.WithLabelValues("done").Inc()
		if err := q.store.FinishProcessed(context.WithoutCancel(workCtx), id, mark); err != nil {
			// Processing is idempotent: do it again rather than leave the
			// notification "processing" until the next start.
			q.startFailed(ctx, id, n.GroupKey, "record", err)
		}
	case workCtx.Err() != nil || (ctx.Err() != nil && errors.Is(perr, context.Canceled)):
		// Shutdown interrupted the work: leave it for the next start.
		q.metrics.Processed.WithLabelValues("requeued").Inc()
		if err := q.store.Requeue(context.WithoutCancel(workCtx), id, "interrupted by shutdown"); err != nil {
			// Still "processing" in the store, which the next start replays too.
			q.metrics.QueueErrors.WithLabelValues("requeue").Inc()
			log.Error("requeueing interrupted notification failed; it is replayed on the next start anyway", "err", err)
		}
		log.Warn("notification processing interrupted by shutdown; it will be replayed on the next start")
	case n.Attempts+1 < q.maxAttempts && ctx.Err() == nil:
		q.metrics.Processed.WithLabelValues("retried").Inc()
		delay := q.retryDelay << n.Attempts
		log.Warn("notification processing failed; retrying", "err", perr, "attempt", n.Attempts+1, "retry_in", delay)
		if err := q.store.Requeue(context.WithoutCancel(workCtx), id, perr.Error()); err != nil {
			// The retry below still happens; the store says "processing",
			// which a restart replays as well.
			q.metrics.QueueErrors.WithLabelValues("requeue").Inc()
			log.Error("requeueing failed notification failed", "err", err)
		}
		q.retryAfter(ctx, id, n.GroupKey, delay)
	default:
		q.metrics.Processed.WithLabelValues("failed").Inc()
		log.Error("notification processing failed", "err", perr, "attempts", n.Attempts+1)
		if err := q.store.FinishProcessing(context.WithoutCancel(workCtx), id, perr); err != nil {
			q.startFailed(ctx, id, n.GroupKey, "record", err)
		}
	}
}
