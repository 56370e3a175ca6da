package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/testenv"
)

// metricSum sums a metric's series in the app's registry.
func (a *App) metricSum(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// One server process, one diagnosis engine: a rolling_restart plan (its
// coordination gates read a diagnosis) after an alert's diagnosis within
// the cache TTL costs no second round — the plan's diagnosis is served by
// the server's engine, cached. Before the fix the action runtime built its
// own engine: the server ran two (two sets of connections, two rounds of
// one cluster), and the plan's diagnosis never reached the server's
// engine (requests_total stayed 1).
func TestServerHasOneDiagnosisEngine(t *testing.T) {
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{NoAlertmanager: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "admin-pw"), []byte(e.AdminPassword), 0o600)
	src := fmt.Sprintf(`store: {path: chmedic.db}
diagnosis: {cache_ttl: 10m}
clusters:
  - name: test
    clickhouse:
      nodes: [{name: %s, address: '%s', shard: 1, replica: r1}, {name: %s, address: '%s', shard: 1, replica: r2}]
    keeper: {nodes: [{name: zk-1, address: '%s'}]}
    actions:
      clickhouse: {user: %s, password_file: admin-pw}
      rolling_restart:
        command: ["true"]
approvals:
  policies:
    rolling_restart: {requesters: ["*"], approvers: [U0ALICE]}
`, e.ClickHouse[0].Name, e.ClickHouse[0].Addr(), e.ClickHouse[1].Name, e.ClickHouse[1].Addr(), e.ZooKeeper.Addr, e.AdminUser)
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Engine.Diagnose(ctx, "test"); err != nil { // the alert's
		t.Fatal(err)
	}
	_, plan, err := a.Approvals.Request(ctx, approvals.RequestInput{Kind: "rolling_restart", Cluster: "test", User: "U0BOB", Via: "cli"})
	t.Logf("plan: %v (err %v)", plan != nil, err)
	if rounds := a.metricSum(t, "chmedic_diagnosis_rounds_total"); rounds != 1 {
		t.Errorf("chmedic_diagnosis_rounds_total = %v, want 1", rounds)
	}
	if asks := a.metricSum(t, "chmedic_diagnosis_requests_total"); asks != 2 {
		t.Errorf("chmedic_diagnosis_requests_total = %v, want 2 (the alert's and the plan's, through one engine)", asks)
	}
}
