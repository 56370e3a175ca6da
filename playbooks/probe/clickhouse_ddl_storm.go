package probe

// clickhouse.ddl_storm — DDL statements (CREATE, ALTER, DROP, RENAME) the
// node started in the last Thresholds.DDLStormWindow, from system.query_log:
// the runbook's "count recent DDL" check. Every DDL adds znodes and
// coordination traffic; a burst is the usual start of the spiral.
//
// Facts:
//   ddl_count       DDL statements started in the window
//   ddl_per_minute  ddl_count / the window in minutes
//
// Status: Warn at ddl_count ≥ Thresholds.DDLStormCount, OK otherwise;
// Unavailable when system.query_log does not exist (log_queries off, or
// nothing logged yet).
//
// Versions: where query_log has query_kind (21.x+), DDL is query_kind IN
// ('Create', 'Alter', 'Drop', 'Rename') — the names of IAST::QueryKind as
// the server writes them — and type = 'QueryStart'. On older servers
// (18.16: type is a UInt8, 1 = QueryStart; later an Enum8) the kind is the
// query's first word, and the start event is matched as toString(type) IN
// ('1', 'QueryStart'), which holds for both column types. ALTER also counts
// mutations (ALTER ... UPDATE/DELETE), which load the coordination service
// as much. Evidence: counts by kind and user.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// ddlStormGroupLimit bounds the kind × user rows read.
const ddlStormGroupLimit = 100

func ddlStormModernSQL(window time.Duration) string {
	secs := windowSeconds(window)
	return fmt.Sprintf("SELECT query_kind AS kind, user, count() AS n FROM system.query_log "+
		"WHERE event_date >= toDate(now() - INTERVAL %d SECOND) AND event_time >= now() - INTERVAL %d SECOND "+
		"AND type = 'QueryStart' AND query_kind IN ('Create', 'Alter', 'Drop', 'Rename') "+
		"GROUP BY kind, user ORDER BY n DESC LIMIT %d", secs, secs, ddlStormGroupLimit)
}

func ddlStormLegacySQL(window time.Duration) string {
	secs := windowSeconds(window)
	return fmt.Sprintf("SELECT upper(extract(query, '^\\\\s*([A-Za-z]+)')) AS kind, user, count() AS n FROM system.query_log "+
		"WHERE event_date >= toDate(now() - INTERVAL %d SECOND) AND event_time >= now() - INTERVAL %d SECOND "+
		"AND toString(type) IN ('1', 'QueryStart') AND kind IN ('CREATE', 'ALTER', 'DROP', 'RENAME') "+
		"GROUP BY kind, user ORDER BY n DESC LIMIT %d", secs, secs, ddlStormGroupLimit)
}

func windowSeconds(window time.Duration) int64 {
	s := int64(window.Seconds())
	if s <= 0 {
		return 600
	}
	return s
}

// clickhouseDDLStorm is the clickhouse.ddl_storm probe.
func clickhouseDDLStorm() Spec {
	return Spec{
		Name: "clickhouse.ddl_storm",
		Kind: KindClickHouse,
		Doc:  "How many CREATE/ALTER/DROP/RENAME statements the node started recently, by kind and user (system.query_log).",
		Run:  runClickHouseDDLStorm,
	}
}

func runClickHouseDDLStorm(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		if _, ok := requireTable(ctx, r, t, "query_log", "query logging is off (log_queries) or nothing was logged yet"); !ok {
			return
		}
		cols, ok := hasColumns(ctx, r, t, "query_log", "query_kind")
		if !ok {
			return
		}
		sql := ddlStormLegacySQL(t.Thresholds.DDLStormWindow)
		if cols["query_kind"] {
			sql = ddlStormModernSQL(t.Thresholds.DDLStormWindow)
		}
		rows, ok := chQuery(ctx, r, t, "system.query_log", Unknown, sql)
		if !ok {
			return
		}
		evaluateDDLStorm(r, t, rows)
	})
}

func evaluateDDLStorm(r *Result, t *Target, rows []clickhouse.Row) {
	node := nodeLabel(t)
	window := time.Duration(windowSeconds(t.Thresholds.DDLStormWindow)) * time.Second
	var total int64
	byKind := map[string]int64{}
	tbl := Table{Title: fmt.Sprintf("DDL started in the last %s", window), Columns: []string{"kind", "user", "count"}}
	for _, row := range rows {
		kind := ddlKind(row.String("kind"))
		n := row.Int("n")
		total += n
		byKind[kind] += n
		tbl.Rows = append(tbl.Rows, []string{kind, row.String("user"), fmtInt(n)})
	}
	perMin := float64(total) / window.Minutes()
	r.SetFact("ddl_count", float64(total))
	r.SetFact("ddl_per_minute", perMin)
	if len(rows) > 0 {
		r.Evidence = append(r.Evidence, Truncate(tbl, evidenceRows))
	}
	var kinds []string
	for _, k := range sortedKeys(byKind) {
		kinds = append(kinds, fmt.Sprintf("%d %s", byKind[k], k))
	}
	detail := ""
	if len(kinds) > 0 {
		detail = " (" + strings.Join(kinds, ", ") + ")"
	}
	lower := ""
	if len(rows) >= ddlStormGroupLimit {
		lower = "at least "
	}
	if limit := t.Thresholds.DDLStormCount; limit > 0 && total >= int64(limit) {
		r.Status = Warn
		r.Summary = fmt.Sprintf("DDL storm on %s: %s%d DDL statements in the last %s%s, %.1f/min (threshold %d): stop all DDL first",
			node, lower, total, window, detail, perMin, limit)
		return
	}
	r.Status = OK
	r.Summary = fmt.Sprintf("node %s: %s%d DDL statements in the last %s%s", node, lower, total, window, detail)
}

// ddlKind spells a kind as query_kind does ("Create"), from either form.
func ddlKind(s string) string {
	if s == "" {
		return "?"
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}
