package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
	"github.com/chmedic/chmedic/internal/testenv"
)

// The DDL freeze through the real binary, for scripts: chmedic request
// --action ddl_freeze by one user, chmedic approve by a second user (no
// server runs, so approve --wait executes it), frozen on both 18.16
// replicas, chmedic freezes shows it, ddl_unfreeze the same way, DDL works
// again.
func TestE2EDDLFreezeThroughTheBinary(t *testing.T) {
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{NoAlertmanager: true, PerNodeUsersDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	for _, u := range []testenv.User{{Name: "app", Password: "app-secret", Profile: "app_profile"},
		{Name: "chmedic_ddl_check", Password: "check-secret", Profile: "app_profile", AllowDatabases: []string{"system"}}} {
		if err := e.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range e.ClickHouse {
		os.MkdirAll(e.UsersDDir(c), 0o755)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "admin-pw"), []byte(e.AdminPassword), 0o600)
	os.WriteFile(filepath.Join(dir, "check-pw"), []byte("check-secret"), 0o600)
	cfg := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`store: {path: chmedic.db}
clusters:
  - name: test
    clickhouse:
      nodes: [{name: %s, address: '%s'}, {name: %s, address: '%s'}]
    keeper: {nodes: [{name: zk-1, address: '%s'}]}
    actions:
      clickhouse: {user: %s, password_file: admin-pw}
      ddl_freeze:
        targets: [{user: app, profile: app_profile}]
        path: '%s/{{.Name}}/users.d'
        check_user: {user: chmedic_ddl_check, password_file: check-pw}
approvals:
  policies:
    ddl_freeze: {requesters: ["*"], approvers: [U0ALICE, U0BOB]}
    ddl_unfreeze: {requesters: ["*"], approvers: [U0ALICE, U0BOB]}
`, e.ClickHouse[0].Name, e.ClickHouse[0].Addr(), e.ClickHouse[1].Name, e.ClickHouse[1].Addr(), e.ZooKeeper.Addr, e.AdminUser, e.Dir)), 0o600)

	bin := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, binary, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("chmedic %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	requestAndApprove := func(kind string, params ...string) string {
		args := []string{"request", "--config", cfg, "--cluster", "test", "--action", kind, "--as", "U0ALICE", "--format", "json"}
		for _, p := range params {
			args = append(args, "--param", p)
		}
		var r struct{ ID, State string }
		out := bin(args...)
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.State != "pending" {
			t.Fatalf("request %s: %v\n%s", kind, err, out)
		}
		return bin("approve", "--config", cfg, r.ID, "--as", "U0BOB", "--wait")
	}
	ddl := func(c *testenv.ClickHouse) error {
		n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: "app", Password: "app-secret"}, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		err = n.Exec(ctx, "CREATE TABLE chmedic_test.fz_e2e (x UInt8) ENGINE = Memory")
		if err == nil {
			n.Exec(ctx, "DROP TABLE chmedic_test.fz_e2e")
		}
		return err
	}

	out := requestAndApprove("ddl_freeze", "duration=20m")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("approve --wait:\n%s", out)
	}
	for _, c := range e.ClickHouse {
		if err := ddl(c); clickhouse.ErrorCode(err) != 392 {
			t.Errorf("%s: DDL of a new session during the freeze: %v", c.Name, err)
		}
	}
	var fs []struct {
		Cluster, State, Method string
		Targets                []string
		StartedAt, ExpiresAt   time.Time `json:"-"`
		Started                string    `json:"started_at"`
		Expires                string    `json:"expires_at"`
		Nodes                  []struct{ Name, State string }
	}
	js := bin("freezes", "--config", cfg, "--format", "json")
	if err := json.Unmarshal([]byte(js), &fs); err != nil || len(fs) != 1 {
		t.Fatalf("freezes: %v\n%s", err, js)
	}
	f := fs[0]
	if f.Cluster != "test" || f.State != "active" || f.Method != "profile" || strings.Join(f.Targets, ",") != "user app" || len(f.Nodes) != 2 ||
		f.Nodes[0].State != "frozen" || f.Nodes[1].State != "frozen" || f.Started == "" || f.Expires == "" {
		t.Errorf("freezes json:\n%s", js)
	}
	if text := bin("freezes", "--config", cfg); !strings.Contains(text, "active") || !strings.Contains(text, "ch-1=frozen ch-2=frozen") {
		t.Errorf("freezes text:\n%s", text)
	}

	out = requestAndApprove("ddl_unfreeze")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("unfreeze approve --wait:\n%s", out)
	}
	for _, c := range e.ClickHouse {
		if err := ddl(c); err != nil {
			t.Errorf("%s: DDL after the unfreeze: %v", c.Name, err)
		}
	}
	js = bin("freezes", "--config", cfg, "--format", "json")
	if !strings.Contains(js, `"state": "lifted"`) {
		t.Errorf("freezes after the unfreeze:\n%s", js)
	}
	audit := bin("audit", "--config", cfg)
	for _, w := range []string{"U0ALICE", "U0BOB", "ddl_freeze", "ddl_unfreeze"} {
		if !strings.Contains(audit, w) {
			t.Errorf("audit lacks %q:\n%s", w, audit)
		}
	}
}
