package diagnose_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// eventsNode is a ClickHouse node that answers system.events with a
// transactions counter growing by 100 per query.
type eventsNode struct {
	mu      sync.Mutex
	queries int
}

func (n *eventsNode) Query(context.Context, string, ...any) ([]clickhouse.Row, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queries++
	return []clickhouse.Row{{"event": "ZooKeeperTransactions", "value": uint64(100 * n.queries)}}, nil
}
func (n *eventsNode) ServerVersion(context.Context) (clickhouse.Version, error) {
	return clickhouse.ParseVersion("18.16.1")
}
func (n *eventsNode) HasTable(context.Context, string, string) (bool, error) { return true, nil }
func (n *eventsNode) HasColumn(context.Context, string, string, string) (bool, error) {
	return true, nil
}
func (n *eventsNode) count() int { n.mu.Lock(); defer n.mu.Unlock(); return n.queries }

// TestEngineRatesFromPreviousRound: with RememberSamples (the server), a
// round does not wait to sample the counters twice: the first (cold) round
// has totals and says so, the next one has rates against it; KeepSamplesWarm
// samples a node nobody asked about, so the first round after it has rates.
func TestEngineRatesFromPreviousRound(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	spec := probe.Builtin()["clickhouse.keeper_errors"]
	node := &eventsNode{}
	newEngine := func() *diagnose.Engine {
		e := diagnose.New([]*diagnose.Cluster{{Name: "c", ClickHouse: []diagnose.ClickHouseNode{{Name: "ch-1", Conn: node}}}},
			diagnose.Options{Probes: map[string]probe.Spec{spec.Name: spec}, CacheTTL: -1, Now: clock})
		e.RememberSamples()
		return e
	}
	e := newEngine()
	result := func() probe.Result {
		start := time.Now()
		d, err := e.Diagnose(context.Background(), "c")
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 300*time.Millisecond {
			t.Errorf("the round took %s: it waited to sample the counters", el)
		}
		for _, r := range d.Results {
			if r.Probe == spec.Name {
				return r
			}
		}
		t.Fatal("no keeper_errors result")
		return probe.Result{}
	}
	r := result()
	if !strings.Contains(r.Summary, "counter totals, no rate yet") {
		t.Errorf("cold round: %q", r.Summary)
	}
	advance(20 * time.Second)
	r = result()
	if v, ok := r.Fact("rate_ZooKeeperTransactions"); !ok || v != 5 || !strings.Contains(r.Summary, "over the last 20s") {
		t.Errorf("warm round: rate %v (%v) %q, want 5/s over the last 20s", v, ok, r.Summary)
	}

	// A fresh engine kept warm in the background.
	e = newEngine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	before := node.count()
	go func() { defer close(done); e.KeepSamplesWarm(ctx, time.Minute) }()
	for node.count() == before {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	advance(30 * time.Second)
	r = result()
	if _, ok := r.Fact("rate_ZooKeeperTransactions"); !ok || !strings.Contains(r.Summary, "over the last 30s") {
		t.Errorf("first round after the warm-up: %q, want a rate over the last 30s", r.Summary)
	}
}
