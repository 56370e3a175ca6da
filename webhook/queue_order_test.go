package webhook

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chmedic/chmedic/internal/store"
)

// acceptBody stores a payload as the handler would (no deduplication).
func acceptBody(t *testing.T, s *store.Store, body []byte) int64 {
	t.Helper()
	m, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := s.Accept(context.Background(), store.Notification{GroupKey: m.GroupKey, Status: m.Status,
		AlertCount: len(m.Alerts), DedupKey: m.DedupKey(), Payload: body}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// threads is a processor that plays a Slack thread per group: it records
// the status each group's message shows, every "Firing again" it would
// post, the order of the notifications and how many of one group ran at
// once.
type threads struct {
	mu         sync.Mutex
	status     map[string]string
	refired    map[string]int
	order      map[string][]int64
	inFlight   map[string]int
	maxInGroup int
	total      int
	maxTotal   int
	sleep      time.Duration
	fail       func(n store.Notification) error
}

func newThreads() *threads {
	return &threads{status: map[string]string{}, refired: map[string]int{}, order: map[string][]int64{}, inFlight: map[string]int{}}
}

func (p *threads) Process(_ context.Context, n store.Notification, m *Message) error {
	p.mu.Lock()
	p.inFlight[n.GroupKey]++
	p.total++
	p.maxInGroup = max(p.maxInGroup, p.inFlight[n.GroupKey])
	p.maxTotal = max(p.maxTotal, p.total)
	p.mu.Unlock()
	time.Sleep(p.sleep)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight[n.GroupKey]--
	p.total--
	if p.fail != nil {
		if err := p.fail(n); err != nil {
			return err
		}
	}
	if p.status[n.GroupKey] == "resolved" && m.Status == "firing" {
		p.refired[n.GroupKey]++
	}
	p.status[n.GroupKey] = m.Status
	p.order[n.GroupKey] = append(p.order[n.GroupKey], n.ID)
	return nil
}

func startQueue(t *testing.T, s QueueStore, p Processor, o QueueOptions) (*Queue, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	q := NewQueue(s, p, o, m, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); q.Wait() })
	return q, m
}

// push enqueues stored notifications as the handler does.
func push(t *testing.T, q *Queue, s *store.Store, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		n, err := s.Notification(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !q.TryReserve() {
			t.Fatal("queue full")
		}
		q.Push(id, n.GroupKey)
	}
}

// TestQueueSerializesEachGroup: four workers, three groups; one group's
// notifications never run at once and run in the order accepted, while
// different groups do run at once. Before the fix the workers took
// consecutive notifications of one group concurrently (maxInGroup 4).
func TestQueueSerializesEachGroup(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	var ids []int64
	for _, g := range []string{"g1", "g2", "g3"} {
		for i := 0; i < 12; i++ {
			ids = append(ids, acceptBody(t, s, groupPayload(t, g, firingAt("a", 1), firingAt(fmt.Sprint("b", i), 2+i))))
		}
	}
	p := newThreads()
	p.sleep = 3 * time.Millisecond
	// A backlog replayed at start: the replay pushes them all at once.
	startQueue(t, s, p, QueueOptions{Size: 64, Workers: 4})
	for _, id := range ids {
		waitState(t, s, id, store.StateDone)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maxInGroup != 1 {
		t.Errorf("up to %d notifications of one group processed at once, want 1", p.maxInGroup)
	}
	if p.maxTotal < 2 {
		t.Errorf("at most %d notifications processed at once, want groups in parallel", p.maxTotal)
	}
	for g, order := range p.order {
		for i := 1; i < len(order); i++ {
			if order[i] <= order[i-1] {
				t.Errorf("group %s processed in order %v, want ascending ids", g, order)
				break
			}
		}
	}
}

// TestQueueDropsARetriedFiringAfterItsResolve: the firing fails once and is
// retried after the resolve was processed; it must be dropped as stale,
// not flip the thread back to firing with a "Firing again". Before the fix
// it was processed (state done, thread firing).
func TestQueueDropsARetriedFiringAfterItsResolve(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	firing := acceptBody(t, s, groupPayload(t, "g", firingAt("a", 1)))
	resolved := acceptBody(t, s, groupPayload(t, "g", resolvedAt("a", 1, 10)))
	p := newThreads()
	failed := false
	p.fail = func(n store.Notification) error {
		if n.ID == firing && !failed {
			failed = true
			return errors.New("diagnosis budget exceeded")
		}
		return nil
	}
	q, m := startQueue(t, s, p, QueueOptions{Size: 8, Workers: 4, RetryDelay: 100 * time.Millisecond})
	push(t, q, s, firing, resolved)
	waitState(t, s, resolved, store.StateDone)
	waitState(t, s, firing, "stale")
	n, _ := s.Notification(context.Background(), firing)
	if n.LastError == "" {
		t.Error("the drop records no reason")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status["g"] != "resolved" || p.refired["g"] != 0 {
		t.Fatalf("thread %q with %d \"Firing again\", want resolved and none", p.status["g"], p.refired["g"])
	}
	if got := testutil.ToFloat64(m.Processed.WithLabelValues("stale")); got != 1 {
		t.Errorf("processed{result=stale} = %v, want 1", got)
	}
}

// TestQueueProcessesARefireInOrder: firing, resolved, firing again (new
// startsAt) pushed at once to four workers: all three are processed, in
// order, and the thread ends firing.
func TestQueueProcessesARefireInOrder(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	ids := []int64{
		acceptBody(t, s, groupPayload(t, "g", firingAt("a", 1))),
		acceptBody(t, s, groupPayload(t, "g", resolvedAt("a", 1, 10))),
		acceptBody(t, s, groupPayload(t, "g", firingAt("a", 12))),
	}
	p := newThreads()
	p.sleep = 5 * time.Millisecond
	q, _ := startQueue(t, s, p, QueueOptions{Size: 8, Workers: 4})
	push(t, q, s, ids...)
	for _, id := range ids {
		waitState(t, s, id, store.StateDone)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if fmt.Sprint(p.order["g"]) != fmt.Sprint(ids) || p.status["g"] != "firing" || p.refired["g"] != 1 {
		t.Fatalf("order %v status %s refired %d, want %v, firing, 1", p.order["g"], p.status["g"], p.refired["g"], ids)
	}
}

// TestQueueReplayDropsWhatANewerNotificationSuperseded: a crash left the
// firing pending while the resolve after it was processed; on the next
// start the replayed firing is stale and the processor never sees it.
func TestQueueReplayDropsWhatANewerNotificationSuperseded(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	ctx := context.Background()
	firing := acceptBody(t, s, groupPayload(t, "g", firingAt("a", 1)))
	body := groupPayload(t, "g", resolvedAt("a", 1, 10))
	resolved := acceptBody(t, s, body)
	m, _ := Parse(body)
	if err := s.StartProcessing(ctx, resolved); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishProcessed(ctx, resolved, store.GroupMark{GroupKey: "g", NotificationID: resolved, Alerts: m.versions()}); err != nil {
		t.Fatal(err)
	}
	p := newThreads()
	startQueue(t, s, p, QueueOptions{Size: 8, Workers: 2})
	waitState(t, s, firing, store.StateStale)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order["g"]) != 0 {
		t.Fatalf("processed %v, want nothing", p.order["g"])
	}
}
