package grants

import (
	"reflect"
	"strings"
	"testing"
)

// The fixtures are written from ClickHouse's documented syntax (GRANT,
// REVOKE, SHOW GRANTS reference pages) and from how the server formats
// SHOW GRANTS (ASTGrantQuery::formatImpl, AccessRightsElement::formatONClause,
// backQuoteIfNeed): one statement per line, a column list after each
// privilege, back quotes only where a name needs them.

func TestParseStatement(t *testing.T) {
	db := func(d string) Scope { return Scope{Database: d} }
	tbl := func(d, t string, cols ...string) Scope { return Scope{Database: d, Table: t, Columns: cols} }
	tests := []struct {
		line string
		want Statement
	}{
		{"GRANT SELECT, INSERT ON db.* TO app", Statement{
			Grants:   []Grant{{Privilege: "SELECT", Scope: db("db")}, {Privilege: "INSERT", Scope: db("db")}},
			Grantees: []string{"app"}}},
		{"GRANT SHOW, SELECT, INSERT, ALTER, CREATE, DROP ON *.* TO default", Statement{
			Grants: []Grant{{Privilege: "SHOW"}, {Privilege: "SELECT"}, {Privilege: "INSERT"}, {Privilege: "ALTER"},
				{Privilege: "CREATE"}, {Privilege: "DROP"}},
			Grantees: []string{"default"}}},
		{"GRANT SELECT(id, name), INSERT(id) ON db.t TO app", Statement{
			Grants:   []Grant{{Privilege: "SELECT", Scope: tbl("db", "t", "id", "name")}, {Privilege: "INSERT", Scope: tbl("db", "t", "id")}},
			Grantees: []string{"app"}}},
		{"GRANT CREATE TABLE ON db.* TO app WITH GRANT OPTION", Statement{
			Grants:   []Grant{{Privilege: "CREATE TABLE", Scope: db("db"), GrantOption: true}},
			Grantees: []string{"app"}}},
		{"REVOKE DROP TABLE ON db.keep FROM app", Statement{Revoke: true,
			Grants:   []Grant{{Privilege: "DROP TABLE", Scope: tbl("db", "keep"), PartialRevoke: true}},
			Grantees: []string{"app"}}},
		// Only the grant option taken away: new servers print GRANT OPTION FOR
		// (ASTGrantQuery), AccessRightsElement::toString prints GRANT OPTION.
		{"REVOKE GRANT OPTION FOR CREATE TABLE ON db.sealed FROM app", Statement{Revoke: true,
			Grants:   []Grant{{Privilege: "CREATE TABLE", Scope: tbl("db", "sealed"), GrantOption: true, PartialRevoke: true}},
			Grantees: []string{"app"}}},
		{"REVOKE GRANT OPTION CREATE TABLE ON db.sealed FROM app", Statement{Revoke: true,
			Grants:   []Grant{{Privilege: "CREATE TABLE", Scope: tbl("db", "sealed"), GrantOption: true, PartialRevoke: true}},
			Grantees: []string{"app"}}},
		{"GRANT reader, writer TO app", Statement{Roles: []string{"reader", "writer"}, Grantees: []string{"app"}}},
		{"GRANT admin_role TO app WITH ADMIN OPTION", Statement{Roles: []string{"admin_role"}, AdminOption: true, Grantees: []string{"app"}}},
		// Quoting: back quotes, a backslash-escaped back quote, a space.
		{"GRANT ALTER UPDATE(`my col`) ON `my-db`.`t\\`x` TO `app user`", Statement{
			Grants:   []Grant{{Privilege: "ALTER UPDATE", Scope: tbl("my-db", "t`x", "my col")}},
			Grantees: []string{"app user"}}},
		{`GRANT SELECT ON "quoted db".t TO "u"`, Statement{
			Grants: []Grant{{Privilege: "SELECT", Scope: tbl("quoted db", "t")}}, Grantees: []string{"u"}}},
		// Aliases resolve to canonical names; USAGE is nothing.
		{"GRANT UPDATE, DELETE, MODIFY TTL ON db.t TO app", Statement{
			Grants: []Grant{{Privilege: "ALTER UPDATE", Scope: tbl("db", "t")}, {Privilege: "ALTER DELETE", Scope: tbl("db", "t")},
				{Privilege: "ALTER TTL", Scope: tbl("db", "t")}},
			Grantees: []string{"app"}}},
		{"GRANT ALL PRIVILEGES ON db.* TO app", Statement{Grants: []Grant{{Privilege: "ALL", Scope: db("db")}}, Grantees: []string{"app"}}},
		{"grant all on *.* to admin with grant option", Statement{Grants: []Grant{{Privilege: "ALL", GrantOption: true}}, Grantees: []string{"admin"}}},
		{"GRANT USAGE ON *.* TO app", Statement{Grantees: []string{"app"}}},
		{"GRANT TRUNCATE TABLE, OPTIMIZE TABLE ON db.* TO app", Statement{
			Grants: []Grant{{Privilege: "TRUNCATE", Scope: db("db")}, {Privilege: "OPTIMIZE", Scope: db("db")}}, Grantees: []string{"app"}}},
		// Several ON clauses in one statement.
		{"GRANT SELECT ON db.a, INSERT, ALTER DELETE ON db.b TO app", Statement{
			Grants: []Grant{{Privilege: "SELECT", Scope: tbl("db", "a")}, {Privilege: "INSERT", Scope: tbl("db", "b")},
				{Privilege: "ALTER DELETE", Scope: tbl("db", "b")}},
			Grantees: []string{"app"}}},
		// Wildcards (24.x) and global privileges with a parameter.
		{"GRANT SELECT ON db.tab* TO app", Statement{
			Grants: []Grant{{Privilege: "SELECT", Scope: Scope{Database: "db", Table: "tab", Wildcard: true}}}, Grantees: []string{"app"}}},
		{"GRANT CREATE ON db*.* TO app", Statement{
			Grants: []Grant{{Privilege: "CREATE", Scope: Scope{Database: "db", Wildcard: true}}}, Grantees: []string{"app"}}},
		{"GRANT READ, WRITE ON S3 TO app", Statement{
			Grants: []Grant{{Privilege: "READ", Scope: Scope{IsParameter: true, Parameter: "S3"}},
				{Privilege: "WRITE", Scope: Scope{IsParameter: true, Parameter: "S3"}}}, Grantees: []string{"app"}}},
		{"GRANT NAMED COLLECTION ON nc1 TO app", Statement{
			Grants: []Grant{{Privilege: "NAMED COLLECTION", Scope: Scope{IsParameter: true, Parameter: "nc1"}}}, Grantees: []string{"app"}}},
		{"GRANT CREATE USER ON * TO app", Statement{
			Grants: []Grant{{Privilege: "CREATE USER", Scope: Scope{IsParameter: true, AnyParameter: true}}}, Grantees: []string{"app"}}},
		{"GRANT dictGet ON db.dict TO app;", Statement{
			Grants: []Grant{{Privilege: "dictGet", Scope: tbl("db", "dict")}}, Grantees: []string{"app"}}},
		{"GRANT SYSTEM DROP DNS CACHE ON *.* TO app", Statement{
			Grants: []Grant{{Privilege: "SYSTEM DROP DNS CACHE"}}, Grantees: []string{"app"}}},
		// A table named like a keyword, and a user named ALL (quoted).
		{"GRANT SELECT ON db.to TO `ALL`", Statement{
			Grants: []Grant{{Privilege: "SELECT", Scope: tbl("db", "to")}}, Grantees: []string{"ALL"}}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := ParseStatement(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.want.Grants {
				tt.want.Grants[i].PartialRevoke = tt.want.Revoke
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatementErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"", "empty statement"},
		{"SELECT 1", "want GRANT or REVOKE"},
		{"GRANT SELECT db.* TO app", "want , between roles"},
		{"GRANT SELECT ON TO app", "want *.*, db.*, db.table or a name after ON"},
		{"GRANT SELECT ON db.* TO", "want TO before the grantees"},
		{"GRANT SELECT ON db.* TO ,", "want a grantee"},
		{"GRANT SELECT ON db.* app", "want TO before the grantees"},
		{"REVOKE SELECT ON db.* TO app", "want FROM before the grantees"},
		{"GRANT SELECT(a) ON db.* TO app", "columns need a table"},
		{"GRANT SELECT ON `db.* TO app", "unterminated `"},
		{"GRANT SELECT ON db.* TO app WITH FOO OPTION", `unknown option WITH "FOO" OPTION`},
		{"GRANT r1 TO app WITH GRANT OPTION", "GRANT OPTION with roles"},
		{"GRANT SELECT ON db.t TO app #", "unexpected '#'"},
	}
	for _, tt := range tests {
		_, err := ParseStatement(tt.line)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.line, err, tt.want)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"app", "`app`"},
		{"a`b", "`a\\`b`"},
		{`a\b`, "`a\\\\b`"},
		{"new\nline\t\x00\x01", "`new\\nline\\t\\0\\x01`"},
		{"ALL", "`ALL`"},
		{"ünï", "`ünï`"},
	} {
		if got := QuoteIdent(tt.in); got != tt.want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzQuoteRoundTrip(f *testing.F) {
	for _, s := range []string{"app", "a`b", `a\b`, "x\ny", "\x00", "`", "``"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" {
			return
		}
		st, err := ParseStatement("REVOKE CREATE ON " + QuoteIdent(name) + "." + QuoteIdent(name) + " FROM " + QuoteIdent(name))
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if st.Grantees[0] != name || st.Grants[0].Scope.Database != name || st.Grants[0].Scope.Table != name {
			t.Fatalf("%q: round trip gave %+v", name, st)
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	for _, s := range []string{"GRANT SELECT(a, b), INSERT ON db.t TO app WITH GRANT OPTION",
		"REVOKE GRANT OPTION FOR ALTER ON db*.* FROM u", "GRANT r1, r2 TO u WITH ADMIN OPTION", "GRANT READ ON URL('x(') TO u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		st, err := ParseStatement(line)
		if err != nil {
			return
		}
		if len(st.Grantees) == 0 {
			t.Fatalf("%q: parsed without grantee", line)
		}
	})
}
