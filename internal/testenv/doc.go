// Package testenv owns chmedic's real integration-test environment: it starts,
// on 127.0.0.1 with random free ports inside one temporary directory, a real
// ZooKeeper, real ClickHouse servers that are replicas of one shard
// coordinated by that ZooKeeper, and a real Alertmanager, and it lets tests
// induce faults on them (stop, pause or restart a server, edit the users
// config).
//
// The servers come from Debian packages (clickhouse-server 18.16, zookeeper
// 3.8 with a JRE, prometheus-alertmanager 0.25); scripts/install-test-deps.sh
// installs them. When they are missing, Require skips the test, or fails it
// when CHMEDIC_REQUIRE_INTEGRATION=1 (as CI sets).
//
// A package's tests share one environment, started on first use and torn
// down by Main:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		env := testenv.Shared(t)
//		out, err := env.ClickHouse[0].Query(t.Context(), "SELECT count() FROM chmedic_test.events")
//		...
//	}
//
// A test that breaks the shared environment must repair it before it returns
// (for example restart ZooKeeper, then WaitHealthy); a test that needs a
// pristine or throw-away environment calls Start and Close itself.
//
// What the environment holds at start: database chmedic_test with the
// ReplicatedMergeTree table chmedic_test.events (SeedRows rows, replicated to
// every replica); the cluster Cluster in remote_servers (one shard, every
// replica, internal_replication) so that ON CLUSTER DDL works; query_log and
// part_log flushed every second; users AdminUser (full rights), ProbeUser
// (readonly=2) and default (no password), all limited to loopback, each with
// its own settings profile of the same name, and log_queries=1 everywhere
// (unless Options.LogQueries says otherwise). Ports are random, below the
// kernel's ephemeral range so that a stopped server can bind its port again.
//
// Set CHMEDIC_KEEP_TESTENV=1 to keep the directory (configs, data, logs) after
// Close; its path is logged.
package testenv
