package webhook

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/store"
)

// finishingProc records the outcome itself, as the incident processor
// does in its message's transaction; it fails its first attempts.
type finishingProc struct {
	st    *store.Store
	fails int32
	calls atomic.Int32
	marks chan store.GroupMark
}

func (p *finishingProc) Process(context.Context, store.Notification, *Message) error {
	return errors.New("Process called instead of ProcessAndFinish")
}

func (p *finishingProc) ProcessAndFinish(ctx context.Context, n store.Notification, _ *Message, mark store.GroupMark) error {
	if p.calls.Add(1) <= p.fails {
		return errors.New("transient")
	}
	p.marks <- mark
	return p.st.FinishProcessed(ctx, n.ID, mark)
}

// recordingStore counts the queue's own FinishProcessed calls (the
// processor records through the store itself).
type recordingStore struct {
	*store.Store
	finishes atomic.Int32
}

func (r *recordingStore) FinishProcessed(ctx context.Context, id int64, m store.GroupMark) error {
	r.finishes.Add(1)
	return r.Store.FinishProcessed(ctx, id, m)
}

// TestQueueLetsAFinishingProcessorRecordTheOutcome: with a
// FinishingProcessor the queue hands it the group's mark (the
// notification's alerts) and does not record the outcome a second time;
// a failed attempt is retried as after Process, and the notification ends
// done with its mark.
func TestQueueLetsAFinishingProcessorRecordTheOutcome(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	rs := &recordingStore{Store: s}
	p := &finishingProc{st: s, fails: 1, marks: make(chan store.GroupMark, 1)}
	q := NewQueue(rs, p, QueueOptions{Size: 4, Workers: 1, RetryDelay: time.Millisecond}, NewMetrics(prometheus.NewRegistry()), quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Wait() }()
	if err := q.Start(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "g")
	if !q.TryReserve() {
		t.Fatal("no slot")
	}
	q.Push(id, "g")
	waitState(t, s, id, store.StateDone)
	mark := <-p.marks
	if mark.GroupKey != "g" || mark.NotificationID != id || len(mark.Alerts) != 1 {
		t.Errorf("the processor got the mark %+v, want group g, notification %d and its alert", mark, id)
	}
	if p.calls.Load() != 2 {
		t.Errorf("%d attempts, want 2 (one failure, one retry)", p.calls.Load())
	}
	if n := rs.finishes.Load(); n != 0 {
		t.Errorf("the queue called FinishProcessed %d times: the processor recorded the outcome already", n)
	}
	if m, err := s.GroupMark(context.Background(), "g"); err != nil || m.NotificationID != id {
		t.Errorf("group mark %+v %v", m, err)
	}
}
