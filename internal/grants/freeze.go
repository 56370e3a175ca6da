package grants

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TargetKind says whether a target is a user or a role.
type TargetKind string

// Target kinds.
const (
	User TargetKind = "user"
	Role TargetKind = "role"
)

// Target is a user or role whose DDL is frozen.
type Target struct {
	Kind TargetKind `json:"kind"`
	Name string     `json:"name"`
}

func (t Target) String() string { return string(t.Kind) + " " + QuoteIdent(t.Name) }

// ShowGrantsQuery is the statement that reads a target's grants.
func ShowGrantsQuery(t Target) string { return "SHOW GRANTS FOR " + QuoteIdent(t.Name) }

// Snapshot is a target's grants as SHOW GRANTS printed them on one node.
type Snapshot struct {
	Target Target `json:"target"`
	// Lines are SHOW GRANTS's rows, as read; they are what the store keeps.
	Lines []string `json:"lines"`
	// Grants are the privilege lines, flattened to one privilege each, in
	// order (partial revokes after the grants they cut into).
	Grants []Grant     `json:"grants,omitempty"`
	Roles  []RoleGrant `json:"roles,omitempty"`
}

// ParseSnapshot parses SHOW GRANTS FOR target's rows. Every statement must
// grant to (or revoke from) the target alone.
func ParseSnapshot(t Target, lines []string) (Snapshot, error) {
	s := Snapshot{Target: t, Lines: slices.Clone(lines)}
	for i, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		st, err := ParseStatement(line)
		if err != nil {
			return Snapshot{}, fmt.Errorf("%s: line %d: %w", t, i+1, err)
		}
		if len(st.Grantees) != 1 || st.Grantees[0] != t.Name {
			return Snapshot{}, fmt.Errorf("%s: line %d: %q is for %s, not for %s", t, i+1, line, strings.Join(st.Grantees, ", "), QuoteIdent(t.Name))
		}
		if len(st.Roles) > 0 {
			if st.Revoke {
				return Snapshot{}, fmt.Errorf("%s: line %d: unexpected role revoke %q", t, i+1, line)
			}
			for _, r := range st.Roles {
				s.Roles = append(s.Roles, RoleGrant{Role: r, AdminOption: st.AdminOption})
			}
			continue
		}
		s.Grants = append(s.Grants, st.Grants...)
	}
	return s, nil
}

// Refuse returns why a target must not be frozen, or nil: a target holding
// ALL on *.* or a privilege that manages access (users, roles, grants,
// quotas, profiles, impersonation; the read-only SHOW ACCESS privileges and
// row policies excepted) could give itself DDL back, and is more than an
// application user. Config validation calls it with each target's snapshot.
func Refuse(s Snapshot) error {
	var reasons []string
	for _, g := range s.Grants {
		if g.PartialRevoke {
			continue
		}
		switch {
		case g.Privilege == "ALL" && g.Scope.IsGlobal():
			reasons = append(reasons, "it holds ALL ON *.*")
		case IsAccessManagement(g.Privilege) && !isRowPolicy(g.Privilege):
			reasons = append(reasons, fmt.Sprintf("it holds %s (access management)", g.Privilege+" ON "+g.Scope.String()))
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return fmt.Errorf("%s cannot be a DDL freeze target: %s", s.Target, strings.Join(slices.Compact(reasons), "; "))
}

func isRowPolicy(name string) bool { return strings.HasSuffix(name, " ROW POLICY") }

// Freeze is what the freeze does to one target on one node.
type Freeze struct {
	Target Target `json:"target"`
	// Held are the frozen privileges the target holds, per scope, as the
	// plan shows them ("CREATE TABLE ON `db`.*").
	Held []Grant `json:"held,omitempty"`
	// Revoke is the statement to run: empty when the target holds none of
	// the privileges (nothing to do on this node).
	Revoke string `json:"revoke,omitempty"`
	// Restore re-grants what Revoke takes, if nothing changes meanwhile
	// (PlanRestore computes the real thing at unfreeze time).
	Restore []string `json:"restore,omitempty"`
	// ViaRoles are the roles granted to the target: privileges they give
	// are not frozen unless the role is a target too.
	ViaRoles []RoleGrant `json:"via_roles,omitempty"`
}

// PlanFreeze computes the freeze of one target from its snapshot. It
// refuses what Refuse refuses.
func PlanFreeze(s Snapshot, p Privileges) (Freeze, error) {
	if err := Refuse(s); err != nil {
		return Freeze{}, err
	}
	if len(p.names) == 0 {
		return Freeze{}, errors.New("no privileges to freeze")
	}
	r := build(s, p)
	f := Freeze{Target: s.Target, Held: listHeld(r, nil), ViaRoles: s.Roles}
	held := map[string]bool{}
	r.root.held(held)
	var names []string
	for _, n := range p.names {
		for _, l := range leaves(n, Global) {
			if held[l] {
				names = append(names, n)
				break
			}
		}
	}
	// Unknown leaves (newer servers) that belong to a frozen root.
	for l := range held {
		if _, known := cat.byName[l]; !known {
			if root := ddlRootOf(l); !slices.Contains(names, root) {
				names = append(names, root)
			}
		}
	}
	if len(names) == 0 {
		return f, nil
	}
	f.Revoke = "REVOKE " + strings.Join(names, ", ") + " ON *.* FROM " + QuoteIdent(s.Target.Name)
	for _, e := range r.elements() {
		f.Restore = append(f.Restore, formatElement(e, s.Target))
	}
	return f, nil
}

func build(s Snapshot, p Privileges) *rights {
	r := newRights(p)
	for _, g := range s.Grants {
		r.apply(g)
	}
	return r
}

func formatElement(e element, t Target) string {
	var b strings.Builder
	if e.revoke {
		b.WriteString("REVOKE ")
		if e.grantOption {
			b.WriteString("GRANT OPTION FOR ")
		}
	} else {
		b.WriteString("GRANT ")
	}
	cols := columns(e.scope.Columns)
	for i, n := range e.names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n + cols)
	}
	scope := e.scope
	scope.Columns = nil
	b.WriteString(" ON " + scope.String())
	if e.revoke {
		b.WriteString(" FROM ")
	} else {
		b.WriteString(" TO ")
	}
	b.WriteString(QuoteIdent(t.Name))
	if !e.revoke && e.grantOption {
		b.WriteString(" WITH GRANT OPTION")
	}
	return b.String()
}

// Restore is what the unfreeze does to one target on one node.
type Restore struct {
	Target Target `json:"target"`
	// Statements re-grant what the freeze took, in order; empty when there
	// is nothing to give back.
	Statements []string `json:"statements,omitempty"`
	// AddedDuringFreeze are frozen privileges the target holds now that it
	// did not hold before the freeze (someone granted them meanwhile): they
	// are kept.
	AddedDuringFreeze []Grant `json:"added_during_freeze,omitempty"`
	// OtherChanges are lines of SHOW GRANTS outside the frozen privileges
	// that differ between the snapshot and now ("+ line" added, "- line"
	// gone): left alone, reported.
	OtherChanges []string `json:"other_changes,omitempty"`
}

// PlanRestore computes the unfreeze of one target from the snapshot taken
// before the freeze and one taken now: the target ends with what it holds
// now plus the frozen privileges it held before (see the package doc).
func PlanRestore(before, now Snapshot, p Privileges) (Restore, error) {
	if before.Target != now.Target {
		return Restore{}, fmt.Errorf("restore: snapshots of %s and %s", before.Target, now.Target)
	}
	b, r := build(before, p), build(now, p)
	res := Restore{Target: now.Target, AddedDuringFreeze: listHeld(r, b), OtherChanges: otherChanges(before, now, p)}
	want := union(r, b)
	state := r.clone()
	for _, e := range want.elements() {
		// Keep only the leaves that change something: the rest was granted
		// (or revoked) by someone during the freeze already.
		useful := map[string]bool{}
		for _, l := range e.leaves {
			one := e
			one.names = []string{l}
			next := state.clone()
			next.applyElement(one)
			if !next.equal(state) {
				useful[l] = true
			}
		}
		if len(useful) == 0 {
			continue
		}
		if len(useful) < len(e.leaves) {
			e.names = compress(useful, e.depth)
		}
		next := state.clone()
		next.applyElement(e)
		state = next
		res.Statements = append(res.Statements, formatElement(e, now.Target))
	}
	if !state.equal(want) {
		return Restore{}, fmt.Errorf("restore %s: internal error: the statements do not reach the snapshot", now.Target)
	}
	return res, nil
}

// otherChanges compares the lines outside the frozen set.
func otherChanges(before, now Snapshot, p Privileges) []string {
	keep := func(s Snapshot) []string {
		var out []string
		for _, g := range s.Grants {
			if !p.touches(g.Privilege) {
				out = append(out, g.String())
			}
		}
		for _, r := range s.Roles {
			line := "role " + QuoteIdent(r.Role)
			if r.AdminOption {
				line += " WITH ADMIN OPTION"
			}
			out = append(out, line)
		}
		return out
	}
	b, n := keep(before), keep(now)
	var out []string
	for _, l := range b {
		if !slices.Contains(n, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range n {
		if !slices.Contains(b, l) {
			out = append(out, "+ "+l)
		}
	}
	return out
}

// VerifyFrozen checks a snapshot read after the freeze: the target holds
// none of the frozen privileges, and every other line of the snapshot
// before is still there. A grant of a group that also held frozen
// privileges (ALL ON db.*) is shown by the server afterwards as the list of
// what is left; it is not compared.
func VerifyFrozen(before, after Snapshot, p Privileges) error {
	var problems []string
	if left := listHeld(build(after, p), nil); len(left) > 0 {
		var s []string
		for _, g := range left {
			s = append(s, g.String())
		}
		problems = append(problems, "still holds "+strings.Join(s, ", "))
	}
	afterLines := map[string]bool{}
	for _, g := range after.Grants {
		afterLines[g.String()] = true
	}
	for _, g := range before.Grants {
		if p.touches(g.Privilege) {
			continue
		}
		if !afterLines[g.String()] {
			problems = append(problems, "lost "+g.String())
		}
	}
	if !slices.Equal(roleLines(before), roleLines(after)) {
		problems = append(problems, fmt.Sprintf("roles changed from %v to %v", roleLines(before), roleLines(after)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s is not frozen as planned: %s", after.Target, strings.Join(problems, "; "))
	}
	return nil
}

func roleLines(s Snapshot) []string {
	var out []string
	for _, r := range s.Roles {
		out = append(out, fmt.Sprintf("%s admin=%v", r.Role, r.AdminOption))
	}
	slices.Sort(out)
	return out
}

// VerifyRestored checks a snapshot read after the unfreeze: the frozen
// privileges are what the target held before the freeze plus what was
// added during it (at restore time, now).
func VerifyRestored(before, atRestore, after Snapshot, p Privileges) error {
	want := union(build(atRestore, p), build(before, p))
	got := build(after, p)
	if got.equal(want) {
		return nil
	}
	missing := listHeld(want, got)
	extra := listHeld(got, want)
	var s []string
	for _, g := range missing {
		s = append(s, "missing "+g.String())
	}
	for _, g := range extra {
		s = append(s, "unexpected "+g.String())
	}
	if len(s) == 0 {
		s = append(s, "the grant options or partial revokes differ")
	}
	return fmt.Errorf("%s is not restored: %s", after.Target, strings.Join(s, "; "))
}

// RolesNotFrozen returns, for each snapshot's target, the roles granted to
// it that are not targets themselves: privileges those roles give are not
// taken away by the freeze (REVOKE ... FROM a user does not touch its
// roles). The plan lists them; the roles' own grants say whether they give
// DDL.
func RolesNotFrozen(snaps []Snapshot) map[Target][]string {
	targets := map[Target]bool{}
	for _, s := range snaps {
		targets[s.Target] = true
	}
	out := map[Target][]string{}
	for _, s := range snaps {
		for _, r := range s.Roles {
			if !targets[Target{Kind: Role, Name: r.Role}] && !slices.Contains(out[s.Target], r.Role) {
				out[s.Target] = append(out[s.Target], r.Role)
			}
		}
	}
	return out
}
