package grants

import (
	"fmt"
	"sort"
	"strings"
)

// Level is the deepest scope a privilege can be granted on (ClickHouse's
// AccessType levels: VIEW and DICTIONARY are table levels).
type Level int

// Levels, from the widest scope to the narrowest. A scope's depth is the
// Level it stands for: *.* is Global, db.* Database, db.t Table, db.t(c)
// Column.
const (
	Global Level = iota
	Database
	Table
	Column
)

// privilege is one entry of the hierarchy: a group (no flag of its own) or a
// leaf (a flag, possibly with children, such as CREATE ARBITRARY TEMPORARY
// TABLE).
type privilege struct {
	name    string
	aliases []string
	level   Level // for leaves
	group   bool
	parent  string
	// children in declaration order, filled by init.
	children []*privilege
}

// ddlHierarchy is the part of ClickHouse's AccessType.h (current master,
// with names of older releases as aliases) under the groups a DDL freeze
// revokes. Order is ClickHouse's, so that output is stable and familiar.
var ddlHierarchy = []privilege{
	{name: "ALTER UPDATE", aliases: []string{"UPDATE"}, level: Column, parent: "ALTER TABLE"},
	{name: "ALTER DELETE", aliases: []string{"DELETE"}, level: Column, parent: "ALTER TABLE"},
	{name: "ALTER ADD COLUMN", aliases: []string{"ADD COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER MODIFY COLUMN", aliases: []string{"MODIFY COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER DROP COLUMN", aliases: []string{"DROP COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER COMMENT COLUMN", aliases: []string{"COMMENT COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER CLEAR COLUMN", aliases: []string{"CLEAR COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER RENAME COLUMN", aliases: []string{"RENAME COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER MATERIALIZE COLUMN", aliases: []string{"MATERIALIZE COLUMN"}, level: Column, parent: "ALTER COLUMN"},
	{name: "ALTER COLUMN", group: true, parent: "ALTER TABLE"},
	{name: "ALTER MODIFY COMMENT", aliases: []string{"MODIFY COMMENT"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER MODIFY DATABASE COMMENT", aliases: []string{"MODIFY DATABASE COMMENT"}, level: Database, parent: "ALTER DATABASE"},
	{name: "ALTER ORDER BY", aliases: []string{"ALTER MODIFY ORDER BY", "MODIFY ORDER BY"}, level: Table, parent: "ALTER INDEX"},
	{name: "ALTER SAMPLE BY", aliases: []string{"ALTER MODIFY SAMPLE BY", "MODIFY SAMPLE BY"}, level: Table, parent: "ALTER INDEX"},
	{name: "ALTER ADD INDEX", aliases: []string{"ADD INDEX"}, level: Table, parent: "ALTER INDEX"},
	{name: "ALTER DROP INDEX", aliases: []string{"DROP INDEX"}, level: Table, parent: "ALTER INDEX"},
	{name: "ALTER MATERIALIZE INDEX", aliases: []string{"MATERIALIZE INDEX"}, level: Table, parent: "ALTER INDEX"},
	{name: "ALTER CLEAR INDEX", aliases: []string{"CLEAR INDEX"}, level: Table, parent: "ALTER INDEX"},
	{name: "ALTER INDEX", aliases: []string{"INDEX"}, group: true, parent: "ALTER TABLE"},
	{name: "ALTER ADD STATISTICS", aliases: []string{"ALTER ADD STATISTIC"}, level: Table, parent: "ALTER STATISTICS"},
	{name: "ALTER DROP STATISTICS", aliases: []string{"ALTER DROP STATISTIC"}, level: Table, parent: "ALTER STATISTICS"},
	{name: "ALTER MODIFY STATISTICS", aliases: []string{"ALTER MODIFY STATISTIC"}, level: Table, parent: "ALTER STATISTICS"},
	{name: "ALTER MATERIALIZE STATISTICS", aliases: []string{"ALTER MATERIALIZE STATISTIC"}, level: Table, parent: "ALTER STATISTICS"},
	{name: "ALTER STATISTICS", aliases: []string{"STATISTIC", "ALTER STATISTIC"}, group: true, parent: "ALTER TABLE"},
	{name: "ALTER ADD PROJECTION", aliases: []string{"ADD PROJECTION"}, level: Table, parent: "ALTER PROJECTION"},
	{name: "ALTER DROP PROJECTION", aliases: []string{"DROP PROJECTION"}, level: Table, parent: "ALTER PROJECTION"},
	{name: "ALTER MATERIALIZE PROJECTION", aliases: []string{"MATERIALIZE PROJECTION"}, level: Table, parent: "ALTER PROJECTION"},
	{name: "ALTER CLEAR PROJECTION", aliases: []string{"CLEAR PROJECTION"}, level: Table, parent: "ALTER PROJECTION"},
	{name: "ALTER PROJECTION", aliases: []string{"PROJECTION"}, group: true, parent: "ALTER TABLE"},
	{name: "ALTER ADD CONSTRAINT", aliases: []string{"ADD CONSTRAINT"}, level: Table, parent: "ALTER CONSTRAINT"},
	{name: "ALTER DROP CONSTRAINT", aliases: []string{"DROP CONSTRAINT"}, level: Table, parent: "ALTER CONSTRAINT"},
	{name: "ALTER CONSTRAINT", aliases: []string{"CONSTRAINT"}, group: true, parent: "ALTER TABLE"},
	{name: "ALTER TTL", aliases: []string{"ALTER MODIFY TTL", "MODIFY TTL"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER MATERIALIZE TTL", aliases: []string{"MATERIALIZE TTL"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER REWRITE PARTS", aliases: []string{"REWRITE PARTS"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER SETTINGS", aliases: []string{"ALTER SETTING", "ALTER MODIFY SETTING", "MODIFY SETTING", "RESET SETTING"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER MOVE PARTITION", aliases: []string{"ALTER MOVE PART", "MOVE PARTITION", "MOVE PART"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER FETCH PARTITION", aliases: []string{"ALTER FETCH PART", "FETCH PARTITION"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER FREEZE PARTITION", aliases: []string{"FREEZE PARTITION", "UNFREEZE"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER UNLOCK SNAPSHOT", aliases: []string{"UNLOCK SNAPSHOT"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER EXECUTE", aliases: []string{"ALTER TABLE EXECUTE"}, level: Table, parent: "ALTER TABLE"},
	{name: "ALTER DATABASE SETTINGS", aliases: []string{"ALTER DATABASE SETTING", "ALTER MODIFY DATABASE SETTING", "MODIFY DATABASE SETTING"}, level: Database, parent: "ALTER DATABASE"},
	{name: "ALTER TABLE", group: true, parent: "ALTER"},
	{name: "ALTER DATABASE", group: true, parent: "ALTER"},
	{name: "ALTER VIEW REFRESH", aliases: []string{"ALTER LIVE VIEW REFRESH", "REFRESH VIEW"}, level: Table, parent: "ALTER VIEW"},
	{name: "ALTER VIEW MODIFY QUERY", aliases: []string{"ALTER TABLE MODIFY QUERY"}, level: Table, parent: "ALTER VIEW"},
	{name: "ALTER VIEW MODIFY REFRESH", level: Table, parent: "ALTER VIEW"},
	{name: "ALTER VIEW MODIFY SQL SECURITY", aliases: []string{"ALTER TABLE MODIFY SQL SECURITY"}, level: Table, parent: "ALTER VIEW"},
	{name: "ALTER VIEW", group: true, parent: "ALTER"},
	{name: "ALTER", group: true, parent: "ALL"},

	{name: "CREATE DATABASE", level: Database, parent: "CREATE"},
	{name: "CREATE TABLE", level: Table, parent: "CREATE"},
	{name: "CREATE VIEW", level: Table, parent: "CREATE"},
	{name: "CREATE DICTIONARY", level: Table, parent: "CREATE"},
	{name: "CREATE TEMPORARY TABLE", level: Global, parent: "CREATE ARBITRARY TEMPORARY TABLE"},
	{name: "CREATE ARBITRARY TEMPORARY TABLE", level: Global, parent: "CREATE"},
	{name: "CREATE TEMPORARY VIEW", level: Global, parent: "CREATE"},
	{name: "CREATE FUNCTION", level: Global, parent: "CREATE"},
	{name: "CREATE WORKLOAD", level: Global, parent: "CREATE"},
	{name: "CREATE RESOURCE", level: Global, parent: "CREATE"},
	{name: "CREATE", group: true, parent: "ALL"},

	{name: "DROP DATABASE", level: Database, parent: "DROP"},
	{name: "DROP TABLE", level: Table, parent: "DROP"},
	{name: "DROP VIEW", level: Table, parent: "DROP"},
	{name: "DROP DICTIONARY", level: Table, parent: "DROP"},
	{name: "DROP FUNCTION", level: Global, parent: "DROP"},
	{name: "DROP WORKLOAD", level: Global, parent: "DROP"},
	{name: "DROP RESOURCE", level: Global, parent: "DROP"},
	{name: "DROP", group: true, parent: "ALL"},

	{name: "UNDROP TABLE", level: Table, parent: "ALL"},
	{name: "TRUNCATE", aliases: []string{"TRUNCATE TABLE"}, level: Table, parent: "ALL"},
	{name: "OPTIMIZE", aliases: []string{"OPTIMIZE TABLE"}, level: Table, parent: "ALL"},
}

// ddlRoots are the top entries of ddlHierarchy, in output order.
var ddlRoots = []string{"ALTER", "CREATE", "DROP", "UNDROP TABLE", "TRUNCATE", "OPTIMIZE"}

// accessManagement lists the ACCESS MANAGEMENT group (AccessType.h): holding
// any of these lets a user manage users, roles and grants, and so give
// itself DDL back. The SHOW ACCESS subgroup (read-only) is in readOnlyAccess.
var accessManagement = []privilege{
	{name: "CREATE USER"}, {name: "ALTER USER"}, {name: "DROP USER"},
	{name: "CREATE ROLE"}, {name: "ALTER ROLE"}, {name: "DROP ROLE"},
	{name: "ROLE ADMIN"},
	{name: "CREATE ROW POLICY", aliases: []string{"CREATE POLICY"}},
	{name: "ALTER ROW POLICY", aliases: []string{"ALTER POLICY"}},
	{name: "DROP ROW POLICY", aliases: []string{"DROP POLICY"}},
	{name: "CREATE MASKING POLICY"}, {name: "ALTER MASKING POLICY"}, {name: "DROP MASKING POLICY"},
	{name: "CREATE QUOTA"}, {name: "ALTER QUOTA"}, {name: "DROP QUOTA"},
	{name: "CREATE SETTINGS PROFILE", aliases: []string{"CREATE PROFILE"}},
	{name: "ALTER SETTINGS PROFILE", aliases: []string{"ALTER PROFILE"}},
	{name: "DROP SETTINGS PROFILE", aliases: []string{"DROP PROFILE"}},
	{name: "ALLOW SQL SECURITY NONE", aliases: []string{"CREATE SQL SECURITY NONE", "SQL SECURITY NONE", "SECURITY NONE"}},
	{name: "IMPERSONATE", aliases: []string{"EXECUTE AS"}},
	{name: "ACCESS MANAGEMENT"},
}

var readOnlyAccess = []privilege{
	{name: "SHOW USERS", aliases: []string{"SHOW CREATE USER"}},
	{name: "SHOW ROLES", aliases: []string{"SHOW CREATE ROLE"}},
	{name: "SHOW ROW POLICIES", aliases: []string{"SHOW POLICIES", "SHOW CREATE ROW POLICY", "SHOW CREATE POLICY"}},
	{name: "SHOW QUOTAS", aliases: []string{"SHOW CREATE QUOTA"}},
	{name: "SHOW SETTINGS PROFILES", aliases: []string{"SHOW PROFILES", "SHOW CREATE SETTINGS PROFILE", "SHOW CREATE PROFILE"}},
	{name: "SHOW MASKING POLICIES", aliases: []string{"SHOW CREATE MASKING POLICY"}},
	{name: "SHOW ACCESS"},
}

// otherKnown are names outside the DDL groups that read like DDL (CREATE x,
// ALTER x, DROP x) and must not be mistaken for it, plus ALL and NONE.
var otherKnown = []privilege{
	{name: "ALL", aliases: []string{"ALL PRIVILEGES"}},
	{name: "NONE", aliases: []string{"USAGE", "NO PRIVILEGES"}},
	{name: "CREATE NAMED COLLECTION"}, {name: "ALTER NAMED COLLECTION"}, {name: "DROP NAMED COLLECTION"},
	{name: "NAMED COLLECTION ADMIN", aliases: []string{"NAMED COLLECTION CONTROL"}},
	{name: "NAMED COLLECTION", aliases: []string{"NAMED COLLECTION USAGE", "USE NAMED COLLECTION"}},
	{name: "SHOW NAMED COLLECTIONS"}, {name: "SHOW NAMED COLLECTIONS SECRETS"},
	{name: "SELECT"}, {name: "INSERT"}, {name: "SHOW"}, {name: "SHOW DATABASES"}, {name: "SHOW TABLES"},
	{name: "SHOW COLUMNS"}, {name: "SHOW DICTIONARIES"}, {name: "CHECK"}, {name: "BACKUP"},
	{name: "KILL QUERY"}, {name: "SOURCES"}, {name: "SYSTEM"}, {name: "dictGet", aliases: []string{"dictHas", "dictGetHierarchy", "dictIsIn"}},
}

type catalog struct {
	byName map[string]*privilege // canonical name → entry
	alias  map[string]string     // upper-case name or alias → canonical name
	access map[string]bool       // canonical names that manage access
}

var cat = buildCatalog()

func buildCatalog() *catalog {
	c := &catalog{byName: map[string]*privilege{}, alias: map[string]string{}, access: map[string]bool{}}
	add := func(list []privilege, access bool) {
		for i := range list {
			p := &list[i]
			c.byName[p.name] = p
			c.alias[strings.ToUpper(p.name)] = p.name
			for _, a := range p.aliases {
				c.alias[strings.ToUpper(a)] = p.name
			}
			if access {
				c.access[p.name] = true
			}
		}
	}
	add(ddlHierarchy, false)
	add(accessManagement, true)
	add(readOnlyAccess, false)
	add(otherKnown, false)
	for i := range ddlHierarchy {
		p := &ddlHierarchy[i]
		if parent, ok := c.byName[p.parent]; ok && parent.name != "ALL" {
			parent.children = append(parent.children, p)
		}
	}
	return c
}

// Canonical returns the canonical ClickHouse name of a privilege name or
// alias (case-insensitive, spaces normalised): "update" → "ALTER UPDATE",
// "ALL PRIVILEGES" → "ALL", "USAGE" → "NONE". A name it does not know is
// returned with its spaces normalised and upper-cased (ClickHouse's names
// are case-insensitive; dictGet and its aliases keep their case).
func Canonical(name string) string {
	n := strings.Join(strings.Fields(name), " ")
	if c, ok := cat.alias[strings.ToUpper(n)]; ok {
		return c
	}
	return strings.ToUpper(n)
}

// ddlRootOf returns the DDL root group an unknown name belongs to by its
// first word, or "".
func ddlRootOf(name string) string {
	if _, ok := cat.byName[name]; ok {
		for p := cat.byName[name]; p != nil; p = cat.byName[p.parent] {
			for _, r := range ddlRoots {
				if p.name == r {
					return r
				}
			}
			if p.parent == "" || p.parent == "ALL" {
				break
			}
		}
		return ""
	}
	first, rest, _ := strings.Cut(name, " ")
	switch first {
	case "ALTER", "CREATE", "DROP":
	default:
		return ""
	}
	for _, entity := range []string{"USER", "ROLE", "POLICY", "QUOTA", "PROFILE", "NAMED COLLECTION", "MASKING"} {
		if strings.Contains(" "+rest+" ", " "+entity+" ") {
			return ""
		}
	}
	return first
}

// leaves returns the leaf privileges of a canonical name grantable at the
// given scope depth (nil for names outside the DDL groups). ALL is every
// DDL leaf; an unknown name that reads like DDL is a leaf of its own,
// assumed grantable down to the table level.
func leaves(name string, depth Level) []string {
	if name == "ALL" {
		var out []string
		for _, r := range ddlRoots {
			out = append(out, leaves(r, depth)...)
		}
		return out
	}
	p, ok := cat.byName[name]
	if !ok {
		if ddlRootOf(name) != "" && depth <= Table {
			return []string{name}
		}
		return nil
	}
	if ddlRootOf(name) == "" {
		return nil
	}
	var out []string
	var walk func(p *privilege)
	walk = func(p *privilege) {
		if !p.group && p.level >= depth {
			out = append(out, p.name)
		}
		for _, c := range p.children {
			walk(c)
		}
	}
	walk(p)
	return out
}

// leafLevel is the deepest level a leaf can be granted on.
func leafLevel(leaf string) Level {
	if p, ok := cat.byName[leaf]; ok {
		return p.level
	}
	return Table
}

// IsAccessManagement reports whether a canonical privilege name manages
// access (users, roles, grants, profiles, quotas, policies).
func IsAccessManagement(name string) bool { return cat.access[name] }

// Privileges is the set of privileges a freeze takes away, as configured.
type Privileges struct {
	names []string        // canonical, in the order given
	leafs map[string]bool // their leaves at the global level
	roots map[string]bool // DDL roots wholly included (for unknown names)
}

// DefaultPrivileges is the freeze's default set: CREATE, ALTER, DROP,
// TRUNCATE and OPTIMIZE on *.* (RENAME and EXCHANGE need CREATE TABLE and
// DROP TABLE, so they are frozen with them).
func DefaultPrivileges() Privileges {
	p, err := ParsePrivileges([]string{"CREATE", "ALTER", "DROP", "TRUNCATE", "OPTIMIZE"})
	if err != nil {
		panic(err)
	}
	return p
}

// ParsePrivileges checks a configured list of privilege names (aliases
// allowed, any case): every name must be a DDL privilege or group this
// package knows. RENAME and EXCHANGE get an explanation instead.
func ParsePrivileges(names []string) (Privileges, error) {
	p := Privileges{leafs: map[string]bool{}, roots: map[string]bool{}}
	if len(names) == 0 {
		return p, fmt.Errorf("no privileges")
	}
	seen := map[string]bool{}
	for _, raw := range names {
		n := Canonical(raw)
		switch n {
		case "RENAME", "EXCHANGE", "RENAME TABLE", "EXCHANGE TABLES", "RENAME DATABASE":
			return Privileges{}, fmt.Errorf("privilege %q: ClickHouse has no such privilege: RENAME and EXCHANGE need DROP TABLE on the source and CREATE TABLE on the target, so list CREATE and DROP (or CREATE TABLE and DROP TABLE)", raw)
		case "ALL":
			return Privileges{}, fmt.Errorf("privilege %q: a freeze takes DDL away, not everything: list the DDL privileges (default CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE)", raw)
		}
		if _, known := cat.byName[n]; !known || ddlRootOf(n) == "" {
			return Privileges{}, fmt.Errorf("privilege %q: not a DDL privilege (want one of ALTER, CREATE, DROP, UNDROP TABLE, TRUNCATE, OPTIMIZE or a privilege inside them, such as CREATE TABLE or ALTER UPDATE)", raw)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		p.names = append(p.names, n)
		for _, l := range leaves(n, Global) {
			p.leafs[l] = true
		}
		for _, r := range ddlRoots {
			if r == n {
				p.roots[r] = true
			}
		}
	}
	return p, nil
}

// Names are the configured privileges, canonical, in the order given.
func (p Privileges) Names() []string { return append([]string(nil), p.names...) }

// contains reports whether a leaf is frozen.
func (p Privileges) contains(leaf string) bool {
	if p.leafs[leaf] {
		return true
	}
	if _, known := cat.byName[leaf]; !known {
		return p.roots[ddlRootOf(leaf)]
	}
	return false
}

// project returns the frozen leaves of a canonical privilege name at a
// depth.
func (p Privileges) project(name string, depth Level) []string {
	var out []string
	for _, l := range leaves(name, depth) {
		if p.contains(l) {
			out = append(out, l)
		}
	}
	return out
}

// touches reports whether a privilege name overlaps the set at any level.
func (p Privileges) touches(name string) bool { return len(p.project(name, Global)) > 0 }

// compress names a set of leaves held at a depth with as few names as
// ClickHouse would print: a group whose every leaf grantable at that depth
// is in the set is named instead of its members.
func compress(set map[string]bool, depth Level) []string {
	var out []string
	covered := map[string]bool{}
	var walk func(p *privilege)
	walk = func(p *privilege) {
		ls := leaves(p.name, depth)
		if len(ls) == 0 {
			return
		}
		all := true
		for _, l := range ls {
			if !set[l] {
				all = false
				break
			}
		}
		if all {
			out = append(out, p.name)
			for _, l := range ls {
				covered[l] = true
			}
			return
		}
		if !p.group && set[p.name] {
			out = append(out, p.name)
			covered[p.name] = true
		}
		for _, c := range p.children {
			walk(c)
		}
	}
	for _, r := range ddlRoots {
		walk(cat.byName[r])
	}
	var unknown []string
	for l := range set {
		if !covered[l] {
			unknown = append(unknown, l)
		}
	}
	sort.Strings(unknown)
	return append(out, unknown...)
}
