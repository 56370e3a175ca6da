#!/usr/bin/env node
// Checks chmedic's ClickHouse probe queries against the ClickHouse 26.x engine
// that the chdb package embeds (in-process: no server, no ZooKeeper).
//
// Input (stdin): JSON {"queries": [{probe, name, sql, columns, keeper, mode}]}
//   mode "check": the query must parse (EXPLAIN AST), analyse
//                 (DESCRIBE TABLE (query): every table, column and function
//                 resolves) and return every name in `columns`; it is also
//                 run when it needs no coordination service.
//   mode "parse": syntax only (variants for servers older than this engine,
//                 whose columns it does not have).
// Output (stdout): JSON {"engine": version(), "results": [{probe, name, ok,
//   error, columns: [{name, type}], stubbed: [...], executed, rows}]}
// Exit status 0 when the check ran (see each result's ok), 2 on bad input.
//
// chdb's engine is clickhouse-local: it has no system.zookeeper,
// system.zookeeper_connection or system.query_log (server-only tables). The
// queries that read them are analysed against stand-ins with the documented
// 26.x schemas (chmedic_stub.*, below), filled with a few rows so that running
// them also checks comparisons such as type = 'QueryStart' on the Enum.
// system.distributed_ddl_queue exists in the engine but reading it needs
// ZooKeeper, so such queries are analysed, not run. Enum literals in
// comparisons are validated (validate_enum_literals_in_operators), so
// status != 'Finishd' fails instead of matching everything.
"use strict";

const { Session } = require("chdb");

// Stand-ins for server-only system tables, from the ClickHouse 26.x
// documentation (operations/system-tables/zookeeper, zookeeper_connection)
// and QueryLogElement::getColumnsDescription (query_log, leading columns).
const STUBS = {
  zookeeper: `CREATE TABLE chmedic_stub.zookeeper (
      name String, path String, value String, zookeeperName String,
      dataLength Int32, numChildren Int32, czxid Int64, mzxid Int64, pzxid Int64,
      ctime DateTime, mtime DateTime, version Int32, cversion Int32, aversion Int32,
      ephemeralOwner Int64) ENGINE = Memory`,
  zookeeper_connection: `CREATE TABLE chmedic_stub.zookeeper_connection (
      name String, host String, port UInt16, "index" Nullable(UInt8), connected_time DateTime,
      session_uptime_elapsed_seconds UInt64, is_expired UInt8, keeper_api_version UInt8,
      client_id Int64, xid Int64, enabled_feature_flags Array(String), availability_zone String,
      session_timeout_ms UInt64, last_zxid_seen Int64) ENGINE = Memory`,
  query_log: `CREATE TABLE chmedic_stub.query_log (
      hostname LowCardinality(String),
      type Enum8('QueryStart' = 1, 'QueryFinish' = 2, 'ExceptionBeforeStart' = 3, 'ExceptionWhileProcessing' = 4),
      event_date Date, event_time DateTime, event_time_microseconds DateTime64(6),
      query_start_time DateTime, query_start_time_microseconds DateTime64(6), query_duration_ms UInt64,
      read_rows UInt64, read_bytes UInt64, written_rows UInt64, written_bytes UInt64,
      result_rows UInt64, result_bytes UInt64, memory_usage UInt64,
      current_database LowCardinality(String), query String, formatted_query String,
      normalized_query_hash UInt64, query_kind LowCardinality(String),
      databases Array(LowCardinality(String)), tables Array(LowCardinality(String)),
      columns Array(LowCardinality(String)), partitions Array(LowCardinality(String)),
      projections Array(LowCardinality(String)), views Array(LowCardinality(String)),
      exception_code Int32, exception String, stack_trace String, is_initial_query UInt8,
      user LowCardinality(String), query_id String, address IPv6, port UInt16,
      initial_user LowCardinality(String), initial_query_id String, initial_address IPv6,
      initial_port UInt16, initial_query_start_time DateTime,
      initial_query_start_time_microseconds DateTime64(6), authenticated_user LowCardinality(String),
      interface UInt8, is_secure UInt8, os_user LowCardinality(String),
      client_hostname LowCardinality(String), client_name LowCardinality(String),
      client_revision UInt32, client_version_major UInt32, client_version_minor UInt32,
      client_version_patch UInt32, distributed_depth UInt64, revision UInt32, log_comment String
    ) ENGINE = Memory`,
};

// A few rows, so that running the queries exercises their filters.
const STUB_ROWS = [
  `INSERT INTO chmedic_stub.zookeeper (name, path, numChildren) VALUES
     ('clickhouse', '/', 2), ('zookeeper', '/', 1), ('tables', '/clickhouse', 3), ('task_queue', '/clickhouse', 1)`,
  `INSERT INTO chmedic_stub.zookeeper_connection (name, host, port, "index", connected_time,
     session_uptime_elapsed_seconds, is_expired, keeper_api_version, client_id, session_timeout_ms)
     VALUES ('default', '127.0.0.1', 9181, 0, now() - 90, 90, 0, 0, 1, 30000)`,
  // One DDL start in the window; its finish, a SELECT and an old CREATE must not count.
  `INSERT INTO chmedic_stub.query_log (type, event_date, event_time, query, query_kind, user) VALUES
     ('QueryStart', today(), now() - 30, 'CREATE TABLE t (x UInt8) ENGINE = Memory', 'Create', 'etl'),
     ('QueryFinish', today(), now() - 29, 'CREATE TABLE t (x UInt8) ENGINE = Memory', 'Create', 'etl'),
     ('QueryStart', today(), now() - 20, 'SELECT 1', 'Select', 'etl'),
     ('QueryStart', today() - 2, now() - 172800, 'DROP TABLE old', 'Drop', 'etl')`,
];

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
    process.stdin.on("error", reject);
  });
}

function firstLine(msg) {
  return String(msg).split("\n")[0].slice(0, 500);
}

async function main() {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch (e) {
    process.stderr.write("check.js: stdin is not JSON: " + e.message + "\n");
    process.exit(2);
  }
  const session = new Session(); // temporary directory, removed on close
  const q = (sql, fmt) => session.query(sql, fmt || "TSV");
  try {
    const engine = q("SELECT version()").trim();
    // Servers compare an Enum with a literal it does not have as simply
    // false; make that an error here, so a misspelt status or type fails.
    q("SET validate_enum_literals_in_operators = 1");
    const present = new Set(q("SELECT name FROM system.tables WHERE database = 'system'").trim().split("\n"));
    q("CREATE DATABASE chmedic_stub ENGINE = Memory");
    const stubbed = [];
    for (const [name, ddl] of Object.entries(STUBS)) {
      if (!present.has(name)) {
        q(ddl);
        stubbed.push(name);
      }
    }
    for (const ins of STUB_ROWS) {
      const table = /chmedic_stub\.(\w+)/.exec(ins)[1];
      if (stubbed.includes(table)) q(ins);
    }

    const results = [];
    for (const item of input.queries || []) {
      const r = { probe: item.probe, name: item.name, ok: false, error: "", columns: [], stubbed: [], executed: false, rows: [] };
      let sql = item.sql;
      for (const name of stubbed) {
        // system.zookeeper must not match system.zookeeper_connection.
        const re = new RegExp("\\bsystem\\." + name + "\\b(?!_)", "g");
        if (re.test(sql)) {
          sql = sql.replace(re, "chmedic_stub." + name);
          r.stubbed.push("system." + name);
        }
      }
      try {
        q("EXPLAIN AST " + sql);
        if (item.mode !== "parse") {
          const desc = q("DESCRIBE TABLE (" + sql + ")", "JSONEachRow").trim();
          r.columns = desc ? desc.split("\n").map((l) => { const o = JSON.parse(l); return { name: o.name, type: o.type }; }) : [];
          const have = new Set(r.columns.map((c) => c.name));
          const missing = (item.columns || []).filter((c) => !have.has(c));
          if (missing.length) throw new Error("result lacks column(s) the probe reads: " + missing.join(", "));
          // Run it unless it would need a coordination service.
          if (!/\bsystem\.(zookeeper|zookeeper_connection|distributed_ddl_queue)\b/.test(sql)) {
            const out = q(sql, "JSONEachRow").trim();
            r.rows = out ? out.split("\n").slice(0, 20).map((l) => JSON.parse(l)) : [];
            r.executed = true;
          }
        }
        r.ok = true;
      } catch (e) {
        r.error = firstLine(e.message || e);
      }
      results.push(r);
    }
    process.stdout.write(JSON.stringify({ engine, stubbed, results }) + "\n");
  } finally {
    session.close();
  }
}

main().catch((e) => {
  process.stderr.write("check.js: " + (e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
