package digest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// fromDiagnosis fills the cluster's figures from the round's results (the
// facts each probe documents in its file).
func fromDiagnosis(c *Cluster, d *diagnose.Diagnosis) {
	c.Diagnosis = DiagnosisSummary{
		Verdict: d.Verdict, Status: d.Status.String(), Checks: len(d.Results),
		Started: d.Started, Duration: d.Duration, Shared: d.Shared,
		NotAvailable: d.NotAvailable, Skipped: d.Skipped,
	}
	for i, f := range d.Findings {
		if i == 8 {
			c.Diagnosis.Findings = append(c.Diagnosis.Findings, fmt.Sprintf("… and %d more", len(d.Findings)-i))
			break
		}
		where := ""
		if f.Node != "" {
			where = f.Node + ": "
		}
		c.Diagnosis.Findings = append(c.Diagnosis.Findings, fmt.Sprintf("%s %s%s", strings.ToUpper(f.Status.String()), where, f.Summary))
	}
	if d.SkippedExpensive != "" {
		c.Notes = append(c.Notes, "probes reading the coordination service were skipped: "+d.SkippedExpensive)
	}

	byNode := map[string]*Node{}
	for _, r := range d.ResultsFor("clickhouse.ping") {
		n := Node{Name: r.Node, Version: r.Attrs["version"]}
		if up, ok := r.Fact("up"); ok && up == 1 {
			n.Up = true
			c.NodesUp++
		} else {
			n.Note = oneLine(firstNonEmpty(r.Summary, r.Error, "did not answer"))
		}
		c.NodesTotal++
		c.Nodes = append(c.Nodes, n)
	}
	for i := range c.Nodes {
		byNode[c.Nodes[i].Name] = &c.Nodes[i]
	}
	node := func(name string) *Node {
		if n, ok := byNode[name]; ok {
			return n
		}
		c.Nodes = append(c.Nodes, Node{Name: name})
		// Re-index: append may have moved the slice.
		for i := range c.Nodes {
			byNode[c.Nodes[i].Name] = &c.Nodes[i]
		}
		return byNode[name]
	}

	var ro, stuck, tables, queue *int64
	var delay *float64
	for _, r := range d.ResultsFor("clickhouse.replicas") {
		n := node(r.Node)
		if v, ok := r.Fact("replicated_tables"); ok {
			n.ReplicatedTables = i64(int64(v))
			tables = maxI(tables, n.ReplicatedTables)
		}
		if v, ok := r.Fact("readonly_replicas"); ok {
			n.ReadonlyReplicas = i64(int64(v))
			ro = sumI(ro, n.ReadonlyReplicas)
		}
		if v, ok := r.Fact("max_absolute_delay_seconds"); ok {
			n.MaxDelaySeconds = f64(v)
			delay = maxF(delay, n.MaxDelaySeconds)
		}
		if v, ok := r.Fact("max_queue_size"); ok {
			n.MaxQueueSize = i64(int64(v))
			queue = maxI(queue, n.MaxQueueSize)
		}
	}
	for _, r := range d.ResultsFor("clickhouse.replication_queue") {
		if v, ok := r.Fact("stuck_entries"); ok {
			n := node(r.Node)
			n.StuckQueueEntries = i64(int64(v))
			stuck = sumI(stuck, n.StuckQueueEntries)
		}
	}
	c.ReadonlyReplicas, c.StuckQueueEntries, c.ReplicatedTables = ro, stuck, tables
	c.MaxReplicationQueue, c.MaxReplicationDelaySeconds = queue, delay

	c.DDLQueue.NotAvailable = "not read"
	for _, r := range d.ResultsFor("clickhouse.ddl_queue") {
		switch {
		case r.IsUnavailable():
			c.DDLQueue.NotAvailable = oneLine(r.Summary)
		case r.Skipped != "":
			c.DDLQueue.NotAvailable = "skipped: " + oneLine(r.Skipped)
		default:
			if v, ok := r.Fact("unfinished_entries"); ok {
				c.DDLQueue.Unfinished = i64(int64(v))
				c.DDLQueue.NotAvailable = ""
			} else {
				c.DDLQueue.NotAvailable = oneLine(firstNonEmpty(r.Summary, r.Error))
			}
			if v, ok := r.Fact("oldest_unfinished_seconds"); ok {
				c.DDLQueue.OldestSeconds = f64(v)
			}
		}
	}

	keepers := map[string]*KeeperNode{}
	var order []string
	kn := func(name string) *KeeperNode {
		if k, ok := keepers[name]; ok {
			return k
		}
		keepers[name] = &KeeperNode{Name: name, State: "unknown"}
		order = append(order, name)
		return keepers[name]
	}
	for _, r := range d.ResultsFor("keeper.ruok") {
		k := kn(r.Node)
		v, ok := r.Fact("ok")
		switch {
		case r.Skipped != "":
			// not sent (not in keeper.commands): mntr / srvr tell
		case ok && v == 1:
			k.Up = true
		case r.Status == probe.Crit:
			k.State = "down"
			k.Note = oneLine(firstNonEmpty(r.Summary, r.Error))
		default:
			// e.g. refused by the server's whitelist: says nothing about liveness
			k.Note = oneLine(firstNonEmpty(r.Summary, r.Error))
		}
	}
	for _, r := range d.ResultsFor("keeper.mntr") {
		k := kn(r.Node)
		if s := r.Attrs["server_state"]; s != "" && k.State != "down" {
			k.State = s
			if s != "not serving" {
				k.Up = true
			}
		}
		setF := func(dst **float64, fact string) {
			if v, ok := r.Fact(fact); ok {
				*dst = f64(v)
			}
		}
		setI := func(dst **int64, fact string) {
			if v, ok := r.Fact(fact); ok {
				*dst = i64(int64(v))
			}
		}
		setF(&k.AvgLatencyMs, "avg_latency_ms")
		setF(&k.MaxLatencyMs, "max_latency_ms")
		setI(&k.Outstanding, "outstanding_requests")
		setI(&k.Znodes, "znode_count")
		setI(&k.Watches, "watch_count")
		setI(&k.Ephemerals, "ephemerals_count")
		setI(&k.Connections, "alive_connections")
		setI(&k.OpenFDs, "open_fds")
		setI(&k.MaxFDs, "max_fds")
		setF(&k.FDRatio, "fd_ratio")
		if r.Status != probe.OK && k.Note == "" && r.Skipped == "" && len(r.Facts) == 0 {
			k.Note = oneLine(firstNonEmpty(r.Summary, r.Error))
		}
	}
	// srvr, wchs and cons fill what mntr did not (a whitelist that allows
	// only srvr, as ZooKeeper's default does).
	for _, r := range d.ResultsFor("keeper.srvr") {
		k := kn(r.Node)
		if k.State == "unknown" || k.State == "" {
			if m := r.Attrs["mode"]; m != "" {
				k.State, k.Up = m, true
			}
		}
		if k.AvgLatencyMs == nil {
			if v, ok := r.Fact("latency_avg_ms"); ok {
				k.AvgLatencyMs = f64(v)
			}
		}
		if k.MaxLatencyMs == nil {
			if v, ok := r.Fact("latency_max_ms"); ok {
				k.MaxLatencyMs = f64(v)
			}
		}
		if k.Outstanding == nil {
			if v, ok := r.Fact("outstanding"); ok {
				k.Outstanding = i64(int64(v))
			}
		}
		if k.Znodes == nil {
			if v, ok := r.Fact("node_count"); ok {
				k.Znodes = i64(int64(v))
			}
		}
		if k.Connections == nil {
			if v, ok := r.Fact("connections"); ok {
				k.Connections = i64(int64(v))
			}
		}
	}
	for _, r := range d.ResultsFor("keeper.wchs") {
		k := kn(r.Node)
		if k.Watches == nil {
			if v, ok := r.Fact("watches"); ok {
				k.Watches = i64(int64(v))
			}
		}
	}
	for _, r := range d.ResultsFor("keeper.cons") {
		k := kn(r.Node)
		if k.Connections == nil {
			if v, ok := r.Fact("connections"); ok {
				k.Connections = i64(int64(v))
			}
		}
	}
	for _, name := range order {
		c.Keeper = append(c.Keeper, *keepers[name])
	}
}

// ddlCountSQL counts the DDL statements a node started since a time (the
// query_log forms of clickhouse.ddl_storm: query_kind where the column
// exists, the statement's first word on older servers).
func ddlCountSQL(since time.Time, modern bool) string {
	secs := since.Unix()
	if modern {
		return fmt.Sprintf("SELECT count() AS n FROM system.query_log WHERE event_date >= toDate(toDateTime(%d)) AND event_time >= toDateTime(%d) "+
			"AND type = 'QueryStart' AND query_kind IN ('Create', 'Alter', 'Drop', 'Rename')", secs, secs)
	}
	return fmt.Sprintf("SELECT count() AS n FROM system.query_log WHERE event_date >= toDate(toDateTime(%d)) AND event_time >= toDateTime(%d) "+
		"AND toString(type) IN ('1', 'QueryStart') AND upper(extract(query, '^\\\\s*([A-Za-z]+)')) IN ('CREATE', 'ALTER', 'DROP', 'RENAME')", secs, secs)
}

// ddlCount reads one node's DDL count since a time; the query is bounded
// by ctx and by the connection's max_execution_time, and sent through the
// node's bounded connection with the probe user.
func ddlCount(ctx context.Context, n diagnose.ClickHouseNode, since time.Time) (int64, error) {
	ok, err := n.Conn.HasTable(ctx, "system", "query_log")
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errNoQueryLog
	}
	modern, err := n.Conn.HasColumn(ctx, "system", "query_log", "query_kind")
	if err != nil {
		return 0, err
	}
	rows, err := n.Conn.Query(ctx, ddlCountSQL(since, modern))
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return rows[0].Int("n"), nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoQueryLog = errString("no system.query_log (log_queries is off, or nothing was logged yet)")

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func oneLine(s string) string { return probe.OneLine(s, 300) }

func maxI(a, b *int64) *int64 {
	if a == nil || (b != nil && *b > *a) {
		return b
	}
	return a
}

func sumI(a, b *int64) *int64 {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return i64(*a + *b)
}

func maxF(a, b *float64) *float64 {
	if a == nil || (b != nil && *b > *a) {
		return b
	}
	return a
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
