package probe

// clickhouse.metadata — the metadata load: how many replicated tables the
// node has, and how many children the coordination-service directory that
// holds their znodes has (tables registered there, by every node, including
// dropped ones not yet cleaned up). Expensive (it reads the coordination
// service) and per cluster.
//
// Facts:
//   replicated_tables     replicated tables on the node (system.replicas)
//   tables_root_children  children of the tables directory (see Attrs)
// Attrs:
//   tables_root           the directory measured, e.g. "/clickhouse/tables/01"
//                         (default layout .../{shard}/{table}) or
//                         "/clickhouse/tables" ({uuid} layout)
//
// How the child count stays cheap: the probe NEVER lists the tables
// directory itself (it may hold thousands of children). It finds the
// directory as the common prefix of the smallest and largest zookeeper_path
// in system.replicas (which is the common prefix of them all; no
// coordination request), then lists that directory's PARENT — a few
// children — and reads the directory's numChildren from that one row. With
// fewer than two replicated tables the layout cannot be told, and the probe
// reads /clickhouse's child "tables", as the runbook does.
//
// Status: Warn at replicated_tables ≥ Thresholds.ReplicatedTablesWarn, or
// tables_root_children ≥ ReplicatedTablesWarn (the same scale: tables) or ≥
// ZnodeCountWarn; OK otherwise. The whole-ensemble znode count is
// keeper.mntr's.

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

const metadataReplicasSQL = "SELECT count() AS replicated_tables, min(zookeeper_path) AS first_path, max(zookeeper_path) AS last_path FROM system.replicas"

// metadataChildrenSQL reads the children of dir with their child counts.
// dir must be the parent of the directory measured, never the big one.
func metadataChildrenSQL(dir string) string {
	return fmt.Sprintf("SELECT name, numChildren FROM system.zookeeper WHERE path = %s", sqlString(dir))
}

// clickhouseMetadata is the clickhouse.metadata probe.
func clickhouseMetadata() Spec {
	return Spec{
		Name:       "clickhouse.metadata",
		Kind:       KindClickHouse,
		Expensive:  true,
		PerCluster: true,
		Doc:        "Replicated table count and the child count of their coordination directory, read from its parent (never listing it).",
		Run:        runClickHouseMetadata,
	}
}

// tablesRoot returns the directory holding the tables' znodes, from the
// lexicographically first and last zookeeper_path; ok is false when it
// cannot be told (fewer than two tables, auxiliary keepers, root).
func tablesRoot(first, last string) (string, bool) {
	if first == "" || last == "" || first == last || strings.Contains(first, ":") || strings.Contains(last, ":") {
		return "", false
	}
	n := 0
	for n < len(first) && n < len(last) && first[n] == last[n] {
		n++
	}
	prefix := first[:n]
	i := strings.LastIndexByte(prefix, '/')
	if i <= 0 {
		return "", false
	}
	dir := path.Clean(prefix[:i])
	if dir == "/" || dir == "." || !strings.HasPrefix(dir, "/") {
		return "", false
	}
	return dir, true
}

func runClickHouseMetadata(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		if _, ok := requireTable(ctx, r, t, "replicas", ""); !ok {
			return
		}
		node := nodeLabel(t)
		rows, ok := chQuery(ctx, r, t, "system.replicas", Unknown, metadataReplicasSQL)
		if !ok {
			return
		}
		if len(rows) == 0 {
			rows = append(rows, nil)
		}
		tables := rows[0].Int("replicated_tables")
		r.SetFact("replicated_tables", float64(tables))
		root, ok := tablesRoot(rows[0].String("first_path"), rows[0].String("last_path"))
		if !ok {
			root = "/clickhouse/tables"
		}
		parent, base := path.Dir(root), path.Base(root)

		if _, ok := requireTable(ctx, &Result{}, t, "zookeeper", ""); !ok {
			r.Status = Unknown
			r.Summary = fmt.Sprintf("node %s: %s; no system.zookeeper to count the coordination directory", node, pluralize(tables, "replicated table", "replicated tables"))
			return
		}
		started := time.Now()
		children, err := t.ClickHouse.Query(ctx, metadataChildrenSQL(parent))
		if err != nil {
			if strings.Contains(err.Error(), "No node") {
				// The parent does not exist: nothing registered there.
				children = nil
			} else {
				failQuery(ctx, r, t, err, "system.zookeeper", Warn, started)
				r.Summary += fmt.Sprintf(" (%s on the node)", pluralize(tables, "replicated table", "replicated tables"))
				return
			}
		}
		count, found := int64(0), false
		for _, c := range children {
			if c.String("name") == base {
				count, found = c.Int("numChildren"), true
			}
		}
		r.SetFact("tables_root_children", float64(count))
		r.SetAttr("tables_root", root)
		where := fmt.Sprintf("%d children under %s", count, root)
		if !found {
			where = root + " does not exist"
		}
		r.Evidence = append(r.Evidence, Table{Title: "metadata load", Columns: []string{"measure", "value"}, Rows: [][]string{
			{"replicated tables on " + node, fmtInt(tables)},
			{"children of " + root, fmtInt(count)},
		}})
		th := t.Thresholds
		switch {
		case th.ReplicatedTablesWarn > 0 && tables >= int64(th.ReplicatedTablesWarn):
			r.Status = Warn
			r.Summary = fmt.Sprintf("metadata explosion risk: %d replicated tables on %s (threshold %d), %s", tables, node, th.ReplicatedTablesWarn, where)
		case th.ReplicatedTablesWarn > 0 && count >= int64(th.ReplicatedTablesWarn),
			th.ZnodeCountWarn > 0 && count >= int64(th.ZnodeCountWarn):
			r.Status = Warn
			r.Summary = fmt.Sprintf("metadata explosion risk: %s (threshold %d tables); %d replicated tables on %s", where, th.ReplicatedTablesWarn, tables, node)
		default:
			r.Status = OK
			r.Summary = fmt.Sprintf("node %s: %s, %s", node, pluralize(tables, "replicated table", "replicated tables"), where)
		}
	})
}
