package grants

import (
	"maps"
	"sort"
)

// rights is the tree of frozen-set leaves a target holds (see the package
// doc). Only leaves of one Privileges set are kept.
type rights struct {
	p    Privileges
	root *node
}

type node struct {
	depth    Level
	access   map[string]bool
	grant    map[string]bool // ⊆ access
	children map[string]*node
	scope    Scope
}

func newRights(p Privileges) *rights {
	return &rights{p: p, root: &node{depth: Global, access: map[string]bool{}, grant: map[string]bool{}}}
}

func applicable(leaf string, depth Level) bool { return leafLevel(leaf) >= depth }

func trimmed(set map[string]bool, depth Level) map[string]bool {
	out := map[string]bool{}
	for l := range set {
		if applicable(l, depth) {
			out[l] = true
		}
	}
	return out
}

func (n *node) child(key string, scope Scope) *node {
	if c, ok := n.children[key]; ok {
		return c
	}
	if n.children == nil {
		n.children = map[string]*node{}
	}
	d := n.depth + 1
	c := &node{depth: d, access: trimmed(n.access, d), grant: trimmed(n.grant, d), scope: scope}
	n.children[key] = c
	return c
}

// wkey is a child's key; keys sort wildcard scopes before named ones, so
// that a statement on db.tab* comes before one on db.table1, as the server
// orders them (a prefix sorts before its extensions).
func wkey(prefix, name string, wildcard bool) string {
	if wildcard {
		return "0" + prefix + name
	}
	return "1" + prefix + name
}

// path returns the node of a scope, creating it (and its parents) as
// inheriting nodes. Columns give one node per column: the caller applies to
// each.
func (r *rights) nodes(s Scope) []*node {
	if s.IsGlobal() {
		return []*node{r.root}
	}
	db := r.root.child(wkey("", s.Database, s.Wildcard && s.Table == ""), Scope{Database: s.Database, Wildcard: s.Wildcard && s.Table == ""})
	if s.Table == "" {
		return []*node{db}
	}
	t := db.child(wkey("", s.Table, s.Wildcard), Scope{Database: s.Database, Table: s.Table, Wildcard: s.Wildcard})
	if len(s.Columns) == 0 {
		return []*node{t}
	}
	var out []*node
	for _, c := range s.Columns {
		out = append(out, t.child(wkey("", c, false), Scope{Database: s.Database, Table: s.Table, Columns: []string{c}}))
	}
	return out
}

// apply replays one grant or partial revoke.
func (r *rights) apply(g Grant) {
	if g.Scope.IsParameter {
		return // no DDL privilege takes a parameter
	}
	ls := r.p.project(g.Privilege, g.Scope.Depth())
	if len(ls) == 0 {
		return
	}
	for _, n := range r.nodes(g.Scope) {
		if g.PartialRevoke {
			n.revoke(ls, g.GrantOption)
		} else {
			n.grantLeaves(ls, g.GrantOption)
		}
	}
}

func (n *node) grantLeaves(ls []string, withGrantOption bool) {
	for _, l := range ls {
		if applicable(l, n.depth) {
			n.access[l] = true
			if withGrantOption {
				n.grant[l] = true
			}
		}
	}
	for _, c := range n.children {
		c.grantLeaves(ls, withGrantOption)
	}
}

func (n *node) revoke(ls []string, grantOptionOnly bool) {
	for _, l := range ls {
		delete(n.grant, l)
		if !grantOptionOnly {
			delete(n.access, l)
		}
	}
	for _, c := range n.children {
		c.revoke(ls, grantOptionOnly)
	}
}

func (n *node) clone() *node {
	c := &node{depth: n.depth, access: maps.Clone(n.access), grant: maps.Clone(n.grant), scope: n.scope}
	if n.children != nil {
		c.children = map[string]*node{}
		for k, ch := range n.children {
			c.children[k] = ch.clone()
		}
	}
	return c
}

func (r *rights) clone() *rights { return &rights{p: r.p, root: r.root.clone()} }

// materialize creates in n every node that o has (inheriting), so that two
// trees can be compared node by node.
func (n *node) materialize(o *node) {
	for k, oc := range o.children {
		n.child(k, oc.scope).materialize(oc)
	}
}

// equal reports whether two trees grant the same (access and grant option)
// everywhere.
func (r *rights) equal(o *rights) bool {
	a, b := r.clone(), o.clone()
	a.root.materialize(b.root)
	b.root.materialize(a.root)
	return nodesEqual(a.root, b.root)
}

func nodesEqual(a, b *node) bool {
	if !maps.Equal(a.access, b.access) || !maps.Equal(a.grant, b.grant) {
		return false
	}
	for k, ac := range a.children {
		if !nodesEqual(ac, b.children[k]) {
			return false
		}
	}
	return true
}

// union returns a tree holding what either holds.
func union(a, b *rights) *rights {
	x, y := a.clone(), b.clone()
	x.root.materialize(y.root)
	y.root.materialize(x.root)
	unionInto(x.root, y.root)
	return x
}

func unionInto(x, y *node) {
	for l := range y.access {
		x.access[l] = true
	}
	for l := range y.grant {
		x.grant[l] = true
	}
	for k, xc := range x.children {
		unionInto(xc, y.children[k])
	}
}

// empty reports whether nothing is held anywhere.
func (n *node) empty() bool {
	if len(n.access) > 0 {
		return false
	}
	for _, c := range n.children {
		if !c.empty() {
			return false
		}
	}
	return true
}

// held returns every leaf held somewhere.
func (n *node) held(into map[string]bool) {
	for l := range n.access {
		into[l] = true
	}
	for _, c := range n.children {
		c.held(into)
	}
}

// element is one generated statement body.
type element struct {
	names       []string
	scope       Scope
	revoke      bool
	grantOption bool // GRANT ... WITH GRANT OPTION, or REVOKE GRANT OPTION FOR
	depth       Level
	leaves      []string // what it changes, for replay
}

func (e element) grants() []Grant {
	var out []Grant
	for _, n := range e.names {
		out = append(out, Grant{Privilege: n, Scope: e.scope, GrantOption: e.grantOption, PartialRevoke: e.revoke})
	}
	return out
}

// elements generates, top-down, statements that recreate the tree on a
// target that holds none of the set (see the package doc).
func (r *rights) elements() []element {
	var out []element
	empty := &node{depth: Global, access: map[string]bool{}, grant: map[string]bool{}}
	var walk func(n, parent *node)
	walk = func(n, parent *node) {
		pa, pg := trimmed(parent.access, n.depth), trimmed(parent.grant, n.depth)
		addNoGO, addGO, rev, revGO := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		for l := range n.access {
			if !pa[l] && !n.grant[l] {
				addNoGO[l] = true
			}
		}
		for l := range n.grant {
			if !pg[l] {
				addGO[l] = true
			}
		}
		for l := range pa {
			if !n.access[l] {
				rev[l] = true
			}
		}
		for l := range pg {
			if !n.grant[l] && n.access[l] {
				revGO[l] = true
			}
		}
		emit := func(set map[string]bool, revoke, grantOption bool) {
			if len(set) == 0 {
				return
			}
			ls := make([]string, 0, len(set))
			for l := range set {
				ls = append(ls, l)
			}
			sort.Strings(ls)
			out = append(out, element{names: compress(set, n.depth), scope: n.scope, revoke: revoke, grantOption: grantOption, depth: n.depth, leaves: ls})
		}
		emit(addNoGO, false, false)
		emit(addGO, false, true)
		emit(rev, true, false)
		emit(revGO, true, true)
		keys := make([]string, 0, len(n.children))
		for k := range n.children {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(n.children[k], n)
		}
	}
	walk(r.root, empty)
	return mergeColumns(out)
}

// mergeColumns joins consecutive column elements of one table that change
// the same privileges the same way into one column list, as ClickHouse
// prints them.
func mergeColumns(in []element) []element {
	var out []element
	for _, e := range in {
		if n := len(out); n > 0 && e.depth == Column {
			last := &out[n-1]
			if last.depth == Column && last.revoke == e.revoke && last.grantOption == e.grantOption &&
				last.scope.Database == e.scope.Database && last.scope.Table == e.scope.Table &&
				last.scope.Wildcard == e.scope.Wildcard && equalStrings(last.names, e.names) {
				last.scope.Columns = append(append([]string(nil), last.scope.Columns...), e.scope.Columns...)
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// applyElement replays a generated element.
func (r *rights) applyElement(e element) {
	for _, g := range e.grants() {
		r.apply(g)
	}
}

// listHeld describes, per scope, the leaves held in a and not in b (b may be
// nil): "CREATE TABLE ON `db`.*". A leaf added at a scope is not repeated
// for the scopes below it.
func listHeld(a, b *rights) []Grant {
	x := a.clone()
	var y *rights
	if b != nil {
		y = b.clone()
		x.root.materialize(y.root)
		y.root.materialize(x.root)
	}
	var out []Grant
	var walk func(xn, yn *node, repA, repG map[string]bool)
	walk = func(xn, yn *node, repA, repG map[string]bool) {
		extra, extraGO := map[string]bool{}, map[string]bool{}
		for l := range xn.access {
			if (yn == nil || !yn.access[l]) && !repA[l] {
				extra[l] = true
			}
		}
		for l := range xn.grant {
			if (yn == nil || !yn.grant[l]) && !repG[l] {
				extraGO[l] = true
				delete(extra, l)
			}
		}
		for _, set := range []struct {
			s   map[string]bool
			go_ bool
		}{{extra, false}, {extraGO, true}} {
			if len(set.s) == 0 {
				continue
			}
			for _, name := range compress(set.s, xn.depth) {
				out = append(out, Grant{Privilege: name, Scope: xn.scope, GrantOption: set.go_})
			}
		}
		nextA, nextG := maps.Clone(repA), maps.Clone(repG)
		for l := range extra {
			nextA[l] = true
		}
		for l := range extraGO {
			nextA[l] = true
			nextG[l] = true
		}
		keys := make([]string, 0, len(xn.children))
		for k := range xn.children {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var yc *node
			if yn != nil {
				yc = yn.children[k]
			}
			walk(xn.children[k], yc, nextA, nextG)
		}
	}
	var yroot *node
	if y != nil {
		yroot = y.root
	}
	walk(x.root, yroot, map[string]bool{}, map[string]bool{})
	return out
}
