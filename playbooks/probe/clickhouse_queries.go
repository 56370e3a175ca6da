package probe

import "time"

// NamedQuery is one statement the ClickHouse probes send, listed so that
// tests can check it against real engines: LegacyQueries against a running
// 18.16, ModernQueries against ClickHouse 26 (chdb, scripts/chdb).
type NamedQuery struct {
	// Probe is the probe that sends it ("clickhouse.replicas"), or
	// "clickhouse.meta" for the cached version / table / column look-ups.
	Probe string `json:"probe"`
	// Name is unique within the probe.
	Name string `json:"name"`
	SQL  string `json:"sql"`
	// Columns are the result columns the probe reads.
	Columns []string `json:"columns"`
	// Keeper is set when running the statement contacts the coordination
	// service (system.zookeeper, zookeeper_connection,
	// distributed_ddl_queue): a check without one plans it but does not run
	// it.
	Keeper bool `json:"keeper"`
}

// Meta look-ups by internal/clickhouse (ServerVersion, HasTable,
// HasColumn), with the arguments a probe passes.
var (
	metaVersion = NamedQuery{Probe: "clickhouse.meta", Name: "version", SQL: "SELECT version() AS version", Columns: []string{"version"}}
	metaTables  = NamedQuery{Probe: "clickhouse.meta", Name: "system_tables", SQL: "SELECT name FROM system.tables WHERE database = 'system'", Columns: []string{"name"}}
)

func metaColumns(table string) NamedQuery {
	return NamedQuery{Probe: "clickhouse.meta", Name: "columns_" + table,
		SQL:     "SELECT name FROM system.columns WHERE database = 'system' AND table = " + sqlString(table),
		Columns: []string{"name"}}
}

var (
	replicasSummaryColumns = []string{"replicated_tables", "readonly_replicas", "session_expired_replicas", "problem_replicas",
		"max_absolute_delay", "max_queue_size", "total_queue_size"}
	replicasProblemColumns = []string{"database", "table", "is_readonly", "is_session_expired", "absolute_delay", "queue_size"}
	replicasPeerColumns    = []string{"database", "table", "is_readonly", "is_session_expired", "active_replicas", "total_replicas", "absolute_delay", "queue_size"}
)

// ModernQueries returns every statement the ClickHouse probes send to a
// current server (26.x, which has every table and column they look for),
// with the default thresholds.
func ModernQueries() []NamedQuery {
	th := DefaultThresholds()
	delay := int64(th.ReplicaDelayWarn / time.Second)
	return []NamedQuery{
		metaVersion, metaTables,
		metaColumns("zookeeper_connection"), metaColumns("replicas"), metaColumns("distributed_ddl_queue"),
		metaColumns("query_log"), metaColumns("clusters"),
		{Probe: "clickhouse.ping", Name: "ping", SQL: pingSQL, Columns: []string{"version", "uptime"}},
		{Probe: "clickhouse.keeper_latency", Name: "zookeeper_root", SQL: keeperLatencySQL, Columns: []string{"name"}, Keeper: true},
		{Probe: "clickhouse.keeper_latency", Name: "alive", SQL: aliveSQL, Columns: []string{"alive"}},
		{Probe: "clickhouse.keeper_sessions", Name: "zookeeper_connection", SQL: keeperSessionsSQL(true, true), Keeper: true,
			Columns: []string{"name", "host", "port", "is_expired", "connected_time", "session_uptime_elapsed_seconds", "session_timeout_ms"}},
		{Probe: "clickhouse.replicas", Name: "summary", SQL: replicasSummarySQL(delay), Columns: replicasSummaryColumns},
		{Probe: "clickhouse.replicas", Name: "problems", SQL: replicasProblemsSQL(delay), Columns: replicasProblemColumns},
		{Probe: "clickhouse.replicas", Name: "peers_summary", SQL: replicasPeersSummarySQL, Columns: []string{"inactive_replicas"}},
		{Probe: "clickhouse.replicas", Name: "peers", SQL: replicasPeersSQL(true),
			Columns: append(replicasPeerColumns, "zookeeper_exception")},
		{Probe: "clickhouse.replication_queue", Name: "summary", SQL: replicationQueueSummarySQL, Columns: []string{"queue_entries", "stuck_entries", "max_num_tries"}},
		{Probe: "clickhouse.replication_queue", Name: "stuck", SQL: replicationQueueStuckSQL,
			Columns: []string{"database", "table", "type", "create_time", "last_attempt_time", "num_tries", "last_exception"}},
		{Probe: "clickhouse.ddl_queue", Name: "unfinished", SQL: ddlQueueModernSQL, Keeper: true,
			Columns: []string{"entry", "cluster", "host", "port", "status", "query_create_time", "age_seconds", "exception_text", "query_head"}},
		{Probe: "clickhouse.keeper_errors", Name: "events", SQL: keeperErrorsSQL, Columns: []string{"event", "value"}},
		{Probe: "clickhouse.ddl_storm", Name: "query_kind", SQL: ddlStormModernSQL(th.DDLStormWindow), Columns: []string{"kind", "user", "n"}},
		{Probe: "clickhouse.metadata", Name: "replicas", SQL: metadataReplicasSQL, Columns: []string{"replicated_tables", "first_path", "last_path"}},
		{Probe: "clickhouse.metadata", Name: "children", SQL: metadataChildrenSQL("/clickhouse"), Columns: []string{"name", "numChildren"}, Keeper: true},
		{Probe: "clickhouse.interserver", Name: "metrics", SQL: interserverMetricsSQL, Columns: []string{"metric", "value"}},
		{Probe: "clickhouse.interserver", Name: "clusters", SQL: interserverClustersSQL(true),
			Columns: []string{"cluster", "shard_num", "replica_num", "host_name", "port", "errors_count", "estimated_recovery_time"}},
	}
}

// LegacyQueries returns every statement the ClickHouse probes send to
// ClickHouse 18.16 (no zookeeper_connection, distributed_ddl_queue,
// query_kind, errors_count or zookeeper_exception), with the default
// thresholds.
func LegacyQueries() []NamedQuery {
	th := DefaultThresholds()
	delay := int64(th.ReplicaDelayWarn / time.Second)
	return []NamedQuery{
		metaVersion, metaTables,
		metaColumns("replicas"), metaColumns("query_log"), metaColumns("clusters"),
		{Probe: "clickhouse.ping", Name: "ping", SQL: pingSQL, Columns: []string{"version", "uptime"}},
		{Probe: "clickhouse.keeper_latency", Name: "zookeeper_root", SQL: keeperLatencySQL, Columns: []string{"name"}, Keeper: true},
		{Probe: "clickhouse.keeper_latency", Name: "alive", SQL: aliveSQL, Columns: []string{"alive"}},
		{Probe: "clickhouse.keeper_sessions", Name: "metrics", SQL: keeperSessionMetricsSQL(false), Columns: []string{"metric", "value"}},
		{Probe: "clickhouse.replicas", Name: "summary", SQL: replicasSummarySQL(delay), Columns: replicasSummaryColumns},
		{Probe: "clickhouse.replicas", Name: "problems", SQL: replicasProblemsSQL(delay), Columns: replicasProblemColumns},
		{Probe: "clickhouse.replicas", Name: "peers_summary", SQL: replicasPeersSummarySQL, Columns: []string{"inactive_replicas"}},
		{Probe: "clickhouse.replicas", Name: "peers", SQL: replicasPeersSQL(false), Columns: replicasPeerColumns},
		{Probe: "clickhouse.replication_queue", Name: "summary", SQL: replicationQueueSummarySQL, Columns: []string{"queue_entries", "stuck_entries", "max_num_tries"}},
		{Probe: "clickhouse.replication_queue", Name: "stuck", SQL: replicationQueueStuckSQL,
			Columns: []string{"database", "table", "type", "create_time", "last_attempt_time", "num_tries", "last_exception"}},
		{Probe: "clickhouse.keeper_errors", Name: "events", SQL: keeperErrorsSQL, Columns: []string{"event", "value"}},
		{Probe: "clickhouse.ddl_storm", Name: "prefix", SQL: ddlStormLegacySQL(th.DDLStormWindow), Columns: []string{"kind", "user", "n"}},
		{Probe: "clickhouse.metadata", Name: "replicas", SQL: metadataReplicasSQL, Columns: []string{"replicated_tables", "first_path", "last_path"}},
		{Probe: "clickhouse.metadata", Name: "children", SQL: metadataChildrenSQL("/clickhouse"), Columns: []string{"name", "numChildren"}, Keeper: true},
		{Probe: "clickhouse.interserver", Name: "metrics", SQL: interserverMetricsSQL, Columns: []string{"metric", "value"}},
	}
}

// IntermediateQueries are the variants for servers between 18.16 and 26.x
// (21.1 ... 25.6: older forms of zookeeper_connection and
// distributed_ddl_queue, zookeeperSessionUptime()). No such server runs
// here; they are checked for syntax only.
func IntermediateQueries() []NamedQuery {
	return []NamedQuery{
		{Probe: "clickhouse.keeper_sessions", Name: "zookeeper_connection_23_5", SQL: keeperSessionsSQL(false, false), Keeper: true},
		{Probe: "clickhouse.keeper_sessions", Name: "zookeeper_connection_23_7", SQL: keeperSessionsSQL(true, false), Keeper: true},
		{Probe: "clickhouse.keeper_sessions", Name: "metrics_21_11", SQL: keeperSessionMetricsSQL(true), Columns: []string{"metric", "value", "session_uptime"}},
		{Probe: "clickhouse.ddl_queue", Name: "unfinished_21_1", SQL: ddlQueueLegacySQL, Keeper: true},
		{Probe: "clickhouse.interserver", Name: "clusters_no_recovery", SQL: interserverClustersSQL(false)},
	}
}
