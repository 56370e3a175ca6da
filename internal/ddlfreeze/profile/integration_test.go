package profile

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
	"github.com/chmedic/chmedic/internal/testenv"
)

// The integration tests share one environment whose two ClickHouse 18.16
// replicas each have their own users.d (testenv.Options.PerNodeUsersDir),
// as real nodes do, with an application user app in profile app_profile and
// a check user in the same profile that may only use the system database.
var shared struct {
	once sync.Once
	env  *testenv.Env
	err  error
}

const (
	appUser, appPassword     = "app", "app-secret"
	checkUser, checkPassword = "chmedic_ddl_check", "check-secret"
	appProfile               = "app_profile"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

func env(t *testing.T) *testenv.Env {
	t.Helper()
	testenv.Require(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		e, err := testenv.Start(ctx, testenv.Options{NoAlertmanager: true, PerNodeUsersDir: true})
		if err != nil {
			shared.err = err
			return
		}
		shared.env = e
		if err := e.AddUser(ctx, testenv.User{Name: appUser, Password: appPassword, Profile: appProfile,
			Settings: [][2]string{{"log_queries", "1"}}}); err != nil {
			shared.err = err
			return
		}
		shared.err = e.AddUser(ctx, testenv.User{Name: checkUser, Password: checkPassword, Profile: appProfile,
			AllowDatabases: []string{"system"}})
	})
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.env
}

// appNode is a pool of one native connection as app.
func appNode(t *testing.T, c *testenv.ClickHouse) *ddlfreeze.NativeConn {
	t.Helper()
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: appUser, Password: appPassword, MaxConns: 1}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newSessionDDL opens a new session as app and runs a CREATE TABLE; it
// returns the error (nil: DDL works) and drops the table if it was made.
func newSessionDDL(ctx context.Context, t *testing.T, c *testenv.ClickHouse, table string) error {
	t.Helper()
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: appUser, Password: appPassword, MaxConns: 1}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = n.Exec(ctx, "CREATE TABLE "+table+" (x UInt8) ENGINE = Memory")
	if err == nil {
		if derr := n.Exec(ctx, "DROP TABLE "+table); derr != nil {
			t.Fatalf("drop %s: %v", table, derr)
		}
	}
	return err
}

// waitDDL polls new sessions on c until DDL is prohibited (want 392) or
// works again (want 0), and returns how long it took.
func waitDDL(ctx context.Context, t *testing.T, c *testenv.ClickHouse, wantCode int) time.Duration {
	t.Helper()
	t0 := time.Now()
	table := "chmedic_test.freeze_probe_" + c.Name[len(c.Name)-1:]
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last error
	for {
		last = newSessionDDL(ctx, t, c, table)
		if clickhouse.ErrorCode(last) == wantCode && (wantCode != 0 || last == nil) {
			return time.Since(t0)
		}
		if last != nil && wantCode == 0 && clickhouse.ErrorCode(last) != CodeQueryIsProhibited {
			t.Fatalf("%s: DDL failed for another reason: %v", c.Name, last)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: new sessions still answer %v after %s (want code %d)", c.Name, last, time.Since(t0).Round(time.Millisecond), wantCode)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func checker(c *testenv.ClickHouse) Checker {
	return Checker{Node: clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: checkUser, Password: checkPassword, Database: "system"}, ProbeDDL: true}
}

func TestIntegrationProfileFreezeOnBothReplicas(t *testing.T) {
	e := env(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// A pooled session opened before the freeze, as an application's pool.
	pooled := appNode(t, e.ClickHouse[0])
	out, err := pooled.QueryStrings(ctx, "SELECT version()")
	if err != nil || len(out) != 1 {
		t.Fatal(out, err)
	}
	v, err := clickhouse.ParseVersion(out[0])
	if err != nil {
		t.Fatal(err)
	}
	content, err := Render(Override{FreezeID: "it-1", Profiles: []string{appProfile}, Expires: time.Now().Add(time.Hour), Root: RootFor(v)})
	if err != nil {
		t.Fatal(err)
	}
	var writers []LocalWriter
	for _, c := range e.ClickHouse {
		dir := e.UsersDDir(c)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		w := LocalWriter{Dir: dir}
		writers = append(writers, w)
		t.Cleanup(func() { _ = w.Remove() })
	}
	for _, w := range writers {
		if err := w.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range e.ClickHouse {
		took := waitDDL(ctx, t, c, CodeQueryIsProhibited)
		t.Logf("%s: new sessions get code 392 %s after the override was written", c.Name, took.Round(time.Millisecond))
		// Inserts keep working in a new session of the same user.
		n := appNode(t, c)
		if err := n.Exec(ctx, "INSERT INTO chmedic_test.events SELECT toDate('2024-02-01'), 1000000 + number, 'during freeze' FROM system.numbers LIMIT 1"); err != nil {
			t.Errorf("%s: INSERT during the freeze: %v", c.Name, err)
		}
		st, err := checker(c).Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Frozen() || st.AllowDDL || !st.Changed || st.Probe != "prohibited" {
			t.Errorf("%s: checker %+v", c.Name, st)
		}
		t.Logf("%s: checker: %s", c.Name, st)
	}
	// The session opened before the freeze keeps its settings: it still
	// runs DDL (the plan's caveat).
	rows, err := pooled.QueryStrings(ctx, "SELECT value FROM system.settings WHERE name = 'allow_ddl'")
	if err != nil || len(rows) != 1 || rows[0] != "1" {
		t.Errorf("pooled session's allow_ddl: %v %v", rows, err)
	}
	if err := pooled.Exec(ctx, "CREATE TABLE chmedic_test.pooled_ddl (x UInt8) ENGINE = Memory"); err != nil {
		t.Errorf("the pooled session opened before the freeze could not run DDL: %v", err)
	} else if err := pooled.Exec(ctx, "DROP TABLE chmedic_test.pooled_ddl"); err != nil {
		t.Errorf("drop: %v", err)
	}

	for _, w := range writers {
		if err := w.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range e.ClickHouse {
		took := waitDDL(ctx, t, c, 0)
		t.Logf("%s: DDL works again %s after the override was removed", c.Name, took.Round(time.Millisecond))
		st, err := checker(c).Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Frozen() || !st.AllowDDL || st.Probe != "allowed" {
			t.Errorf("%s: checker after unfreeze %+v", c.Name, st)
		}
	}
}

// Each node reads its own users.d: freezing one leaves the other alone (the
// base of a per-node, possibly partial, freeze).
func TestIntegrationProfileFreezeIsPerNode(t *testing.T) {
	e := env(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	content, err := Render(Override{FreezeID: "it-2", Profiles: []string{appProfile}, Expires: time.Now().Add(time.Hour), Root: RootYandex})
	if err != nil {
		t.Fatal(err)
	}
	dir := e.UsersDDir(e.ClickHouse[0])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := LocalWriter{Dir: dir}
	t.Cleanup(func() { _ = w.Remove() })
	if err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	waitDDL(ctx, t, e.ClickHouse[0], CodeQueryIsProhibited)
	if err := newSessionDDL(ctx, t, e.ClickHouse[1], "chmedic_test.freeze_probe_other"); err != nil {
		t.Errorf("%s was frozen by %s's override: %v", e.ClickHouse[1].Name, e.ClickHouse[0].Name, err)
	}
	st, err := checker(e.ClickHouse[1]).Check(ctx)
	if err != nil || st.Frozen() {
		t.Errorf("%s: %+v %v", e.ClickHouse[1].Name, st, err)
	}
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	waitDDL(ctx, t, e.ClickHouse[0], 0)
}

// The check user can read the setting but touch no database but system.
func TestIntegrationCheckUserIsConfined(t *testing.T) {
	e := env(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := e.ClickHouse[0]
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: checkUser, Password: checkPassword, Database: "system"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, err = n.QueryStrings(ctx, "SELECT toString(count()) FROM chmedic_test.events")
	if err == nil {
		t.Fatal("the check user read chmedic_test.events")
	}
	t.Logf("check user on chmedic_test: %v", clickhouse.Cause(err))
	err = n.Exec(ctx, "CREATE TABLE chmedic_test.by_check_user (x UInt8) ENGINE = Memory")
	if err == nil {
		t.Fatal("the check user created a table")
	}
}
