package digest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/app"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/internal/testenv"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/digest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// realDigests builds the digest service exactly as `serve` does, over the
// test environment, with the probe user and a fresh store. The growth
// thresholds are low so that a handful of tables shows as growth.
func realDigests(t *testing.T, env *testenv.Env) (*digest.Service, *store.Store) {
	t.Helper()
	return realDigestsTB(t, env)
}

func realDigestsTB(t testing.TB, env *testenv.Env) (*digest.Service, *store.Store) {
	t.Helper()
	// system.query_log exists once the servers flushed it a first time.
	for _, ch := range env.ClickHouse {
		if _, err := ch.Query(context.Background(), "SYSTEM FLUSH LOGS"); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte(env.ProbePassword), 0o600)
	var nodes []string
	for _, c := range env.ClickHouse {
		nodes = append(nodes, fmt.Sprintf("{name: %s, address: %q}", c.Name, c.Addr()))
	}
	yaml := fmt.Sprintf(`clusters:
  - name: test
    clickhouse:
      user: %s
      password_file: pw
      nodes: [%s]
    keeper:
      nodes: [{name: zk-1, address: %q}]
diagnosis:
  cache_ttl: 0s
digests:
  growth:
    replicated_tables: {percent: 1, min: 3}
    znodes: {percent: 1, min: 10}
    ddl: {percent: 50, min: 1}
`, env.ProbeUser, strings.Join(nodes, ", "), env.ZooKeeper.Addr)
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, clusters, closeEngine, err := app.BuildDigestEngine(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEngine() })
	st, err := store.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pbs, err := playbooks.Load("", app.PlaybookValidator())
	if err != nil {
		t.Fatal(err)
	}
	return app.NewDigestService(app.DigestDeps{Config: cfg, Diagnoser: engine, Clusters: clusters, Store: st, Playbooks: pbs, Log: log}), st
}

func run(t *testing.T, s *digest.Service, noStore bool) *digest.Digest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := s.Run(ctx, digest.Request{Source: digest.SourceCLI, Clusters: []string{"test"}, NoStore: noStore})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	digest.WriteText(&b, d)
	t.Logf("digest:\n%s", b.String())
	return d
}

func trend(c *digest.Cluster, name string) digest.Trend {
	for _, tr := range c.Trends {
		if tr.Name == name {
			return tr
		}
	}
	return digest.Trend{}
}

// TestDigestRealFigures: a digest of the healthy real cluster carries real
// figures for every node and says healthy.
func TestDigestRealFigures(t *testing.T) {
	env := testenv.Shared(t)
	s, _ := realDigests(t, env)
	d := run(t, s, false)
	c := d.Clusters[0]
	if d.Verdict != digest.Healthy || c.Verdict != digest.Healthy {
		t.Errorf("verdict %s / %s on a healthy cluster: %+v", d.Verdict, c.Verdict, c.Reasons)
	}
	if c.NodesUp != 2 || c.NodesTotal != 2 {
		t.Errorf("nodes up %d/%d", c.NodesUp, c.NodesTotal)
	}
	if c.ReplicatedTables == nil || *c.ReplicatedTables < 1 || c.ReadonlyReplicas == nil || *c.ReadonlyReplicas != 0 {
		t.Errorf("replicated tables %v, read-only %v", c.ReplicatedTables, c.ReadonlyReplicas)
	}
	if c.MaxReplicationQueue == nil || c.MaxReplicationDelaySeconds == nil || c.StuckQueueEntries == nil {
		t.Errorf("replication figures missing: queue %v delay %v stuck %v", c.MaxReplicationQueue, c.MaxReplicationDelaySeconds, c.StuckQueueEntries)
	}
	// 18.16 has no system.distributed_ddl_queue: said so, not zero.
	if c.DDLQueue.Unfinished == nil && c.DDLQueue.NotAvailable == "" {
		t.Error("DDL queue neither read nor explained")
	}
	if c.DDL.Count == nil || *c.DDL.Count < 1 {
		t.Errorf("DDL over the last day (the environment's own CREATEs): %v (%s)", c.DDL.Count, c.DDL.Note)
	}
	if len(c.Keeper) != 1 {
		t.Fatalf("keeper nodes: %+v", c.Keeper)
	}
	k := c.Keeper[0]
	if k.State != "standalone" || k.Znodes == nil || *k.Znodes < 10 || k.Watches == nil || k.Ephemerals == nil ||
		k.Connections == nil || *k.Connections < 1 || k.OpenFDs == nil || k.MaxFDs == nil || k.AvgLatencyMs == nil || k.Outstanding == nil {
		t.Errorf("keeper figures: %+v", k)
	}
	if !d.Stored || c.PreviousAt != nil {
		t.Errorf("stored %v previous %v", d.Stored, c.PreviousAt)
	}
	if !c.Alerts.Available || c.Freezes.Available || c.Freezes.Note == "" {
		t.Errorf("alerts %+v freezes %+v", c.Alerts, c.Freezes)
	}
}

// TestDigestShowsGrowth: after more replicated tables and DDL on the real
// cluster, the next digest shows each figure against the previous one and
// flags the growth with the runbooks' advice.
func TestDigestShowsGrowth(t *testing.T) {
	env := testenv.Shared(t)
	s, _ := realDigests(t, env)
	first := run(t, s, false)
	c1 := first.Clusters[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 5
	suffix := time.Now().UnixNano()
	var tables []string
	for i := 0; i < n; i++ {
		tbl := fmt.Sprintf("%s.growth_%d_%d", testenv.Database, suffix, i)
		tables = append(tables, tbl)
		for _, ch := range env.ClickHouse {
			q := fmt.Sprintf("CREATE TABLE %s (d Date, id UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/%s', '{replica}') PARTITION BY toYYYYMM(d) ORDER BY id",
				tbl, strings.ReplaceAll(tbl, ".", "/"))
			if _, err := ch.Query(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, tbl := range tables {
			for _, ch := range env.ClickHouse {
				ch.Query(context.Background(), "DROP TABLE IF EXISTS "+tbl)
			}
		}
	})
	for i := 0; i < 3; i++ {
		if _, err := env.ClickHouse[0].Query(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN c%d UInt8 DEFAULT 0", tables[0], i)); err != nil {
			t.Fatal(err)
		}
	}
	// The DDL reaches system.query_log within its flush interval.
	want := int64(2*n + 3)
	var second *digest.Digest
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, ch := range env.ClickHouse {
			ch.Query(ctx, "SYSTEM FLUSH LOGS")
		}
		second = run(t, s, true)
		if c := second.Clusters[0].DDL.Count; (c != nil && *c >= want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	second = run(t, s, false)
	c2 := second.Clusters[0]
	if c2.PreviousAt == nil || !c2.PreviousAt.Equal(first.GeneratedAt) {
		t.Fatalf("previous %v, want the first digest %s", c2.PreviousAt, first.GeneratedAt)
	}
	rt := trend(c2, digest.TrendReplicatedTables)
	if rt.Previous == nil || rt.Delta == nil || *rt.Delta != n || *rt.Previous != float64(*c1.ReplicatedTables) || !rt.Flagged || rt.Advice == "" {
		t.Errorf("replicated tables trend %+v", rt)
	}
	zn := trend(c2, digest.TrendZnodes)
	if zn.Delta == nil || *zn.Delta < 10*n || !zn.Flagged {
		t.Errorf("znodes trend %+v", zn)
	}
	if c2.DDL.Count == nil || *c2.DDL.Count < want || !c2.DDL.Since.Equal(first.GeneratedAt) {
		t.Errorf("DDL since the previous digest: %v since %s (want ≥ %d since %s; %s)", c2.DDL.Count, c2.DDL.Since, want, first.GeneratedAt, c2.DDL.Note)
	}
	if dd := trend(c2, digest.TrendDDL); dd.Delta == nil || *dd.Delta <= 0 || !dd.Flagged {
		t.Errorf("DDL rate trend %+v", dd)
	}
	if second.Verdict != digest.Watch {
		t.Errorf("verdict %s, want watch for growth: %+v", second.Verdict, c2.Reasons)
	}
	var advised bool
	for _, r := range c2.Reasons {
		advised = advised || (r.Playbook == "keeper-metadata-growth" && strings.Contains(r.Advice, "Consolidate"))
	}
	if !advised {
		t.Errorf("no consolidation advice: %+v", c2.Reasons)
	}
}

// TestDigestZooKeeperStopped: with the real ZooKeeper stopped the digest
// says act, names the coordination node and offers the playbook's action.
func TestDigestZooKeeperStopped(t *testing.T) {
	env := testenv.Shared(t)
	s, _ := realDigests(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := env.ZooKeeper.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.ZooKeeper.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := env.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	var d *digest.Digest
	deadline := time.Now().Add(30 * time.Second)
	for {
		d = run(t, s, true)
		if ro := d.Clusters[0].ReadonlyReplicas; (ro != nil && *ro > 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	c := d.Clusters[0]
	if d.Verdict != digest.Act || c.Verdict != digest.Act {
		t.Fatalf("verdict %s with ZooKeeper stopped: %+v", d.Verdict, c.Reasons)
	}
	if !strings.HasPrefix(d.Headline, "Act") || c.Keeper[0].Up || c.Keeper[0].State != "down" {
		t.Errorf("headline %q, keeper %+v", d.Headline, c.Keeper[0])
	}
	var keeperReason bool
	for _, r := range c.Reasons {
		keeperReason = keeperReason || (r.Level == digest.Act && r.Playbook == "keeper-down" && strings.Contains(r.Text, "zk-1"))
	}
	if !keeperReason {
		t.Errorf("no act reason naming zk-1 with the keeper-down playbook: %+v", c.Reasons)
	}
	var freeze bool
	for _, a := range c.Actions {
		freeze = freeze || a.Kind == "ddl_freeze"
	}
	if !freeze {
		t.Errorf("actions %+v, want the playbook's ddl_freeze", c.Actions)
	}
	if c.NodesUp != 2 {
		t.Errorf("ClickHouse nodes up %d/2 (they are up; only coordination is gone)", c.NodesUp)
	}
}

// BenchmarkDigestRealCluster: one digest of the real two-replica cluster
// (a diagnosis round, the DDL count on both nodes, no store write).
//
//	go test ./playbooks/digest/ -run '^$' -bench DigestRealCluster -benchtime 10x
func BenchmarkDigestRealCluster(b *testing.B) {
	env := testenv.Shared(b)
	s, _ := realDigestsTB(b, env)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Run(ctx, digest.Request{Source: digest.SourceCLI, Clusters: []string{"test"}, NoStore: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDigestSharesTheAlertsRound: digests and alert diagnoses asked for at
// once on the real cluster cost one diagnosis round, not one each.
func TestDigestSharesTheAlertsRound(t *testing.T) {
	env := testenv.Shared(t)
	_, _ = realDigests(t, env) // flushes the logs
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte(env.ProbePassword), 0o600)
	var nodes []string
	for _, c := range env.ClickHouse {
		nodes = append(nodes, fmt.Sprintf("{name: %s, address: %q}", c.Name, c.Addr()))
	}
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("clusters:\n  - name: test\n    clickhouse: {user: %s, password_file: pw, nodes: [%s]}\n    keeper: {nodes: [{name: zk-1, address: %q}]}\ndiagnosis: {cache_ttl: 0s}\n",
		env.ProbeUser, strings.Join(nodes, ", "), env.ZooKeeper.Addr)), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	_, clusters, closeEngine, err := app.BuildDigestEngine(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine()
	// The engine as serve builds it, with its round counter.
	engine := diagnose.New(clusters, diagnose.Options{ProbeTimeout: 2 * time.Second, Budget: 5 * time.Second, CacheTTL: -1,
		Thresholds: app.Thresholds(cfg), Keeper: &keeper.Client{Timeout: 2 * time.Second}, Registerer: reg})
	svc := app.NewDigestService(app.DigestDeps{Config: cfg, Diagnoser: engine, Clusters: clusters, Log: log})
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			switch i % 3 {
			case 0: // an alert
				_, err = engine.Diagnose(ctx, "test")
			case 1: // a scheduled digest (one name each: none is skipped)
				_, err = svc.Run(ctx, digest.Request{Name: fmt.Sprintf("d%d", i), Source: digest.SourceScheduled, Clusters: []string{"test"}, NoStore: true})
			default: // on demand
				_, err = svc.Run(ctx, digest.Request{Source: digest.SourceSlack, Clusters: []string{"test"}, NoStore: true})
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := counterSum(t, reg, "chmedic_diagnosis_rounds_total"); got != 1 {
		t.Errorf("%v diagnosis rounds for 10 concurrent asks, want 1", got)
	}
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
