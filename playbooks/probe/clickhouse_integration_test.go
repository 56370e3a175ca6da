package probe

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/testenv"
)

// recorder is a probe.ClickHouse that records the statements sent through
// it (the meta look-ups happen inside the node and are not seen).
type recorder struct {
	*clickhouse.Node
	mu      sync.Mutex
	queries []string
}

func (r *recorder) Query(ctx context.Context, q string, args ...any) ([]clickhouse.Row, error) {
	r.mu.Lock()
	r.queries = append(r.queries, q)
	r.mu.Unlock()
	return r.Node.Query(ctx, q, args...)
}

func openNode(t *testing.T, name, addr string, env *testenv.Env) *recorder {
	t.Helper()
	cfg := clickhouse.NodeConfig{Name: name, Addr: addr}
	if env != nil {
		cfg.User, cfg.Password = env.ProbeUser, env.ProbePassword
	}
	n, err := clickhouse.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &recorder{Node: n}
}

func clickhouseSpecs() []Spec {
	var specs []Spec
	for _, s := range Builtin() {
		if s.Kind == KindClickHouse {
			specs = append(specs, s)
		}
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// runAll runs every ClickHouse probe against ch with a deadline each and
// checks that each returns within it.
func runAll(t *testing.T, node string, ch ClickHouse, deadline time.Duration) map[string]Result {
	t.Helper()
	out := map[string]Result{}
	for _, s := range clickhouseSpecs() {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		tg := &Target{Cluster: testenv.ClusterName, Node: node, ClickHouse: ch, Thresholds: DefaultThresholds(), Now: time.Now}
		start := time.Now()
		r := s.Run(ctx, tg)
		el := time.Since(start)
		cancel()
		if el > deadline+200*time.Millisecond {
			t.Errorf("%s on %s took %s, over its %s deadline", s.Name, node, el, deadline)
		}
		if r.Summary == "" {
			t.Errorf("%s on %s: empty summary", s.Name, node)
		}
		t.Logf("%-28s %-4s %-7s %s %v %v", s.Name, node, r.Status, r.Summary, r.Facts, r.Attrs)
		out[s.Name] = r
	}
	return out
}

func fact(t *testing.T, r Result, name string) float64 {
	t.Helper()
	v, ok := r.Fact(name)
	if !ok {
		t.Errorf("%s: fact %s missing (summary %q, facts %v)", r.Probe, name, r.Summary, r.Facts)
	}
	return v
}

func TestIntegrationClickHouseProbesHealthy(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ch := range env.ClickHouse {
		// query_log exists once the server has flushed it a first time.
		if _, err := ch.Query(ctx, "SYSTEM FLUSH LOGS"); err != nil {
			t.Fatal(err)
		}
		rec := openNode(t, ch.Name, ch.Addr(), env)
		res := runAll(t, ch.Name, rec, 5*time.Second)
		for name, r := range res {
			r.Probe = name
			switch {
			case r.Status == Crit || r.Error != "":
				t.Errorf("%s on healthy %s: %s %q (error %q)", name, ch.Name, r.Status, r.Summary, r.Error)
			case r.Status == Unknown && !strings.Contains(r.Summary, "not available") && !strings.Contains(r.Summary, "not a live one") &&
				!strings.Contains(r.Summary, "rates unknown"):
				t.Errorf("%s on healthy %s: unknown without a reason: %q", name, ch.Name, r.Summary)
			case r.Status == Warn && name != "clickhouse.keeper_latency":
				// Latency depends on the machine's load; everything else
				// has no reason to warn on a fresh cluster.
				t.Errorf("%s on healthy %s: warn: %q", name, ch.Name, r.Summary)
			}
		}
		if fact(t, res["clickhouse.ping"], "up") != 1 || res["clickhouse.ping"].Attrs["version"] == "" {
			t.Errorf("ping: %+v", res["clickhouse.ping"])
		}
		if fact(t, res["clickhouse.keeper_latency"], "keeper_reachable") != 1 {
			t.Errorf("keeper_latency: %+v", res["clickhouse.keeper_latency"])
		}
		r := res["clickhouse.replicas"]
		r.Probe = "clickhouse.replicas"
		if fact(t, r, "replicated_tables") < 1 || fact(t, r, "readonly_replicas") != 0 || fact(t, r, "inactive_replicas") != 0 {
			t.Errorf("replicas: %v", r.Facts)
		}
		if fact(t, res["clickhouse.metadata"], "tables_root_children") < 1 {
			t.Errorf("metadata: %v", res["clickhouse.metadata"].Facts)
		}
		if _, ok := res["clickhouse.ddl_storm"].Facts["ddl_count"]; !ok {
			t.Errorf("ddl_storm on a server with query_log: %q", res["clickhouse.ddl_storm"].Summary)
		}
		if !strings.Contains(res["clickhouse.ddl_queue"].Summary, "not available on ClickHouse 18.16") {
			t.Errorf("ddl_queue on 18.16: %q", res["clickhouse.ddl_queue"].Summary)
		}
		if _, ok := res["clickhouse.keeper_errors"].Facts["rate_ZooKeeperTransactions"]; !ok {
			t.Errorf("keeper_errors without rates: %q", res["clickhouse.keeper_errors"].Summary)
		}
		// What the probes sent to 18.16 is what LegacyQueries lists.
		checkListed(t, rec.queries, LegacyQueries())
	}
}

// Every statement the probes send to 18.16 runs there as the readonly=2
// probe user and returns the columns the probes read.
func TestIntegrationLegacyQueriesRunOn1816(t *testing.T) {
	env := testenv.Shared(t)
	ch := env.ClickHouse[0]
	n := openNode(t, ch.Name, ch.Addr(), env)
	for _, q := range LegacyQueries() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		rows, err := n.Query(ctx, q.SQL)
		cancel()
		if err != nil {
			t.Errorf("%s/%s: %v\n%s", q.Probe, q.Name, err, q.SQL)
			continue
		}
		if len(rows) == 0 {
			t.Logf("%s/%s: no rows (columns not checked)", q.Probe, q.Name)
			continue
		}
		for _, c := range q.Columns {
			if _, ok := rows[0][c]; !ok {
				t.Errorf("%s/%s: result has no column %q (has %v)", q.Probe, q.Name, c, keys(rows[0]))
			}
		}
	}
}

func keys(r clickhouse.Row) []string {
	var out []string
	for k := range r {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestIntegrationZooKeeperStopped(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	var nodes []*recorder
	for _, ch := range env.ClickHouse {
		nodes = append(nodes, openNode(t, ch.Name, ch.Addr(), env))
	}
	if err := env.ZooKeeper.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		// Not t.Context(): it is cancelled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.ZooKeeper.Start(ctx); err != nil {
			t.Fatalf("restart ZooKeeper: %v", err)
		}
		if err := env.WaitHealthy(ctx); err != nil {
			t.Fatalf("environment not healthy after the restart: %v", err)
		}
	}
	t.Cleanup(restart) // leave the shared environment as we found it

	replicas, latency, sessions := clickhouseReplicas(), clickhouseKeeperLatency(), clickhouseKeeperSessions()
	run := func(s Spec, i int) Result {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		tg := &Target{Node: env.ClickHouse[i].Name, ClickHouse: nodes[i], Thresholds: DefaultThresholds(), Now: time.Now}
		start := time.Now()
		r := s.Run(c, tg)
		if el := time.Since(start); el > 3200*time.Millisecond {
			t.Errorf("%s took %s", s.Name, el)
		}
		r.Probe = s.Name
		return r
	}
	// Replicas turn read-only once the session times out (6 s here).
	for i := range env.ClickHouse {
		var r Result
		deadline := time.Now().Add(30 * time.Second)
		for {
			r = run(replicas, i)
			if v, _ := r.Fact("readonly_replicas"); v > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("ZooKeeper stopped, %s: replicas %s %q %v %v", env.ClickHouse[i].Name, r.Status, r.Summary, r.Facts, r.Attrs)
		if r.Status != Crit || fact(t, r, "readonly_replicas") < 1 {
			t.Errorf("%s: replicas %s %q, want crit with read-only replicas", env.ClickHouse[i].Name, r.Status, r.Summary)
		}
		if !strings.Contains(r.Attrs["readonly_tables"], testenv.EventsTable) {
			t.Errorf("%s: readonly_tables %q does not name %s", env.ClickHouse[i].Name, r.Attrs["readonly_tables"], testenv.EventsTable)
		}
		l := run(latency, i)
		t.Logf("ZooKeeper stopped, %s: keeper_latency %s %q", env.ClickHouse[i].Name, l.Status, l.Summary)
		if l.Status != Crit || fact(t, l, "keeper_reachable") != 0 || l.Error == "" {
			t.Errorf("%s: keeper_latency %s %q, want crit with keeper_reachable=0", env.ClickHouse[i].Name, l.Status, l.Summary)
		}
		s := run(sessions, i)
		t.Logf("ZooKeeper stopped, %s: keeper_sessions %s %q %v", env.ClickHouse[i].Name, s.Status, s.Summary, s.Facts)
		if s.Status != Crit || fact(t, s, "session_expired") != 1 {
			t.Errorf("%s: keeper_sessions %s %q, want crit with session_expired=1", env.ClickHouse[i].Name, s.Status, s.Summary)
		}
	}
	// Every other probe still answers within its deadline.
	for i, ch := range env.ClickHouse {
		runAll(t, ch.Name+"(zk down)", nodes[i], 3*time.Second)
	}

	restart()
	for i := range env.ClickHouse {
		r := run(replicas, i)
		if r.Status != OK || fact(t, r, "readonly_replicas") != 0 {
			t.Errorf("after the restart: replicas %s %q", r.Status, r.Summary)
		}
		l := run(latency, i)
		if l.Status == Crit || fact(t, l, "keeper_reachable") != 1 {
			t.Errorf("after the restart: keeper_latency %s %q", l.Status, l.Summary)
		}
	}
}

func TestIntegrationStoppedNode(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	down, up := env.ClickHouse[1], env.ClickHouse[0]
	downNode := openNode(t, down.Name, down.Addr(), env)
	upNode := openNode(t, up.Name, up.Addr(), env)
	// Warm the caches as a running chmedic would have.
	runAll(t, down.Name, downNode, 5*time.Second)

	if err := down.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is cancelled before cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := down.Start(ctx); err != nil {
			t.Fatalf("restart %s: %v", down.Name, err)
		}
		if err := env.WaitHealthy(ctx); err != nil {
			t.Fatalf("environment not healthy after restarting %s: %v", down.Name, err)
		}
	})
	res := runAll(t, down.Name, downNode, 2*time.Second)
	ping := res["clickhouse.ping"]
	ping.Probe = "clickhouse.ping"
	if ping.Status != Crit || fact(t, ping, "up") != 0 || !strings.HasPrefix(ping.Summary, "node "+down.Name+" unreachable: ") ||
		!strings.Contains(ping.Summary, "connection refused") {
		t.Errorf("ping of a stopped node: %s %q", ping.Status, ping.Summary)
	}
	for name, r := range res {
		if name == "clickhouse.ping" {
			continue
		}
		// A check this server cannot answer is known from the cache.
		if r.Status != Unknown || (r.Error == "" && !r.IsUnavailable()) {
			t.Errorf("%s on a stopped node: %s %q (error %q), want unknown with the error", name, r.Status, r.Summary, r.Error)
		}
		if _, ok := r.Facts["keeper_reachable"]; ok {
			t.Errorf("%s claims a keeper verdict on a stopped node: %v", name, r.Facts)
		}
	}
	// The live replica sees its peer gone.
	r := runAll(t, up.Name, upNode, 5*time.Second)["clickhouse.replicas"]
	r.Probe = "clickhouse.replicas"
	if r.Status != Warn || fact(t, r, "inactive_replicas") < 1 {
		t.Errorf("replicas on %s with %s stopped: %s %q", up.Name, down.Name, r.Status, r.Summary)
	}
}

func TestIntegrationHungNode(t *testing.T) {
	// No environment needed: a listener that accepts and never answers.
	addr := testenv.HungListener(t)
	n := openNode(t, "ch-hung", addr, nil)
	res := runAll(t, "ch-hung", n, 800*time.Millisecond)
	ping := res["clickhouse.ping"]
	if ping.Status != Crit || ping.Facts["up"] != 0 || !strings.Contains(ping.Summary, "did not answer within") {
		t.Errorf("ping of a hung node: %s %q", ping.Status, ping.Summary)
	}
	for name, r := range res {
		if name != "clickhouse.ping" && (r.Status != Unknown || r.Error == "") {
			t.Errorf("%s on a hung node: %s %q, want unknown with the error", name, r.Status, r.Summary)
		}
		if _, ok := r.Fact("keeper_reachable"); ok {
			t.Errorf("%s claims a keeper verdict on a hung node: %v", name, r.Facts)
		}
	}
}

// A hung ZooKeeper (SIGSTOP): the node answers, its coordination reads do
// not. keeper_latency must say so within its deadline, and replicas must
// still give its verdict from the server's local state.
func TestIntegrationZooKeeperHung(t *testing.T) {
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	ch := env.ClickHouse[0]
	n := openNode(t, ch.Name, ch.Addr(), env)
	runAll(t, ch.Name, n, 5*time.Second) // warm caches and connections

	if err := env.ZooKeeper.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		if err := env.ZooKeeper.Resume(); err != nil {
			t.Errorf("resume ZooKeeper: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.WaitHealthy(ctx); err != nil {
			t.Errorf("environment not healthy after the resume: %v", err)
		}
	}
	t.Cleanup(resume)

	tg := &Target{Node: ch.Name, ClickHouse: n, Thresholds: DefaultThresholds(), Now: time.Now}
	run := func(s Spec) Result {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		r := s.Run(c, tg)
		if el := time.Since(start); el > 2200*time.Millisecond {
			t.Errorf("%s took %s with a 2s deadline", s.Name, el)
		}
		t.Logf("ZooKeeper paused: %s %s %q %v", s.Name, r.Status, r.Summary, r.Facts)
		return r
	}
	l := run(clickhouseKeeperLatency())
	if l.Status != Crit || l.Facts["keeper_reachable"] != 0 || !strings.Contains(l.Summary, "hung or saturated") {
		t.Errorf("keeper_latency with ZooKeeper paused: %s %q %v", l.Status, l.Summary, l.Facts)
	}
	r := run(clickhouseReplicas())
	if _, ok := r.Facts["readonly_replicas"]; !ok {
		t.Errorf("replicas with ZooKeeper paused gave no verdict: %s %q", r.Status, r.Summary)
	}
	resume()
}
