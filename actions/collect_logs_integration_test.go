package actions

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/internal/testenv"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	closeFreezeEnv() // ddl_freeze's own environment
	os.Exit(code)
}

// parseConfig parses a config whose secrets come from env.
func parseConfig(t *testing.T, src string, env map[string]string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chmedic.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatalf("config:\n%v\n%s", err, src)
	}
	return cfg
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// readBundle returns the bundle's entries in order, name → content.
func readBundle(t *testing.T, path string) ([]string, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		files[h.Name] = b
	}
	return names, files
}

func manifestOf(t *testing.T, files map[string][]byte) Manifest {
	t.Helper()
	var m Manifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return m
}

func sourceOf(m Manifest, node, source string) (SourceRecord, bool) {
	for _, n := range m.Nodes {
		for _, s := range n.Sources {
			if s.Node == node && s.Source == source {
				return s, true
			}
		}
	}
	return SourceRecord{}, false
}

// waitSecond sleeps until the wall clock has passed the second boundary t.
func waitUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// runCollect plans and runs collect_logs through the Runner on a real store.
func runCollect(t *testing.T, cfg *config.Config, deps Deps, req Request) (Outcome, Plan) {
	t.Helper()
	ctx := t.Context()
	reg, err := NewRegistry(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := reg[CollectLogsKind].Plan(ctx, req)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	// Re-planning gives the same hash (what approval relies on).
	again, _ := reg[CollectLogsKind].Plan(ctx, req)
	if again.Hash() != plan.Hash() {
		t.Fatal("two plans of one request hash differently")
	}
	st := openStore(t, "")
	exec := newExecution(t, st, plan, "")
	out, err := NewRunner(st, reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out, plan
}

// The whole collection against the real ClickHouse 18.16 replicas and
// ZooKeeper, with secrets that really reach system.query_log and the
// server log, and one node that is down.
func TestCollectLogsRealCluster(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	ch := env.ClickHouse[0]

	// Timeline (second-aligned): a marker before the window, the window
	// [anchor-1s, until] with the secrets and a DDL, a marker after it.
	if _, err := ch.Query(ctx, "SELECT throwIf(1, 'chmedic-marker-before')"); err == nil {
		t.Fatal("marker query did not fail")
	}
	anchor := time.Now().Truncate(time.Second).Add(3 * time.Second)
	waitUntil(anchor)
	// 18.16 has no CREATE USER: a syntax error, sent over HTTP so that it
	// reaches query_log with its text (clickhouse-client would refuse it).
	if _, err := ch.Query(ctx, "CREATE USER chmedic_leak IDENTIFIED BY 'TopSecret-123'"); err == nil {
		t.Fatal("CREATE USER worked on 18.16?")
	}
	if _, err := ch.Query(ctx, "SELECT * FROM url('http://alice:UrlSecret-456@127.0.0.1:1/x.csv', CSV, 'a String')"); err == nil {
		t.Fatal("url() to a closed port worked")
	}
	if _, err := ch.Query(ctx, "CREATE TABLE IF NOT EXISTS chmedic_test.collect_ddl_probe (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Truncate(time.Second).Add(time.Second)
	waitUntil(until.Add(1100 * time.Millisecond))
	if _, err := ch.Query(ctx, "SELECT throwIf(1, 'chmedic-marker-after')"); err == nil {
		t.Fatal("marker query did not fail")
	}
	// Wait for the rows to be in query_log (one flush is not always enough).
	deadline := time.Now().Add(20 * time.Second)
	for {
		ch.Query(ctx, "SYSTEM FLUSH LOGS")
		n, _ := ch.QueryInt(ctx, "SELECT count() FROM system.query_log WHERE query LIKE '%chmedic-marker-after%' AND exception != ''")
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("marker never reached query_log")
		}
		time.Sleep(200 * time.Millisecond)
	}

	dead := closedPort(t)
	src := fmt.Sprintf(`
clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: %s, address: '%s'}
        - {name: %s, address: '%s'}
        - {name: ch-dead, address: '%s'}
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CH_ACTIONS_PW}
      collect_logs:
        command: [cat, '%s/{{.Name}}/clickhouse-server.log']
        keeper_command: [cat, '%s']
        log_timezone: Local
        window_before: 1s
        window_after: %s
        query_timeout: 5s
`, env.ClickHouse[0].Name, env.ClickHouse[0].Addr(), env.ClickHouse[1].Name, env.ClickHouse[1].Addr(), dead,
		env.ZooKeeper.Addr, env.AdminUser, env.Dir, env.ZooKeeper.LogPath, until.Sub(anchor))
	cfg := parseConfig(t, src, map[string]string{"CH_ACTIONS_PW": env.AdminPassword})
	dataDir := t.TempDir()
	out, plan := runCollect(t, cfg, Deps{DataDir: dataDir}, Request{Cluster: "test", AlertStart: anchor, Params: map[string]string{}})
	if out.State != ExecSucceeded {
		t.Fatalf("outcome %s: %s\n%v", out.State, out.Error, states(out))
	}
	// The plan shows the window, the nodes and per step the exact SQL or
	// command.
	var d CollectLogsDetails
	json.Unmarshal(plan.Details, &d)
	if !d.Window.Since.Equal(anchor.Add(-time.Second)) || !d.Window.Until.Equal(until) || len(d.Nodes) != 4 {
		t.Errorf("plan details = %+v", d)
	}
	for _, st := range plan.Steps {
		if strings.HasSuffix(st.ID, "/query_log") && (len(st.SQL) != 1 || !strings.Contains(st.SQL[0], "FROM system.query_log")) {
			t.Errorf("step %s SQL = %v", st.ID, st.SQL)
		}
		if st.ID == "ch-1/server_log" && (len(st.Command) != 2 || st.Command[1] != env.Dir+"/ch-1/clickhouse-server.log") {
			t.Errorf("step %s command = %v", st.ID, st.Command)
		}
	}
	if len(out.Artifacts) != 1 {
		t.Fatalf("artifacts = %+v", out.Artifacts)
	}
	names, files := readBundle(t, out.Artifacts[0].Path)
	if names[0] != "manifest.json" {
		t.Fatalf("first entry %q, want manifest.json", names[0])
	}
	m := manifestOf(t, files)
	t.Logf("bundle %s: %v\n%s", out.Artifacts[0].Name, names, out.Steps[len(out.Steps)-1].Result.Output)

	// No secret survives, in any file.
	for name, b := range files {
		for _, secret := range []string{"TopSecret-123", "UrlSecret-456", env.AdminPassword} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the secret %q", name, secret)
			}
		}
	}
	if m.Redactions < 2 {
		t.Errorf("manifest counts %d redactions, want at least 2", m.Redactions)
	}

	// query_log: the window's failed queries and DDL, nothing outside it.
	ql := string(files["ch-1/query_log.jsonl"])
	for _, want := range []string{"IDENTIFIED BY '[REDACTED]'", "alice:[REDACTED]@127.0.0.1", "collect_ddl_probe"} {
		if !strings.Contains(ql, want) {
			t.Errorf("ch-1 query_log lacks %q:\n%s", want, ql)
		}
	}
	for _, outside := range []string{"chmedic-marker-before", "chmedic-marker-after"} {
		if strings.Contains(ql, outside) {
			t.Errorf("ch-1 query_log holds %q, outside the window", outside)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(ql), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("query_log line: %v: %s", err, line)
		}
		et, _ := time.Parse(time.RFC3339, fmt.Sprint(row["event_time"]))
		if et.Before(d.Window.Since) || et.After(d.Window.Until) {
			t.Errorf("query_log row at %s outside [%s, %s]", et, d.Window.Since, d.Window.Until)
		}
	}
	if s, _ := sourceOf(m, "ch-1", "query_log"); s.Status != StatusCollected || s.Rows == 0 || s.Redactions < 2 {
		t.Errorf("ch-1 query_log record = %+v", s)
	}
	// Snapshots.
	if !strings.Contains(string(files["ch-1/replicas.jsonl"]), `"table":"events"`) {
		t.Errorf("replicas snapshot: %s", files["ch-1/replicas.jsonl"])
	}
	if len(files["ch-2/events.jsonl"]) == 0 || len(files["ch-1/replication_queue.jsonl"]) != 0 && !json.Valid(bytes.Split(files["ch-1/replication_queue.jsonl"], []byte("\n"))[0]) {
		t.Error("events / replication_queue snapshots missing")
	}
	// What 18.16 lacks is reported as not available.
	for _, src := range []string{"text_log", "zookeeper_log", "distributed_ddl_queue", "zookeeper_connection"} {
		s, ok := sourceOf(m, "ch-1", src)
		if !ok || s.Status != StatusNotAvailable || !strings.Contains(s.Reason, "18.16") {
			t.Errorf("ch-1 %s = %+v, want not_available on 18.16", src, s)
		}
	}
	// ZooKeeper's four-letter words.
	for _, w := range []string{"mntr", "srvr", "cons", "wchs", "dirs", "conf"} {
		if len(files["zk-1/"+w+".txt"]) == 0 {
			t.Errorf("zk-1/%s.txt missing", w)
		}
	}
	if !strings.Contains(string(files["zk-1/mntr.txt"]), "zk_version") {
		t.Errorf("mntr: %s", files["zk-1/mntr.txt"])
	}
	// The server log through the command: lines of the window only,
	// redacted.
	sl := string(files["ch-1/server_log.log"])
	if !strings.Contains(sl, "chmedic_leak") {
		t.Errorf("ch-1 server log lacks the window's query:\n%.2000s", sl)
	}
	for _, line := range strings.Split(strings.TrimSpace(sl), "\n") {
		if ts, ok := LineTime([]byte(line), time.Local, until); ok && (ts.Before(d.Window.Since) || ts.After(d.Window.Until)) {
			t.Errorf("server log line outside the window: %s", line)
		}
	}
	if s, _ := sourceOf(m, "ch-1", "server_log"); s.Status != StatusCollected || s.Command == nil || s.Command.ExitCode != 0 || s.LinesRead <= s.LinesKept {
		t.Errorf("ch-1 server_log record = %+v", s)
	}
	if s, _ := sourceOf(m, "zk-1", "keeper_log"); s.Status != StatusCollected {
		t.Errorf("zk-1 keeper_log = %+v", s)
	}
	// The dead node: recorded, its other sources skipped without waiting.
	first, _ := sourceOf(m, "ch-dead", "text_log")
	if first.Status != StatusFailed || !first.Unreachable || !strings.Contains(first.Reason, "unreachable") {
		t.Errorf("ch-dead first source = %+v", first)
	}
	if s, _ := sourceOf(m, "ch-dead", "events"); s.Status != StatusSkipped || !strings.Contains(s.Reason, "unreachable") {
		t.Errorf("ch-dead events = %+v", s)
	}
	if s, _ := sourceOf(m, "ch-dead", "server_log"); s.Status != StatusFailed {
		t.Errorf("ch-dead server_log = %+v (cat of a missing file)", s)
	}
	if !strings.Contains(out.Steps[len(out.Steps)-1].Result.Output, "Unreachable: ch-dead") {
		t.Errorf("summary does not name the dead node: %s", out.Steps[len(out.Steps)-1].Result.Output)
	}
	if m.KeeperDegraded != "" {
		t.Errorf("healthy ZooKeeper reported degraded: %s", m.KeeperDegraded)
	}
}

// With ZooKeeper hung, nothing that reads through it is queried:
// system.replicas without its ZooKeeper columns, no distributed_ddl_queue;
// the manifest says so.
func TestCollectLogsKeeperSeverelyDegraded(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	src := fmt.Sprintf(`
clusters:
  - name: test
    clickhouse:
      nodes: [{name: ch-1, address: '%s'}]
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CH_ACTIONS_PW}
      collect_logs:
        sources: [keeper_4lw, replicas, distributed_ddl_queue, events]
        query_timeout: 5s
`, env.ClickHouse[0].Addr(), env.ZooKeeper.Addr, env.AdminUser)
	cfg := parseConfig(t, src, map[string]string{"CH_ACTIONS_PW": env.AdminPassword})
	if err := env.ZooKeeper.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		env.ZooKeeper.Resume()
		if err := env.WaitHealthy(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("environment did not recover: %v", err)
		}
	}()
	out, _ := runCollect(t, cfg, Deps{DataDir: t.TempDir(), Keeper: &keeper.Client{Timeout: 500 * time.Millisecond}}, Request{Cluster: "test", AlertStart: time.Now()})
	if out.State != ExecSucceeded {
		t.Fatalf("%s: %s", out.State, out.Error)
	}
	_, files := readBundle(t, out.Artifacts[0].Path)
	m := manifestOf(t, files)
	if !strings.Contains(m.KeeperDegraded, "none of the 1 coordination nodes answers") {
		t.Errorf("keeper_degraded = %q", m.KeeperDegraded)
	}
	if s, _ := sourceOf(m, "ch-1", "distributed_ddl_queue"); s.Status != StatusSkipped || !strings.Contains(s.Reason, "nothing that reads through it") {
		t.Errorf("distributed_ddl_queue = %+v", s)
	}
	r, _ := sourceOf(m, "ch-1", "replicas")
	if r.Status != StatusCollected || strings.Contains(r.Query, "*") || strings.Contains(r.Query, "total_replicas") || !strings.Contains(r.Query, "is_readonly") {
		t.Errorf("replicas = %+v", r)
	}
	rep := string(files["ch-1/replicas.jsonl"])
	if !strings.Contains(rep, `"table":"events"`) || strings.Contains(rep, "active_replicas") {
		t.Errorf("replicas rows: %s", rep)
	}
	if zk, _ := sourceOf(m, "zk-1", "keeper_4lw"); zk.Status != StatusFailed {
		t.Errorf("zk-1 keeper_4lw = %+v", zk)
	}
}
