package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// TestClickHouseKeeperErrorsFromPreviousRound: with a sample memory (the
// server's engine), a cold round does not wait to sample the counters
// twice: it reads them once and says it has totals, no rate yet; the next
// round computes the rates against that sample and says over how long;
// a sample too old to be recent is not used.
func TestClickHouseKeeperErrorsFromPreviousRound(t *testing.T) {
	now := fixedNow
	sample := func(tx, hw uint64) []clickhouse.Row {
		return []clickhouse.Row{{"event": "ZooKeeperTransactions", "value": tx}, {"event": "ZooKeeperHardwareExceptions", "value": hw}}
	}
	run := func(mem *Samples, rows []clickhouse.Row) (Result, *fakeCH, time.Duration) {
		f := newFake("26", fakeResp{match: "system.events", rows: rows})
		tg := testTarget(f)
		tg.Now = func() time.Time { return now }
		tg.Samples = mem
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		r := clickhouseKeeperErrors().Run(ctx, tg)
		return r, f, time.Since(start)
	}
	mem := NewSamples()
	r, f, took := run(mem, sample(1000, 3))
	if took >= keeperErrorsMinInterval || len(f.queries) != 1 {
		t.Fatalf("cold round took %s and %d queries, want one sample and no wait", took, len(f.queries))
	}
	if r.Status != Unknown || !strings.Contains(r.Summary, "counter totals, no rate yet") {
		t.Errorf("cold round: %s %q, want unknown with the totals and no rate", r.Status, r.Summary)
	}
	if _, ok := r.Fact("rate_ZooKeeperHardwareExceptions"); ok {
		t.Error("a rate without a second sample")
	}
	if v, _ := r.Fact("total_ZooKeeperHardwareExceptions"); v != 3 {
		t.Errorf("total = %v", v)
	}

	now = now.Add(15 * time.Second)
	r, f, took = run(mem, sample(1150, 6))
	if took >= keeperErrorsMinInterval || len(f.queries) != 1 {
		t.Fatalf("warm round took %s and %d queries, want one sample and no wait", took, len(f.queries))
	}
	if v, _ := r.Fact("rate_ZooKeeperTransactions"); !approx(v, 10) {
		t.Errorf("rate_ZooKeeperTransactions = %v, want 10 (150 over 15s)", v)
	}
	if v, _ := r.Fact("sample_seconds"); !approx(v, 15) {
		t.Errorf("sample_seconds = %v, want 15", v)
	}
	if r.Status != Warn || !strings.Contains(r.Summary, "over the last 15s") {
		t.Errorf("warm round: %s %q, want warn (0.2 hardware exceptions/s) saying over how long", r.Status, r.Summary)
	}

	now = now.Add(keeperErrorsMaxAge + time.Second)
	r, _, _ = run(mem, sample(2000, 6))
	if _, ok := r.Fact("rate_ZooKeeperTransactions"); ok || !strings.Contains(r.Summary, "no rate yet") {
		t.Errorf("a sample older than %s was used: %q", keeperErrorsMaxAge, r.Summary)
	}

	// Without a memory (chmedic diagnose) the probe samples twice.
	r, f, _ = run(nil, sample(10, 0))
	if len(f.queries) != 2 {
		t.Errorf("without a memory: %d queries, want two samples", len(f.queries))
	}
	if _, ok := r.Fact("rate_ZooKeeperTransactions"); !ok {
		t.Errorf("without a memory: no rate: %q", r.Summary)
	}
}
