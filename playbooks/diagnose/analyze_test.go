package diagnose

import (
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/playbooks/probe"
)

var analyzeNow = time.Date(2026, 11, 23, 3, 4, 5, 0, time.UTC)

// res is a hand-made probe result; kv alternates fact names and values.
func res(name, node string, st probe.Status, summary string, kv ...any) probe.Result {
	r := probe.Result{Probe: name, Node: node, Status: st, Summary: summary, Started: analyzeNow}
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case int:
			r.SetFact(kv[i].(string), float64(v))
		case float64:
			r.SetFact(kv[i].(string), v)
		case string:
			r.SetAttr(kv[i].(string), v)
		}
	}
	return r
}

func causeNamed(cs []Cause, name string) (Cause, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return Cause{}, false
}

func TestAnalyze(t *testing.T) {
	readonly := func(node string) probe.Result {
		return res("clickhouse.replicas", node, probe.Crit, "1 replica read-only: chmedic_test.events",
			"readonly_replicas", 1, "session_expired_replicas", 1, "replicated_tables", 3, "readonly_tables", "chmedic_test.events")
	}
	tests := []struct {
		name    string
		results []probe.Result
		status  probe.Status
		// verdict must start with prefix and contain every one of contains.
		prefix   string
		contains []string
		// top is the expected first cause ("" for none at least possible).
		top        string
		likelihood Likelihood
		check      func(t *testing.T, cs []Cause)
	}{
		{
			name: "all ok",
			results: []probe.Result{
				res("clickhouse.ping", "ch-1", probe.OK, "up", "up", 1, "uptime_seconds", 86400),
				res("clickhouse.ping", "ch-2", probe.OK, "up", "up", 1, "uptime_seconds", 86400),
				res("clickhouse.replicas", "ch-1", probe.OK, "all replicas writable", "readonly_replicas", 0, "replicated_tables", 3),
				res("clickhouse.keeper_latency", "ch-1", probe.OK, "2 ms", "latency_ms", 2, "keeper_reachable", 1),
				res("keeper.ruok", "zk-1", probe.OK, "imok", "ok", 1),
			},
			status: probe.OK, prefix: "Cluster healthy", contains: []string{"all 5 checks passed"},
		},
		{
			name: "zookeeper stopped",
			results: []probe.Result{
				res("keeper.ruok", "zk-1", probe.Crit, "connection refused", "ok", 0),
				res("keeper.ruok", "zk-2", probe.Crit, "connection refused", "ok", 0),
				res("keeper.ruok", "zk-3", probe.Crit, "connection refused", "ok", 0),
				readonly("ch-1"),
				readonly("ch-2"),
				res("clickhouse.keeper_latency", "ch-1", probe.Crit, "unreachable", "keeper_reachable", 0),
				res("clickhouse.keeper_latency", "ch-2", probe.Crit, "unreachable", "keeper_reachable", 0),
				res("clickhouse.ping", "ch-1", probe.OK, "up", "up", 1),
				res("clickhouse.ping", "ch-2", probe.OK, "up", "up", 1),
			},
			status: probe.Crit, prefix: "Coordination lost",
			contains: []string{"ch-1, ch-2", "chmedic_test.events", "Likely cause: the coordination service is down"},
			top:      "keeper_down", likelihood: Likely,
			check: func(t *testing.T, cs []Cause) {
				c, _ := causeNamed(cs, "network_partition")
				if c.Likelihood == Likely || !strings.Contains(strings.Join(c.Against, "|"), "cannot reach the coordination service either") {
					t.Errorf("network_partition = %+v, want it argued against", c)
				}
			},
		},
		{
			name: "ddl storm",
			results: []probe.Result{
				res("clickhouse.ddl_storm", "ch-1", probe.Warn, "120 DDL statements in 10m", "ddl_count", 120),
				res("clickhouse.ping", "ch-1", probe.OK, "up", "up", 1),
			},
			status: probe.Warn, prefix: "ch-1: 120 DDL statements in 10m.",
			top: "ddl_storm", likelihood: Likely,
			check: func(t *testing.T, cs []Cause) {
				if !strings.Contains(cs[0].For[0], "120 DDL statements on ch-1 in the last 10m0s (threshold 50)") {
					t.Errorf("ddl_storm for: %q", cs[0].For)
				}
			},
		},
		{
			name: "metadata explosion",
			results: []probe.Result{
				res("clickhouse.replicas", "ch-1", probe.Warn, "5000 replicated tables", "replicated_tables", 5000, "readonly_replicas", 0),
				res("keeper.mntr", "zk-1", probe.Warn, "3000000 znodes", "znode_count", 3_000_000, "avg_latency_ms", 1, "flavor", "zookeeper", "server_state", "leader"),
			},
			status: probe.Warn,
			top:    "metadata_explosion", likelihood: Likely,
		},
		{
			name: "reconnection herd",
			results: []probe.Result{
				res("clickhouse.ping", "ch-1", probe.OK, "up", "up", 1, "uptime_seconds", 86400),
				res("clickhouse.ping", "ch-2", probe.OK, "up", "up", 1, "uptime_seconds", 86400),
				res("clickhouse.ping", "ch-3", probe.OK, "up", "up", 1, "uptime_seconds", 86400),
				res("clickhouse.keeper_sessions", "ch-1", probe.Warn, "session 100 s old", "session_uptime_seconds", 100),
				res("clickhouse.keeper_sessions", "ch-2", probe.Warn, "session 101 s old", "session_uptime_seconds", 101),
				res("clickhouse.keeper_sessions", "ch-3", probe.Warn, "session 102 s old", "session_uptime_seconds", 102),
				res("keeper.mntr", "zk-1", probe.Warn, "average latency 50 ms", "avg_latency_ms", 50, "server_state", "leader"),
			},
			status: probe.Warn, prefix: "Coordination is stressed",
			top: "reconnection_herd", likelihood: Likely,
			check: func(t *testing.T, cs []Cause) {
				if f := strings.Join(cs[0].For, "|"); !strings.Contains(f, "sessions of ch-1, ch-2, ch-3 all began within 2 s of each other, 102 s ago") || !strings.Contains(f, "latency is elevated") {
					t.Errorf("reconnection_herd for: %q", cs[0].For)
				}
			},
		},
		{
			name: "clickhouse keeper is not jvm",
			results: []probe.Result{
				res("keeper.mntr", "zk-1", probe.Warn, "max latency 500 ms", "max_latency_ms", 500, "avg_latency_ms", 1, "flavor", "clickhouse-keeper", "server_state", "leader"),
			},
			status: probe.Warn,
			check: func(t *testing.T, cs []Cause) {
				c, ok := causeNamed(cs, "jvm_gc")
				if !ok || c.Likelihood != Unlikely || len(c.Against) != 1 || c.Against[0] != "ClickHouse Keeper is not JVM-based" {
					t.Errorf("jvm_gc = %+v", c)
				}
			},
		},
		{
			name: "zookeeper gc pauses",
			results: []probe.Result{
				res("keeper.mntr", "zk-1", probe.Warn, "max latency 500 ms", "max_latency_ms", 500, "avg_latency_ms", 1, "flavor", "zookeeper", "server_state", "leader"),
			},
			status: probe.Warn, top: "jvm_gc", likelihood: Possible,
		},
		{
			name: "connection exhaustion",
			results: []probe.Result{
				res("keeper.cons", "zk-1", probe.Warn, "10.0.0.7 holds 57 of 60 connections", "max_per_ip_ratio", 0.95, "top_ip", "10.0.0.7"),
				res("keeper.cons", "zk-2", probe.OK, "ok", "max_per_ip_ratio", 0.1, "top_ip", "10.0.0.8"),
			},
			status: probe.Warn, top: "connection_exhaustion", likelihood: Likely,
			check: func(t *testing.T, cs []Cause) {
				if want := "client 10.0.0.7 holds 95% of maxClientCnxns on zk-1"; len(cs[0].For) == 0 || cs[0].For[0] != want {
					t.Errorf("connection_exhaustion for %q, want %q", cs[0].For, want)
				}
			},
		},
		{
			name: "network partition",
			results: []probe.Result{
				res("keeper.ruok", "zk-1", probe.OK, "imok", "ok", 1),
				res("keeper.ruok", "zk-2", probe.OK, "imok", "ok", 1),
				res("keeper.ruok", "zk-3", probe.OK, "imok", "ok", 1),
				res("clickhouse.keeper_latency", "ch-1", probe.Crit, "keeper unreachable", "keeper_reachable", 0),
				res("clickhouse.keeper_latency", "ch-2", probe.Crit, "keeper unreachable", "keeper_reachable", 0),
			},
			status: probe.Crit, top: "network_partition", likelihood: Likely,
			contains: []string{"Likely cause: a network partition"},
			check: func(t *testing.T, cs []Cause) {
				if !strings.Contains(cs[0].For[0], "chmedic reaches 3 coordination nodes, but ch-1, ch-2 cannot") {
					t.Errorf("network_partition for: %q", cs[0].For)
				}
				if c, _ := causeNamed(cs, "keeper_down"); c.Score >= cs[0].Score {
					t.Errorf("keeper_down scores %v, not below the partition", c.Score)
				}
			},
		},
		{
			name: "one clickhouse node down",
			results: []probe.Result{
				res("clickhouse.ping", "ch-1", probe.OK, "up", "up", 1),
				res("clickhouse.ping", "ch-2", probe.Crit, "connection refused", "up", 0),
			},
			status: probe.Crit, prefix: "ch-2: connection refused.",
			contains: []string{"Likely cause: a ClickHouse node is down"},
			top:      "node_down", likelihood: Likely,
			check: func(t *testing.T, cs []Cause) {
				if cs[0].For[0] != "ch-2 unreachable (1 of 2 nodes)" {
					t.Errorf("node_down for: %q", cs[0].For)
				}
			},
		},
		{
			name: "thin evidence: unknown only",
			results: []probe.Result{
				res("clickhouse.ddl_queue", "ch-1", probe.Unknown, "not available on ClickHouse 21.3: system.distributed_ddl_queue"),
			},
			status: probe.Unknown, contains: []string{"could not be completed"},
		},
		{
			name: "thin evidence: a warning nothing explains",
			results: []probe.Result{
				res("clickhouse.replication_queue", "ch-1", probe.Warn, "3 entries retried 7 times"),
			},
			status: probe.Warn, prefix: "ch-1: 3 entries retried 7 times.", contains: []string{"No clear cause"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, cs, verdict, worst := analyze(tc.results, probe.DefaultThresholds(), analyzeNow)
			if worst != tc.status {
				t.Errorf("status %v, want %v", worst, tc.status)
			}
			if !strings.HasPrefix(verdict, tc.prefix) {
				t.Errorf("verdict %q, want it to start with %q", verdict, tc.prefix)
			}
			for _, s := range tc.contains {
				if !strings.Contains(verdict, s) {
					t.Errorf("verdict %q does not contain %q", verdict, s)
				}
			}
			if len(cs) != len(causeFuncs) {
				t.Fatalf("%d causes, want one per catalogue entry (%d)", len(cs), len(causeFuncs))
			}
			for i, c := range cs {
				if i > 0 && c.Score > cs[i-1].Score {
					t.Errorf("causes not ranked: %s (%v) after %s (%v)", c.Name, c.Score, cs[i-1].Name, cs[i-1].Score)
				}
				want := Unlikely
				if c.Score >= 0.6 {
					want = Likely
				} else if c.Score >= 0.3 {
					want = Possible
				}
				if c.Likelihood != want || c.Score < 0 || c.Score > 1 {
					t.Errorf("cause %s: score %v graded %s", c.Name, c.Score, c.Likelihood)
				}
			}
			d := &Diagnosis{Causes: cs}
			top, ok := d.Top()
			if tc.top != "" && (!ok || top.Name != tc.top || top.Likelihood != tc.likelihood) {
				t.Errorf("top cause %s (%s, %v), want %s (%s); causes: %+v", top.Name, top.Likelihood, top.Score, tc.top, tc.likelihood, cs)
			}
			if tc.top == "" && tc.check == nil && ok {
				t.Errorf("top cause %s (%v), want none at least possible", top.Name, top.Score)
			}
			// Findings: every non-ok result, worst first.
			nonOK := 0
			for _, r := range tc.results {
				if r.Status != probe.OK {
					nonOK++
				}
			}
			if len(fs) != nonOK {
				t.Errorf("%d findings, want %d", len(fs), nonOK)
			}
			for i := 1; i < len(fs); i++ {
				if fs[i].Status.Worse(fs[i-1].Status) {
					t.Errorf("findings not worst first: %v after %v", fs[i].Status, fs[i-1].Status)
				}
			}
			if tc.check != nil {
				tc.check(t, cs)
			}
		})
	}
}

func TestSkippedChecksAreNotFindings(t *testing.T) {
	const exp = "none of the 1 coordination nodes answers"
	results := []probe.Result{
		{Probe: "keeper.ruok", Node: "zk-1", Status: probe.Crit, Summary: "zk-1 unreachable"},
		{Probe: "keeper.mntr", Node: "zk-1", Status: probe.Unknown, Skipped: "node unreachable (ruok: refused)"},
		{Probe: "keeper.conf", Node: "zk-1", Status: probe.Unknown, Skipped: "node unreachable (ruok: refused)"},
		{Probe: "clickhouse.keeper_latency", Node: "ch-1", Status: probe.Unknown, Skipped: exp},
	}
	fs := findings(results, nil)
	if len(fs) != 1 || fs[0].Probe != "keeper.ruok" {
		t.Fatalf("findings %+v, want only the ruok failure", fs)
	}
	got := skipped(results, exp)
	want := []string{"zk-1: keeper.mntr, keeper.conf (node unreachable (ruok: refused))"}
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("skipped %q, want %q", got, want)
	}
}
