package probe

// clickhouse.ddl_queue — distributed (ON CLUSTER) DDL that has not finished
// (system.distributed_ddl_queue). Expensive and per cluster: the table is
// read from the coordination service, every entry and host.
//
// Facts:
//   unfinished_entries         DDL entries not finished on some host (a lower
//                              bound when 1000 host rows were read)
//   oldest_unfinished_seconds  age of the oldest of them (0 when none)
//
// Status: Warn when an unfinished entry is older than
// Thresholds.DDLStuckAfter (5 min by default), OK otherwise.
//
// Versions: the table appeared in 21.1 and is Unavailable before (18.16).
// Its first form (host_name, query_start_time, status Active / Finished /
// Unknown / Errored, one row per entry and every host of every cluster) is
// read for status Active or Errored; the current form (host,
// query_create_time, exception_text, status Inactive / Active / Finished /
// Removing / Unknown, only the entry's hosts) for status other than Finished
// and Removing.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

const ddlQueueRowLimit = 1000

const ddlQueueModernSQL = "SELECT entry, cluster, host, port, status, query_create_time, " +
	"dateDiff('second', query_create_time, now()) AS age_seconds, exception_text, substring(query, 1, 200) AS query_head " +
	"FROM system.distributed_ddl_queue WHERE status NOT IN ('Finished', 'Removing') " +
	"ORDER BY query_create_time ASC LIMIT 1000"

const ddlQueueLegacySQL = "SELECT entry, cluster, host_name AS host, port, status, query_start_time AS query_create_time, " +
	"dateDiff('second', query_start_time, now()) AS age_seconds, toString(exception_code) AS exception_text, substring(query, 1, 200) AS query_head " +
	"FROM system.distributed_ddl_queue WHERE status IN ('Active', 'Errored') " +
	"ORDER BY query_start_time ASC LIMIT 1000"

// clickhouseDDLQueue is the clickhouse.ddl_queue probe.
func clickhouseDDLQueue() Spec {
	return Spec{
		Name:       "clickhouse.ddl_queue",
		Kind:       KindClickHouse,
		Expensive:  true,
		PerCluster: true,
		Doc:        "Distributed (ON CLUSTER) DDL not finished on some host, and how long it has waited (system.distributed_ddl_queue).",
		Run:        runClickHouseDDLQueue,
	}
}

func runClickHouseDDLQueue(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		if _, ok := requireTable(ctx, r, t, "distributed_ddl_queue", ""); !ok {
			return
		}
		cols, ok := hasColumns(ctx, r, t, "distributed_ddl_queue", "query_create_time")
		if !ok {
			return
		}
		sql := ddlQueueLegacySQL
		if cols["query_create_time"] {
			sql = ddlQueueModernSQL
		}
		rows, ok := chQuery(ctx, r, t, "system.distributed_ddl_queue", Warn, sql)
		if !ok {
			return
		}
		evaluateDDLQueue(r, t, rows)
	})
}

type ddlEntry struct {
	entry, cluster, query, exception string
	created                          time.Time
	age                              int64
	hosts                            []string
}

func evaluateDDLQueue(r *Result, t *Target, rows []clickhouse.Row) {
	node := nodeLabel(t)
	byEntry := map[string]*ddlEntry{}
	var order []*ddlEntry
	for _, row := range rows {
		name := row.String("entry")
		e := byEntry[name]
		if e == nil {
			e = &ddlEntry{entry: name, cluster: row.String("cluster"), query: row.String("query_head"),
				created: row.Time("query_create_time"), age: row.Int("age_seconds")}
			byEntry[name] = e
			order = append(order, e)
		}
		host := row.String("host")
		if p := row.Int("port"); p > 0 {
			host = fmt.Sprintf("%s:%d", host, p)
		}
		e.hosts = append(e.hosts, host+" "+strings.ToLower(row.String("status")))
		if exc := row.String("exception_text"); exc != "" && exc != "ZOK" && e.exception == "" {
			e.exception = exc
		}
		if a := row.Int("age_seconds"); a > e.age {
			e.age = a
		}
	}
	var oldest int64
	for _, e := range order {
		oldest = max(oldest, e.age)
	}
	r.SetFact("unfinished_entries", float64(len(order)))
	r.SetFact("oldest_unfinished_seconds", float64(oldest))
	if len(order) == 0 {
		r.Status = OK
		r.Summary = fmt.Sprintf("no unfinished distributed DDL (read from %s)", node)
		return
	}
	count := pluralize(int64(len(order)), "distributed DDL entry", "distributed DDL entries")
	if len(rows) >= ddlQueueRowLimit {
		count = "at least " + count
	}
	stuck := t.Thresholds.DDLStuckAfter
	if stuck > 0 && time.Duration(oldest)*time.Second >= stuck {
		r.Status = Warn
		r.Summary = fmt.Sprintf("%s unfinished, the oldest waiting %s (stuck after %s)", count, fmtSeconds(float64(oldest)), stuck)
	} else {
		r.Status = OK
		r.Summary = fmt.Sprintf("%s in progress, the oldest %s old", count, fmtSeconds(float64(oldest)))
	}
	tbl := Table{Title: "unfinished distributed DDL", Columns: []string{"entry", "cluster", "created", "age", "hosts not finished", "exception", "query"}}
	for _, e := range order {
		hosts := e.hosts
		extra := ""
		if len(hosts) > 5 {
			extra = fmt.Sprintf(" and %d more", len(hosts)-5)
			hosts = hosts[:5]
		}
		tbl.Rows = append(tbl.Rows, []string{e.entry, e.cluster, fmtTime(e.created), fmtSeconds(float64(e.age)),
			strings.Join(hosts, ", ") + extra, OneLine(e.exception, 160), OneLine(e.query, 120)})
	}
	r.Evidence = append(r.Evidence, Truncate(tbl, evidenceRows))
}
