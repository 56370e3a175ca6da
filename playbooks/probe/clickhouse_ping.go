package probe

// clickhouse.ping — is the node alive, which version, how long up.
//
// Facts:
//   up              1 when the node answered, 0 when it could not be reached
//                   or did not answer in time
//   uptime_seconds  seconds since the server started
// Attrs:
//   version         the server's version() string, e.g. "18.16.1"
//
// Status: Crit when the node is unreachable or does not answer; Unknown when
// it answers with an error (e.g. authentication); OK otherwise. Liveness is
// not health: the runbook's first point is that /ping and SELECT 1 keep
// working while the coordination layer chokes.

import (
	"context"
	"fmt"
	"time"
)

const pingSQL = "SELECT version() AS version, uptime() AS uptime"

// clickhousePing is the clickhouse.ping probe.
func clickhousePing() Spec {
	return Spec{
		Name: "clickhouse.ping",
		Kind: KindClickHouse,
		Doc:  "Is the ClickHouse node up: version() and uptime() over the native protocol.",
		Run:  runClickHousePing,
	}
}

func runClickHousePing(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		node := nodeLabel(t)
		started := time.Now()
		rows, err := t.ClickHouse.Query(ctx, pingSQL)
		if err != nil {
			switch chClassify(err) {
			case errUnreachable:
				r.SetFact("up", 0)
				r.Fail(Crit, err, fmt.Sprintf("node %s unreachable: %s", node, chCause(err)))
			case errTimeout:
				r.SetFact("up", 0)
				r.Fail(Crit, err, fmt.Sprintf("node %s did not answer within %s: %s", node, deadlineText(ctx, started), chCause(err)))
			default:
				// It answered, so it is up; but chmedic cannot use it.
				r.SetFact("up", 1)
				r.Fail(Unknown, err, fmt.Sprintf("node %s answers with an error: %s", node, exceptionLine(err)))
			}
			return
		}
		if len(rows) == 0 {
			r.SetFact("up", 1)
			r.Fail(Unknown, fmt.Errorf("no row"), fmt.Sprintf("node %s answered with no row to %q", node, pingSQL))
			return
		}
		version, uptime := rows[0].String("version"), rows[0].Int("uptime")
		r.SetFact("up", 1)
		r.SetFact("uptime_seconds", float64(uptime))
		r.SetAttr("version", version)
		r.Status = OK
		r.Summary = fmt.Sprintf("node %s is up: ClickHouse %s, up %s", node, version, fmtSeconds(float64(uptime)))
		if uptime < 600 {
			r.Summary += " (restarted recently)"
		}
	})
}
