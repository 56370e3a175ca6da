package probe

// clickhouse.keeper_latency — round-trip to the coordination service as seen
// by ClickHouse: the runbook's "SELECT * FROM system.zookeeper WHERE path =
// '/' LIMIT 1 and time it". Expensive: it reads the coordination service.
//
// Facts:
//   latency_ms        milliseconds the system.zookeeper query took, minus
//                     the node's own query overhead (a SELECT 1 timed just
//                     before), so that what is compared with the 10 ms /
//                     100 ms thresholds is the coordination part (when the
//                     query timed out: the time waited, a lower bound)
//   query_overhead_ms milliseconds the SELECT 1 baseline took
//   keeper_reachable  1 when the node read from the coordination service,
//                     0 when it could not (Coordination exception or no
//                     answer while the node itself answers)
//
// Status: Thresholds.RoundTripStatus(latency) (warn ≥ 100 ms, crit ≥ 1 s by
// default: the query makes several coordination requests, so it is read on
// the runbook's coarser "sub-100 ms is normal, seconds is saturation"
// scale; the 10/100 ms per-operation scale applies to keeper.mntr); Crit with keeper_reachable=0 on a coordination exception or a
// timeout. When the node itself does not answer, the status is Unknown and
// keeper_reachable is not set: the verdict belongs to clickhouse.ping.
// Unavailable when the server has no system.zookeeper (no ZooKeeper/Keeper
// configured).

import (
	"context"
	"fmt"
	"time"
)

const (
	keeperLatencySQL = "SELECT name FROM system.zookeeper WHERE path = '/' LIMIT 1"
	// aliveSQL tells a node that does not answer from one whose coordination
	// service does not answer.
	aliveSQL = "SELECT 1 AS alive"
)

// clickhouseKeeperLatency is the clickhouse.keeper_latency probe.
func clickhouseKeeperLatency() Spec {
	return Spec{
		Name:      "clickhouse.keeper_latency",
		Kind:      KindClickHouse,
		Expensive: true,
		Doc:       "Time a read of the coordination service from ClickHouse (system.zookeeper, path '/').",
		Run:       runClickHouseKeeperLatency,
	}
}

func runClickHouseKeeperLatency(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		if _, ok := requireTable(ctx, r, t, "zookeeper", "no ZooKeeper or Keeper configured"); !ok {
			return
		}
		node := nodeLabel(t)
		// Keep a little time to tell a slow coordination service from a
		// node that stopped answering.
		qctx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			reserve := min(500*time.Millisecond, time.Until(dl)/4)
			qctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		}
		defer cancel()
		// Baseline: what any query costs on this node right now (parsing,
		// scheduling, the round-trip to chmedic). A node that cannot even
		// answer this is clickhouse.ping's finding.
		b0 := time.Now()
		if _, err := t.ClickHouse.Query(qctx, aliveSQL); err != nil {
			r.Fail(Unknown, err, fmt.Sprintf("node %s does not answer SELECT 1: %s", node, chCause(err)))
			return
		}
		overhead := time.Since(b0)
		r.SetFact("query_overhead_ms", float64(overhead)/float64(time.Millisecond))
		started := time.Now()
		_, err := t.ClickHouse.Query(qctx, keeperLatencySQL)
		elapsed := time.Since(started)
		if err == nil {
			elapsed = max(0, elapsed-overhead)
		}
		ms := float64(elapsed) / float64(time.Millisecond)
		if err == nil {
			st := t.Thresholds.RoundTripStatus(elapsed)
			r.SetFact("latency_ms", ms)
			r.SetFact("keeper_reachable", 1)
			r.Status = st
			switch st {
			case OK:
				r.Summary = fmt.Sprintf("coordination round-trip from %s: %.1f ms", node, ms)
			case Warn:
				r.Summary = fmt.Sprintf("coordination round-trip from %s: %.1f ms: the service is under stress (normal is under %s)", node, ms, t.Thresholds.KeeperLatencyCrit)
			default:
				r.Summary = fmt.Sprintf("coordination round-trip from %s: %.1f ms: saturated (crit at %s)", node, ms, 10*t.Thresholds.KeeperLatencyCrit)
			}
			return
		}
		switch chClassify(err) {
		case errCoordination:
			r.SetFact("keeper_reachable", 0)
			r.Fail(Crit, err, fmt.Sprintf("node %s cannot reach the coordination service: %s", node, exceptionLine(err)))
		case errTimeout:
			if _, aerr := t.ClickHouse.Query(ctx, aliveSQL); aerr != nil {
				r.Fail(Unknown, err, fmt.Sprintf("node %s does not answer (neither system.zookeeper within %s nor SELECT 1): %s",
					node, elapsed.Round(10*time.Millisecond), chCause(aerr)))
				return
			}
			r.SetFact("keeper_reachable", 0)
			r.SetFact("latency_ms", ms)
			r.Fail(Crit, err, fmt.Sprintf("node %s answers, but its read of the coordination service did not finish within %s: the service is hung or saturated",
				node, elapsed.Round(10*time.Millisecond)))
		default:
			failQuery(ctx, r, t, err, "system.zookeeper", Crit, started)
		}
	})
}
