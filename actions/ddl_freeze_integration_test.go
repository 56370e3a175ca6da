package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/internal/testenv"
)

// The DDL freeze runs for real on an environment of its own whose two
// ClickHouse 18.16 replicas each read their own users.d (as real nodes do),
// with an application user app in profile app_profile and a check user
// chmedic_ddl_check in the same profile, confined to the system database.
var freezeEnv struct {
	once sync.Once
	env  *testenv.Env
	err  error
}

const (
	fzAppUser, fzAppPassword     = "app", "app-secret"
	fzCheckUser, fzCheckPassword = "chmedic_ddl_check", "check-secret"
	fzProfile                    = "app_profile"
)

func closeFreezeEnv() {
	if freezeEnv.env != nil {
		if err := freezeEnv.env.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// FreezeTestEnv starts (once per package) the environment of the DDL freeze
// tests.
func freezeTestEnv(t testing.TB) *testenv.Env {
	t.Helper()
	testenv.Require(t)
	freezeEnv.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		e, err := testenv.Start(ctx, testenv.Options{NoAlertmanager: true, PerNodeUsersDir: true})
		if err != nil {
			freezeEnv.err = err
			return
		}
		freezeEnv.env = e
		if err := e.AddUser(ctx, testenv.User{Name: fzAppUser, Password: fzAppPassword, Profile: fzProfile}); err != nil {
			freezeEnv.err = err
			return
		}
		if err := e.AddUser(ctx, testenv.User{Name: fzCheckUser, Password: fzCheckPassword, Profile: fzProfile, AllowDatabases: []string{"system"}}); err != nil {
			freezeEnv.err = err
			return
		}
		for _, c := range e.ClickHouse {
			if err := os.MkdirAll(e.UsersDDir(c), 0o755); err != nil {
				freezeEnv.err = err
				return
			}
		}
	})
	if freezeEnv.err != nil {
		t.Fatalf("testenv: %v", freezeEnv.err)
	}
	return freezeEnv.env
}

// freezeConfig is a cluster of the environment's replicas (and extra
// nodes) with the profile method delivered to each node's users.d.
func freezeConfig(t testing.TB, e *testenv.Env, extra string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: %s, address: '%s'}
        - {name: %s, address: '%s'}
%s
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CH_ACTIONS_PW}
      ddl_freeze:
        targets: [{user: app, profile: app_profile}]
        path: '%s/{{.Name}}/users.d'
        check_user: {user: chmedic_ddl_check, password_env: CH_CHECK_PW}
        statement_timeout: 3s
        verify_timeout: 20s
        reminder_before: 5m
`, e.ClickHouse[0].Name, e.ClickHouse[0].Addr(), e.ClickHouse[1].Name, e.ClickHouse[1].Addr(), extra, e.ZooKeeper.Addr, e.AdminUser, e.Dir)
	dir := t.TempDir()
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	env := map[string]string{"CH_ACTIONS_PW": e.AdminPassword, "CH_CHECK_PW": fzCheckPassword}
	cfg, err := config.Parse(path, []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatalf("config:\n%v\n%s", err, src)
	}
	cfg.Store.Path = filepath.Join(dir, "chmedic.db")
	return cfg
}

// freezeRig is a registry and a runner over a real store.
type freezeRig struct {
	cfg    *config.Config
	st     *store.Store
	reg    Registry
	runner *Runner
}

func newFreezeRig(t testing.TB, cfg *config.Config, st *store.Store) *freezeRig {
	t.Helper()
	reg, err := NewRegistry(cfg, Deps{DataDir: filepath.Dir(cfg.Store.Path), Freezes: st})
	if err != nil {
		t.Fatal(err)
	}
	return &freezeRig{cfg: cfg, st: st, reg: reg, runner: NewRunner(st, reg, RunnerOptions{})}
}

func openFreezeStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// run plans kind and runs it through the Runner.
func (r *freezeRig) run(t testing.TB, kind string, req Request) (Plan, Outcome) {
	t.Helper()
	ctx := context.Background()
	plan, err := r.reg[kind].Plan(ctx, req)
	if err != nil {
		t.Fatalf("%s plan: %v", kind, err)
	}
	again, err := r.reg[kind].Plan(ctx, req)
	if err != nil || again.Hash() != plan.Hash() {
		t.Fatalf("%s: re-planning changed the hash (%v)", kind, err)
	}
	data, _ := jsonMarshal(plan)
	id, _, err := r.st.CreateExecution(ctx, store.ExecutionRecord{Cluster: plan.Cluster, Kind: plan.Kind, Plan: data, PlanHash: plan.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.runner.Run(ctx, Execution{ID: id, Plan: plan}, nil)
	if err != nil {
		t.Fatalf("%s run: %v", kind, err)
	}
	return plan, out
}

// newSessionDDL runs CREATE TABLE in a new session of app on c.
func newSessionDDL(ctx context.Context, t testing.TB, c *testenv.ClickHouse, table string) error {
	t.Helper()
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: fzAppUser, Password: fzAppPassword}, 10*time.Second)
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

func newSessionInsert(ctx context.Context, t testing.TB, c *testenv.ClickHouse) error {
	t.Helper()
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: fzAppUser, Password: fzAppPassword}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	return n.Exec(ctx, "INSERT INTO chmedic_test.events SELECT toDate('2024-02-01'), 2000000 + number, 'during freeze' FROM system.numbers LIMIT 1")
}

// checkFrozen says whether new sessions of app get 392 on every node of
// the environment (want true) or can run DDL (want false).
func checkFrozen(ctx context.Context, t testing.TB, e *testenv.Env, want bool) {
	t.Helper()
	for _, c := range e.ClickHouse {
		err := newSessionDDL(ctx, t, c, "chmedic_test.fz_probe_"+strings.ReplaceAll(c.Name, "-", "_"))
		switch {
		case want && clickhouse.ErrorCode(err) != 392:
			t.Errorf("%s: DDL of a new session during the freeze: %v, want code 392", c.Name, err)
		case !want && err != nil:
			t.Errorf("%s: DDL after the unfreeze: %v", c.Name, err)
		}
		if want {
			if err := newSessionInsert(ctx, t, c); err != nil {
				t.Errorf("%s: INSERT during the freeze: %v", c.Name, err)
			}
		}
	}
}

func TestIntegrationDDLFreezeProfileOnBothReplicas(t *testing.T) {
	e := freezeTestEnv(t)
	ctx := t.Context()
	cfg := freezeConfig(t, e, "")
	st := openFreezeStore(t, cfg.Store.Path)
	defer st.Close()
	rig := newFreezeRig(t, cfg, st)

	plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "30m"}, RequestedBy: "cli:alice"})
	var b strings.Builder
	WritePlan(&b, plan)
	t.Logf("plan:\n%s", b.String())
	for _, want := range []string{"profile (detected)", "18.16", "<allow_ddl>0</allow_ddl>", "<app_profile>", "Sessions opened before the freeze keep", "no DDL running", "users.d/chmedic-ddl-freeze.xml"} {
		if !strings.Contains(b.String()+string(plan.Details), want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if out.State != ExecSucceeded {
		t.Fatalf("freeze: %s %s %v", out.State, out.Error, states(out))
	}
	f, ok, err := st.OpenFreeze(ctx, "test")
	if err != nil || !ok || f.State != store.FreezeActive || len(f.Nodes) != 2 {
		t.Fatalf("freeze record %+v %v %v", f, ok, err)
	}
	for _, n := range f.Nodes {
		if n.State != NodeFrozen || len(n.Snapshot) == 0 || !strings.Contains(string(n.Snapshot), `"file":"absent"`) {
			t.Errorf("node %+v", n)
		}
	}
	if d := f.ExpiresAt.Sub(time.Now()); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("expires in %s", d)
	}
	checkFrozen(ctx, t, e, true)

	_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "test", RequestedBy: "cli:bob"})
	if out.State != ExecSucceeded {
		t.Fatalf("unfreeze: %s %s %v", out.State, out.Error, states(out))
	}
	f, _ = st.Freeze(ctx, f.ID)
	if f.State != store.FreezeLifted || f.EndedAt.IsZero() {
		t.Errorf("after unfreeze %+v", f)
	}
	checkFrozen(ctx, t, e, false)
	for _, c := range e.ClickHouse {
		if _, err := os.Stat(filepath.Join(e.UsersDDir(c), "chmedic-ddl-freeze.xml")); !os.IsNotExist(err) {
			t.Errorf("%s: override still there: %v", c.Name, err)
		}
	}
	// Nothing open: a second unfreeze is refused at plan time.
	if _, err := rig.reg[DDLUnfreezeKind].Plan(ctx, Request{Cluster: "test"}); !IsRefusal(err) {
		t.Errorf("unfreeze with nothing frozen: %v", err)
	}
}

// One node that does not answer: the others are frozen, the freeze is
// partial, reported per node; the unfreeze lifts what was frozen.
func TestIntegrationDDLFreezeOneNodeUnreachableIsPartial(t *testing.T) {
	e := freezeTestEnv(t)
	ctx := t.Context()
	cfg := freezeConfig(t, e, fmt.Sprintf("        - {name: ch-dead, address: '%s'}", closedPort(t)))
	st := openFreezeStore(t, cfg.Store.Path)
	defer st.Close()
	rig := newFreezeRig(t, cfg, st)

	_, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "10m"}})
	if out.State != ExecPartial || !strings.Contains(out.Error, "ch-dead failed") {
		t.Fatalf("freeze: %s %q %v", out.State, out.Error, states(out))
	}
	f, ok, _ := st.OpenFreeze(ctx, "test")
	if !ok || f.State != store.FreezePartial {
		t.Fatalf("record %+v", f)
	}
	got := map[string]string{}
	for _, n := range f.Nodes {
		got[n.Name] = n.State
	}
	if got["ch-1"] != NodeFrozen || got["ch-2"] != NodeFrozen || got["ch-dead"] != NodeFailed {
		t.Errorf("node states %v", got)
	}
	checkFrozen(ctx, t, e, true)

	_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "test"})
	if out.State != ExecSucceeded {
		t.Fatalf("unfreeze: %s %s %v", out.State, out.Error, states(out))
	}
	checkFrozen(ctx, t, e, false)
}

// A restart of chmedic between the freeze and the unfreeze loses nothing:
// the freeze and its snapshots are in the store.
func TestIntegrationDDLFreezeSurvivesRestart(t *testing.T) {
	e := freezeTestEnv(t)
	ctx := t.Context()
	cfg := freezeConfig(t, e, "")
	cfg.Clusters[0].Actions.DDLFreeze.KillRunningDDL = true
	st := openFreezeStore(t, cfg.Store.Path)
	rig := newFreezeRig(t, cfg, st)
	_, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "1h"}})
	if out.State != ExecSucceeded {
		t.Fatalf("freeze: %s %s", out.State, out.Error)
	}
	// kill_running_ddl: a step per node, accepted by 18.16.
	kills := 0
	for _, s := range out.Steps {
		if strings.HasSuffix(s.Step.ID, "/kill_ddl") {
			kills++
			if s.Result.Output != "KILL QUERY sent" {
				t.Errorf("%s: %q", s.Step.ID, s.Result.Output)
			}
		}
	}
	if kills != 2 {
		t.Errorf("%d kill steps: %v", kills, states(out))
	}
	st.Close()

	st2 := openFreezeStore(t, cfg.Store.Path)
	defer st2.Close()
	rig2 := newFreezeRig(t, cfg, st2)
	plan, out := rig2.run(t, DDLUnfreezeKind, Request{Cluster: "test"})
	if out.State != ExecSucceeded {
		t.Fatalf("unfreeze after a restart: %s %s %v", out.State, out.Error, states(out))
	}
	if !strings.Contains(plan.Summary, "Lift the DDL freeze") {
		t.Errorf("summary %q", plan.Summary)
	}
	checkFrozen(ctx, t, e, false)
}

// On 18.16 a configured grants method is refused at plan time with the
// server's own words, and nothing is recorded.
func TestIntegrationDDLFreezeGrantsRefusedOn1816(t *testing.T) {
	e := freezeTestEnv(t)
	ctx := t.Context()
	cfg := freezeConfig(t, e, "")
	cfg.Clusters[0].Actions.DDLFreeze.Method = config.FreezeGrants
	st := openFreezeStore(t, cfg.Store.Path)
	defer st.Close()
	rig := newFreezeRig(t, cfg, st)
	_, err := rig.reg[DDLFreezeKind].Plan(ctx, Request{Cluster: "test", Params: map[string]string{"duration": "10m"}})
	if !IsRefusal(err) || !strings.Contains(err.Error(), "method grants is configured") || !strings.Contains(err.Error(), "has no SQL access control") {
		t.Fatalf("plan: %v", err)
	}
	if _, ok, _ := st.OpenFreeze(ctx, "test"); ok {
		t.Error("a refused plan recorded a freeze")
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// TestIntegrationDDLFreezeGrantsRBAC runs ddl_freeze and ddl_unfreeze with
// the grants method through the action on a real server with SQL access
// control (20.4+), when CHMEDIC_TEST_CLICKHOUSE_RBAC_ADDR (and _USER,
// _PASSWORD: a user that may create users and grant with grant option) is
// set; skipped otherwise (the Debian ClickHouse is 18.16).
func TestIntegrationDDLFreezeGrantsRBAC(t *testing.T) {
	addr := os.Getenv("CHMEDIC_TEST_CLICKHOUSE_RBAC_ADDR")
	if addr == "" {
		t.Skip("skipping: set CHMEDIC_TEST_CLICKHOUSE_RBAC_ADDR (and CHMEDIC_TEST_CLICKHOUSE_RBAC_USER, CHMEDIC_TEST_CLICKHOUSE_RBAC_PASSWORD) to a ClickHouse 20.4+ server to run the grants method for real")
	}
	user := os.Getenv("CHMEDIC_TEST_CLICKHOUSE_RBAC_USER")
	if user == "" {
		user = "default"
	}
	password := os.Getenv("CHMEDIC_TEST_CLICKHOUSE_RBAC_PASSWORD")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	admin, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: "rbac", Addr: addr, User: user, Password: password}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("chmedic_it_%d", time.Now().UnixNano()%1e9)
	db, appPW := name+"_db", "Pw-"+name
	mustExec := func(stmt string) {
		t.Helper()
		if err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	mustExec("CREATE DATABASE `" + db + "`")
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = admin.Exec(c, "DROP USER IF EXISTS `"+name+"`")
		_ = admin.Exec(c, "DROP DATABASE IF EXISTS `"+db+"`")
	})
	mustExec("CREATE USER `" + name + "` IDENTIFIED WITH sha256_password BY '" + appPW + "'")
	mustExec("GRANT SELECT, INSERT ON `" + db + "`.* TO `" + name + "`")
	mustExec("GRANT CREATE TABLE, DROP TABLE ON `" + db + "`.* TO `" + name + "` WITH GRANT OPTION")
	before, err := admin.QueryStrings(ctx, "SHOW GRANTS FOR `"+name+"`")
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
clusters:
  - name: rbac
    clickhouse: {nodes: [{name: rbac-1, address: '%s'}]}
    keeper: {nodes: [{name: zk-1, address: '127.0.0.1:2181'}]}
    actions:
      clickhouse: {user: %s, password_env: PW}
      ddl_freeze: {method: grants, targets: [{user: %s}]}
`, addr, user, name)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	cfg, err := config.Parse(path, []byte(src), func(k string) (string, bool) { return password, k == "PW" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.Path = filepath.Join(dir, "s.db")
	st := openFreezeStore(t, cfg.Store.Path)
	defer st.Close()
	rig := newFreezeRig(t, cfg, st)
	_, out := rig.run(t, DDLFreezeKind, Request{Cluster: "rbac", Params: map[string]string{"duration": "10m"}})
	if out.State != ExecSucceeded {
		t.Fatalf("freeze: %s %s %v", out.State, out.Error, states(out))
	}
	app, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: "rbac", Addr: addr, User: name, Password: appPW}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.Exec(ctx, "CREATE TABLE `"+db+"`.new (x UInt8) ENGINE = Memory"); clickhouse.ErrorCode(err) != ddlfreeze.CodeAccessDenied {
		t.Errorf("CREATE TABLE during the freeze: %v", err)
	}
	_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "rbac"})
	if out.State != ExecSucceeded {
		t.Fatalf("unfreeze: %s %s %v", out.State, out.Error, states(out))
	}
	after, _ := admin.QueryStrings(ctx, "SHOW GRANTS FOR `"+name+"`")
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("not restored exactly:\n before %q\n after  %q", before, after)
	}
}

// The profile method delivered by the command mechanism (argv templates
// run without a shell by chmedic; the file on standard input), for real
// on both replicas.
func TestIntegrationDDLFreezeProfileByCommand(t *testing.T) {
	e := freezeTestEnv(t)
	ctx := t.Context()
	cfg := freezeConfig(t, e, "")
	f := &cfg.Clusters[0].Actions.DDLFreeze
	f.Path = ""
	f.Command.Dir = e.Dir + "/{{.Name}}/users.d"
	f.Command.Write = []string{"sh", "-c", `cat > "$0.tmp" && chmod 644 "$0.tmp" && mv "$0.tmp" "$0"`, "{{.Path}}"}
	f.Command.Remove = []string{"rm", "-f", "{{.Path}}"}
	st := openFreezeStore(t, cfg.Store.Path)
	defer st.Close()
	rig := newFreezeRig(t, cfg, st)
	plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "10m"}})
	if out.State != ExecSucceeded {
		t.Fatalf("freeze: %s %s %v", out.State, out.Error, states(out))
	}
	for _, s := range plan.Steps {
		if s.ID == "ch-2/freeze" && (len(s.Command) != 4 || s.Command[3] != e.Dir+"/ch-2/users.d/chmedic-ddl-freeze.xml") {
			t.Errorf("planned command %q", s.Command)
		}
	}
	checkFrozen(ctx, t, e, true)
	_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "test"})
	if out.State != ExecSucceeded {
		t.Fatalf("unfreeze: %s %s %v", out.State, out.Error, states(out))
	}
	checkFrozen(ctx, t, e, false)
}
