package webhook

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chmedic/chmedic/internal/store"
)

// flakyStore is the real store with injected failures: fail[op] is how many
// of the next calls of op fail.
type flakyStore struct {
	*store.Store
	mu   sync.Mutex
	fail map[string]int
}

var errDisk = errors.New("disk I/O error")

func (f *flakyStore) failing(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[op] > 0 {
		f.fail[op]--
		return true
	}
	return false
}

func (f *flakyStore) Notification(ctx context.Context, id int64) (store.Notification, error) {
	if f.failing("load") {
		return store.Notification{}, errDisk
	}
	return f.Store.Notification(ctx, id)
}

func (f *flakyStore) StartProcessing(ctx context.Context, id int64) error {
	if f.failing("start") {
		return errDisk
	}
	return f.Store.StartProcessing(ctx, id)
}

func (f *flakyStore) Requeue(ctx context.Context, id int64, reason string) error {
	if f.failing("requeue") {
		return errDisk
	}
	return f.Store.Requeue(ctx, id, reason)
}

func (f *flakyStore) GroupMark(ctx context.Context, key string) (store.GroupMark, error) {
	if f.failing("load_mark") {
		return store.GroupMark{}, errDisk
	}
	return f.Store.GroupMark(ctx, key)
}

func (f *flakyStore) FinishProcessed(ctx context.Context, id int64, m store.GroupMark) error {
	if f.failing("record") {
		return errDisk
	}
	return f.Store.FinishProcessed(ctx, id, m)
}

func (f *flakyStore) MarkStale(ctx context.Context, id int64, reason string) error {
	if f.failing("mark_stale") {
		return errDisk
	}
	return f.Store.MarkStale(ctx, id, reason)
}

// TestQueueRetriesWhatCouldNotStart: when the store cannot load, check or
// mark a notification (or record its outcome, or requeue a failed attempt),
// the notification is retried with backoff in the running process and ends
// done; each error is counted. Before the fix a failed load or start
// returned, leaving the notification pending until the next restart.
func TestQueueRetriesWhatCouldNotStart(t *testing.T) {
	for _, tc := range []struct {
		op        string
		failures  int
		procFails int // the processor fails this many first attempts
		wantCalls int
	}{
		{op: "load", failures: 3, wantCalls: 1},
		{op: "load_mark", failures: 2, wantCalls: 1},
		{op: "start", failures: 2, wantCalls: 1},
		{op: "record", failures: 1, wantCalls: 2}, // processed again: idempotent
		{op: "requeue", failures: 1, procFails: 1, wantCalls: 2},
	} {
		t.Run(tc.op, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
			fs := &flakyStore{Store: s, fail: map[string]int{tc.op: tc.failures}}
			p := newThreads()
			calls := 0
			p.fail = func(store.Notification) error {
				calls++
				if calls <= tc.procFails {
					return errors.New("transient")
				}
				return nil
			}
			q, m := startQueue(t, fs, p, QueueOptions{Size: 4, Workers: 2, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond})
			id := acceptBody(t, s, groupPayload(t, "g", firingAt("a", 1)))
			push(t, q, s, id)
			waitState(t, s, id, store.StateDone)
			p.mu.Lock()
			got := calls
			p.mu.Unlock()
			if got != tc.wantCalls {
				t.Errorf("processor called %d times, want %d", got, tc.wantCalls)
			}
			if n := testutil.ToFloat64(m.QueueErrors.WithLabelValues(tc.op)); n != float64(tc.failures) {
				t.Errorf("queue_store_errors_total{op=%q} = %v, want %d", tc.op, n, tc.failures)
			}
		})
	}
}

// TestQueueRetriesMarkingStale: recording a drop that fails is retried too.
func TestQueueRetriesMarkingStale(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	ctx := context.Background()
	firing := acceptBody(t, s, groupPayload(t, "g", firingAt("a", 1)))
	body := groupPayload(t, "g", resolvedAt("a", 1, 10))
	resolved := acceptBody(t, s, body)
	m, _ := Parse(body)
	s.StartProcessing(ctx, resolved)
	if err := s.FinishProcessed(ctx, resolved, store.GroupMark{GroupKey: "g", NotificationID: resolved, Alerts: m.versions()}); err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{Store: s, fail: map[string]int{"mark_stale": 2}}
	startQueue(t, fs, newThreads(), QueueOptions{Size: 4, Workers: 1, RetryDelay: 5 * time.Millisecond})
	waitState(t, s, firing, store.StateStale)
}

// TestQueueDropsWhatIsNotInTheStore: an id the store does not have (pruned
// or never stored) is dropped with an error, and frees its slot.
func TestQueueDropsWhatIsNotInTheStore(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	q, m := startQueue(t, s, newThreads(), QueueOptions{Size: 1, Workers: 1})
	if !q.TryReserve() {
		t.Fatal("no slot")
	}
	q.Push(12345, "g")
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.QueueErrors.WithLabelValues("load")) != 1 || q.Saturated() {
		if time.Now().After(deadline) {
			t.Fatal("the unknown id was not dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
