package clickhouse

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// probeNode opens the environment's first replica as the readonly=2 probe
// user, as chmedic does.
func probeNode(t *testing.T, env *testenv.Env, cfg NodeConfig, opts ...Option) *Node {
	t.Helper()
	ch := env.ClickHouse[0]
	cfg.Name, cfg.Addr, cfg.User, cfg.Password = ch.Name, ch.Addr(), env.ProbeUser, env.ProbePassword
	n, err := Open(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestIntegrationQueryTypes(t *testing.T) {
	env := testenv.Shared(t)
	n := probeNode(t, env, NodeConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	v, err := n.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !v.AtLeast(18, 16) || v.Raw == "" {
		t.Errorf("version %+v", v)
	}
	rows, err := n.Query(ctx, "SELECT database, table, is_readonly, total_replicas, absolute_delay, queue_oldest_time, zookeeper_path FROM system.replicas WHERE table = 'events'")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	r := rows[0]
	if r.String("database") != "chmedic_test" || r.Bool("is_readonly") || r.Int("total_replicas") != int64(len(env.ClickHouse)) {
		t.Errorf("row %v", r)
	}
	if _, ok := r["queue_oldest_time"].(time.Time); !ok {
		t.Errorf("queue_oldest_time is %T, want time.Time", r["queue_oldest_time"])
	}
	rows, err = n.Query(ctx, "SELECT count() AS n, toNullable(1) AS one, CAST(NULL AS Nullable(UInt8)) AS none FROM chmedic_test.events")
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Int("n") != testenv.SeedRows || rows[0].Int("one") != 1 || rows[0].Has("none") {
		t.Errorf("row %v", rows[0])
	}
	// Positional arguments are bound by the driver.
	rows, err = n.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND name = ?", "chmedic_test", "events")
	if err != nil || len(rows) != 1 {
		t.Fatalf("bound query: %v %v", rows, err)
	}
}

func TestIntegrationServerErrorsKeepTheirCode(t *testing.T) {
	env := testenv.Shared(t)
	n := probeNode(t, env, NodeConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := n.Query(ctx, "SELECT * FROM system.zookeeper_connection")
	if !IsUnknownTable(err) || ErrorCode(err) != CodeUnknownTable {
		t.Fatalf("missing table on 18.16: %v (code %d)", err, ErrorCode(err))
	}
	if ex := Exception(err); ex == nil || ex.Message == "" {
		t.Errorf("no exception message in %v", err)
	}
	// readonly=2: writes are refused with the server's code.
	_, err = n.Query(ctx, "CREATE TABLE chmedic_test.nope (x UInt8) ENGINE = Memory")
	if ErrorCode(err) != CodeReadonly {
		t.Errorf("DDL as the probe user: %v (code %d), want %d", err, ErrorCode(err), CodeReadonly)
	}
	// The node still works after errors.
	if _, err := n.Query(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

// clickhouse-go sends max_execution_time = seconds left + 5 whenever the
// deadline is over 1 s; the node sends its own value instead.
func TestIntegrationMaxExecutionTimeIsSent(t *testing.T) {
	env := testenv.Shared(t)
	const sql = "SELECT value FROM system.settings WHERE name = 'max_execution_time'"
	for _, c := range []struct {
		name string
		cap  time.Duration
		left time.Duration
		want int
	}{
		{"capped by MaxExecutionTime", 7 * time.Second, 30 * time.Second, 7},
		{"time left, rounded up", 0, 3200 * time.Millisecond, 4},
		{"time left under the cap", 20 * time.Second, 2 * time.Second, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := probeNode(t, env, NodeConfig{MaxExecutionTime: c.cap})
			ctx, cancel := context.WithTimeout(t.Context(), c.left)
			defer cancel()
			rows, err := n.Query(ctx, sql)
			if err != nil {
				t.Fatal(err)
			}
			if got := rows[0].String("value"); got != strconv.Itoa(c.want) {
				t.Errorf("max_execution_time on the server = %s, want %d (the driver alone would send %d)",
					got, c.want, int(c.left.Seconds()+5))
			}
		})
	}
}

func TestIntegrationMaxExecutionTimeIsEnforced(t *testing.T) {
	env := testenv.Shared(t)
	n := probeNode(t, env, NodeConfig{MaxExecutionTime: time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	// One row per block, each sleeping 0.3 s: the server checks the limit
	// between blocks.
	_, err := n.Query(ctx, "SELECT sleep(0.3) FROM system.numbers LIMIT 20 SETTINGS max_block_size = 1")
	el := time.Since(start)
	if ErrorCode(err) != CodeTimeoutExceeded {
		t.Fatalf("err %v (code %d) after %s, want code %d from the server", err, ErrorCode(err), el, CodeTimeoutExceeded)
	}
	if el > 4*time.Second {
		t.Errorf("the server stopped the query after %s, want about 1 s", el)
	}
}

func TestIntegrationConcurrencyBound(t *testing.T) {
	env := testenv.Shared(t)
	const k = 2
	n := probeNode(t, env, NodeConfig{MaxConns: k})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	const sleep = 600 * time.Millisecond
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for range k + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.Query(ctx, "SELECT sleep(0.6)"); err != nil {
				t.Error(err)
			}
			mu.Lock()
			took = append(took, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	// K queries run at once; the (K+1)th starts when one of them ends.
	var slowest time.Duration
	fast := 0
	for _, d := range took {
		slowest = max(slowest, d)
		if d < 2*sleep-100*time.Millisecond {
			fast++
		}
	}
	if fast != k || slowest < 2*sleep-50*time.Millisecond {
		t.Errorf("finish times %v: want %d within one sleep and the last after two", took, k)
	}
	if n.QueriesSent() != k+1 {
		t.Errorf("QueriesSent = %d, want %d", n.QueriesSent(), k+1)
	}
	// A waiting query gives up at its own deadline.
	hold, release := context.WithCancel(ctx)
	defer release()
	for range k {
		go func() { _, _ = n.Query(hold, "SELECT sleep(2)") }()
	}
	waitFor(t, 2*time.Second, func() bool { return len(n.slots) == k })
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	t0 := time.Now()
	_, err := n.Query(short, "SELECT 1")
	if !errors.Is(err, ErrNoSlot) || time.Since(t0) > 400*time.Millisecond {
		t.Errorf("with %d queries in flight: %v after %s, want ErrNoSlot at the 200ms deadline", k, err, time.Since(t0))
	}
}

func TestIntegrationQueryCountingAndCaches(t *testing.T) {
	env := testenv.Shared(t)
	var mu sync.Mutex
	counted := map[string]int{}
	n := probeNode(t, env, NodeConfig{}, WithQueryCounter(func(node string) {
		mu.Lock()
		counted[node]++
		mu.Unlock()
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for range 3 {
		if _, err := n.ServerVersion(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n.QueriesSent() != 1 {
		t.Errorf("3 ServerVersion calls sent %d queries, want 1 (cached)", n.QueriesSent())
	}
	for _, c := range []struct {
		table string
		want  bool
	}{{"replicas", true}, {"zookeeper", true}, {"query_log", true}, {"zookeeper_connection", false}, {"distributed_ddl_queue", false}, {"replicas", true}} {
		got, err := n.HasTable(ctx, "system", c.table)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("HasTable(system.%s) = %v on 18.16", c.table, got)
		}
	}
	if n.QueriesSent() != 2 {
		t.Errorf("after 6 HasTable calls on system: %d queries, want 2 (one list of system tables)", n.QueriesSent())
	}
	if ok, err := n.HasTable(ctx, "chmedic_test", "events"); err != nil || !ok {
		t.Errorf("HasTable(chmedic_test.events) = %v, %v", ok, err)
	}
	if ok, err := n.HasTable(ctx, "chmedic_test", "events"); err != nil || !ok || n.QueriesSent() != 3 {
		t.Errorf("HasTable again: %v, %v, %d queries", ok, err, n.QueriesSent())
	}
	for _, c := range []struct {
		table, col string
		want       bool
	}{{"query_log", "type", true}, {"query_log", "query_kind", false}, {"clusters", "errors_count", false}, {"replicas", "zookeeper_exception", false}, {"query_log", "user", true}} {
		got, err := n.HasColumn(ctx, "system", c.table, c.col)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("HasColumn(system.%s, %s) = %v on 18.16", c.table, c.col, got)
		}
	}
	if n.QueriesSent() != 6 {
		t.Errorf("after column look-ups in 3 tables: %d queries, want 6", n.QueriesSent())
	}
	mu.Lock()
	defer mu.Unlock()
	if counted[n.Name()] != int(n.QueriesSent()) || len(counted) != 1 {
		t.Errorf("counter saw %v, QueriesSent %d", counted, n.QueriesSent())
	}
}

func TestIntegrationMetadataExpires(t *testing.T) {
	env := testenv.Shared(t)
	n := probeNode(t, env, NodeConfig{})
	var mu sync.Mutex
	now := time.Now()
	n.opts.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	step := func(what string, f func() error, wantSent int64) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		if got := n.QueriesSent(); got != wantSent {
			t.Errorf("%s: %d queries sent, want %d", what, got, wantSent)
		}
	}
	hasTable := func(table string, want bool) func() error {
		return func() error {
			got, err := n.HasTable(ctx, "system", table)
			if err == nil && got != want {
				t.Errorf("HasTable(system.%s) = %v", table, got)
			}
			return err
		}
	}
	version := func() error { _, err := n.ServerVersion(ctx); return err }
	step("first look-up lists system tables", hasTable("no_such_table", false), 1)
	advance(30 * time.Second)
	step("a missing table is believed for a while", hasTable("no_such_table", false), 1)
	step("a present table comes from the same list", hasTable("replicas", true), 1)
	advance(31 * time.Second)
	step("a missing table is looked for again after a minute", hasTable("no_such_table", false), 2)
	step("present tables stay cached", hasTable("replicas", true), 2)
	step("version", version, 3)
	step("version cached", version, 3)
	advance(DefaultMetadataTTL)
	step("version read again after the TTL", version, 4)
	step("tables listed again after the TTL", hasTable("replicas", true), 5)
}
