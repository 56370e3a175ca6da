package grants

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// randomLines draws SHOW GRANTS-like lines over a small universe, so that
// grants, partial revokes and grant options overlap often.
func randomLines(r *rand.Rand) []string {
	privs := []string{"CREATE", "CREATE TABLE", "DROP", "DROP TABLE", "ALTER", "ALTER UPDATE", "ALTER DELETE", "TRUNCATE", "SELECT", "ALL"}
	scopes := []string{"*.*", "db.*", "other.*", "db.t", "db.u", "other.t"}
	var out []string
	for range 1 + r.IntN(5) {
		p, s := privs[r.IntN(len(privs))], scopes[r.IntN(len(scopes))]
		if p == "ALL" && s == "*.*" {
			s = "db.*" // refused targets are tested elsewhere
		}
		switch r.IntN(6) {
		case 0:
			out = append(out, fmt.Sprintf("REVOKE %s ON %s FROM app", p, s))
		case 1:
			out = append(out, fmt.Sprintf("REVOKE GRANT OPTION FOR %s ON %s FROM app", p, s))
		case 2:
			out = append(out, fmt.Sprintf("GRANT %s ON %s TO app WITH GRANT OPTION", p, s))
		case 3:
			if s == "db.t" {
				out = append(out, fmt.Sprintf("GRANT ALTER UPDATE(a, b) ON %s TO app", s))
				continue
			}
			fallthrough
		default:
			out = append(out, fmt.Sprintf("GRANT %s ON %s TO app", p, s))
		}
	}
	return out
}

// TestRestoreReachesTheSnapshot replays freeze and restore on the model for
// random snapshots: after the freeze nothing frozen is left, and the restore
// statements (PlanRestore checks this itself) give back exactly the
// snapshot's DDL plus what was added during the freeze.
func TestRestoreReachesTheSnapshot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := DefaultPrivileges()
	for i := range 500 {
		before := snap(t, app, randomLines(r)...)
		f, err := PlanFreeze(before, p)
		if err != nil {
			t.Fatal(err)
		}
		state := build(before, p)
		if f.Revoke != "" {
			st, err := ParseStatement(f.Revoke)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range st.Grants {
				state.apply(g)
			}
		}
		if !state.root.empty() {
			t.Fatalf("%d: %q: %s leaves something", i, before.Lines, f.Revoke)
		}
		// Without concurrent changes, Freeze.Restore on the frozen state
		// recreates the snapshot.
		for _, line := range f.Restore {
			st, err := ParseStatement(line)
			if err != nil {
				t.Fatalf("%d: restore line %q: %v", i, line, err)
			}
			for _, g := range st.Grants {
				state.apply(g)
			}
		}
		if !state.equal(build(before, p)) {
			t.Fatalf("%d: %q: restore %q does not recreate it", i, before.Lines, f.Restore)
		}
		// With concurrent changes.
		now := snap(t, app, randomLines(r)...)
		nowFrozen := build(now, p)
		res, err := PlanRestore(before, now, p)
		if err != nil {
			t.Fatalf("%d: before %q now %q: %v", i, before.Lines, now.Lines, err)
		}
		for _, line := range res.Statements {
			st, err := ParseStatement(line)
			if err != nil {
				t.Fatalf("%d: %q: %v", i, line, err)
			}
			for _, g := range st.Grants {
				nowFrozen.apply(g)
			}
		}
		if !nowFrozen.equal(union(build(now, p), build(before, p))) {
			t.Fatalf("%d: before %q now %q: statements %q do not reach the union", i, before.Lines, now.Lines, res.Statements)
		}
	}
}
