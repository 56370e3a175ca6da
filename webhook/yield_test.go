package webhook

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/store"
)

// A worker does not start a notification while Yield holds it back (the
// app's Yield waits for a webhook burst to pass).
func TestQueueYieldsBeforeEachNotification(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	release := make(chan struct{})
	yielding := make(chan struct{}, 8)
	processed := make(chan int64, 8)
	q := NewQueue(s, procFunc(func(_ context.Context, n store.Notification, _ *Message) error {
		processed <- n.ID
		return nil
	}), QueueOptions{Size: 4, Workers: 1, Yield: func(ctx context.Context) {
		yielding <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}}, NewMetrics(prometheus.NewRegistry()), quietLog())
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
	<-yielding
	if n, _ := s.Notification(context.Background(), id); n.State != store.StatePending {
		t.Fatalf("state %q while the worker yields, want pending", n.State)
	}
	select {
	case got := <-processed:
		t.Fatalf("notification %d processed while the worker yields", got)
	default:
	}
	close(release)
	if got := <-processed; got != id {
		t.Fatalf("processed %d, want %d", got, id)
	}
	waitState(t, s, id, store.StateDone)
}

// WaitQuiet returns: at once when no request came, within its bound while
// requests keep coming, and when its context ends. (A hang fails the test
// by its timeout; nothing here is timed.)
func TestGroupCommitWaitQuietReturns(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "g.db"))
	g := NewGroupCommit(st, GroupCommitOptions{})
	g.WaitQuiet(context.Background(), time.Hour) // no request ever: quiet

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a flood: one request after the other
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := store.Notification{ReceivedAt: time.Now(), GroupKey: "g", Status: "firing", DedupKey: time.Now().String(), Payload: []byte("{}")}
			if _, _, err := g.Accept(context.Background(), n, 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for g.last.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	g.WaitQuiet(context.Background(), 10*time.Millisecond) // bounded under the flood
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.WaitQuiet(ctx, time.Hour) // cancelled
	close(stop)
	<-done
	// Once the flood is over, quiet comes without waiting out a long bound.
	g.WaitQuiet(context.Background(), time.Hour)
}
