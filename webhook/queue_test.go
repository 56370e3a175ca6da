package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/store"
)

type procFunc func(ctx context.Context, n store.Notification, m *Message) error

func (f procFunc) Process(ctx context.Context, n store.Notification, m *Message) error {
	return f(ctx, n, m)
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func accept(t *testing.T, s *store.Store, groupKey string) int64 {
	t.Helper()
	body := readFixture(t, "firing-1.json")
	m, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	m.GroupKey = groupKey
	id, _, err := s.Accept(context.Background(), store.Notification{GroupKey: groupKey, Status: m.Status, AlertCount: 1, DedupKey: m.DedupKey(), Payload: body}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitState(t *testing.T, s *store.Store, id int64, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := s.Notification(context.Background(), id)
		if err == nil && n.State == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, _ := s.Notification(context.Background(), id)
	t.Fatalf("notification %d state %q, want %q", id, n.State, want)
}

func quietLog() *slog.Logger {
	if os.Getenv("QLOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestQueueReplaysUnfinishedAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := openStore(t, path)
	// A crash: one notification accepted, one half-processed.
	a := accept(t, s, "g1")
	b := accept(t, s, "g2")
	if err := s.StartProcessing(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	q := NewQueue(s, procFunc(func(_ context.Context, n store.Notification, _ *Message) error {
		mu.Lock()
		seen[n.ID]++
		mu.Unlock()
		return nil
	}), QueueOptions{Size: 4, Workers: 2}, NewMetrics(prometheus.NewRegistry()), quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, a, store.StateDone)
	waitState(t, s, b, store.StateDone)
	cancel()
	q.Wait()
	if seen[a] != 1 || seen[b] != 1 {
		t.Fatalf("processed %v, want each once", seen)
	}
}

func TestQueueRetriesThenFails(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	var calls atomic.Int32
	q := NewQueue(s, procFunc(func(context.Context, store.Notification, *Message) error {
		if calls.Add(1) == 1 {
			return errors.New("transient")
		}
		return nil
	}), QueueOptions{Size: 4, Workers: 1, RetryDelay: time.Millisecond}, NewMetrics(prometheus.NewRegistry()), quietLog())
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
	if calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2 (one failure, one retry)", calls.Load())
	}

	perm := accept(t, s, "g-perm")
	q2 := NewQueue(s, procFunc(func(context.Context, store.Notification, *Message) error { return errors.New("broken") }),
		QueueOptions{Size: 4, Workers: 1, MaxAttempts: 2, RetryDelay: time.Millisecond}, NewMetrics(prometheus.NewRegistry()), quietLog())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer func() { cancel2(); q2.Wait() }()
	if err := q2.Start(ctx2, context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, perm, store.StateFailed)
	n, _ := s.Notification(context.Background(), perm)
	if n.Attempts != 2 || n.LastError != "broken" {
		t.Fatalf("attempts %d error %q", n.Attempts, n.LastError)
	}
}

func TestQueueShutdownRequeuesInterruptedWork(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	started := make(chan struct{})
	q := NewQueue(s, procFunc(func(ctx context.Context, _ store.Notification, _ *Message) error {
		close(started)
		<-ctx.Done() // a diagnosis that outlives the drain bound
		return ctx.Err()
	}), QueueOptions{Size: 4, Workers: 1}, NewMetrics(prometheus.NewRegistry()), quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	workCtx, cancelWork := context.WithCancel(context.Background())
	if err := q.Start(ctx, workCtx); err != nil {
		t.Fatal(err)
	}
	id := accept(t, s, "g")
	q.TryReserve()
	q.Push(id, "g")
	<-started
	cancel()     // SIGTERM: stop taking work
	cancelWork() // the drain bound expired
	q.Wait()
	n, _ := s.Notification(context.Background(), id)
	if n.State != store.StatePending {
		t.Fatalf("state %q, want pending so the next start replays it", n.State)
	}
	ids, _ := s.Unfinished(context.Background())
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("unfinished = %v", ids)
	}
}

func TestQueueSaturation(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	q := NewQueue(s, procFunc(func(context.Context, store.Notification, *Message) error { return nil }),
		QueueOptions{Size: 2, Workers: 1}, NewMetrics(prometheus.NewRegistry()), quietLog())
	for i := 0; i < 2; i++ {
		if !q.TryReserve() {
			t.Fatalf("could not reserve slot %d of 2", i+1)
		}
	}
	if q.TryReserve() {
		t.Fatal("reserved a third slot of two")
	}
	if !q.Saturated() {
		t.Fatal("not saturated")
	}
	q.Release()
	if q.Saturated() {
		t.Fatal("still saturated after release")
	}
}
