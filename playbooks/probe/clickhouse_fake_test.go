package probe

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// fakeCH is a probe.ClickHouse answering from a schema (which system tables
// and columns exist) and canned responses matched by substring, in order.
// It records every query, including the meta look-ups a real node would
// send, so tests can compare them with ModernQueries / LegacyQueries.
type fakeCH struct {
	version clickhouse.Version
	schema  map[string][]string // system table → columns
	resp    []fakeResp
	// versionErr fails ServerVersion (and so the node look-ups).
	versionErr error

	mu      sync.Mutex
	queries []string
}

type fakeResp struct {
	match string // substring of the SQL
	rows  []clickhouse.Row
	err   error
	delay time.Duration // wait this long (or until ctx ends) first
	once  bool          // answer only the first matching query
	used  bool
}

func (f *fakeCH) record(q string) {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
}

func (f *fakeCH) Query(ctx context.Context, q string, args ...any) ([]clickhouse.Row, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("fake: probes bind no arguments, got %v", args)
	}
	f.record(q)
	f.mu.Lock()
	var r *fakeResp
	for i := range f.resp {
		if strings.Contains(q, f.resp[i].match) && !(f.resp[i].once && f.resp[i].used) {
			r = &f.resp[i]
			r.used = true
			break
		}
	}
	f.mu.Unlock()
	if r == nil {
		return nil, nodeErr(fmt.Errorf("fake: no response for %q", q))
	}
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
			return nil, nodeErr(fmt.Errorf("no answer: %w", ctx.Err()))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.rows, nil
}

func (f *fakeCH) ServerVersion(ctx context.Context) (clickhouse.Version, error) {
	if f.versionErr != nil {
		return clickhouse.Version{}, f.versionErr
	}
	f.mu.Lock()
	first := !slices.Contains(f.queries, metaVersion.SQL)
	f.mu.Unlock()
	if first {
		f.record(metaVersion.SQL)
	}
	return f.version, nil
}

func (f *fakeCH) HasTable(ctx context.Context, database, table string) (bool, error) {
	if f.versionErr != nil {
		return false, f.versionErr
	}
	if database != "system" {
		return false, nil
	}
	f.mu.Lock()
	first := !slices.Contains(f.queries, metaTables.SQL)
	f.mu.Unlock()
	if first {
		f.record(metaTables.SQL)
	}
	_, ok := f.schema[table]
	return ok, nil
}

func (f *fakeCH) HasColumn(ctx context.Context, database, table, column string) (bool, error) {
	if f.versionErr != nil {
		return false, f.versionErr
	}
	q := metaColumns(table).SQL
	f.mu.Lock()
	first := !slices.Contains(f.queries, q)
	f.mu.Unlock()
	if first {
		f.record(q)
	}
	return database == "system" && slices.Contains(f.schema[table], column), nil
}

// Errors as internal/clickhouse returns them.

func nodeErr(err error) error {
	return &clickhouse.NodeError{Node: "ch-2", Addr: "127.0.0.1:9000", Err: err}
}

func exceptionErr(code int32, msg string) error {
	return nodeErr(&proto.Exception{Code: code, Name: "DB::Exception", Message: msg})
}

func refusedErr() error {
	return nodeErr(&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000},
		Err: &net.OpError{Op: "connect", Err: syscall.ECONNREFUSED}})
}

func timeoutErr() error {
	return nodeErr(fmt.Errorf("no answer: %w", context.DeadlineExceeded))
}

var coordinationErr = exceptionErr(999, "Coordination::Exception: All connection tries failed while connecting to ZooKeeper. Addresses: 127.0.0.1:2181 (Connection loss)")

// Schemas of the system tables the probes read, as the servers report them:
// 18.16.1 measured on the Debian package here; 26.7 from chdb's engine, plus
// system.zookeeper, system.zookeeper_connection and system.query_log (which
// chdb lacks) from the ClickHouse documentation; 23.5 is 26.7 with the first
// form of zookeeper_connection and distributed_ddl_queue.
var (
	schema18 = map[string][]string{
		"replicas": {"database", "table", "engine", "is_leader", "is_readonly", "is_session_expired", "future_parts", "parts_to_check",
			"zookeeper_path", "replica_name", "replica_path", "columns_version", "queue_size", "inserts_in_queue", "merges_in_queue",
			"part_mutations_in_queue", "queue_oldest_time", "inserts_oldest_time", "merges_oldest_time", "part_mutations_oldest_time",
			"oldest_part_to_get", "oldest_part_to_merge_to", "oldest_part_to_mutate_to", "log_max_index", "log_pointer",
			"last_queue_update", "absolute_delay", "total_replicas", "active_replicas"},
		"replication_queue": {"database", "table", "replica_name", "position", "node_name", "type", "create_time", "required_quorum",
			"source_replica", "new_part_name", "parts_to_merge", "is_detach", "is_currently_executing", "num_tries", "last_exception",
			"last_attempt_time", "num_postponed", "postpone_reason", "last_postpone_time"},
		"events":  {"event", "value", "description"},
		"metrics": {"metric", "value", "description"},
		"query_log": {"type", "event_date", "event_time", "query_start_time", "query_duration_ms", "read_rows", "read_bytes",
			"written_rows", "written_bytes", "result_rows", "result_bytes", "memory_usage", "query", "exception", "stack_trace",
			"is_initial_query", "user", "query_id", "address", "port", "initial_user", "initial_query_id", "initial_address",
			"initial_port", "interface", "os_user", "client_hostname", "client_name", "client_revision", "client_version_major",
			"client_version_minor", "client_version_patch", "http_method", "http_user_agent", "quota_key", "revision",
			"thread_numbers", "ProfileEvents.Names", "ProfileEvents.Values", "Settings.Names", "Settings.Values"},
		"clusters": {"cluster", "shard_num", "shard_weight", "replica_num", "host_name", "host_address", "port", "is_local", "user", "default_database"},
		"zookeeper": {"name", "value", "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner",
			"dataLength", "numChildren", "pzxid", "path"},
		"tables":  {"database", "name", "engine"},
		"columns": {"database", "table", "name", "type"},
	}
	schema26 = map[string][]string{
		"replicas": {"database", "table", "uuid", "engine", "is_leader", "can_become_leader", "is_readonly", "readonly_start_time",
			"is_session_expired", "future_parts", "parts_to_check", "zookeeper_name", "zookeeper_path", "replica_name", "replica_path",
			"columns_version", "queue_size", "inserts_in_queue", "merges_in_queue", "part_mutations_in_queue", "queue_oldest_time",
			"inserts_oldest_time", "merges_oldest_time", "part_mutations_oldest_time", "oldest_part_to_get", "oldest_part_to_merge_to",
			"oldest_part_to_mutate_to", "log_max_index", "log_pointer", "last_queue_update", "absolute_delay", "total_replicas",
			"active_replicas", "lost_part_count", "last_queue_update_exception", "zookeeper_exception", "replica_is_active", "readonly_duration"},
		"replication_queue": {"database", "table", "replica_name", "position", "node_name", "type", "create_time", "required_quorum",
			"source_replica", "new_part_name", "parts_to_merge", "is_detach", "is_currently_executing", "num_tries", "last_exception",
			"last_exception_time", "last_attempt_time", "num_postponed", "postpone_reason", "last_postpone_time", "merge_type"},
		"distributed_ddl_queue": {"entry", "entry_version", "initiator_host", "initiator_port", "cluster", "query", "settings",
			"query_create_time", "host", "port", "status", "exception_code", "exception_text", "query_finish_time", "query_duration_ms"},
		"events":  {"event", "value", "description", "name"},
		"metrics": {"metric", "value", "description", "name"},
		"query_log": {"hostname", "type", "event_date", "event_time", "event_time_microseconds", "query_start_time",
			"query_duration_ms", "read_rows", "written_rows", "memory_usage", "current_database", "query", "formatted_query",
			"normalized_query_hash", "query_kind", "databases", "tables", "exception_code", "exception", "is_initial_query", "user",
			"query_id", "initial_user", "initial_query_id"},
		"clusters": {"cluster", "shard_num", "shard_name", "shard_weight", "internal_replication", "replica_num", "host_name",
			"host_address", "port", "is_local", "user", "default_database", "errors_count", "slowdowns_count", "estimated_recovery_time",
			"database_shard_name", "database_replica_name", "is_shared_catalog_cluster", "is_active", "unsynced_after_recovery",
			"replication_lag", "recovery_time", "name"},
		"zookeeper": {"name", "path", "value", "zookeeperName", "dataLength", "numChildren", "czxid", "mzxid", "pzxid", "ctime",
			"mtime", "version", "cversion", "aversion", "ephemeralOwner"},
		"zookeeper_connection": {"name", "host", "port", "index", "connected_time", "session_uptime_elapsed_seconds", "is_expired",
			"keeper_api_version", "client_id", "xid", "enabled_feature_flags", "availability_zone", "session_timeout_ms", "last_zxid_seen"},
		"tables":  {"database", "name", "engine"},
		"columns": {"database", "table", "name", "type"},
	}
	schema23 = func() map[string][]string {
		s := make(map[string][]string, len(schema26))
		for k, v := range schema26 {
			s[k] = v
		}
		s["zookeeper_connection"] = []string{"name", "host", "port", "index", "connected_time", "is_expired", "keeper_api_version", "client_id"}
		s["distributed_ddl_queue"] = []string{"entry", "host_name", "host_address", "port", "status", "cluster", "query", "initiator",
			"query_start_time", "query_finish_time", "query_duration_ms", "exception_code"}
		return s
	}()
	v18 = mustVersion("18.16.1")
	v23 = mustVersion("23.5.1.3174")
	v26 = mustVersion("26.7.2.1")
)

func mustVersion(s string) clickhouse.Version {
	v, err := clickhouse.ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// newFake returns a fake of the given era ("18", "23", "26").
func newFake(era string, resp ...fakeResp) *fakeCH {
	f := &fakeCH{resp: resp}
	var schema map[string][]string
	switch era {
	case "18":
		f.version, schema = v18, schema18
	case "23":
		f.version, schema = v23, schema23
	default:
		f.version, schema = v26, schema26
	}
	f.schema = make(map[string][]string, len(schema)) // tests may edit it
	for k, v := range schema {
		f.schema[k] = v
	}
	return f
}

var fixedNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func testTarget(ch ClickHouse) *Target {
	return &Target{Cluster: "c1", Node: "ch-2", Addr: "127.0.0.1:9000", ClickHouse: ch, Thresholds: DefaultThresholds(),
		Now: func() time.Time { return fixedNow }}
}

// checkListed fails when the fake received a query not in list.
func checkListed(t *testing.T, got []string, list []NamedQuery) {
	t.Helper()
	for _, q := range got {
		found := false
		for _, nq := range list {
			if nq.SQL == q {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("query not listed in the era's query list:\n%s", q)
		}
	}
}
