package probe

// clickhouse.keeper_sessions — the node's session with the coordination
// service, from system.zookeeper_connection (ClickHouse 23.5+; columns grew
// over time: session_uptime_elapsed_seconds in 23.7, session_timeout_ms in
// 25.7), else from system.metrics.
//
// Facts:
//   session_expired         1 when the default session is expired or there is
//                           no session at all, else 0
//   session_uptime_seconds  age of the session (sessions of many nodes that
//                           began within seconds of each other suggest a
//                           reconnection herd)
//   session_timeout_ms      the negotiated session timeout (25.7+)
//   sessions                fallback only: the ZooKeeperSession metric
// Attrs:
//   keeper_host             host:port of the coordination node in use
//
// Status: Crit when the session is expired or missing (a Coordination
// exception while reading the table counts as missing); OK otherwise. On
// servers without system.zookeeper_connection (18.16 ... 23.4) the probe
// falls back to the ZooKeeperSession metric (and zookeeperSessionUptime()
// from 21.11): 0 sessions is Crit, but 1 is no liveness signal (it stays 1
// while the coordination service hangs), so the check is then listed as not
// available on that version (Result.Unavailable), not scored.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// keeperSessionsSQL reads system.zookeeper_connection with the columns this
// server has.
func keeperSessionsSQL(hasUptime, hasTimeout bool) string {
	cols := []string{"name", "host", "port", "is_expired", "connected_time"}
	if hasUptime {
		cols = append(cols, "session_uptime_elapsed_seconds")
	}
	if hasTimeout {
		cols = append(cols, "session_timeout_ms")
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM system.zookeeper_connection ORDER BY name LIMIT 20"
}

// keeperSessionMetricsSQL is the fallback; withUptime adds
// zookeeperSessionUptime() (21.11+).
func keeperSessionMetricsSQL(withUptime bool) string {
	if withUptime {
		return "SELECT metric, value, zookeeperSessionUptime() AS session_uptime FROM system.metrics WHERE metric LIKE 'ZooKeeper%'"
	}
	return "SELECT metric, value FROM system.metrics WHERE metric LIKE 'ZooKeeper%'"
}

// clickhouseKeeperSessions is the clickhouse.keeper_sessions probe.
func clickhouseKeeperSessions() Spec {
	return Spec{
		Name: "clickhouse.keeper_sessions",
		Kind: KindClickHouse,
		Doc:  "The node's coordination session: expired?, age, timeout (system.zookeeper_connection, else the ZooKeeperSession metric).",
		Run:  runClickHouseKeeperSessions,
	}
}

func runClickHouseKeeperSessions(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		v, ok := requireTable(ctx, r, t, "zookeeper", "no ZooKeeper or Keeper configured")
		if !ok {
			return
		}
		has, err := t.ClickHouse.HasTable(ctx, "system", "zookeeper_connection")
		if err != nil {
			failQuery(ctx, r, t, err, "system.tables", Unknown, time.Now())
			return
		}
		if has {
			keeperSessionsFromTable(ctx, r, t)
			return
		}
		keeperSessionsFromMetrics(ctx, r, t, v)
	})
}

func keeperSessionsFromTable(ctx context.Context, r *Result, t *Target) {
	node := nodeLabel(t)
	cols, ok := hasColumns(ctx, r, t, "zookeeper_connection", "session_uptime_elapsed_seconds", "session_timeout_ms")
	if !ok {
		return
	}
	started := time.Now()
	rows, err := t.ClickHouse.Query(ctx, keeperSessionsSQL(cols["session_uptime_elapsed_seconds"], cols["session_timeout_ms"]))
	if err != nil {
		if chClassify(err) == errCoordination {
			r.SetFact("session_expired", 1)
			r.Fail(Crit, err, fmt.Sprintf("node %s has no coordination session: %s", node, exceptionLine(err)))
			return
		}
		failQuery(ctx, r, t, err, "system.zookeeper_connection", Crit, started)
		return
	}
	if len(rows) == 0 {
		// The table lists connected sessions only.
		r.SetFact("session_expired", 1)
		r.Status = Crit
		r.Summary = fmt.Sprintf("node %s has no connected coordination session (system.zookeeper_connection is empty)", node)
		return
	}
	tbl := Table{Title: "coordination sessions", Columns: []string{"name", "host", "port", "is_expired", "session_uptime", "session_timeout_ms"}}
	var main clickhouse.Row
	for _, row := range rows {
		if main == nil || row.String("name") == "default" {
			main = row
		}
		uptime := sessionUptime(row, now(t))
		timeout := ""
		if row.Has("session_timeout_ms") {
			timeout = fmtInt(row.Int("session_timeout_ms"))
		}
		tbl.Rows = append(tbl.Rows, []string{row.String("name"), row.String("host"), fmtInt(row.Int("port")),
			fmtFlag(row.Bool("is_expired")), fmtSeconds(uptime), timeout})
	}
	r.Evidence = append(r.Evidence, Truncate(tbl, evidenceRows))
	expired := main.Bool("is_expired")
	uptime := sessionUptime(main, now(t))
	host := fmt.Sprintf("%s:%d", main.String("host"), main.Int("port"))
	r.SetFact("session_expired", boolFact(expired))
	r.SetFact("session_uptime_seconds", uptime)
	if main.Has("session_timeout_ms") {
		r.SetFact("session_timeout_ms", float64(main.Int("session_timeout_ms")))
	}
	r.SetAttr("keeper_host", host)
	if expired {
		r.Status = Crit
		r.Summary = fmt.Sprintf("node %s: coordination session to %s is expired", node, host)
		return
	}
	r.Status = OK
	r.Summary = fmt.Sprintf("node %s: coordination session to %s is live, %s old", node, host, fmtSeconds(uptime))
}

// sessionUptime reads session_uptime_elapsed_seconds, else derives it from
// connected_time (23.5 and 23.6 stored the uptime itself in connected_time,
// as a date in 1970).
func sessionUptime(row clickhouse.Row, now time.Time) float64 {
	if row.Has("session_uptime_elapsed_seconds") {
		return float64(row.Int("session_uptime_elapsed_seconds"))
	}
	ct := row.Time("connected_time")
	switch {
	case ct.IsZero():
		return 0
	case ct.Year() == 1970:
		return float64(ct.Unix())
	}
	if d := now.Sub(ct).Seconds(); d > 0 {
		return d
	}
	return 0
}

func keeperSessionsFromMetrics(ctx context.Context, r *Result, t *Target, v clickhouse.Version) {
	node := nodeLabel(t)
	withUptime := v.AtLeast(21, 11)
	rows, ok := chQuery(ctx, r, t, "system.metrics", Unknown, keeperSessionMetricsSQL(withUptime))
	if !ok {
		return
	}
	tbl := Table{Title: "ZooKeeper metrics", Columns: []string{"metric", "value"}}
	sessions, found := int64(0), false
	for _, row := range rows {
		name := row.String("metric")
		tbl.Rows = append(tbl.Rows, []string{name, fmtInt(row.Int("value"))})
		if name == "ZooKeeperSession" {
			sessions, found = row.Int("value"), true
		}
		if withUptime && row.Has("session_uptime") {
			r.SetFact("session_uptime_seconds", float64(row.Int("session_uptime")))
		}
	}
	r.Evidence = append(r.Evidence, Truncate(tbl, evidenceRows))
	r.SetFact("sessions", float64(sessions))
	if found && sessions == 0 {
		r.SetFact("session_expired", 1)
		r.Status = Crit
		r.Summary = fmt.Sprintf("node %s has no coordination session (ZooKeeperSession = 0)", node)
		return
	}
	// An open session is no liveness signal: the check this probe is for
	// cannot run here. It is listed as not available, not scored.
	r.Unavailable(sessionsFallbackWhat, v.String())
}

func boolFact(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sessionsFallbackWhat is what the metric fallback cannot tell.
const sessionsFallbackWhat = "system.zookeeper_connection: session liveness (ZooKeeperSession = 1 counts an open session, not a live one: it stays 1 while the coordination service hangs)"
