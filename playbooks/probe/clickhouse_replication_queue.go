package probe

// clickhouse.replication_queue — replication tasks being retried
// (system.replication_queue entries with num_tries > 0): followers that keep
// failing to fetch, merge or mutate, often because the coordination service
// does not answer.
//
// Facts:
//   queue_entries  entries in the node's replication queues
//   stuck_entries  entries with num_tries > 0
//   max_num_tries  the most retried entry's num_tries
//
// Status: Crit at max_num_tries ≥ Thresholds.ReplicationQueueTriesCrit, Warn
// at ≥ ReplicationQueueTriesWarn, OK otherwise. Evidence: the 20 most
// retried entries with their last exception on one line. The columns used
// exist from 18.16 to 26.x.

import (
	"context"
	"fmt"
)

const replicationQueueSummarySQL = "SELECT count() AS queue_entries, " +
	"countIf(num_tries > 0) AS stuck_entries, " +
	"max(num_tries) AS max_num_tries " +
	"FROM system.replication_queue"

var replicationQueueStuckSQL = fmt.Sprintf("SELECT database, table, type, create_time, last_attempt_time, num_tries, last_exception "+
	"FROM system.replication_queue WHERE num_tries > 0 ORDER BY num_tries DESC LIMIT %d", evidenceRows)

// clickhouseReplicationQueue is the clickhouse.replication_queue probe.
func clickhouseReplicationQueue() Spec {
	return Spec{
		Name: "clickhouse.replication_queue",
		Kind: KindClickHouse,
		Doc:  "Replication tasks being retried, with their last exception (system.replication_queue, num_tries > 0).",
		Run:  runClickHouseReplicationQueue,
	}
}

func runClickHouseReplicationQueue(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		if _, ok := requireTable(ctx, r, t, "replication_queue", ""); !ok {
			return
		}
		node := nodeLabel(t)
		rows, ok := chQuery(ctx, r, t, "system.replication_queue", Unknown, replicationQueueSummarySQL)
		if !ok {
			return
		}
		if len(rows) == 0 {
			rows = append(rows, nil)
		}
		entries, stuck, tries := rows[0].Int("queue_entries"), rows[0].Int("stuck_entries"), rows[0].Int("max_num_tries")
		r.SetFact("queue_entries", float64(entries))
		r.SetFact("stuck_entries", float64(stuck))
		r.SetFact("max_num_tries", float64(tries))
		th := t.Thresholds
		switch {
		case th.ReplicationQueueTriesCrit > 0 && tries >= int64(th.ReplicationQueueTriesCrit):
			r.Status = Crit
		case th.ReplicationQueueTriesWarn > 0 && tries >= int64(th.ReplicationQueueTriesWarn):
			r.Status = Warn
		default:
			r.Status = OK
		}
		if stuck == 0 {
			r.Summary = fmt.Sprintf("node %s: %s, none retried", node, pluralize(entries, "replication queue entry", "replication queue entries"))
			return
		}
		r.Summary = fmt.Sprintf("node %s: %s of %d being retried, the worst %s",
			node, pluralize(stuck, "replication queue entry", "replication queue entries"), entries, pluralize(tries, "time", "times"))
		list, err := t.ClickHouse.Query(ctx, replicationQueueStuckSQL)
		if err != nil {
			r.Error = err.Error()
			r.Summary += fmt.Sprintf(" (could not list them: %s)", chCause(err))
			return
		}
		tbl := Table{Title: "retried replication tasks", Columns: []string{"table", "type", "create_time", "last_attempt_time", "num_tries", "last_exception"}}
		for i, e := range list {
			if i == 0 && e.String("last_exception") != "" {
				r.Summary += ": " + OneLine(e.String("last_exception"), 160)
			}
			tbl.Rows = append(tbl.Rows, []string{e.String("database") + "." + e.String("table"), e.String("type"),
				fmtTime(e.Time("create_time")), fmtTime(e.Time("last_attempt_time")), fmtInt(e.Int("num_tries")),
				OneLine(e.String("last_exception"), 200)})
		}
		tbl = Truncate(tbl, evidenceRows)
		if int(stuck) > len(tbl.Rows) {
			tbl.Omitted = int(stuck) - len(tbl.Rows)
		}
		r.Evidence = append(r.Evidence, tbl)
	})
}
