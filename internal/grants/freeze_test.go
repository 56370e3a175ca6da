package grants

import (
	"reflect"
	"strings"
	"testing"
)

var app = Target{Kind: User, Name: "app"}

func snap(t *testing.T, target Target, lines ...string) Snapshot {
	t.Helper()
	s, err := ParseSnapshot(target, lines)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expandedAllOnDB is how a server prints GRANT ALL ON db.* when it expands
// the database-level ALL into the privileges grantable there (the order of
// AccessType.h).
const expandedAllOnDB = "GRANT SHOW TABLES, SHOW COLUMNS, SHOW DICTIONARIES, SELECT, INSERT, ALTER, " +
	"CREATE DATABASE, CREATE TABLE, CREATE VIEW, CREATE DICTIONARY, " +
	"DROP DATABASE, DROP TABLE, DROP VIEW, DROP DICTIONARY, UNDROP TABLE, TRUNCATE, OPTIMIZE, BACKUP, " +
	"CREATE ROW POLICY, ALTER ROW POLICY, DROP ROW POLICY, SHOW ROW POLICIES, SYSTEM MERGES, dictGet ON db.* TO app"

func TestPlanFreeze(t *testing.T) {
	tests := []struct {
		name        string
		lines       []string
		privs       []string // nil: the default set
		wantRevoke  string
		wantRestore []string
		wantHeld    []string
	}{
		{
			name:        "global grants",
			lines:       []string{"GRANT SELECT, INSERT, ALTER, CREATE, DROP ON *.* TO app"},
			wantRevoke:  "REVOKE CREATE, ALTER, DROP ON *.* FROM `app`",
			wantRestore: []string{"GRANT ALTER, CREATE, DROP ON *.* TO `app`"},
			wantHeld:    []string{"ALTER ON *.*", "CREATE ON *.*", "DROP ON *.*"},
		},
		{
			// GRANT ALL ON db.* holds CREATE on db.* (the database-level part of
			// CREATE): REVOKE CREATE ON *.* takes it away there too.
			name:        "ALL on a database",
			lines:       []string{"GRANT ALL ON db.* TO app"},
			wantRevoke:  "REVOKE CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE ON *.* FROM `app`",
			wantRestore: []string{"GRANT ALTER, CREATE, DROP, TRUNCATE, OPTIMIZE ON `db`.* TO `app`"},
			wantHeld:    []string{"ALTER ON `db`.*", "CREATE ON `db`.*", "DROP ON `db`.*", "TRUNCATE ON `db`.*", "OPTIMIZE ON `db`.*"},
		},
		{
			name:        "ALL on a database, expanded by the server",
			lines:       []string{expandedAllOnDB},
			wantRevoke:  "REVOKE CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE ON *.* FROM `app`",
			wantRestore: []string{"GRANT ALTER, CREATE, DROP, TRUNCATE, OPTIMIZE ON `db`.* TO `app`"},
			wantHeld:    []string{"ALTER ON `db`.*", "CREATE ON `db`.*", "DROP ON `db`.*", "TRUNCATE ON `db`.*", "OPTIMIZE ON `db`.*"},
		},
		{
			name:        "only on one database: revoked on *.*, restored on db.*",
			lines:       []string{"GRANT SELECT, INSERT ON *.* TO app", "GRANT CREATE TABLE, DROP TABLE ON db.* TO app"},
			wantRevoke:  "REVOKE CREATE, DROP ON *.* FROM `app`",
			wantRestore: []string{"GRANT CREATE TABLE, DROP TABLE ON `db`.* TO `app`"},
			wantHeld:    []string{"CREATE TABLE ON `db`.*", "DROP TABLE ON `db`.*"},
		},
		{
			name:        "partial revoke comes back after its grant",
			lines:       []string{"GRANT CREATE TABLE, DROP TABLE ON *.* TO app", "REVOKE DROP TABLE ON db.keep FROM app"},
			wantRevoke:  "REVOKE CREATE, DROP ON *.* FROM `app`",
			wantRestore: []string{"GRANT CREATE TABLE, DROP TABLE ON *.* TO `app`", "REVOKE DROP TABLE ON `db`.`keep` FROM `app`"},
			wantHeld:    []string{"CREATE TABLE ON *.*", "DROP TABLE ON *.*"},
		},
		{
			name: "grant option, and a partial revoke of the grant option",
			lines: []string{"GRANT SELECT ON db.* TO app", "GRANT CREATE ON db.* TO app WITH GRANT OPTION",
				"REVOKE GRANT OPTION FOR CREATE TABLE ON db.sealed FROM app"},
			wantRevoke: "REVOKE CREATE ON *.* FROM `app`",
			wantRestore: []string{"GRANT CREATE ON `db`.* TO `app` WITH GRANT OPTION",
				"REVOKE GRANT OPTION FOR CREATE TABLE ON `db`.`sealed` FROM `app`"},
			wantHeld: []string{"CREATE ON `db`.* WITH GRANT OPTION"},
		},
		{
			name:        "columns",
			lines:       []string{"GRANT SELECT, ALTER UPDATE(a, b) ON db.t TO app"},
			wantRevoke:  "REVOKE ALTER ON *.* FROM `app`",
			wantRestore: []string{"GRANT ALTER UPDATE(`a`, `b`) ON `db`.`t` TO `app`"},
			wantHeld:    []string{"ALTER UPDATE(`a`) ON `db`.`t`", "ALTER UPDATE(`b`) ON `db`.`t`"},
		},
		{
			name:        "a column partially revoked from a table grant",
			lines:       []string{"GRANT ALTER UPDATE ON db.t TO app", "REVOKE ALTER UPDATE(secret) ON db.t FROM app"},
			wantRevoke:  "REVOKE ALTER ON *.* FROM `app`",
			wantRestore: []string{"GRANT ALTER UPDATE ON `db`.`t` TO `app`", "REVOKE ALTER UPDATE(`secret`) ON `db`.`t` FROM `app`"},
			wantHeld:    []string{"ALTER UPDATE ON `db`.`t`"},
		},
		{
			name:        "quoted names",
			lines:       []string{"GRANT CREATE TABLE ON `my-db`.* TO `app`"},
			wantRevoke:  "REVOKE CREATE ON *.* FROM `app`",
			wantRestore: []string{"GRANT CREATE TABLE ON `my-db`.* TO `app`"},
			wantHeld:    []string{"CREATE TABLE ON `my-db`.*"},
		},
		{
			name:        "CREATE on *.* includes the global-only leaves; on db.* it does not",
			lines:       []string{"GRANT CREATE ON *.* TO app", "REVOKE CREATE ON db.* FROM app"},
			wantRevoke:  "REVOKE CREATE ON *.* FROM `app`",
			wantRestore: []string{"GRANT CREATE ON *.* TO `app`", "REVOKE CREATE ON `db`.* FROM `app`"},
			wantHeld:    []string{"CREATE ON *.*"},
		},
		{
			name:       "no DDL: nothing to do",
			lines:      []string{"GRANT SELECT, INSERT ON db.* TO app", "GRANT reader TO app"},
			wantRevoke: "",
		},
		{
			name:        "a narrower configured set",
			lines:       []string{"GRANT ALTER, CREATE, DROP ON db.* TO app"},
			privs:       []string{"CREATE TABLE", "drop table"},
			wantRevoke:  "REVOKE CREATE TABLE, DROP TABLE ON *.* FROM `app`",
			wantRestore: []string{"GRANT CREATE TABLE, DROP TABLE ON `db`.* TO `app`"},
			wantHeld:    []string{"CREATE TABLE ON `db`.*", "DROP TABLE ON `db`.*"},
		},
		{
			name:        "aliases",
			lines:       []string{"GRANT UPDATE, DELETE ON db.t TO app", "GRANT TRUNCATE TABLE ON db.* TO app"},
			wantRevoke:  "REVOKE ALTER, TRUNCATE ON *.* FROM `app`",
			wantRestore: []string{"GRANT TRUNCATE ON `db`.* TO `app`", "GRANT ALTER UPDATE, ALTER DELETE ON `db`.`t` TO `app`"},
			wantHeld:    []string{"TRUNCATE ON `db`.*", "ALTER UPDATE ON `db`.`t`", "ALTER DELETE ON `db`.`t`"},
		},
		{
			name:        "a DDL privilege newer than this package",
			lines:       []string{"GRANT ALTER FROBNICATE ON db.* TO app"},
			wantRevoke:  "REVOKE ALTER ON *.* FROM `app`",
			wantRestore: []string{"GRANT ALTER FROBNICATE ON `db`.* TO `app`"},
			wantHeld:    []string{"ALTER FROBNICATE ON `db`.*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPrivileges()
			if tt.privs != nil {
				var err error
				if p, err = ParsePrivileges(tt.privs); err != nil {
					t.Fatal(err)
				}
			}
			f, err := PlanFreeze(snap(t, app, tt.lines...), p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Revoke != tt.wantRevoke {
				t.Errorf("revoke\n got  %s\n want %s", f.Revoke, tt.wantRevoke)
			}
			if !reflect.DeepEqual(f.Restore, tt.wantRestore) {
				t.Errorf("restore\n got  %q\n want %q", f.Restore, tt.wantRestore)
			}
			var held []string
			for _, g := range f.Held {
				held = append(held, g.String())
			}
			if !reflect.DeepEqual(held, tt.wantHeld) {
				t.Errorf("held\n got  %q\n want %q", held, tt.wantHeld)
			}
		})
	}
}

func TestPlanFreezeReportsRoles(t *testing.T) {
	f, err := PlanFreeze(snap(t, app, "GRANT SELECT ON db.* TO app", "GRANT ddl_role, reader TO app", "GRANT boss TO app WITH ADMIN OPTION"), DefaultPrivileges())
	if err != nil {
		t.Fatal(err)
	}
	want := []RoleGrant{{Role: "ddl_role"}, {Role: "reader"}, {Role: "boss", AdminOption: true}}
	if !reflect.DeepEqual(f.ViaRoles, want) || f.Revoke != "" {
		t.Errorf("got %+v", f)
	}
	// A role target is revoked FROM the role.
	f, err = PlanFreeze(snap(t, Target{Kind: Role, Name: "ddl_role"}, "GRANT CREATE TABLE ON db.* TO ddl_role"), DefaultPrivileges())
	if err != nil || f.Revoke != "REVOKE CREATE ON *.* FROM `ddl_role`" {
		t.Errorf("role: %+v %v", f, err)
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		lines []string
		want  string // "" = accepted
	}{
		{[]string{"GRANT ALL ON *.* TO app"}, "it holds ALL ON *.*"},
		{[]string{"GRANT ALL ON *.* TO app WITH GRANT OPTION", "REVOKE ALL ON system.* FROM app"}, "it holds ALL ON *.*"},
		{[]string{"GRANT CREATE USER ON *.* TO app"}, "CREATE USER ON *.* (access management)"},
		{[]string{"GRANT CREATE USER ON * TO app"}, "CREATE USER ON * (access management)"},
		{[]string{"GRANT ACCESS MANAGEMENT ON *.* TO app"}, "ACCESS MANAGEMENT ON *.*"},
		{[]string{"GRANT ROLE ADMIN ON *.* TO app"}, "ROLE ADMIN ON *.*"},
		{[]string{"GRANT ALTER USER, DROP ROLE ON *.* TO app"}, "ALTER USER ON *.* (access management); it holds DROP ROLE ON *.*"},
		{[]string{"GRANT IMPERSONATE ON admin TO app"}, "IMPERSONATE ON `admin`"},
		{[]string{"GRANT ALL ON db.* TO app"}, ""},
		{[]string{expandedAllOnDB}, ""}, // row policies on its own tables: not access to grants
		{[]string{"GRANT SHOW USERS, SHOW ROLES ON *.* TO app"}, ""},
		{[]string{"GRANT SELECT ON *.* TO app"}, ""},
	}
	for _, tt := range tests {
		err := Refuse(snap(t, app, tt.lines...))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: refused: %v", tt.lines, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want %q", tt.lines, err, tt.want)
		}
		if tt.want != "" {
			if _, perr := PlanFreeze(snap(t, app, tt.lines...), DefaultPrivileges()); perr == nil {
				t.Errorf("%q: PlanFreeze accepted a refused target", tt.lines)
			}
		}
	}
	err := Refuse(snap(t, app, "GRANT ALL ON *.* TO app"))
	if err == nil || err.Error() != "user `app` cannot be a DDL freeze target: it holds ALL ON *.*" {
		t.Errorf("message: %v", err)
	}
}

func TestParsePrivileges(t *testing.T) {
	p, err := ParsePrivileges([]string{"create", "Alter", "DROP", "truncate table", "OPTIMIZE", "create"})
	if err != nil || !reflect.DeepEqual(p.Names(), []string{"CREATE", "ALTER", "DROP", "TRUNCATE", "OPTIMIZE"}) {
		t.Errorf("got %v %v", p.Names(), err)
	}
	if !reflect.DeepEqual(DefaultPrivileges().Names(), p.Names()) {
		t.Errorf("default %v", DefaultPrivileges().Names())
	}
	for _, tt := range []struct{ in, want string }{
		{"RENAME", "RENAME and EXCHANGE need DROP TABLE on the source and CREATE TABLE on the target"},
		{"exchange", "RENAME and EXCHANGE need"},
		{"SELECT", "not a DDL privilege"},
		{"CREATE USER", "not a DDL privilege"},
		{"ALL", "not everything"},
		{"FROBNICATE", "not a DDL privilege"},
	} {
		if _, err := ParsePrivileges([]string{tt.in}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.in, err, tt.want)
		}
	}
	if _, err := ParsePrivileges(nil); err == nil {
		t.Error("empty list accepted")
	}
}

func TestParseSnapshotChecksTheGrantee(t *testing.T) {
	_, err := ParseSnapshot(app, []string{"GRANT SELECT ON db.* TO other"})
	if err == nil || !strings.Contains(err.Error(), "is for other, not for `app`") {
		t.Errorf("got %v", err)
	}
	_, err = ParseSnapshot(app, []string{"GRANT SELECT ON db.* TO app", "GRANT ON db.* TO app"})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("got %v", err)
	}
}

func TestPlanRestore(t *testing.T) {
	tests := []struct {
		name        string
		before, now []string
		want        []string
		wantAdded   []string
		wantOther   []string
	}{
		{
			name:   "no concurrent change: the DDL part of the snapshot",
			before: []string{"GRANT SELECT ON *.* TO app", "GRANT CREATE TABLE, DROP TABLE ON *.* TO app", "REVOKE DROP TABLE ON db.keep FROM app"},
			now:    []string{"GRANT SELECT ON *.* TO app"},
			want:   []string{"GRANT CREATE TABLE, DROP TABLE ON *.* TO `app`", "REVOKE DROP TABLE ON `db`.`keep` FROM `app`"},
		},
		{
			name:      "a DDL grant added during the freeze is kept and reported",
			before:    []string{"GRANT CREATE TABLE ON db.* TO app"},
			now:       []string{"GRANT CREATE TABLE ON other.* TO app"},
			want:      []string{"GRANT CREATE TABLE ON `db`.* TO `app`"},
			wantAdded: []string{"CREATE TABLE ON `other`.*"},
		},
		{
			name:   "someone already gave part of it back: only the rest is granted",
			before: []string{"GRANT CREATE TABLE ON db.* TO app", "GRANT DROP TABLE ON db.* TO app"},
			now:    []string{"GRANT CREATE TABLE ON db.* TO app"},
			want:   []string{"GRANT DROP TABLE ON `db`.* TO `app`"},
		},
		{
			name:   "everything given back already: nothing to do",
			before: []string{"GRANT CREATE TABLE ON db.* TO app"},
			now:    []string{"GRANT CREATE TABLE ON db.* TO app"},
		},
		{
			name:      "a grant added inside a partial revoke survives the restore",
			before:    []string{"GRANT CREATE ON *.* TO app", "REVOKE CREATE TABLE ON secret.* FROM app"},
			now:       []string{"GRANT CREATE TABLE ON secret.* TO app"},
			want:      []string{"GRANT CREATE ON *.* TO `app`"},
			wantAdded: []string{"CREATE TABLE ON `secret`.*"},
		},
		{
			name:      "a grant added on a table under a partial revoke is re-granted after it",
			before:    []string{"GRANT CREATE ON *.* TO app", "REVOKE CREATE ON secret.* FROM app"},
			now:       []string{"GRANT CREATE TABLE ON secret.t2 TO app"},
			want:      []string{"GRANT CREATE ON *.* TO `app`", "REVOKE CREATE ON `secret`.* FROM `app`", "GRANT CREATE TABLE ON `secret`.`t2` TO `app`"},
			wantAdded: []string{"CREATE TABLE ON `secret`.`t2`"},
		},
		{
			name:      "grant option added during the freeze",
			before:    []string{"GRANT CREATE TABLE ON db.* TO app"},
			now:       []string{"GRANT CREATE TABLE ON db.* TO app WITH GRANT OPTION"},
			wantAdded: []string{"CREATE TABLE ON `db`.* WITH GRANT OPTION"},
		},
		{
			name:      "other changes are reported and left alone",
			before:    []string{"GRANT SELECT ON db.* TO app", "GRANT ALTER ON db.* TO app", "GRANT reader TO app"},
			now:       []string{"GRANT SELECT ON db.*, INSERT ON x.* TO app", "GRANT writer TO app"},
			want:      []string{"GRANT ALTER ON `db`.* TO `app`"},
			wantOther: []string{"- role `reader`", "+ INSERT ON `x`.*", "+ role `writer`"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPrivileges()
			before, now := snap(t, app, tt.before...), snap(t, app, tt.now...)
			r, err := PlanRestore(before, now, p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Statements, tt.want) {
				t.Errorf("statements\n got  %q\n want %q", r.Statements, tt.want)
			}
			var added []string
			for _, g := range r.AddedDuringFreeze {
				added = append(added, g.String())
			}
			if !reflect.DeepEqual(added, tt.wantAdded) {
				t.Errorf("added\n got  %q\n want %q", added, tt.wantAdded)
			}
			if !reflect.DeepEqual(r.OtherChanges, tt.wantOther) {
				t.Errorf("other\n got  %q\n want %q", r.OtherChanges, tt.wantOther)
			}
		})
	}
	if _, err := PlanRestore(snap(t, app), snap(t, Target{Kind: User, Name: "x"}), DefaultPrivileges()); err == nil {
		t.Error("snapshots of two targets accepted")
	}
}

func TestVerify(t *testing.T) {
	p := DefaultPrivileges()
	before := snap(t, app, "GRANT SELECT ON *.* TO app", "GRANT CREATE TABLE ON db.* TO app", "GRANT reader TO app")
	frozen := snap(t, app, "GRANT SELECT ON *.* TO app", "GRANT reader TO app")
	if err := VerifyFrozen(before, frozen, p); err != nil {
		t.Errorf("frozen: %v", err)
	}
	err := VerifyFrozen(before, before, p)
	if err == nil || !strings.Contains(err.Error(), "still holds CREATE TABLE ON `db`.*") {
		t.Errorf("not frozen: %v", err)
	}
	err = VerifyFrozen(before, snap(t, app, "GRANT reader TO app"), p)
	if err == nil || !strings.Contains(err.Error(), "lost SELECT ON *.*") {
		t.Errorf("lost: %v", err)
	}
	err = VerifyFrozen(before, snap(t, app, "GRANT SELECT ON *.* TO app"), p)
	if err == nil || !strings.Contains(err.Error(), "roles changed") {
		t.Errorf("roles: %v", err)
	}
	if err := VerifyRestored(before, frozen, before, p); err != nil {
		t.Errorf("restored: %v", err)
	}
	err = VerifyRestored(before, frozen, frozen, p)
	if err == nil || !strings.Contains(err.Error(), "missing CREATE TABLE ON `db`.*") {
		t.Errorf("not restored: %v", err)
	}
	extra := snap(t, app, "GRANT SELECT ON *.* TO app", "GRANT CREATE TABLE ON *.* TO app")
	err = VerifyRestored(before, frozen, extra, p)
	if err == nil || !strings.Contains(err.Error(), "unexpected CREATE TABLE ON *.*") {
		t.Errorf("extra: %v", err)
	}
}

func TestRolesNotFrozen(t *testing.T) {
	role := Target{Kind: Role, Name: "ddl_role"}
	got := RolesNotFrozen([]Snapshot{
		snap(t, app, "GRANT ddl_role, reader TO app", "GRANT reader TO app WITH ADMIN OPTION"),
		snap(t, role, "GRANT CREATE TABLE ON db.* TO ddl_role", "GRANT inner TO ddl_role"),
	})
	want := map[Target][]string{app: {"reader"}, role: {"inner"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}

func TestWildcardScopesComeFirst(t *testing.T) {
	f, err := PlanFreeze(snap(t, app, "GRANT CREATE TABLE ON db.table1 TO app", "GRANT CREATE TABLE ON db.tab* TO app", "GRANT DROP TABLE ON db*.* TO app"), DefaultPrivileges())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GRANT DROP TABLE ON `db`*.* TO `app`", "GRANT CREATE TABLE ON `db`.`tab`* TO `app`", "GRANT CREATE TABLE ON `db`.`table1` TO `app`"}
	if !reflect.DeepEqual(f.Restore, want) {
		t.Errorf("got %q", f.Restore)
	}
}
