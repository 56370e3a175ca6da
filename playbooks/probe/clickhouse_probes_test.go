package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// probeCase is one evaluation of a probe against a fake node.
type probeCase struct {
	name    string
	era     string // "18", "23", "26"
	resp    []fakeResp
	th      func(*Thresholds)
	timeout time.Duration // context deadline (default 2 s)
	fake    func(*fakeCH)

	status    Status
	facts     map[string]float64 // must be present with these values
	noFacts   []string           // must be absent
	attrs     map[string]string
	summary   []string // substrings of the summary
	wantError bool
	evidence  int // rows in the first evidence table (-1: no evidence)
	// unlisted: the case uses thresholds or versions whose queries are not
	// in ModernQueries/LegacyQueries.
	unlisted bool
}

func runProbeCases(t *testing.T, spec Spec, cases []probeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(c.era, c.resp...)
			if c.fake != nil {
				c.fake(f)
			}
			tg := testTarget(f)
			if c.th != nil {
				c.th(&tg.Thresholds)
			}
			timeout := c.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			r := spec.Run(ctx, tg)
			// The hung cases' fakes delay an hour: a run back within
			// seconds of its deadline honoured it. The margin is wide
			// because a loaded machine (CI on 2 cores) schedules late;
			// this is a bound, not a speed measurement.
			if el := time.Since(start); el > timeout+2*time.Second {
				t.Errorf("took %s, over the %s deadline", el, timeout)
			}
			if r.Status != c.status {
				t.Errorf("status = %s, want %s (summary %q, error %q)", r.Status, c.status, r.Summary, r.Error)
			}
			for k, want := range c.facts {
				got, ok := r.Fact(k)
				if !ok {
					t.Errorf("fact %s missing (facts %v)", k, r.Facts)
				} else if !approx(got, want) {
					t.Errorf("fact %s = %v, want %v", k, got, want)
				}
			}
			for _, k := range c.noFacts {
				if v, ok := r.Fact(k); ok {
					t.Errorf("fact %s = %v, want absent", k, v)
				}
			}
			for k, want := range c.attrs {
				if got := r.Attrs[k]; got != want {
					t.Errorf("attr %s = %q, want %q", k, got, want)
				}
			}
			for _, s := range c.summary {
				if !strings.Contains(r.Summary, s) {
					t.Errorf("summary %q lacks %q", r.Summary, s)
				}
			}
			if strings.Contains(r.Summary, "\n") {
				t.Errorf("summary is not one line: %q", r.Summary)
			}
			if c.wantError != (r.Error != "") {
				t.Errorf("error = %q, want set=%v", r.Error, c.wantError)
			}
			switch {
			case c.evidence < 0 && len(r.Evidence) > 0:
				t.Errorf("evidence %v, want none", r.Evidence)
			case c.evidence > 0 && (len(r.Evidence) == 0 || len(r.Evidence[0].Rows) != c.evidence):
				t.Errorf("evidence %+v, want %d rows in the first table", r.Evidence, c.evidence)
			}
			for _, tbl := range r.Evidence {
				if len(tbl.Rows) > evidenceRows {
					t.Errorf("evidence %q has %d rows: not truncated", tbl.Title, len(tbl.Rows))
				}
				for _, row := range tbl.Rows {
					if len(row) != len(tbl.Columns) {
						t.Errorf("evidence %q row %v does not match columns %v", tbl.Title, row, tbl.Columns)
					}
				}
			}
			if !c.unlisted && c.th == nil {
				switch c.era {
				case "18":
					checkListed(t, f.queries, LegacyQueries())
				case "26", "":
					checkListed(t, f.queries, ModernQueries())
				}
			}
		})
	}
}

func approx(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-6*max(1, b, -b)
}

func TestClickHousePing(t *testing.T) {
	runProbeCases(t, clickhousePing(), []probeCase{
		{name: "up 18.16", era: "18", resp: []fakeResp{{match: "uptime()", rows: []clickhouse.Row{{"version": "18.16.1", "uptime": uint32(86400)}}}},
			status: OK, facts: map[string]float64{"up": 1, "uptime_seconds": 86400}, attrs: map[string]string{"version": "18.16.1"},
			summary: []string{"ch-2 is up", "18.16.1"}, evidence: -1},
		{name: "just restarted", era: "26", resp: []fakeResp{{match: "uptime()", rows: []clickhouse.Row{{"version": "26.7.2.1", "uptime": uint32(12)}}}},
			status: OK, facts: map[string]float64{"up": 1, "uptime_seconds": 12}, summary: []string{"restarted recently"}},
		{name: "refused", era: "26", resp: []fakeResp{{match: "uptime()", err: refusedErr()}},
			status: Crit, facts: map[string]float64{"up": 0}, wantError: true, noFacts: []string{"uptime_seconds"},
			summary: []string{"node ch-2 unreachable: dial tcp 127.0.0.1:9000: connect: connection refused"}},
		{name: "hung", era: "26", timeout: 200 * time.Millisecond, resp: []fakeResp{{match: "uptime()", delay: time.Hour}},
			status: Crit, facts: map[string]float64{"up": 0}, wantError: true, summary: []string{"did not answer within 200ms"}},
		{name: "auth error", era: "26", resp: []fakeResp{{match: "uptime()", err: exceptionErr(516, "default: Authentication failed")}},
			status: Unknown, facts: map[string]float64{"up": 1}, wantError: true, summary: []string{"Code 516: default: Authentication failed"}},
	})
}

func TestClickHouseKeeperLatency(t *testing.T) {
	rootRows := []clickhouse.Row{{"name": "clickhouse"}}
	alive := fakeResp{match: "SELECT 1", rows: []clickhouse.Row{{"alive": uint8(1)}}}
	// The round-trip is read on the coarse scale (warn at KeeperLatencyCrit,
	// crit at ten times that); 20 ms keeps the cases fast.
	fastScale := func(th *Thresholds) { th.KeeperLatencyCrit = 20 * time.Millisecond }
	runProbeCases(t, clickhouseKeeperLatency(), []probeCase{
		{name: "fast", era: "18", resp: []fakeResp{alive, {match: "system.zookeeper", rows: rootRows}},
			status: OK, facts: map[string]float64{"keeper_reachable": 1}, summary: []string{"coordination round-trip from ch-2"}},
		{name: "fast 26", era: "26", resp: []fakeResp{alive, {match: "system.zookeeper", rows: rootRows}},
			status: OK, facts: map[string]float64{"keeper_reachable": 1}},
		{name: "stressed", era: "26", th: fastScale, resp: []fakeResp{alive, {match: "system.zookeeper", rows: rootRows, delay: 40 * time.Millisecond}},
			status: Warn, facts: map[string]float64{"keeper_reachable": 1}, summary: []string{"under stress"}},
		{name: "saturated", era: "26", th: fastScale, resp: []fakeResp{alive, {match: "system.zookeeper", rows: rootRows, delay: 250 * time.Millisecond}},
			status: Crit, facts: map[string]float64{"keeper_reachable": 1}},
		{name: "coordination exception", era: "18", resp: []fakeResp{alive, {match: "system.zookeeper", err: coordinationErr}},
			status: Crit, facts: map[string]float64{"keeper_reachable": 0}, noFacts: []string{"latency_ms"}, wantError: true,
			summary: []string{"cannot reach the coordination service", "Code 999", "All connection tries failed"}},
		{name: "keeper hung, node alive", era: "26", timeout: 400 * time.Millisecond, resp: []fakeResp{
			alive, {match: "system.zookeeper", delay: time.Hour}},
			status: Crit, facts: map[string]float64{"keeper_reachable": 0}, wantError: true, summary: []string{"hung or saturated"}},
		{name: "node hung", era: "26", timeout: 400 * time.Millisecond, resp: []fakeResp{
			{match: "system.zookeeper", delay: time.Hour}, {match: "SELECT 1", delay: time.Hour}},
			status: Unknown, noFacts: []string{"keeper_reachable"}, wantError: true, summary: []string{"does not answer"}},
		{name: "node down", era: "26", fake: func(f *fakeCH) { f.versionErr = refusedErr() },
			status: Unknown, noFacts: []string{"keeper_reachable", "latency_ms"}, wantError: true, summary: []string{"node ch-2 unreachable"}},
		{name: "no zookeeper configured", era: "26", fake: func(f *fakeCH) { delete(f.schema, "zookeeper") },
			unlisted: true, status: Unknown, noFacts: []string{"keeper_reachable"}, summary: []string{"not available on ClickHouse 26.7.2.1: system.zookeeper"}},
	})
}

func TestClickHouseKeeperLatencyThresholdsFromTarget(t *testing.T) {
	f := newFake("26", fakeResp{match: "SELECT 1", rows: []clickhouse.Row{{"alive": uint8(1)}}},
		fakeResp{match: "system.zookeeper", rows: []clickhouse.Row{{"name": "x"}}, delay: 30 * time.Millisecond})
	tg := testTarget(f)
	tg.Thresholds.KeeperLatencyWarn = time.Second
	tg.Thresholds.KeeperLatencyCrit = 2 * time.Second
	r := clickhouseKeeperLatency().Run(context.Background(), tg)
	if r.Status != OK {
		t.Fatalf("status %s with a 2 s threshold, want ok (%s)", r.Status, r.Summary)
	}
	if ms, _ := r.Fact("latency_ms"); ms < 25 {
		t.Errorf("latency_ms = %v, want ≥ 25", ms)
	}
}

func TestClickHouseKeeperSessions(t *testing.T) {
	connRow := func(expired uint8) clickhouse.Row {
		return clickhouse.Row{"name": "default", "host": "127.0.0.1", "port": uint16(2181), "is_expired": expired,
			"connected_time": fixedNow.Add(-90 * time.Second), "session_uptime_elapsed_seconds": uint64(90), "session_timeout_ms": uint64(30000)}
	}
	runProbeCases(t, clickhouseKeeperSessions(), []probeCase{
		{name: "26 live", era: "26", resp: []fakeResp{{match: "zookeeper_connection", rows: []clickhouse.Row{connRow(0)}}},
			status: OK, facts: map[string]float64{"session_expired": 0, "session_uptime_seconds": 90, "session_timeout_ms": 30000},
			attrs: map[string]string{"keeper_host": "127.0.0.1:2181"}, evidence: 1, summary: []string{"live, 1m30s old"}},
		{name: "26 expired", era: "26", resp: []fakeResp{{match: "zookeeper_connection", rows: []clickhouse.Row{connRow(1)}}},
			status: Crit, facts: map[string]float64{"session_expired": 1}, summary: []string{"expired"}},
		{name: "26 no row", era: "26", resp: []fakeResp{{match: "zookeeper_connection"}},
			status: Crit, facts: map[string]float64{"session_expired": 1}, summary: []string{"no connected coordination session"}},
		{name: "26 coordination exception", era: "26", resp: []fakeResp{{match: "zookeeper_connection", err: coordinationErr}},
			status: Crit, facts: map[string]float64{"session_expired": 1}, wantError: true, summary: []string{"has no coordination session", "Code 999"}},
		{name: "23.5 uptime from the 1970 connected_time", era: "23", resp: []fakeResp{{match: "zookeeper_connection", rows: []clickhouse.Row{
			{"name": "default", "host": "zk1", "port": uint16(2181), "is_expired": uint8(0), "connected_time": time.Unix(127, 0).UTC()}}}},
			status: OK, facts: map[string]float64{"session_expired": 0, "session_uptime_seconds": 127}, noFacts: []string{"session_timeout_ms"},
			attrs: map[string]string{"keeper_host": "zk1:2181"}},
		{name: "18.16 fallback: a session open", era: "18", resp: []fakeResp{{match: "system.metrics", rows: []clickhouse.Row{
			{"metric": "ZooKeeperSession", "value": int64(1)}, {"metric": "ZooKeeperWatch", "value": int64(3)}}}},
			// Point 4 of issue 7: listed as not available, not a finding
			// that turns a healthy 18.16 cluster's headline UNKN.
			status: Unknown, facts: map[string]float64{"sessions": 1}, noFacts: []string{"session_expired", "session_uptime_seconds"},
			attrs:   map[string]string{AttrUnavailable: sessionsFallbackWhat},
			summary: []string{"not available on ClickHouse 18.16", "not a live one"}, evidence: 2},
		{name: "18.16 fallback: no session", era: "18", resp: []fakeResp{{match: "system.metrics", rows: []clickhouse.Row{
			{"metric": "ZooKeeperSession", "value": int64(0)}}}},
			status: Crit, facts: map[string]float64{"sessions": 0, "session_expired": 1}, summary: []string{"ZooKeeperSession = 0"}},
		{name: "22.x fallback with zookeeperSessionUptime", era: "18", unlisted: true,
			fake:   func(f *fakeCH) { f.version = mustVersion("22.8.13.20") },
			resp:   []fakeResp{{match: "zookeeperSessionUptime()", rows: []clickhouse.Row{{"metric": "ZooKeeperSession", "value": int64(1), "session_uptime": uint32(42)}}}},
			status: Unknown, facts: map[string]float64{"sessions": 1, "session_uptime_seconds": 42}},
		{name: "unreachable", era: "26", fake: func(f *fakeCH) { f.versionErr = refusedErr() },
			status: Unknown, wantError: true, noFacts: []string{"session_expired"}, summary: []string{"unreachable"}},
	})
}

func TestClickHouseReplicas(t *testing.T) {
	summary := func(tables, ro, exp, problems, delay, maxQ, totalQ uint64) fakeResp {
		return fakeResp{match: "count() AS replicated_tables", rows: []clickhouse.Row{{"replicated_tables": tables, "readonly_replicas": ro,
			"session_expired_replicas": exp, "problem_replicas": problems, "max_absolute_delay": delay, "max_queue_size": uint32(maxQ), "total_queue_size": totalQ}}}
	}
	peers := func(inactive uint64) fakeResp {
		return fakeResp{match: "AS inactive_replicas", rows: []clickhouse.Row{{"inactive_replicas": inactive}}}
	}
	local := func(table string, ro, exp uint8, delay uint64) clickhouse.Row {
		return clickhouse.Row{"database": "chmedic_test", "table": table, "is_readonly": ro, "is_session_expired": exp,
			"absolute_delay": delay, "queue_size": uint32(0)}
	}
	peer := func(table string, active, total uint8, exc string) clickhouse.Row {
		r := local(table, 0, 0, 0)
		r["active_replicas"], r["total_replicas"] = active, total
		if exc != "" {
			r["zookeeper_exception"] = exc
		}
		return r
	}
	// More rows than the evidence keeps, so that truncation is exercised.
	many := make([]clickhouse.Row, 0, 30)
	for i := range 30 {
		many = append(many, local("t"+fmtInt(int64(i)), 1, 1, 0))
	}
	const problems, peerList = "ORDER BY is_readonly DESC", "WHERE active_replicas < total_replicas"
	runProbeCases(t, clickhouseReplicas(), []probeCase{
		{name: "healthy 18.16", era: "18", resp: []fakeResp{summary(1, 0, 0, 0, 0, 0, 0), peers(0)},
			status: OK, evidence: -1,
			facts: map[string]float64{"replicated_tables": 1, "readonly_replicas": 0, "session_expired_replicas": 0, "inactive_replicas": 0,
				"max_absolute_delay_seconds": 0, "max_queue_size": 0, "total_queue_size": 0}, summary: []string{"all 1 replicated table healthy"}},
		{name: "no replicated tables", era: "26", resp: []fakeResp{summary(0, 0, 0, 0, 0, 0, 0)},
			status: OK, facts: map[string]float64{"replicated_tables": 0, "inactive_replicas": 0}, summary: []string{"no replicated tables"}},
		{name: "keeper lost 18.16: peers not read", era: "18", resp: []fakeResp{summary(1, 1, 1, 1, 0, 0, 0),
			{match: problems, rows: []clickhouse.Row{local("events", 1, 1, 0)}}},
			status: Crit, evidence: 1, facts: map[string]float64{"readonly_replicas": 1, "session_expired_replicas": 1}, noFacts: []string{"inactive_replicas"},
			attrs:   map[string]string{"readonly_tables": "chmedic_test.events"},
			summary: []string{"1 replica is read-only", "lost its coordination session", "every coordination session is expired"}},
		{name: "keeper hung: the peer read times out, the verdict stands", era: "26", timeout: 300 * time.Millisecond, resp: []fakeResp{
			summary(3, 2, 0, 2, 0, 0, 0), {match: problems, rows: []clickhouse.Row{local("a", 1, 0, 0), local("b", 1, 0, 0)}},
			{match: "AS inactive_replicas", delay: time.Hour}},
			status: Crit, wantError: true, evidence: 2, facts: map[string]float64{"readonly_replicas": 2}, noFacts: []string{"inactive_replicas"},
			attrs: map[string]string{"readonly_tables": "chmedic_test.a,chmedic_test.b"}, summary: []string{"2 replicas are read-only", "peer status unknown"}},
		{name: "peer read fails on a coordination error: warn", era: "18", resp: []fakeResp{summary(1, 0, 0, 0, 0, 0, 0),
			{match: "AS inactive_replicas", err: exceptionErr(999, "Coordination::Exception: Connection loss, path: /clickhouse/tables/01/events/log")}},
			status: Warn, wantError: true, noFacts: []string{"inactive_replicas"}, facts: map[string]float64{"readonly_replicas": 0},
			summary: []string{"no replica read-only or expired (1 replicated table)", "Code 999: Coordination::Exception: Connection loss"}},
		{name: "26: 25 read-only, evidence truncated", era: "26", resp: []fakeResp{summary(30, 25, 25, 25, 0, 3, 10), peers(0), {match: problems, rows: many}},
			status: Crit, evidence: 20, facts: map[string]float64{"readonly_replicas": 25, "total_queue_size": 10, "max_queue_size": 3, "inactive_replicas": 0},
			summary: []string{"25 replicas are read-only"}},
		{name: "inactive peer with zookeeper_exception", era: "26", resp: []fakeResp{summary(2, 0, 0, 0, 0, 0, 0), peers(1),
			{match: peerList, rows: []clickhouse.Row{peer("events", 1, 2, "Coordination::Exception: Connection loss")}}},
			status: Warn, evidence: 1, facts: map[string]float64{"inactive_replicas": 1}, summary: []string{"1 table misses active peers"}},
		{name: "inactive peer 18.16", era: "18", resp: []fakeResp{summary(2, 0, 0, 0, 0, 0, 0), peers(1),
			{match: peerList, rows: []clickhouse.Row{peer("events", 1, 2, "")}}},
			status: Warn, evidence: 1, facts: map[string]float64{"inactive_replicas": 1}},
		{name: "lagging", era: "26", resp: []fakeResp{summary(2, 0, 0, 1, 3600, 500, 900), peers(0),
			{match: problems, rows: []clickhouse.Row{local("events", 0, 0, 3600)}}},
			status: Warn, evidence: 1, facts: map[string]float64{"max_absolute_delay_seconds": 3600, "max_queue_size": 500}, summary: []string{"delay up to 1h0m0s"}},
		{name: "lag under a custom threshold", era: "26", th: func(th *Thresholds) { th.ReplicaDelayWarn = 2 * time.Hour },
			resp:   []fakeResp{summary(2, 0, 0, 0, 3600, 500, 900), peers(0)},
			status: OK},
		{name: "timeout", era: "26", timeout: 150 * time.Millisecond, resp: []fakeResp{{match: "count() AS replicated_tables", delay: time.Hour}},
			status: Unknown, wantError: true, noFacts: []string{"readonly_replicas"}, summary: []string{"did not answer within"}},
		{name: "problem list fails: verdict stands", era: "26", resp: []fakeResp{summary(1, 1, 0, 1, 0, 0, 0), {match: problems, err: timeoutErr()}, peers(0)},
			status: Crit, wantError: true, facts: map[string]float64{"readonly_replicas": 1}, summary: []string{"could not list them"}},
	})
}

func TestClickHouseReplicationQueue(t *testing.T) {
	stuckRow := func(tries uint32) clickhouse.Row {
		return clickhouse.Row{"database": "db", "table": "t", "type": "GET_PART", "create_time": fixedNow.Add(-time.Hour),
			"last_attempt_time": fixedNow, "num_tries": tries, "last_exception": "Code: 999, e.displayText() = Coordination::Exception:\nConnection loss"}
	}
	sum := func(entries, stuck, tries uint64) []clickhouse.Row {
		return []clickhouse.Row{{"queue_entries": entries, "stuck_entries": stuck, "max_num_tries": uint32(tries)}}
	}
	runProbeCases(t, clickhouseReplicationQueue(), []probeCase{
		{name: "empty", era: "18", resp: []fakeResp{{match: "count() AS queue_entries", rows: sum(0, 0, 0)}},
			status: OK, facts: map[string]float64{"queue_entries": 0, "stuck_entries": 0, "max_num_tries": 0}, evidence: -1},
		{name: "retrying a little", era: "26", resp: []fakeResp{{match: "count() AS queue_entries", rows: sum(10, 1, 2)},
			{match: "WHERE num_tries > 0", rows: []clickhouse.Row{stuckRow(2)}}},
			status: OK, facts: map[string]float64{"stuck_entries": 1, "max_num_tries": 2}, evidence: 1, summary: []string{"Connection loss"}},
		{name: "warn", era: "18", resp: []fakeResp{{match: "count() AS queue_entries", rows: sum(10, 3, 7)},
			{match: "WHERE num_tries > 0", rows: []clickhouse.Row{stuckRow(7), stuckRow(3)}}},
			status: Warn, facts: map[string]float64{"stuck_entries": 3, "max_num_tries": 7}, evidence: 2},
		{name: "crit", era: "26", resp: []fakeResp{{match: "count() AS queue_entries", rows: sum(100, 40, 120)},
			{match: "WHERE num_tries > 0", rows: []clickhouse.Row{stuckRow(120)}}},
			status: Crit, facts: map[string]float64{"max_num_tries": 120}, summary: []string{"40 replication queue entries of 100 being retried, the worst 120 times"}},
		{name: "unreachable", era: "26", resp: []fakeResp{{match: "count() AS queue_entries", err: refusedErr()}},
			status: Unknown, wantError: true, summary: []string{"unreachable"}},
	})
}

func TestClickHouseDDLQueue(t *testing.T) {
	row := func(entry, host, status string, age int64, exc string) clickhouse.Row {
		var e *string
		if exc != "" {
			e = &exc
		}
		return clickhouse.Row{"entry": entry, "cluster": "c1", "host": &host, "port": ptr(uint16(9000)), "status": &status,
			"query_create_time": fixedNow.Add(-time.Duration(age) * time.Second), "age_seconds": age, "exception_text": e,
			"query_head": "CREATE TABLE db.t ON CLUSTER c1 (x UInt8) ENGINE = ReplicatedMergeTree"}
	}
	runProbeCases(t, clickhouseDDLQueue(), []probeCase{
		{name: "18.16 has no table", era: "18", status: Unknown, evidence: -1,
			noFacts: []string{"unfinished_entries"}, summary: []string{"not available on ClickHouse 18.16.1: system.distributed_ddl_queue"}},
		{name: "26 empty", era: "26", resp: []fakeResp{{match: "distributed_ddl_queue"}},
			status: OK, facts: map[string]float64{"unfinished_entries": 0, "oldest_unfinished_seconds": 0}, evidence: -1},
		{name: "26 in progress", era: "26", resp: []fakeResp{{match: "distributed_ddl_queue", rows: []clickhouse.Row{
			row("query-0000000007", "ch-1", "Active", 20, ""), row("query-0000000007", "ch-2", "Inactive", 20, "")}}},
			status: OK, facts: map[string]float64{"unfinished_entries": 1, "oldest_unfinished_seconds": 20}, evidence: 1, summary: []string{"in progress"}},
		{name: "26 stuck", era: "26", resp: []fakeResp{{match: "distributed_ddl_queue", rows: []clickhouse.Row{
			row("query-0000000001", "ch-2", "Inactive", 900, ""), row("query-0000000002", "ch-2", "Active", 30, "Code: 999. Coordination::Exception")}}},
			status: Warn, facts: map[string]float64{"unfinished_entries": 2, "oldest_unfinished_seconds": 900}, evidence: 2,
			summary: []string{"2 distributed DDL entries unfinished", "15m0s"}},
		{name: "23.5 first form", era: "23", unlisted: true, resp: []fakeResp{{match: "host_name AS host", rows: []clickhouse.Row{
			{"entry": "query-0000000003", "cluster": "c1", "host": "ch-1", "port": uint16(9000), "status": "Active",
				"query_create_time": fixedNow.Add(-time.Hour), "age_seconds": int64(3600), "exception_text": "ZOK", "query_head": "DROP TABLE x ON CLUSTER c1"}}}},
			status: Warn, facts: map[string]float64{"unfinished_entries": 1, "oldest_unfinished_seconds": 3600}},
		{name: "coordination error", era: "26", resp: []fakeResp{{match: "distributed_ddl_queue", err: coordinationErr}},
			status: Warn, wantError: true, summary: []string{"cannot read system.distributed_ddl_queue: coordination service error"}},
	})
}

func ptr[T any](v T) *T { return &v }

func TestClickHouseKeeperErrors(t *testing.T) {
	sample := func(tx, hw, user, waitUS uint64) []clickhouse.Row {
		rows := []clickhouse.Row{{"event": "ZooKeeperTransactions", "value": tx}, {"event": "ZooKeeperWaitMicroseconds", "value": waitUS},
			{"event": "ZooKeeperInit", "value": uint64(1)}}
		if hw > 0 {
			rows = append(rows, clickhouse.Row{"event": "ZooKeeperHardwareExceptions", "value": hw})
		}
		if user > 0 {
			rows = append(rows, clickhouse.Row{"event": "ZooKeeperUserExceptions", "value": user})
		}
		return rows
	}
	const q = "FROM system.events"
	runProbeCases(t, clickhouseKeeperErrors(), []probeCase{
		{name: "quiet", era: "18", timeout: 400 * time.Millisecond, resp: []fakeResp{{match: q, once: true, rows: sample(100, 0, 0, 1000)}, {match: q, rows: sample(110, 0, 0, 2000)}},
			status: OK, facts: map[string]float64{"total_ZooKeeperTransactions": 110, "total_ZooKeeperHardwareExceptions": 0, "rate_ZooKeeperHardwareExceptions": 0,
				"rate_ZooKeeperUserExceptions": 0, "total_ZooKeeperInit": 1, "rate_ZooKeeperInit": 0}, summary: []string{"no coordination hardware exceptions"}},
		{name: "hardware exceptions", era: "26", timeout: 400 * time.Millisecond, resp: []fakeResp{{match: q, once: true, rows: sample(100, 1, 0, 1000)}, {match: q, rows: sample(100, 4, 0, 1000)}},
			status: Warn, facts: map[string]float64{"total_ZooKeeperHardwareExceptions": 4}, summary: []string{"hardware exceptions/s"}},
		{name: "user exceptions", era: "26", timeout: 400 * time.Millisecond, resp: []fakeResp{{match: q, once: true, rows: sample(100, 0, 10, 1000)}, {match: q, rows: sample(100, 0, 30, 1000)}},
			status: Warn, summary: []string{"user exceptions/s (over 1/s)"}},
		{name: "no time for a second sample", era: "26", timeout: 120 * time.Millisecond, resp: []fakeResp{{match: q, rows: sample(5, 2, 0, 10)}},
			status: Unknown, facts: map[string]float64{"total_ZooKeeperHardwareExceptions": 2, "total_ZooKeeperUserExceptions": 0},
			noFacts: []string{"rate_ZooKeeperHardwareExceptions", "sample_seconds"}, summary: []string{"no time for a second sample"}},
		{name: "second sample fails", era: "26", timeout: 400 * time.Millisecond, resp: []fakeResp{{match: q, once: true, rows: sample(5, 0, 0, 10)}, {match: q, err: refusedErr()}},
			status: Unknown, noFacts: []string{"rate_ZooKeeperTransactions"}, summary: []string{"the second sample failed"}},
		{name: "first sample fails", era: "26", resp: []fakeResp{{match: q, err: refusedErr()}},
			status: Unknown, wantError: true, summary: []string{"unreachable"}},
	})
}

func TestClickHouseKeeperErrorsRates(t *testing.T) {
	first := []clickhouse.Row{{"event": "ZooKeeperTransactions", "value": uint64(100)}, {"event": "ZooKeeperWaitMicroseconds", "value": uint64(0)}}
	second := []clickhouse.Row{{"event": "ZooKeeperTransactions", "value": uint64(300)}, {"event": "ZooKeeperWaitMicroseconds", "value": uint64(1_000_000)},
		{"event": "ZooKeeperHardwareExceptions", "value": uint64(1)}}
	var r Result
	evaluateKeeperErrors(&r, testTarget(nil), first, second, 2*time.Second)
	want := map[string]float64{"rate_ZooKeeperTransactions": 100, "rate_ZooKeeperWaitMicroseconds": 500_000, "avg_wait_ms": 5,
		"rate_ZooKeeperHardwareExceptions": 0.5, "sample_seconds": 2, "total_ZooKeeperUserExceptions": 0, "rate_ZooKeeperUserExceptions": 0}
	for k, v := range want {
		if got, ok := r.Fact(k); !ok || !approx(got, v) {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if r.Status != Warn {
		t.Errorf("status %s, want warn", r.Status)
	}
}

func TestClickHouseKeeperErrorsStaysInDeadline(t *testing.T) {
	// Each sample takes 150 ms: with an 800 ms deadline the 1 s wait
	// shrinks to fit, and the probe returns before the deadline with rates.
	f := newFake("26", fakeResp{match: "system.events", delay: 150 * time.Millisecond,
		rows: []clickhouse.Row{{"event": "ZooKeeperTransactions", "value": uint64(1)}}})
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := clickhouseKeeperErrors().Run(ctx, testTarget(f))
	if el := time.Since(start); el >= 800*time.Millisecond {
		t.Fatalf("took %s, not within the 800ms deadline", el)
	}
	if _, ok := r.Fact("rate_ZooKeeperTransactions"); !ok {
		t.Errorf("no rate: %s", r.Summary)
	}
	if s, _ := r.Fact("sample_seconds"); s <= 0 || s >= 0.8 {
		t.Errorf("sample_seconds = %v", s)
	}
}

func TestClickHouseDDLStorm(t *testing.T) {
	rows := func(counts ...any) []clickhouse.Row {
		var out []clickhouse.Row
		for i := 0; i+2 < len(counts)+1; i += 3 {
			out = append(out, clickhouse.Row{"kind": counts[i], "user": counts[i+1], "n": uint64(counts[i+2].(int))})
		}
		return out
	}
	runProbeCases(t, clickhouseDDLStorm(), []probeCase{
		{name: "18.16 calm", era: "18", resp: []fakeResp{{match: "extract(query", rows: rows("CREATE", "default", 2)}},
			status: OK, facts: map[string]float64{"ddl_count": 2, "ddl_per_minute": 0.2}, evidence: 1, summary: []string{"2 Create"}},
		{name: "18.16 storm", era: "18", resp: []fakeResp{{match: "extract(query", rows: rows("CREATE", "etl", 40, "DROP", "etl", 30, "ALTER", "admin", 5)}},
			status: Warn, facts: map[string]float64{"ddl_count": 75, "ddl_per_minute": 7.5}, evidence: 3,
			summary: []string{"DDL storm on ch-2", "5 Alter, 40 Create, 30 Drop", "stop all DDL"}},
		{name: "26 query_kind", era: "26", resp: []fakeResp{{match: "query_kind IN", rows: rows("Alter", "etl", 60)}},
			status: Warn, facts: map[string]float64{"ddl_count": 60}},
		{name: "26 nothing", era: "26", resp: []fakeResp{{match: "query_kind IN"}},
			status: OK, facts: map[string]float64{"ddl_count": 0, "ddl_per_minute": 0}, evidence: -1},
		{name: "query_log off", era: "26", fake: func(f *fakeCH) { delete(f.schema, "query_log") },
			status: Unknown, noFacts: []string{"ddl_count"}, summary: []string{"system.query_log (query logging is off"}},
		{name: "custom window", era: "26", th: func(th *Thresholds) { th.DDLStormWindow = time.Minute; th.DDLStormCount = 10 },
			resp:   []fakeResp{{match: "INTERVAL 60 SECOND", rows: rows("Create", "etl", 12)}},
			status: Warn, facts: map[string]float64{"ddl_count": 12, "ddl_per_minute": 12}},
	})
}

func TestClickHouseMetadata(t *testing.T) {
	replicas := func(n uint64, first, last string) []clickhouse.Row {
		return []clickhouse.Row{{"replicated_tables": n, "first_path": first, "last_path": last}}
	}
	runProbeCases(t, clickhouseMetadata(), []probeCase{
		{name: "one table: the runbook's /clickhouse", era: "18", resp: []fakeResp{
			{match: "min(zookeeper_path)", rows: replicas(1, "/clickhouse/tables/01/events", "/clickhouse/tables/01/events")},
			{match: "path = '/clickhouse'", rows: []clickhouse.Row{{"name": "tables", "numChildren": int32(1)}, {"name": "task_queue", "numChildren": int32(1)}}}},
			status: OK, facts: map[string]float64{"replicated_tables": 1, "tables_root_children": 1}, attrs: map[string]string{"tables_root": "/clickhouse/tables"}},
		{name: "shard layout", era: "26", unlisted: true, resp: []fakeResp{
			{match: "min(zookeeper_path)", rows: replicas(1500, "/clickhouse/tables/01/a", "/clickhouse/tables/01/zz")},
			{match: "path = '/clickhouse/tables'", rows: []clickhouse.Row{{"name": "01", "numChildren": int32(1700)}}}},
			status: Warn, facts: map[string]float64{"replicated_tables": 1500, "tables_root_children": 1700},
			attrs: map[string]string{"tables_root": "/clickhouse/tables/01"}, summary: []string{"1500 replicated tables on ch-2 (threshold 1000)"}},
		{name: "uuid layout reads /clickhouse, never /clickhouse/tables", era: "26", unlisted: true, resp: []fakeResp{
			{match: "min(zookeeper_path)", rows: replicas(20, "/clickhouse/tables/0a1b/01", "/clickhouse/tables/ffee/01")},
			{match: "path = '/clickhouse'", rows: []clickhouse.Row{{"name": "tables", "numChildren": int32(2500)}}}},
			status: Warn, facts: map[string]float64{"replicated_tables": 20, "tables_root_children": 2500}, summary: []string{"2500 children under /clickhouse/tables"}},
		{name: "coordination error", era: "18", resp: []fakeResp{
			{match: "min(zookeeper_path)", rows: replicas(1, "/clickhouse/tables/01/events", "/clickhouse/tables/01/events")},
			{match: "system.zookeeper", err: coordinationErr}},
			status: Warn, wantError: true, facts: map[string]float64{"replicated_tables": 1}, noFacts: []string{"tables_root_children"},
			summary: []string{"coordination service error", "1 replicated table on the node"}},
		{name: "no /clickhouse yet", era: "26", resp: []fakeResp{
			{match: "min(zookeeper_path)", rows: replicas(0, "", "")},
			{match: "system.zookeeper", err: exceptionErr(999, "Coordination::Exception: No node, path: /clickhouse")}},
			status: OK, facts: map[string]float64{"replicated_tables": 0, "tables_root_children": 0}, summary: []string{"/clickhouse/tables does not exist"}},
	})
}

func TestTablesRoot(t *testing.T) {
	for _, c := range []struct {
		first, last, want string
		ok                bool
	}{
		{"/clickhouse/tables/01/a", "/clickhouse/tables/01/b", "/clickhouse/tables/01", true},
		{"/clickhouse/tables/01/events", "/clickhouse/tables/01/events2", "/clickhouse/tables/01", true},
		{"/clickhouse/tables/01/x", "/clickhouse/tables/02/x", "/clickhouse/tables", true},
		{"/clickhouse/tables/0a1b/01", "/clickhouse/tables/ffee/01", "/clickhouse/tables", true},
		{"/a/x", "/b/x", "", false},
		{"/same", "/same", "", false},
		{"zk2:/clickhouse/tables/01/a", "zk2:/clickhouse/tables/01/b", "", false},
		{"", "", "", false},
	} {
		got, ok := tablesRoot(c.first, c.last)
		if got != c.want || ok != c.ok {
			t.Errorf("tablesRoot(%q, %q) = %q, %v; want %q, %v", c.first, c.last, got, ok, c.want, c.ok)
		}
	}
}

func TestClickHouseInterserver(t *testing.T) {
	metrics := []clickhouse.Row{{"metric": "InterserverConnection", "value": int64(2)}}
	runProbeCases(t, clickhouseInterserver(), []probeCase{
		{name: "18.16: no errors_count", era: "18", resp: []fakeResp{{match: "system.metrics", rows: metrics}},
			status: Unknown, facts: map[string]float64{"interserver_connections": 2}, noFacts: []string{"cluster_errors"},
			summary: []string{"not available on ClickHouse 18.16.1: system.clusters.errors_count", "InterserverConnection=2"}},
		{name: "26 clean", era: "26", resp: []fakeResp{{match: "system.metrics", rows: metrics}, {match: "system.clusters"}},
			status: OK, facts: map[string]float64{"interserver_connections": 2, "cluster_errors": 0}, evidence: -1},
		{name: "26 errors", era: "26", resp: []fakeResp{{match: "system.metrics", rows: metrics}, {match: "system.clusters", rows: []clickhouse.Row{
			{"cluster": "c1", "shard_num": uint32(1), "replica_num": uint32(2), "host_name": "ch-2", "port": uint16(9000), "errors_count": uint32(7), "estimated_recovery_time": uint32(60)},
			{"cluster": "all", "shard_num": uint32(1), "replica_num": uint32(2), "host_name": "ch-2", "port": uint16(9000), "errors_count": uint32(3), "estimated_recovery_time": uint32(30)}}}},
			status: Warn, facts: map[string]float64{"cluster_errors": 10}, evidence: 2, summary: []string{"10 errors reaching 1 cluster peer: ch-2:9000"}},
		{name: "unreachable", era: "26", fake: func(f *fakeCH) { f.versionErr = refusedErr() },
			status: Unknown, wantError: true, noFacts: []string{"interserver_connections"}},
	})
}

func TestClickHouseProbesRegistered(t *testing.T) {
	b := Builtin()
	want := map[string]bool{"clickhouse.ping": false, "clickhouse.keeper_latency": true, "clickhouse.keeper_sessions": false,
		"clickhouse.replicas": false, "clickhouse.replication_queue": false, "clickhouse.ddl_queue": true, "clickhouse.keeper_errors": false,
		"clickhouse.ddl_storm": false, "clickhouse.metadata": true, "clickhouse.interserver": false}
	for name, expensive := range want {
		s, ok := b[name]
		if !ok {
			t.Errorf("%s not registered", name)
			continue
		}
		if s.Kind != KindClickHouse || s.Run == nil || s.Doc == "" {
			t.Errorf("%s: kind %q, run %v, doc %q", name, s.Kind, s.Run != nil, s.Doc)
		}
		if s.Expensive != expensive {
			t.Errorf("%s: Expensive = %v, want %v", name, s.Expensive, expensive)
		}
	}
}

func TestClickHouseProbeWithoutConnection(t *testing.T) {
	for name, s := range Builtin() {
		if s.Kind != KindClickHouse {
			continue
		}
		r := s.Run(context.Background(), &Target{Node: "x"})
		if r.Status != Unknown || r.Error == "" {
			t.Errorf("%s without a connection: %s %q", name, r.Status, r.Error)
		}
	}
}

// Every query listed must be one the probes build: a listed query no probe
// sends would make the chdb check prove nothing.
func TestQueryListsAreUsed(t *testing.T) {
	for _, list := range [][]NamedQuery{ModernQueries(), LegacyQueries(), IntermediateQueries()} {
		seen := map[string]bool{}
		for _, q := range list {
			key := q.Probe + "/" + q.Name
			if seen[key] {
				t.Errorf("duplicate %s", key)
			}
			seen[key] = true
			if q.SQL == "" || strings.Contains(q.SQL, "\n") {
				t.Errorf("%s: bad SQL %q", key, q.SQL)
			}
		}
	}
}
