package ddlfreeze

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/grants"
	"github.com/chmedic/chmedic/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func adminConn(t *testing.T, e *testenv.Env, c *testenv.ClickHouse) *NativeConn {
	t.Helper()
	n, err := DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: e.AdminUser, Password: e.AdminPassword}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// On 18.16 there is no SQL access control: detection says profile, with the
// server's own words, and a configured grants method is refused.
func TestIntegrationDetect1816(t *testing.T) {
	e := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, c := range e.ClickHouse {
		n := adminConn(t, e, c)
		d, err := Detect(ctx, n, []grants.Target{app})
		if err != nil {
			t.Fatal(err)
		}
		if d.Method != MethodProfile || !strings.Contains(d.Reason, "ClickHouse 18.16.1 has no SQL access control (SHOW GRANTS: code: 62, message: "+syntaxError1816) {
			t.Errorf("%s: %+v", c.Name, d)
		}
		t.Logf("%s: %s: %s", c.Name, d.Method, d.Reason)
		if err := CheckMethod(MethodGrants, d); err == nil {
			t.Errorf("%s: grants method accepted on 18.16", c.Name)
		}
		// The statements themselves are syntax errors there.
		_, err = ReadSnapshot(ctx, n, app)
		if clickhouse.ErrorCode(err) != CodeSyntaxError {
			t.Errorf("SHOW GRANTS FOR: %v", err)
		}
		if err := n.Exec(ctx, "REVOKE CREATE ON *.* FROM `default`"); clickhouse.ErrorCode(err) != CodeSyntaxError {
			t.Errorf("REVOKE: %v", err)
		}
		if _, err := n.QueryStrings(ctx, "SELECT toString(count()) FROM system.grants"); clickhouse.ErrorCode(err) != clickhouse.CodeUnknownTable {
			t.Errorf("system.grants: %v", err)
		}
	}
}

// Environment variables of the RBAC integration test.
const (
	EnvRBACAddr     = "CHMEDIC_TEST_CLICKHOUSE_RBAC_ADDR"
	EnvRBACUser     = "CHMEDIC_TEST_CLICKHOUSE_RBAC_USER"
	EnvRBACPassword = "CHMEDIC_TEST_CLICKHOUSE_RBAC_PASSWORD"
)

// TestIntegrationGrantsMethodRBAC runs the grants method for real on a
// server with SQL access control (20.4+), when one is given: a throw-away
// user with database-, table- and column-level DDL, a partial revoke and a
// grant option is frozen (it gets ACCESS_DENIED on CREATE TABLE, SELECT
// still works), someone grants it more during the freeze, and the unfreeze
// restores exactly the snapshot plus that grant. The user given must be
// allowed to create users and grant with grant option.
func TestIntegrationGrantsMethodRBAC(t *testing.T) {
	addr := os.Getenv(EnvRBACAddr)
	if addr == "" {
		t.Skipf("skipping: set %s (and %s, %s) to a ClickHouse 20.4+ server to run the grants method for real", EnvRBACAddr, EnvRBACUser, EnvRBACPassword)
	}
	user := os.Getenv(EnvRBACUser)
	if user == "" {
		user = "default"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admin, err := DialNative(clickhouse.NodeConfig{Name: "rbac", Addr: addr, User: user, Password: os.Getenv(EnvRBACPassword)}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "chmedic_it_" + hex.EncodeToString(suffix)
	db := name + "_db"
	password := hex.EncodeToString(suffix) + "-Pw1!"
	target := grants.Target{Kind: grants.User, Name: name}
	q := grants.QuoteIdent
	mustExec := func(stmt string) {
		t.Helper()
		if err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	mustExec("CREATE DATABASE " + q(db))
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = admin.Exec(c, "DROP USER IF EXISTS "+q(name))
		_ = admin.Exec(c, "DROP DATABASE IF EXISTS "+q(db))
	})
	mustExec("CREATE TABLE " + q(db) + ".t (id UInt64, status String) ENGINE = MergeTree ORDER BY id")
	mustExec("CREATE USER " + q(name) + " IDENTIFIED WITH sha256_password BY '" + password + "'")
	mustExec("GRANT SELECT, INSERT ON " + q(db) + ".* TO " + q(name))
	mustExec("GRANT CREATE TABLE, DROP TABLE ON " + q(db) + ".* TO " + q(name) + " WITH GRANT OPTION")
	mustExec("REVOKE DROP TABLE ON " + q(db) + ".t FROM " + q(name))
	mustExec("GRANT ALTER UPDATE(status) ON " + q(db) + ".t TO " + q(name))

	d, err := Detect(ctx, admin, []grants.Target{target})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("detected %s: %s", d.Method, d.Reason)
	if d.Method != MethodGrants {
		t.Fatalf("detection: %+v", d)
	}
	p := grants.DefaultPrivileges()
	before, err := ReadSnapshot(ctx, admin, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before: %q", before.Lines)
	if err := grants.Refuse(before); err != nil {
		t.Fatal(err)
	}
	f, err := Freeze(ctx, admin, before, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("revoke: %s; planned restore %q", f.Revoke, f.Restore)

	// A new session of the target: DDL is denied, SELECT works.
	app, err := DialNative(clickhouse.NodeConfig{Name: "rbac", Addr: addr, User: name, Password: password}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.Exec(ctx, "CREATE TABLE "+q(db)+".new (x UInt8) ENGINE = Memory"); clickhouse.ErrorCode(err) != CodeAccessDenied {
		t.Errorf("CREATE TABLE during the freeze: %v (want code %d)", err, CodeAccessDenied)
	}
	if _, err := app.QueryStrings(ctx, "SELECT toString(count()) FROM "+q(db)+".t"); err != nil {
		t.Errorf("SELECT during the freeze: %v", err)
	}

	// Someone grants more DDL during the freeze: it must survive.
	mustExec("GRANT DROP TABLE ON " + q(db) + ".t TO " + q(name))
	res, err := Unfreeze(ctx, admin, before, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %q; added during the freeze: %v", res.Statements, res.AddedDuringFreeze)
	if len(res.AddedDuringFreeze) != 1 || res.AddedDuringFreeze[0].Privilege != "DROP TABLE" {
		t.Errorf("added during the freeze: %+v", res.AddedDuringFreeze)
	}
	after, err := ReadSnapshot(ctx, admin, target)
	if err != nil {
		t.Fatal(err)
	}
	// Without the concurrent grant the server would print the snapshot
	// again; with it, DROP TABLE now covers db.t too.
	mustExec("REVOKE DROP TABLE ON " + q(db) + ".t FROM " + q(name))
	again, err := ReadSnapshot(ctx, admin, target)
	if err != nil {
		t.Fatal(err)
	}
	a, b := slices.Sorted(slices.Values(again.Lines)), slices.Sorted(slices.Values(before.Lines))
	if !slices.Equal(a, b) {
		t.Errorf("not restored exactly:\n before %q\n after  %q\n (with the concurrent grant: %q)", b, a, after.Lines)
	}
}
