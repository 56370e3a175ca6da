package testenv_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestSharedHealthyAndReplicated(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(env.ClickHouse); got != 2 {
		t.Fatalf("got %d ClickHouse servers, want 2", got)
	}
	for i, c := range env.ClickHouse {
		if want := "ch-" + strconv.Itoa(i+1); c.Name != want || c.Replica != want || c.Shard != testenv.Shard {
			t.Errorf("server %d: name %q replica %q shard %q", i, c.Name, c.Replica, c.Shard)
		}
		n, err := c.QueryInt(ctx, "SELECT count() FROM "+testenv.EventsTable)
		if err != nil {
			t.Fatal(err)
		}
		if n != testenv.SeedRows {
			t.Errorf("%s: %d rows, want %d", c.Name, n, testenv.SeedRows)
		}
		out, err := c.Query(ctx, "SELECT is_readonly, active_replicas, total_replicas, replica_name FROM system.replicas WHERE database = '"+testenv.Database+"' AND table = 'events'")
		if err != nil {
			t.Fatal(err)
		}
		if want := "0\t2\t2\t" + c.Name + "\n"; out != want {
			t.Errorf("%s: system.replicas = %q, want %q", c.Name, out, want)
		}
		out, err = c.Query(ctx, "SELECT macro, substitution FROM system.macros ORDER BY macro")
		if err != nil {
			t.Fatal(err)
		}
		if want := "cluster\t" + env.Cluster + "\nreplica\t" + c.Name + "\nshard\t" + testenv.Shard + "\n"; out != want {
			t.Errorf("%s: macros = %q, want %q", c.Name, out, want)
		}
	}

	// Rows inserted on the second replica reach the first one.
	if _, err := env.ClickHouse[1].Query(ctx, "INSERT INTO "+testenv.EventsTable+" SELECT toDate('2024-03-01'), 100000 + number, 'from ch-2' FROM system.numbers LIMIT 10"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "ch-1 to receive rows inserted on ch-2", func() (bool, string) {
		n, err := env.ClickHouse[0].QueryInt(ctx, "SELECT count() FROM "+testenv.EventsTable+" WHERE message = 'from ch-2'")
		return err == nil && n == 10, strconv.FormatInt(n, 10) + " " + errString(err)
	})
	if _, err := env.ClickHouse[0].Query(ctx, "ALTER TABLE "+testenv.EventsTable+" DELETE WHERE message = 'from ch-2'"); err != nil {
		t.Fatal(err)
	}
	for _, c := range env.ClickHouse {
		waitFor(t, ctx, c.Name+" to apply the DELETE mutation", func() (bool, string) {
			n, err := c.QueryInt(ctx, "SELECT count() FROM "+testenv.EventsTable)
			return err == nil && n == testenv.SeedRows, strconv.FormatInt(n, 10) + " " + errString(err)
		})
	}
}

func TestUsers(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := env.ClickHouse[0]

	// 18.16 has neither currentUser() nor getSetting().
	const settingsQuery = "SELECT name, value FROM system.settings WHERE name IN ('log_queries', 'readonly') ORDER BY name"
	out, err := c.QueryAs(ctx, env.ProbeUser, env.ProbePassword, settingsQuery)
	if err != nil {
		t.Fatal(err)
	}
	if want := "log_queries\t1\nreadonly\t2\n"; out != want {
		t.Errorf("probe user: got %q, want %q", out, want)
	}
	// readonly=2: it may read, and send settings, but not write.
	if _, err := c.QueryAs(ctx, env.ProbeUser, env.ProbePassword, "SELECT count() FROM "+testenv.EventsTable+" SETTINGS max_threads = 1"); err != nil {
		t.Errorf("probe user cannot read with a setting: %v", err)
	}
	_, err = c.QueryAs(ctx, env.ProbeUser, env.ProbePassword, "INSERT INTO "+testenv.EventsTable+" SELECT today(), 1, 'x'")
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("probe user insert: err = %v, want a readonly error", err)
	}
	if _, err := c.QueryAs(ctx, env.ProbeUser, "wrong", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "Code: 193") {
		t.Errorf("wrong password: err = %v, want Code: 193", err)
	}

	out, err = c.Query(ctx, settingsQuery)
	if err != nil {
		t.Fatal(err)
	}
	if want := "log_queries\t1\nreadonly\t0\n"; out != want {
		t.Errorf("admin user: got %q, want %q", out, want)
	}

	// Queries land in system.query_log within about a second.
	marker := "testenv-querylog-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := c.QueryAs(ctx, env.ProbeUser, env.ProbePassword, "SELECT '"+marker+"'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the probe query in system.query_log", func() (bool, string) {
		n, err := c.QueryInt(ctx, "SELECT count() FROM system.query_log WHERE user = '"+env.ProbeUser+"' AND query LIKE '%"+marker+"%' AND query NOT LIKE '%query_log%'")
		return err == nil && n > 0, errString(err)
	})
}

func TestProfileSettingFreezesDDL(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	t.Cleanup(func() {
		if err := env.UnsetProfileSetting(context.Background(), env.AdminUser, "allow_ddl"); err != nil {
			t.Errorf("undo allow_ddl: %v", err)
		}
	})
	if err := env.SetProfileSetting(ctx, env.AdminUser, "allow_ddl", "0"); err != nil {
		t.Fatal(err)
	}
	for _, c := range env.ClickHouse {
		_, err := c.Query(ctx, "CREATE TABLE IF NOT EXISTS default.ddl_frozen (x UInt8) ENGINE = Memory")
		if err == nil || !strings.Contains(err.Error(), "Code: 392") {
			t.Errorf("%s: DDL with allow_ddl=0: err = %v, want Code: 392", c.Name, err)
		}
	}
	data, err := os.ReadFile(env.UsersConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "<allow_ddl>0</allow_ddl>") {
		t.Errorf("%s lacks <allow_ddl>0</allow_ddl>", env.UsersConfigPath)
	}
	if err := env.UnsetProfileSetting(ctx, env.AdminUser, "allow_ddl"); err != nil {
		t.Fatal(err)
	}
	for _, c := range env.ClickHouse {
		if _, err := c.Query(ctx, "CREATE TABLE IF NOT EXISTS default.ddl_frozen (x UInt8) ENGINE = Memory"); err != nil {
			t.Errorf("%s: DDL after undo: %v", c.Name, err)
		}
		if _, err := c.Query(ctx, "DROP TABLE IF EXISTS default.ddl_frozen"); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}

func TestOnClusterDDL(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := env.ClickHouse[0]
	if _, err := c.Query(ctx, "CREATE TABLE IF NOT EXISTS default.on_cluster ON CLUSTER "+env.Cluster+" (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := c.Query(context.Background(), "DROP TABLE IF EXISTS default.on_cluster ON CLUSTER "+env.Cluster); err != nil {
			t.Errorf("drop: %v", err)
		}
	})
	for _, c := range env.ClickHouse {
		n, err := c.QueryInt(ctx, "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'on_cluster'")
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s: table created ON CLUSTER is missing", c.Name)
		}
	}
	n, err := c.QueryInt(ctx, "SELECT count() FROM system.clusters WHERE cluster = '"+env.Cluster+"'")
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(env.ClickHouse)) {
		t.Errorf("system.clusters lists %d replicas of %s, want %d", n, env.Cluster, len(env.ClickHouse))
	}
}

func TestAlertmanagerWebhook(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	type delivery struct {
		auth string
		body []byte
	}
	got := make(chan delivery, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			select {
			case got <- delivery{r.Header.Get("Authorization"), body}:
			default:
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	const token = "hook-token-123"
	if err := env.Alertmanager.SetWebhook(ctx, srv.URL+"/webhook", token); err != nil {
		t.Fatal(err)
	}
	alertname := "TestEnvAlert" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{{
		Labels:       map[string]string{"alertname": alertname, "cluster": env.Cluster, "severity": "critical"},
		Annotations:  map[string]string{"summary": "testenv alert"},
		StartsAt:     time.Now().Add(-time.Minute),
		GeneratorURL: "http://prometheus.invalid/graph",
	}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	select {
	case d := <-got:
		if d.auth != "Bearer "+token {
			t.Errorf("Authorization = %q, want %q", d.auth, "Bearer "+token)
		}
		var msg struct {
			Version  string `json:"version"`
			Status   string `json:"status"`
			Receiver string `json:"receiver"`
			Alerts   []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal(d.body, &msg); err != nil {
			t.Fatalf("webhook body %q: %v", d.body, err)
		}
		if msg.Version != "4" || msg.Status != "firing" || len(msg.Alerts) != 1 || msg.Alerts[0].Labels["alertname"] != alertname {
			t.Errorf("webhook body = %s", d.body)
		}
		t.Logf("webhook delivered %s after PostAlerts", time.Since(t0).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook within 10s")
	}

	// Point it away again so that later tests' alerts do not reach this closed server.
	if err := env.Alertmanager.SetWebhook(ctx, "http://127.0.0.1:1/unused", ""); err != nil {
		t.Fatal(err)
	}
}

// TestZooKeeperFaults uses an environment of its own: it breaks ZooKeeper.
func TestZooKeeperFaults(t *testing.T) {
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{NoAlertmanager: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	dir := env.Dir
	defer func() {
		if err := env.Close(); err != nil {
			t.Error(err)
		}
		if os.Getenv(testenv.EnvKeep) != "1" {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("Close left %s behind (stat: %v)", dir, err)
			}
		}
	}()
	if env.Alertmanager != nil {
		t.Error("NoAlertmanager: Alertmanager is set")
	}
	zk := env.ZooKeeper

	// Hung: SIGSTOP makes ruok go unanswered; SIGCONT recovers at once.
	if err := zk.Pause(); err != nil {
		t.Fatal(err)
	}
	if !zk.Running() || !zk.Paused() {
		t.Errorf("paused ZooKeeper: Running=%v Paused=%v, want true true", zk.Running(), zk.Paused())
	}
	rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = zk.Ruok(rctx)
	rcancel()
	if err == nil {
		t.Error("paused ZooKeeper answered ruok")
	}
	if err := zk.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := zk.Ruok(ctx); err != nil {
		t.Errorf("resumed ZooKeeper: %v", err)
	}

	// Stopped: both replicas turn read-only within the session timeout.
	t0 := time.Now()
	if err := zk.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if zk.Running() {
		t.Error("stopped ZooKeeper still running")
	}
	if err := env.Healthy(ctx); err == nil {
		t.Error("Healthy with ZooKeeper stopped")
	}
	rctx, rcancel = context.WithTimeout(ctx, 10*time.Second)
	for _, c := range env.ClickHouse {
		waitFor(t, rctx, c.Name+" to turn read-only", func() (bool, string) {
			out, err := c.Query(rctx, "SELECT is_readonly FROM system.replicas WHERE database = '"+testenv.Database+"' AND table = 'events'")
			return err == nil && out == "1\n", strings.TrimSpace(out) + errString(err)
		})
	}
	rcancel()
	t.Logf("replicas read-only %s after ZooKeeper stopped", time.Since(t0).Round(time.Millisecond))
	_, err = env.ClickHouse[0].Query(ctx, "INSERT INTO "+testenv.EventsTable+" SELECT today(), 1, 'x'")
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("insert with ZooKeeper down: err = %v, want a readonly error", err)
	}

	// Restarted: WaitHealthy recovers.
	t0 = time.Now()
	if err := zk.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// ClickHouse 18.16 re-initialises its ZooKeeper session every 10 s after
	// losing it: recovery takes up to 10 s, 20 s when a retry comes too early
	// (seen under load).
	hctx, hcancel := context.WithTimeout(ctx, 45*time.Second)
	defer hcancel()
	if err := env.WaitHealthy(hctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("healthy %s after ZooKeeper restarted", time.Since(t0).Round(time.Millisecond))

	// A replica restarted catches up.
	ch2 := env.ClickHouse[1]
	if err := ch2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ClickHouse[0].Query(ctx, "INSERT INTO "+testenv.EventsTable+" SELECT toDate('2024-02-01'), 200000 + number, 'while ch-2 was down' FROM system.numbers LIMIT 5"); err != nil {
		t.Fatal(err)
	}
	if err := ch2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 45*time.Second)
	defer ccancel()
	waitFor(t, cctx, "ch-2 to catch up after its restart", func() (bool, string) {
		n, err := ch2.QueryInt(cctx, "SELECT count() FROM "+testenv.EventsTable)
		return err == nil && n == testenv.SeedRows+5, strconv.FormatInt(n, 10) + " " + errString(err)
	})
	if err := env.WaitHealthy(cctx); err != nil {
		t.Fatal(err)
	}
}

func TestAvailable(t *testing.T) {
	err := testenv.Available()
	if os.Getenv(testenv.EnvRequire) == "1" && err != nil {
		t.Fatalf("Available: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), "missing") {
		t.Errorf("Available error does not name what is missing: %v", err)
	}
}

// waitFor polls cond every 50 ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last: %s)", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A ZooKeeper with ZooKeeper 3.5+'s default whitelist (srvr only) starts,
// serves, answers srvr and refuses ruok the way the real server does.
func TestZooKeeperWithWhitelist(t *testing.T) {
	z := testenv.ZooKeeperFor(t, testenv.ZooKeeperOptions{Whitelist: "srvr"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := z.FourLetterWord(ctx, "srvr")
	if err != nil || !strings.Contains(out, "Mode: standalone") {
		t.Fatalf("srvr: %q, %v", out, err)
	}
	out, err = z.FourLetterWord(ctx, "ruok")
	if err != nil || strings.TrimSpace(out) != "ruok is not executed because it is not in the whitelist." {
		t.Errorf("ruok: %q, %v", out, err)
	}
	if err := z.Alive(ctx); err != nil {
		t.Errorf("Alive: %v", err)
	}
	if z.Allows("ruok") || !z.Allows("srvr") {
		t.Errorf("Allows: whitelist %q", z.Whitelist)
	}
	dir := filepath.Dir(z.Dir)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", dir, err)
	}
}
