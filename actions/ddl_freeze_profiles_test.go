package actions

import (
	"context"
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
	"github.com/chmedic/chmedic/internal/testenv"
)

// A second application user in a second profile, with its own check user.
const (
	fzBatchUser, fzBatchPassword   = "batch", "batch-secret"
	fzBatchCheck, fzBatchCheckPass = "chmedic_ddl_check_batch", "check-batch-secret"
	fzBatchProfile                 = "batch_profile"
)

var batchUsers sync.Once

func twoProfileEnv(t *testing.T) *testenv.Env {
	t.Helper()
	e := freezeTestEnv(t)
	var err error
	batchUsers.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err = e.AddUser(ctx, testenv.User{Name: fzBatchUser, Password: fzBatchPassword, Profile: fzBatchProfile}); err != nil {
			return
		}
		err = e.AddUser(ctx, testenv.User{Name: fzBatchCheck, Password: fzBatchCheckPass, Profile: fzBatchProfile, AllowDatabases: []string{"system"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// twoProfileConfig freezes app (app_profile) and batch (batch_profile);
// checks is the check users' YAML.
func twoProfileConfig(t *testing.T, e *testenv.Env, checks string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: %s, address: '%s'}
        - {name: %s, address: '%s'}
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CH_ACTIONS_PW}
      ddl_freeze:
        targets: [{user: app, profile: app_profile}, {user: batch, profile: batch_profile}]
        path: '%s/{{.Name}}/users.d'
%s
        statement_timeout: 3s
        verify_timeout: 20s
`, e.ClickHouse[0].Name, e.ClickHouse[0].Addr(), e.ClickHouse[1].Name, e.ClickHouse[1].Addr(), e.ZooKeeper.Addr, e.AdminUser, e.Dir, checks)
	dir := t.TempDir()
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	env := map[string]string{"CH_ACTIONS_PW": e.AdminPassword, "CH_CHECK_PW": fzCheckPassword, "CH_CHECK_BATCH_PW": fzBatchCheckPass}
	cfg, err := config.Parse(path, []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatalf("config:\n%v\n%s", err, src)
	}
	cfg.Store.Path = filepath.Join(dir, "chmedic.db")
	return cfg
}

func batchDDL(ctx context.Context, t *testing.T, c *testenv.ClickHouse) error {
	t.Helper()
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: fzBatchUser, Password: fzBatchPassword}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	table := "chmedic_test.fz_batch_" + strings.ReplaceAll(c.Name, "-", "_")
	err = n.Exec(ctx, "CREATE TABLE "+table+" (x UInt8) ENGINE = Memory")
	if err == nil {
		n.Exec(ctx, "DROP TABLE "+table)
	}
	return err
}

func stepOutput(out Outcome, id string) string {
	for _, s := range out.Steps {
		if s.Step.ID == id {
			return s.Result.Output
		}
	}
	return ""
}

// Two target profiles on the real 18.16 replicas. With a check user per
// profile each profile is verified on each node, in a new session of its
// own check user; with a check user of one profile only, the other is
// reported "written only, not verified" in the plan and the outcome, never
// verified; a check user without a profile cannot tell which of two
// profiles it verifies, so the plan is refused. Before, the check user's
// profile alone was verified and the outcome said "verified" for the node.
func TestIntegrationDDLFreezeTwoProfilesVerifiedPerProfile(t *testing.T) {
	e := twoProfileEnv(t)
	ctx := t.Context()

	t.Run("a check user per profile", func(t *testing.T) {
		cfg := twoProfileConfig(t, e, `        check_user: {user: chmedic_ddl_check, password_env: CH_CHECK_PW, profile: app_profile}
        check_users: [{profile: batch_profile, user: chmedic_ddl_check_batch, password_env: CH_CHECK_BATCH_PW}]`)
		st := openFreezeStore(t, cfg.Store.Path)
		defer st.Close()
		rig := newFreezeRig(t, cfg, st)
		plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "30m"}})
		if out.State != ExecSucceeded {
			t.Fatalf("freeze: %s %s %v", out.State, out.Error, states(out))
		}
		var b strings.Builder
		WritePlan(&b, plan)
		if strings.Contains(b.String(), "not verified") || !strings.Contains(b.String(), "profile batch_profile (chmedic_ddl_check_batch): allow_ddl=1") {
			t.Errorf("plan:\n%s", b.String())
		}
		arm := stepOutput(out, "arm")
		for _, c := range e.ClickHouse {
			for _, want := range []string{
				c.Name + " frozen, verified: profile app_profile (chmedic_ddl_check): allow_ddl=0",
				"profile batch_profile (chmedic_ddl_check_batch): allow_ddl=0",
			} {
				if !strings.Contains(arm, want) {
					t.Errorf("arm output lacks %q: %s", want, arm)
				}
			}
			if err := batchDDL(ctx, t, c); clickhouse.ErrorCode(err) != 392 {
				t.Errorf("%s: batch's DDL during the freeze: %v, want code 392", c.Name, err)
			}
		}
		checkFrozen(ctx, t, e, true)
		_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "test"})
		if out.State != ExecSucceeded {
			t.Fatalf("unfreeze: %s %s %v", out.State, out.Error, states(out))
		}
		if lift := stepOutput(out, "lift"); !strings.Contains(lift, "profile batch_profile (chmedic_ddl_check_batch): allow_ddl=1") || strings.Contains(lift, "not verified") {
			t.Errorf("lift output %s", lift)
		}
		for _, c := range e.ClickHouse {
			if err := batchDDL(ctx, t, c); err != nil {
				t.Errorf("%s: batch's DDL after the unfreeze: %v", c.Name, err)
			}
		}
	})

	t.Run("one profile without a check user", func(t *testing.T) {
		cfg := twoProfileConfig(t, e, `        check_user: {user: chmedic_ddl_check, password_env: CH_CHECK_PW, profile: app_profile}`)
		st := openFreezeStore(t, cfg.Store.Path)
		defer st.Close()
		rig := newFreezeRig(t, cfg, st)
		plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "30m"}})
		if out.State != ExecSucceeded {
			t.Fatalf("freeze: %s %s %v", out.State, out.Error, states(out))
		}
		var b strings.Builder
		WritePlan(&b, plan)
		if !strings.Contains(b.String(), "profile batch_profile: written only, not verified") {
			t.Errorf("the plan does not say batch_profile is not verified:\n%s", b.String())
		}
		arm := stepOutput(out, "arm")
		if strings.Count(arm, "profile batch_profile: written only, not verified") != 2 || strings.Contains(arm, "batch_profile (") {
			t.Errorf("arm output must say batch_profile is written only on each node, never verified: %s", arm)
		}
		if !strings.Contains(arm, "profile app_profile (chmedic_ddl_check): allow_ddl=0") {
			t.Errorf("arm output %s", arm)
		}
		// Written all the same: batch is frozen.
		for _, c := range e.ClickHouse {
			if err := batchDDL(ctx, t, c); clickhouse.ErrorCode(err) != 392 {
				t.Errorf("%s: batch's DDL during the freeze: %v, want code 392", c.Name, err)
			}
		}
		_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "test"})
		if out.State != ExecSucceeded {
			t.Fatalf("unfreeze: %s %s %v", out.State, out.Error, states(out))
		}
		if lift := stepOutput(out, "lift"); strings.Count(lift, "profile batch_profile: removed only, not verified") != 2 {
			t.Errorf("lift output %s", lift)
		}
		checkFrozen(ctx, t, e, false)
	})

	t.Run("a check user without a profile", func(t *testing.T) {
		cfg := twoProfileConfig(t, e, `        check_user: {user: chmedic_ddl_check, password_env: CH_CHECK_PW}`)
		st := openFreezeStore(t, cfg.Store.Path)
		defer st.Close()
		rig := newFreezeRig(t, cfg, st)
		_, err := rig.reg[DDLFreezeKind].Plan(ctx, Request{Cluster: "test", Params: map[string]string{"duration": "30m"}})
		if !IsRefusal(err) || !strings.Contains(err.Error(), "check_user.profile") {
			t.Errorf("plan with an unattributed check user: %v", err)
		}
	})
}
