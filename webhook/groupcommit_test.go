package webhook

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// slowBatches commits through the store after a pause, so that the
// requests arriving meanwhile form the next batch; it records the batches.
type slowBatches struct {
	st    *store.Store
	pause time.Duration
	mu    sync.Mutex
	sizes []int
	fail  func(store.AcceptRequest) bool
}

func (s *slowBatches) AcceptBatch(ctx context.Context, reqs []store.AcceptRequest) []store.AcceptResult {
	time.Sleep(s.pause)
	s.mu.Lock()
	s.sizes = append(s.sizes, len(reqs))
	s.mu.Unlock()
	if s.fail != nil {
		out := make([]store.AcceptResult, len(reqs))
		for i, r := range reqs {
			if s.fail(r) {
				out[i].Err = errors.New("disk I/O error")
				continue
			}
			out[i].ID, out[i].Duplicate, out[i].Err = s.st.Accept(ctx, r.Notification, r.Window)
		}
		return out
	}
	return s.st.AcceptBatch(ctx, reqs)
}

func openGCStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestGroupCommitSharesTransactions: concurrent requests are committed
// together, each gets its own id, and all are in the store on return.
func TestGroupCommitSharesTransactions(t *testing.T) {
	st := openGCStore(t)
	sb := &slowBatches{st: st, pause: 20 * time.Millisecond}
	g := NewGroupCommit(sb, GroupCommitOptions{MaxBatch: 16})
	const n = 64
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, dup, err := g.Accept(context.Background(), store.Notification{GroupKey: fmt.Sprintf("g%d", i), Status: "firing", DedupKey: "k", Payload: []byte("{}")}, time.Minute)
			if err != nil || dup {
				t.Errorf("request %d: %v, duplicate %v", i, err, dup)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, id := range ids {
		n, err := st.Notification(context.Background(), id)
		if err != nil || n.GroupKey != fmt.Sprintf("g%d", i) || seen[id] {
			t.Errorf("request %d: id %d: %+v %v", i, id, n.GroupKey, err)
		}
		seen[id] = true
	}
	total := 0
	for _, s := range sb.sizes {
		total += s
		if s > 16 {
			t.Errorf("a batch of %d above MaxBatch 16", s)
		}
	}
	if total != n || len(sb.sizes) >= n/2 {
		t.Errorf("batches %v: want %d requests in far fewer transactions", sb.sizes, n)
	}
}

// TestGroupCommitDedupWithinABatch: two notifications of one group in the
// same transaction deduplicate as one after the other: the second compares
// with the first (a repeat is a duplicate of it, a change is new).
func TestGroupCommitDedupWithinABatch(t *testing.T) {
	st := openGCStore(t)
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	n := func(key string) store.Notification {
		return store.Notification{ReceivedAt: now, GroupKey: "g", Status: "firing", DedupKey: key, Payload: []byte("{}")}
	}
	res := st.AcceptBatch(context.Background(), []store.AcceptRequest{
		{Notification: n("a"), Window: time.Minute},
		{Notification: n("a"), Window: time.Minute}, // repeat of the first
		{Notification: n("b"), Window: time.Minute}, // a change
		{Notification: n("a"), Window: time.Minute}, // back to a: compares with b, new
		{Notification: n("a"), Window: 0},           // no dedup
	})
	want := []bool{false, true, false, false, false}
	for i, r := range res {
		if r.Err != nil || r.Duplicate != want[i] {
			t.Errorf("request %d: duplicate %v, err %v; want duplicate %v", i, r.Duplicate, r.Err, want[i])
		}
	}
	if res[1].ID != res[0].ID {
		t.Errorf("the repeat names %d, want the first's id %d", res[1].ID, res[0].ID)
	}
	if !(res[0].ID < res[2].ID && res[2].ID < res[3].ID && res[3].ID < res[4].ID) {
		t.Errorf("ids not in arrival order: %+v", res)
	}
}

// TestGroupCommitErrorsAreEach: a request whose store write fails gets the
// error; the others of its batch are stored and answered.
func TestGroupCommitErrorsAreEach(t *testing.T) {
	st := openGCStore(t)
	sb := &slowBatches{st: st, pause: 10 * time.Millisecond, fail: func(r store.AcceptRequest) bool { return r.Notification.GroupKey == "bad" }}
	g := NewGroupCommit(sb, GroupCommitOptions{})
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for _, key := range []string{"a", "bad", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := g.Accept(context.Background(), store.Notification{GroupKey: key, Status: "firing", DedupKey: key, Payload: []byte("{}")}, time.Minute)
			mu.Lock()
			errs[key] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for key, err := range errs {
		if (err != nil) != (key == "bad") {
			t.Errorf("%s: %v", key, err)
		}
	}
}

// TestAcceptBatchFailureIsPerNotification: the store's batch gives each
// notification its own outcome when one of them cannot be stored.
func TestAcceptBatchFailureIsPerNotification(t *testing.T) {
	st := openGCStore(t)
	res := st.AcceptBatch(context.Background(), []store.AcceptRequest{
		{Notification: store.Notification{GroupKey: "a", Status: "firing", DedupKey: "a", Payload: []byte("{}")}},
		{Notification: store.Notification{GroupKey: "b", Status: "firing", DedupKey: "b", Payload: nil}}, // NOT NULL payload
		{Notification: store.Notification{GroupKey: "c", Status: "firing", DedupKey: "c", Payload: []byte("{}")}},
	})
	if res[0].Err != nil || res[1].Err == nil || res[2].Err != nil {
		t.Fatalf("results %+v", res)
	}
	for _, i := range []int{0, 2} {
		if _, err := st.Notification(context.Background(), res[i].ID); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}
