package probe

// clickhouse.interserver — can the node reach its cluster peers: the
// Interserver* metrics (InterserverConnection: replica-to-replica fetches in
// progress) and, on newer servers, system.clusters.errors_count (errors
// reaching each peer, decaying over time) with estimated_recovery_time.
//
// Facts:
//   interserver_connections  the InterserverConnection metric
//   cluster_errors           sum of errors_count over the peers listed (at
//                            most 100 hosts with errors)
// Evidence: the hosts with errors.
//
// Status: Warn when cluster_errors > 0; OK otherwise. On servers without
// errors_count (18.16) cluster_errors is not set and the status is Unknown
// (Unavailable), with interserver_connections still reported.

import (
	"context"
	"fmt"
	"strings"
)

const interserverMetricsSQL = "SELECT metric, value FROM system.metrics WHERE metric LIKE 'Interserver%'"

func interserverClustersSQL(withRecovery bool) string {
	cols := "cluster, shard_num, replica_num, host_name, port, errors_count"
	if withRecovery {
		cols += ", estimated_recovery_time"
	}
	return "SELECT " + cols + " FROM system.clusters WHERE errors_count > 0 ORDER BY errors_count DESC LIMIT 100"
}

// clickhouseInterserver is the clickhouse.interserver probe.
func clickhouseInterserver() Spec {
	return Spec{
		Name: "clickhouse.interserver",
		Kind: KindClickHouse,
		Doc:  "Connections to and errors reaching cluster peers (Interserver* metrics, system.clusters errors_count).",
		Run:  runClickHouseInterserver,
	}
}

func runClickHouseInterserver(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		v, ok := serverVersion(ctx, r, t)
		if !ok {
			return
		}
		node := nodeLabel(t)
		metrics, ok := chQuery(ctx, r, t, "system.metrics", Unknown, interserverMetricsSQL)
		if !ok {
			return
		}
		var conns int64
		var mparts []string
		for _, m := range metrics {
			name := m.String("metric")
			if name == "InterserverConnection" {
				conns = m.Int("value")
			}
			mparts = append(mparts, fmt.Sprintf("%s=%d", name, m.Int("value")))
		}
		r.SetFact("interserver_connections", float64(conns))

		cols, ok := hasColumns(ctx, r, t, "clusters", "errors_count", "estimated_recovery_time")
		if !ok {
			return
		}
		if !cols["errors_count"] {
			r.Unavailable("system.clusters.errors_count", v.String())
			r.Summary += fmt.Sprintf("; %s", strings.Join(mparts, ", "))
			return
		}
		rows, ok := chQuery(ctx, r, t, "system.clusters", Unknown, interserverClustersSQL(cols["estimated_recovery_time"]))
		if !ok {
			return
		}
		var errs int64
		tbl := Table{Title: "cluster peers with errors", Columns: []string{"cluster", "shard", "replica", "host", "errors_count"}}
		if cols["estimated_recovery_time"] {
			tbl.Columns = append(tbl.Columns, "estimated_recovery_time")
		}
		hosts := map[string]bool{}
		for _, row := range rows {
			errs += row.Int("errors_count")
			host := fmt.Sprintf("%s:%d", row.String("host_name"), row.Int("port"))
			hosts[host] = true
			cells := []string{row.String("cluster"), fmtInt(row.Int("shard_num")), fmtInt(row.Int("replica_num")), host, fmtInt(row.Int("errors_count"))}
			if cols["estimated_recovery_time"] {
				cells = append(cells, fmtSeconds(float64(row.Int("estimated_recovery_time"))))
			}
			tbl.Rows = append(tbl.Rows, cells)
		}
		r.SetFact("cluster_errors", float64(errs))
		if errs == 0 {
			r.Status = OK
			r.Summary = fmt.Sprintf("node %s reaches its cluster peers without errors; %d interserver connections", node, conns)
			return
		}
		r.Evidence = append(r.Evidence, Truncate(tbl, evidenceRows))
		r.Status = Warn
		names := sortedKeys(hosts)
		if len(names) > 5 {
			names = append(names[:5], fmt.Sprintf("and %d more", len(hosts)-5))
		}
		r.Summary = fmt.Sprintf("node %s counts %d errors reaching %s: %s", node, errs,
			pluralize(int64(len(hosts)), "cluster peer", "cluster peers"), strings.Join(names, ", "))
	})
}
