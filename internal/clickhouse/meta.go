package clickhouse

import (
	"context"
	"fmt"
)

// Cached metadata: what the server is and has, so that probes can choose a
// query it understands without asking every time. Everything is dropped
// after the metadata TTL (an upgrade in place changes it); a system table
// found missing is asked for again after missingTableTTL.

// expireLocked drops all cached metadata once it is older than the TTL.
// n.mu must be held.
func (n *Node) expireLocked() {
	now := n.opts.now()
	if n.metaEpoch.IsZero() {
		n.metaEpoch = now
		return
	}
	if now.Sub(n.metaEpoch) >= n.opts.metadataTTL {
		n.version = nil
		n.tables = map[string]tableSet{}
		n.columns = map[string]columnSet{}
		n.metaEpoch = now
	}
}

// ServerVersion returns the node's version (SELECT version()), cached after
// the first success.
func (n *Node) ServerVersion(ctx context.Context) (Version, error) {
	n.mu.Lock()
	n.expireLocked()
	if n.version != nil {
		v := *n.version
		n.mu.Unlock()
		return v, nil
	}
	n.mu.Unlock()
	rows, err := n.Query(ctx, "SELECT version() AS version")
	if err != nil {
		return Version{}, err
	}
	if len(rows) == 0 {
		return Version{}, n.wrap(fmt.Errorf("version(): no row"))
	}
	v, err := ParseVersion(rows[0].String("version"))
	if err != nil {
		return Version{}, n.wrap(err)
	}
	n.mu.Lock()
	n.version = &v
	n.mu.Unlock()
	return v, nil
}

// HasTable reports whether database.table exists, from system.tables,
// cached. For the system database the whole list is read once (about a
// hundred names); other databases are asked about the one table.
func (n *Node) HasTable(ctx context.Context, database, table string) (bool, error) {
	n.mu.Lock()
	n.expireLocked()
	set, ok := n.tables[database]
	if ok {
		exists, hit := set.exists[table]
		fresh := n.opts.now().Sub(set.read) < min(missingTableTTL, n.opts.metadataTTL)
		if (hit || set.full) && (exists || fresh) {
			n.mu.Unlock()
			return exists, nil
		}
	}
	n.mu.Unlock()
	if database == "system" {
		rows, err := n.Query(ctx, "SELECT name FROM system.tables WHERE database = 'system'")
		if err != nil {
			return false, err
		}
		set := tableSet{read: n.opts.now(), full: true, exists: make(map[string]bool, len(rows))}
		for _, r := range rows {
			set.exists[r.String("name")] = true
		}
		n.mu.Lock()
		n.tables[database] = set
		n.mu.Unlock()
		return set.exists[table], nil
	}
	rows, err := n.Query(ctx, "SELECT count() AS n FROM system.tables WHERE database = ? AND name = ?", database, table)
	if err != nil {
		return false, err
	}
	exists := len(rows) > 0 && rows[0].Int("n") > 0
	n.mu.Lock()
	set = n.tables[database]
	if set.exists == nil {
		set = tableSet{read: n.opts.now(), exists: map[string]bool{}}
	}
	set.exists[table] = exists
	if !exists {
		set.read = n.opts.now()
	}
	n.tables[database] = set
	n.mu.Unlock()
	return exists, nil
}

// HasColumn reports whether database.table has the column, from
// system.columns (the table's column list is read once and cached). A table
// that does not exist has no columns.
func (n *Node) HasColumn(ctx context.Context, database, table, column string) (bool, error) {
	key := database + "." + table
	n.mu.Lock()
	n.expireLocked()
	cols, ok := n.columns[key]
	n.mu.Unlock()
	if ok && len(cols.exists) > 0 {
		return cols.exists[column], nil
	}
	rows, err := n.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ?", database, table)
	if err != nil {
		return false, err
	}
	cols = columnSet{exists: make(map[string]bool, len(rows))}
	for _, r := range rows {
		cols.exists[r.String("name")] = true
	}
	n.mu.Lock()
	if len(rows) > 0 { // a missing table may appear later: not cached
		n.columns[key] = cols
	}
	n.mu.Unlock()
	return cols.exists[column], nil
}
