package webhook

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/store"
)

// BatchAcceptor stores several notifications in one transaction
// (store.Store.AcceptBatch).
type BatchAcceptor interface {
	AcceptBatch(ctx context.Context, reqs []store.AcceptRequest) []store.AcceptResult
}

// GroupCommitOptions configure a GroupCommit.
type GroupCommitOptions struct {
	// MaxBatch bounds the notifications of one transaction (default 128).
	MaxBatch int
	// MaxWait is how long the first notification of a batch waits for
	// others before the transaction starts, unless MaxBatch arrive first.
	// 0 (the default) waits for none: a batch is what arrived while the
	// previous transaction was committing, so a lone request pays no wait
	// and a burst shares one sync per commit.
	MaxWait time.Duration
	// BatchSize, when set, observes the size of each batch committed.
	BatchSize prometheus.Observer
}

// GroupCommit is an Acceptor that commits concurrent requests together:
// one transaction and one sync to disk (synchronous=FULL) for every
// notification that arrived while the previous commit ran. Each caller
// returns only once its own notification is committed, with its own id,
// duplicate flag or error, so a 200 still means "on disk". Within a batch
// the notifications are deduplicated in arrival order, as one by one.
//
// No goroutine runs in the background: the first caller to find no commit
// under way leads the batch, and hands the lead to the first caller still
// waiting when it is done.
type GroupCommit struct {
	st BatchAcceptor
	o  GroupCommitOptions

	mu      sync.Mutex
	pending []*acceptWaiter
	leading bool
	full    chan struct{} // MaxBatch pending: the leader stops waiting
	// last is when the latest request arrived (Unix nanoseconds).
	last atomic.Int64
}

type acceptWaiter struct {
	req  store.AcceptRequest
	res  store.AcceptResult
	done chan struct{} // closed when res is set
	lead chan struct{} // signalled when this waiter leads the next batch
}

// NewGroupCommit builds a group committer over st.
func NewGroupCommit(st BatchAcceptor, o GroupCommitOptions) *GroupCommit {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 128
	}
	return &GroupCommit{st: st, o: o, full: make(chan struct{}, 1)}
}

// Accept stores n (see store.Store.Accept) in the next batch and returns
// when that batch is committed.
func (g *GroupCommit) Accept(ctx context.Context, n store.Notification, window time.Duration) (int64, bool, error) {
	w := &acceptWaiter{req: store.AcceptRequest{Notification: n, Window: window}, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, w)
	g.last.Store(time.Now().UnixNano())
	lead := !g.leading
	g.leading = true
	if len(g.pending) >= g.o.MaxBatch {
		select {
		case g.full <- struct{}{}:
		default:
		}
	}
	g.mu.Unlock()
	if !lead {
		select {
		case <-w.done:
			return w.res.ID, w.res.Duplicate, w.res.Err
		case <-w.lead:
		}
	}
	// This caller is first in line: it commits the next batch (its own
	// notification is in it), then passes the lead on.
	g.commit(context.WithoutCancel(ctx))
	<-w.done
	return w.res.ID, w.res.Duplicate, w.res.Err
}

func (g *GroupCommit) commit(ctx context.Context) {
	if g.o.MaxWait > 0 {
		g.mu.Lock()
		enough := len(g.pending) >= g.o.MaxBatch
		g.mu.Unlock()
		if !enough {
			t := time.NewTimer(g.o.MaxWait)
			select {
			case <-t.C:
			case <-g.full:
			}
			t.Stop()
		}
	}
	g.mu.Lock()
	k := min(len(g.pending), g.o.MaxBatch)
	batch := make([]*acceptWaiter, k)
	copy(batch, g.pending)
	g.pending = append(g.pending[:0:0], g.pending[k:]...)
	select { // a stale "full" is for no one now
	case <-g.full:
	default:
	}
	g.mu.Unlock()

	reqs := make([]store.AcceptRequest, len(batch))
	for i, w := range batch {
		reqs[i] = w.req
	}
	res := g.st.AcceptBatch(ctx, reqs)
	if g.o.BatchSize != nil {
		g.o.BatchSize.Observe(float64(len(batch)))
	}
	for i, w := range batch {
		w.res = res[i]
		close(w.done)
	}

	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].lead <- struct{}{}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
}

// QuietGap is how long without a webhook request counts as quiet for
// WaitQuiet: a few syncs to disk.
const QuietGap = 2 * time.Millisecond

// WaitQuiet returns once no webhook request has arrived for QuietGap, after
// max, or when ctx ends. The queue's workers call it before each
// notification, so that a burst of webhooks is accepted first and
// processed right after: under a sustained flood processing goes on at one
// notification per worker per max instead of taking the CPU from
// acceptance; a lone alert is processed at once.
func (g *GroupCommit) WaitQuiet(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		now := time.Now()
		quietAt := time.Unix(0, g.last.Load()).Add(QuietGap)
		if !now.Before(quietAt) || !now.Before(deadline) {
			return
		}
		t := time.NewTimer(min(quietAt.Sub(now), deadline.Sub(now)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}
