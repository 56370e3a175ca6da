package probe

// clickhouse.replicas — replicated tables that are read-only, lost their
// session, miss peers or lag (system.replicas, the runbook's third check).
//
// Facts:
//   replicated_tables           replicated tables on the node
//   readonly_replicas           tables with is_readonly = 1
//   session_expired_replicas    tables with is_session_expired = 1
//   inactive_replicas           tables with active_replicas < total_replicas
//   max_absolute_delay_seconds  largest absolute_delay
//   max_queue_size              largest replication queue
//   total_queue_size            sum of the replication queues
// Attrs:
//   readonly_tables             comma-separated db.table of read-only
//                               replicas (at most 20)
//
// Status: Crit on any read-only or session-expired replica; Warn on inactive
// peers or a delay over Thresholds.ReplicaDelayWarn; OK otherwise.
//
// Cost and robustness: is_readonly, is_session_expired, absolute_delay and
// queue_size are the server's own state, but active_replicas and
// total_replicas are read from the coordination service, per table (with a
// hung ZooKeeper, 18.16 takes ~3.6 s per table to fail with Code 999). So the
// verdict comes from an aggregate of the local columns alone; peers are
// counted in a second query, skipped when every session is expired (no peer
// data then) and allowed to fail or time out without losing the verdict
// (inactive_replicas is then not set, and a verdict that would be OK is
// Warn: the coordination service failed to answer). Problem rows (at most 20) are listed
// only when an aggregate shows a problem. The columns used exist from 18.16
// to 26.x; zookeeper_exception (newer servers) is added to the evidence of
// peer problems where it exists.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// replicasSummarySQL aggregates the local columns of system.replicas (no
// coordination request); problem_replicas counts the rows
// replicasProblemsSQL lists.
func replicasSummarySQL(delayWarnSeconds int64) string {
	return fmt.Sprintf("SELECT count() AS replicated_tables, "+
		"countIf(is_readonly = 1) AS readonly_replicas, "+
		"countIf(is_session_expired = 1) AS session_expired_replicas, "+
		"countIf(%s) AS problem_replicas, "+
		"max(absolute_delay) AS max_absolute_delay, "+
		"max(queue_size) AS max_queue_size, "+
		"sum(queue_size) AS total_queue_size "+
		"FROM system.replicas", replicaProblem(delayWarnSeconds))
}

func replicaProblem(delayWarnSeconds int64) string {
	return fmt.Sprintf("is_readonly = 1 OR is_session_expired = 1 OR absolute_delay > %d", delayWarnSeconds)
}

// replicasProblemsSQL lists the replicas that are read-only, expired or
// delayed past delayWarnSeconds, worst first (local columns only).
func replicasProblemsSQL(delayWarnSeconds int64) string {
	return fmt.Sprintf("SELECT database, table, is_readonly, is_session_expired, absolute_delay, queue_size "+
		"FROM system.replicas WHERE %s "+
		"ORDER BY is_readonly DESC, is_session_expired DESC, absolute_delay DESC LIMIT %d",
		replicaProblem(delayWarnSeconds), evidenceRows)
}

// replicasPeersSummarySQL counts tables missing active peers: it reads the
// coordination service, per table.
const replicasPeersSummarySQL = "SELECT countIf(active_replicas < total_replicas) AS inactive_replicas FROM system.replicas"

// replicasPeersSQL lists the tables missing active peers.
func replicasPeersSQL(withZKException bool) string {
	cols := "database, table, is_readonly, is_session_expired, active_replicas, total_replicas, absolute_delay, queue_size"
	if withZKException {
		cols += ", zookeeper_exception"
	}
	return fmt.Sprintf("SELECT %s FROM system.replicas WHERE active_replicas < total_replicas "+
		"ORDER BY total_replicas - active_replicas DESC, absolute_delay DESC LIMIT %d", cols, evidenceRows)
}

// clickhouseReplicas is the clickhouse.replicas probe.
func clickhouseReplicas() Spec {
	return Spec{
		Name: "clickhouse.replicas",
		Kind: KindClickHouse,
		Doc:  "Read-only, session-expired, peer-less or lagging replicated tables (system.replicas).",
		Run:  runClickHouseReplicas,
	}
}

func delayWarnSeconds(t *Target) int64 {
	s := int64(t.Thresholds.ReplicaDelayWarn.Seconds())
	if s <= 0 {
		return 300
	}
	return s
}

// replicaRow is one line of the evidence, merged from both listings.
type replicaRow struct {
	name              string
	readonly, expired bool
	peers             string // "active/total", or "" when not read
	delay, queue      int64
	zkException       string
	inactive          bool
}

func runClickHouseReplicas(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		if _, ok := requireTable(ctx, r, t, "replicas", ""); !ok {
			return
		}
		node := nodeLabel(t)
		delayWarn := delayWarnSeconds(t)
		rows, ok := chQuery(ctx, r, t, "system.replicas", Unknown, replicasSummarySQL(delayWarn))
		if !ok {
			return
		}
		if len(rows) == 0 {
			rows = append(rows, nil)
		}
		s := rows[0]
		tables := s.Int("replicated_tables")
		readonly, expired := s.Int("readonly_replicas"), s.Int("session_expired_replicas")
		maxDelay := s.Int("max_absolute_delay")
		r.SetFact("replicated_tables", float64(tables))
		r.SetFact("readonly_replicas", float64(readonly))
		r.SetFact("session_expired_replicas", float64(expired))
		r.SetFact("max_absolute_delay_seconds", float64(maxDelay))
		r.SetFact("max_queue_size", float64(s.Int("max_queue_size")))
		r.SetFact("total_queue_size", float64(s.Int("total_queue_size")))
		if tables == 0 {
			r.SetFact("inactive_replicas", 0)
			r.Status = OK
			r.Summary = fmt.Sprintf("node %s has no replicated tables", node)
			return
		}

		evidence := map[string]*replicaRow{}
		var notes []string
		if s.Int("problem_replicas") > 0 {
			list, err := t.ClickHouse.Query(ctx, replicasProblemsSQL(delayWarn))
			if err != nil {
				notes = append(notes, "could not list them: "+chCause(err))
				r.Error = err.Error()
			}
			for _, p := range list {
				addReplicaRow(evidence, p, false)
			}
		}

		// Peers: read from the coordination service; meaningless when every
		// session is expired (the server reports 0/0 then).
		inactive, peersKnown, peersFailed := int64(0), false, false
		if expired < tables {
			prow, err := t.ClickHouse.Query(ctx, replicasPeersSummarySQL)
			switch {
			case err != nil:
				// The local columns answered: a failure here is the
				// coordination service's.
				peersFailed = true
				notes = append(notes, "peer status unknown: reading it from the coordination service failed: "+exceptionLine(err))
				if r.Error == "" {
					r.Error = err.Error()
				}
			default:
				peersKnown = true
				if len(prow) > 0 {
					inactive = prow[0].Int("inactive_replicas")
				}
				r.SetFact("inactive_replicas", float64(inactive))
			}
		} else {
			notes = append(notes, "peer status unknown: every coordination session is expired")
		}
		if peersKnown && inactive > 0 {
			cols, _ := hasColumns(ctx, &Result{}, t, "replicas", "zookeeper_exception")
			list, err := t.ClickHouse.Query(ctx, replicasPeersSQL(cols["zookeeper_exception"]))
			if err != nil {
				notes = append(notes, "could not list tables missing peers: "+chCause(err))
			}
			for _, p := range list {
				addReplicaRow(evidence, p, true)
			}
		}

		delayed := maxDelay > delayWarn
		var parts []string
		if readonly > 0 {
			parts = append(parts, pluralize(readonly, "replica is read-only", "replicas are read-only"))
		}
		if expired > 0 {
			parts = append(parts, pluralize(expired, "replica lost its coordination session", "replicas lost their coordination session"))
		}
		if inactive > 0 {
			parts = append(parts, pluralize(inactive, "table misses active peers", "tables miss active peers"))
		}
		if delayed {
			parts = append(parts, fmt.Sprintf("delay up to %s (warn at %s)", fmtSeconds(float64(maxDelay)), t.Thresholds.ReplicaDelayWarn))
		}
		switch {
		case readonly > 0 || expired > 0:
			r.Status = Crit
			r.Summary = fmt.Sprintf("node %s: %s of %d replicated tables", node, strings.Join(parts, "; "), tables)
		case inactive > 0 || delayed:
			r.Status = Warn
			r.Summary = fmt.Sprintf("node %s: %s of %d replicated tables", node, strings.Join(parts, "; "), tables)
		case peersFailed:
			r.Status = Warn
			r.Summary = fmt.Sprintf("node %s: no replica read-only or expired (%s)", node, pluralize(tables, "replicated table", "replicated tables"))
		default:
			r.Status = OK
			r.Summary = fmt.Sprintf("node %s: all %s healthy (max delay %s, %d queued)", node,
				pluralize(tables, "replicated table", "replicated tables"), fmtSeconds(float64(maxDelay)), s.Int("total_queue_size"))
		}
		if len(notes) > 0 {
			r.Summary += " (" + strings.Join(notes, "; ") + ")"
		}
		if len(evidence) > 0 {
			tbl, ro := replicaEvidence(evidence)
			if n := max(int(s.Int("problem_replicas")), int(inactive)); n > len(tbl.Rows)+tbl.Omitted {
				tbl.Omitted = n - len(tbl.Rows) // counted by an aggregate, cut by LIMIT
			}
			r.Evidence = append(r.Evidence, tbl)
			if len(ro) > 0 {
				r.SetAttr("readonly_tables", strings.Join(ro, ","))
			}
		}
	})
}

func addReplicaRow(rows map[string]*replicaRow, p clickhouse.Row, withPeers bool) {
	name := p.String("database") + "." + p.String("table")
	e := rows[name]
	if e == nil {
		e = &replicaRow{name: name}
		rows[name] = e
	}
	e.readonly, e.expired = p.Bool("is_readonly"), p.Bool("is_session_expired")
	e.delay, e.queue = p.Int("absolute_delay"), p.Int("queue_size")
	if withPeers {
		e.peers = fmt.Sprintf("%d/%d", p.Int("active_replicas"), p.Int("total_replicas"))
		e.inactive = true
		e.zkException = p.String("zookeeper_exception")
	}
}

// replicaEvidence orders the rows worst first and returns the read-only
// tables (at most evidenceRows).
func replicaEvidence(rows map[string]*replicaRow) (Table, []string) {
	list := make([]*replicaRow, 0, len(rows))
	exc := false
	for _, e := range rows {
		list = append(list, e)
		exc = exc || e.zkException != ""
	}
	rank := func(e *replicaRow) int {
		switch {
		case e.readonly:
			return 0
		case e.expired:
			return 1
		case e.inactive:
			return 2
		}
		return 3
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if a.delay != b.delay {
			return a.delay > b.delay
		}
		return a.name < b.name
	})
	tbl := Table{Title: "problem replicas", Columns: []string{"table", "is_readonly", "is_session_expired", "active/total", "absolute_delay", "queue_size"}}
	if exc {
		tbl.Columns = append(tbl.Columns, "zookeeper_exception")
	}
	var ro []string
	for _, e := range list {
		if e.readonly && len(ro) < evidenceRows {
			ro = append(ro, e.name)
		}
		peers := e.peers
		if peers == "" {
			peers = "?"
		}
		row := []string{e.name, fmtFlag(e.readonly), fmtFlag(e.expired), peers, fmtSeconds(float64(e.delay)), fmtInt(e.queue)}
		if exc {
			row = append(row, OneLine(e.zkException, 160))
		}
		tbl.Rows = append(tbl.Rows, row)
	}
	return Truncate(tbl, evidenceRows), ro
}
