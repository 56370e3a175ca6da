package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// stubDiagnoser answers a healthy one-node round, optionally waiting first.
type stubDiagnoser struct {
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (s *stubDiagnoser) Diagnose(ctx context.Context, cluster string) (*diagnose.Diagnosis, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &diagnose.Diagnosis{Cluster: cluster, Verdict: "No problem found", Status: probe.OK, Results: []probe.Result{
		{Probe: "clickhouse.ping", Node: "ch-1", Status: probe.OK, Facts: map[string]float64{"up": 1}},
		{Probe: "keeper.ruok", Node: "zk-1", Status: probe.OK, Facts: map[string]float64{"ok": 1}},
	}}, nil
}

func digestTestSetup(t *testing.T, clock *fakeClock, d *stubDiagnoser) (*config.Config, *store.Store, func() *DigestScheduler) {
	t.Helper()
	cfg, err := config.Parse("c.yaml", []byte(`
clusters:
  - name: prod
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:1"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2"}]}
slack: {channel: "#alerts"}
digests:
  missed_run_max_age: 6h
  schedules:
    - {name: daily, schedule: "0 9 * * *", time_zone: Europe/Berlin, channel: "#health"}
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Each call is a fresh start of chmedic on the same store.
	start := func() *DigestScheduler {
		svc := NewDigestService(DigestDeps{Config: cfg, Diagnoser: d, Store: st, Log: log, Now: clock.Now})
		return NewDigestScheduler(cfg, svc, st, nil, log, clock.Now, nil)
	}
	return cfg, st, start
}

// posts lists the digest messages queued in the outbox.
func posts(t *testing.T, st *store.Store) []store.OutboxEntry {
	t.Helper()
	es, err := st.DueOutbox(context.Background(), time.Now().Add(1000*time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.OutboxEntry
	for _, e := range es {
		if strings.HasPrefix(e.ThreadKey, "digest:") && e.Kind == store.KindPost {
			out = append(out, e)
		}
	}
	return out
}

func berlin(t *testing.T, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDigestMissedRunPostedOnceAtStartUp: chmedic was down at 09:00; the
// start at 10:30 posts that run once, a second start posts nothing more,
// and a run older than missed_run_max_age is not posted at all.
func TestDigestMissedRunPostedOnceAtStartUp(t *testing.T) {
	clock := &fakeClock{t: berlin(t, "2026-12-01 08:00")}
	_, st, start := digestTestSetup(t, clock, &stubDiagnoser{})
	ctx := context.Background()

	// First start ever: nothing was missed, the record starts now.
	s := start()
	if n := s.CatchUp(ctx); n != 0 {
		t.Fatalf("fresh install posted %d missed runs", n)
	}
	s.Wait()
	// It ran at 09:00 on Dec 1, then chmedic was down until Dec 2 10:30.
	if err := st.RecordDigestRun(ctx, "daily", berlin(t, "2026-12-01 09:00")); err != nil {
		t.Fatal(err)
	}
	clock.Set(berlin(t, "2026-12-02 10:30"))
	s = start()
	if n := s.CatchUp(ctx); n != 1 {
		t.Fatalf("start after the missed run: %d runs posted, want 1", n)
	}
	s.Wait()
	ps := posts(t, st)
	if len(ps) != 1 || ps[0].ThreadKey != DigestThreadKey("daily", berlin(t, "2026-12-02 09:00")) || ps[0].Channel != "#health" {
		t.Fatalf("posts after the first restart: %+v", ps)
	}
	if !strings.Contains(string(ps[0].Body), "missed") {
		t.Errorf("the late post does not say it is a missed run: %s", ps[0].Body)
	}
	// Another restart a quarter of an hour later: already posted.
	clock.Set(berlin(t, "2026-12-02 10:45"))
	s = start()
	if n := s.CatchUp(ctx); n != 0 {
		t.Fatalf("second restart posted %d more", n)
	}
	s.Wait()
	// Down for two days: the latest missed run (Dec 4 09:00) is 11 h old,
	// beyond the 6 h bound; nothing is replayed.
	clock.Set(berlin(t, "2026-12-04 20:00"))
	s = start()
	if n := s.CatchUp(ctx); n != 0 {
		t.Fatalf("too-old runs posted: %d", n)
	}
	s.Wait()
	if ps := posts(t, st); len(ps) != 1 {
		t.Fatalf("%d digest posts in the end, want 1", len(ps))
	}
}

// TestDigestSchedulerOnFakeClock: the scheduler waits exactly until the
// next run in the digest's zone, fires it, and posts it once.
func TestDigestSchedulerOnFakeClock(t *testing.T) {
	clock := &fakeClock{t: berlin(t, "2026-12-01 08:59")}
	cfg, st, _ := digestTestSetup(t, clock, &stubDiagnoser{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := NewDigestService(DigestDeps{Config: cfg, Diagnoser: &stubDiagnoser{}, Store: st, Log: log, Now: clock.Now})
	waits := make(chan time.Duration)
	fire := make(chan time.Time)
	s := NewDigestScheduler(cfg, svc, st, nil, log, clock.Now, func(d time.Duration) <-chan time.Time {
		waits <- d
		return fire
	})
	if got := s.NextRuns(clock.Now())["daily"]; !got.Equal(berlin(t, "2026-12-01 09:00")) {
		t.Fatalf("next run %s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	if d := <-waits; d != time.Minute {
		t.Fatalf("scheduler waits %s, want 1m", d)
	}
	clock.Set(berlin(t, "2026-12-01 09:00"))
	fire <- clock.Now()
	// It then waits for the next day's run (24h in December).
	if d := <-waits; d != 24*time.Hour {
		t.Fatalf("then waits %s, want 24h", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(posts(t, st)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	ps := posts(t, st)
	if len(ps) != 1 || ps[0].ThreadKey != DigestThreadKey("daily", berlin(t, "2026-12-01 09:00")) {
		t.Fatalf("posts: %+v", ps)
	}
	if last, ok, _ := st.LastDigestRun(context.Background(), "daily"); !ok || !last.Equal(berlin(t, "2026-12-01 09:00")) {
		t.Errorf("last run recorded %s %v", last, ok)
	}
}

// TestDigestRunStillGoingIsSkippedNotStacked: a run due while the previous
// one of the same digest is still going is skipped: one diagnosis, one post.
func TestDigestRunStillGoingIsSkippedNotStacked(t *testing.T) {
	clock := &fakeClock{t: berlin(t, "2026-12-01 09:00")}
	d := &stubDiagnoser{release: make(chan struct{})}
	_, st, start := digestTestSetup(t, clock, d)
	s := start()
	e := s.entries[0]
	ctx := context.Background()
	go s.fire(ctx, e, berlin(t, "2026-12-01 09:00"), "scheduled")
	for {
		d.mu.Lock()
		n := d.calls
		d.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.fire(ctx, e, berlin(t, "2026-12-02 09:00"), "scheduled") // returns at once: skipped
	close(d.release)
	deadline := time.Now().Add(10 * time.Second)
	for len(posts(t, st)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if ps := posts(t, st); len(ps) != 1 || d.calls != 1 {
		t.Fatalf("%d posts and %d diagnoses, want 1 and 1", len(ps), d.calls)
	}
	// The next run carries the note.
	s.fire(ctx, e, berlin(t, "2026-12-03 09:00"), "scheduled")
	ps := posts(t, st)
	if len(ps) != 2 || !strings.Contains(string(ps[1].Body), "skipped") {
		t.Fatalf("the next digest does not say a run was skipped: %d posts", len(ps))
	}
}

// TestAlertsReceivedByName counts, per cluster, the distinct alerts that
// fired and the notifications about them, from the stored payloads.
func TestAlertsReceivedByName(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	cfg, err := config.Parse("c.yaml", []byte(`
clusters:
  - name: prod
    match: ['cluster="prod"']
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:1"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2"}]}
  - name: other
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:1"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2"}]}
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	accept := func(payload string) {
		t.Helper()
		if _, _, err := st.Accept(ctx, store.Notification{GroupKey: "g", Status: "firing", AlertCount: 1, DedupKey: payload, Payload: []byte(payload)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	old := `{"version":"4","status":"firing","commonLabels":{"cluster":"prod"},"alerts":[{"status":"firing","fingerprint":"f0","labels":{"alertname":"Old","cluster":"prod"}}]}`
	accept(old)
	clock.Set(clock.Now().Add(2 * time.Hour))
	since := clock.Now().Add(-time.Hour)
	// Two notifications about the same two ZooKeeperDown alerts, one about
	// a replica alert that resolved, one for the other cluster.
	zk := `{"version":"4","status":"firing","commonLabels":{"alertname":"ZooKeeperDown","cluster":"prod"},"alerts":[` +
		`{"status":"firing","fingerprint":"a1","labels":{"alertname":"ZooKeeperDown","cluster":"prod","instance":"zk-1"}},` +
		`{"status":"firing","fingerprint":"a2","labels":{"alertname":"ZooKeeperDown","cluster":"prod","instance":"zk-2"}}]}`
	accept(zk)
	accept(strings.Replace(zk, `"status":"firing","commonLabels"`, `"status":"firing","receiver":"again","commonLabels"`, 1))
	accept(`{"version":"4","status":"resolved","commonLabels":{"cluster":"prod"},"alerts":[{"status":"resolved","fingerprint":"r1","labels":{"alertname":"ReadonlyReplica","cluster":"prod"}}]}`)
	accept(`{"version":"4","status":"firing","alerts":[{"status":"firing","fingerprint":"o1","labels":{"alertname":"Other"}}]}`)
	accept(`not json`)

	src := &storeAlerts{st: st, cfg: cfg}
	got, err := src.AlertsSince(ctx, "prod", since)
	if err != nil {
		t.Fatal(err)
	}
	want := "ZooKeeperDown firing=2 notifications=2; ReadonlyReplica firing=0 notifications=1"
	var parts []string
	for _, a := range got.ByName {
		parts = append(parts, fmt.Sprintf("%s firing=%d notifications=%d", a.Name, a.Firing, a.Notifications))
	}
	if s := strings.Join(parts, "; "); s != want {
		t.Errorf("prod alerts: %s, want %s", s, want)
	}
	other, _ := src.AlertsSince(ctx, "other", since)
	if len(other.ByName) != 1 || other.ByName[0].Name != "Other" {
		t.Errorf("other cluster: %+v", other.ByName)
	}
}

func TestRejectionsReadFromTheRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chmedic_webhook_rejected_total", Help: "h"}, []string{"reason"})
	reg.MustRegister(c)
	c.WithLabelValues("unauthorized").Add(3)
	c.WithLabelValues("queue_full").Inc()
	started := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	got, at, ok, err := registryRejections{g: reg, started: started}.Rejections(context.Background())
	if err != nil || !ok || !at.Equal(started) || got["unauthorized"] != 3 || got["queue_full"] != 1 || len(got) != 2 {
		t.Fatalf("%v %s %v %v", got, at, ok, err)
	}
	if _, _, ok, _ := (noRejections{}).Rejections(context.Background()); ok {
		t.Error("outside serve the rejections must be reported as not available")
	}
}

// TestDigestNowThroughTheApp: the runtime's on-demand digest over an
// unreachable cluster says act (nothing answers), is stored, and refuses
// an unknown cluster.
func TestDigestNowThroughTheApp(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(`
store: {path: s.db}
diagnosis: {probe_timeout: 500ms, budget: 1s}
clusters:
  - name: prod
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:1"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:1"}]}
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.DigestNow(context.Background(), "nope", "slack"); err == nil {
		t.Error("unknown cluster accepted")
	}
	d, err := a.DigestNow(context.Background(), "", "slack")
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != "act" || !d.Stored || len(d.Clusters) != 1 || d.Clusters[0].NodesUp != 0 {
		t.Errorf("digest: %s stored=%v %+v", d.Verdict, d.Stored, d.Clusters[0].Reasons)
	}
	if _, err := a.Store.LatestDigest(context.Background(), "prod"); err != nil {
		t.Errorf("not stored: %v", err)
	}
}
