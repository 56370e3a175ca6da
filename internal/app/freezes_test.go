package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/internal/testenv"
)

func freezeEnv(t testing.TB) *testenv.Env {
	t.Helper()
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{NoAlertmanager: true, PerNodeUsersDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.AddUser(ctx, testenv.User{Name: "app", Password: "app-secret", Profile: "app_profile"}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddUser(ctx, testenv.User{Name: "chmedic_ddl_check", Password: "check-secret", Profile: "app_profile", AllowDatabases: []string{"system"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.ClickHouse {
		os.MkdirAll(e.UsersDDir(c), 0o755)
	}
	return e
}

func freezeAppConfig(t testing.TB, e *testenv.Env, dir string) *config.Config {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "admin-pw"), []byte(e.AdminPassword), 0o600)
	os.WriteFile(filepath.Join(dir, "check-pw"), []byte("check-secret"), 0o600)
	src := fmt.Sprintf(`store: {path: chmedic.db}
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
        reminder_before: 5m
        verify_timeout: 20s
approvals:
  policies:
    ddl_freeze: {requesters: ["*"], approvers: [U0ALICE, U0BOB]}
    ddl_unfreeze: {requesters: ["*"], approvers: [U0ALICE, U0BOB]}
`, e.ClickHouse[0].Name, e.ClickHouse[0].Addr(), e.ClickHouse[1].Name, e.ClickHouse[1].Addr(), e.ZooKeeper.Addr, e.AdminUser, e.Dir)
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// chmedicProcess is one start of chmedic's approval flow on the store.
type chmedicProcess struct {
	st    *store.Store
	svc   *approvals.Service
	close func()
}

func startChmedic(t testing.TB, cfg *config.Config, clock *fakeClock) *chmedicProcess {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	svc, closeRT, err := OpenApprovals(ctx, cfg, st, slog.New(slog.DiscardHandler), ApprovalsOptions{Name: ProcessName("server"), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &chmedicProcess{st: st, svc: svc, close: func() { closeRT(); st.Close() }}
}

func newSessionDDL(t *testing.T, c *testenv.ClickHouse) error {
	t.Helper()
	n, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: "app", Password: "app-secret"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = n.Exec(t.Context(), "CREATE TABLE chmedic_test.fz_app_probe (x UInt8) ENGINE = Memory")
	if err == nil {
		n.Exec(t.Context(), "DROP TABLE chmedic_test.fz_app_probe")
	}
	return err
}

// The freeze through the approval flow (requested by one user, approved by
// another), then chmedic stops; it starts again 31 minutes later (a fake
// clock) and lifts the expired freeze by itself: recorded and audited as
// by chmedic, the override removed from both replicas, DDL works again.
// The reminder came first, at 26 minutes, in the same process.
func TestIntegrationFreezeExpiresAfterRestart(t *testing.T) {
	e := freezeEnv(t)
	ctx := t.Context()
	cfg := freezeAppConfig(t, e, t.TempDir())
	clock := &fakeClock{t: time.Now().UTC()}

	p1 := startChmedic(t, cfg, clock)
	r, plan, err := p1.svc.Request(ctx, approvals.RequestInput{Kind: actions.DDLFreezeKind, Cluster: "test", Params: map[string]string{"duration": "30m"}, User: "U0ALICE", Via: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.Method, "profile (detected)") {
		t.Errorf("method %q", plan.Method)
	}
	if _, err := p1.svc.Vote(ctx, approvals.VoteInput{RequestID: r.ID, User: "U0BOB", Via: "cli", Approve: true}); err != nil {
		t.Fatal(err)
	}
	done, err := p1.svc.Execute(ctx, r.ID)
	if err != nil || done.State != store.ReqSucceeded {
		t.Fatalf("freeze: %s %s %v", done.State, done.Reason, err)
	}
	for _, c := range e.ClickHouse {
		if err := newSessionDDL(t, c); clickhouse.ErrorCode(err) != 392 {
			t.Errorf("%s: DDL during the freeze: %v", c.Name, err)
		}
	}
	if items, err := FreezesSource(p1.st).ActiveFreezes(ctx, "test"); err != nil || len(items) != 1 || !strings.Contains(items[0], "active DDL freeze (profile) of user app") || !strings.Contains(items[0], "frozen on 2 of 2 nodes") {
		t.Errorf("digest freezes %q %v", items, err)
	}
	// The reminder, 5 minutes before the expiry.
	k1 := &FreezeKeeper{Store: p1.st, Approvals: p1.svc, Now: clock.Now}
	clock.Set(clock.Now().Add(26 * time.Minute))
	k1.Step(ctx)
	f, ok, _ := p1.st.OpenFreeze(ctx, "test")
	if !ok || f.RemindedAt.IsZero() || f.State != store.FreezeActive {
		t.Fatalf("after the reminder %+v", f)
	}
	p1.close() // chmedic stops

	clock.Set(clock.Now().Add(5 * time.Minute))
	p2 := startChmedic(t, cfg, clock)
	defer p2.close()
	k2 := &FreezeKeeper{Store: p2.st, Approvals: p2.svc, Now: clock.Now}
	k2.Step(ctx)
	f, err = p2.st.Freeze(ctx, f.ID)
	if err != nil || f.State != store.FreezeExpired || f.EndedBy != "chmedic (expiry)" {
		t.Fatalf("after the expiry %+v %v", f, err)
	}
	for _, c := range e.ClickHouse {
		if _, err := os.Stat(filepath.Join(e.UsersDDir(c), "chmedic-ddl-freeze.xml")); !os.IsNotExist(err) {
			t.Errorf("%s: override still there (%v)", c.Name, err)
		}
		if err := newSessionDDL(t, c); err != nil {
			t.Errorf("%s: DDL after the expiry: %v", c.Name, err)
		}
	}
	rs, _ := p2.st.ApprovalRequests(ctx, nil, "", 10)
	var lift store.ApprovalRequest
	for _, x := range rs {
		if x.Kind == actions.DDLUnfreezeKind {
			lift = x
		}
	}
	if lift.RequestedBy != approvals.ChmedicActor || lift.State != store.ReqSucceeded {
		t.Errorf("the lift's request %+v", lift)
	}
	audit, _ := p2.st.Audit(ctx, time.Time{}, "")
	var events []string
	for _, a := range audit {
		if a.Actor == approvals.ChmedicActor && (a.Kind == actions.DDLUnfreezeKind || a.Event == "freeze_reminder") {
			events = append(events, a.Event)
		}
	}
	if got := strings.Join(events, ","); !strings.Contains(got, "freeze_reminder") || !strings.Contains(got, "requested,approved") {
		t.Errorf("audit by chmedic: %s", got)
	}
	// Nothing is done twice.
	k2.Step(ctx)
	rs2, _ := p2.st.ApprovalRequests(ctx, nil, "", 10)
	if len(rs2) != len(rs) {
		t.Errorf("a second step made %d more requests", len(rs2)-len(rs))
	}
	// The digest's list is empty again.
	if items, err := FreezesSource(p2.st).ActiveFreezes(ctx, "test"); err != nil || len(items) != 0 {
		t.Errorf("digest freezes %v %v", items, err)
	}
}

// The keeper's messages in the freeze's thread: a partial freeze gets
// Retry failed nodes / Unfreeze all once, the reminder Extend / Unfreeze
// once, each button an offer the approval flow turns into a request.
func TestFreezeKeeperPartialNoticeAndReminder(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	svc := approvals.New(approvals.Options{Store: st, Now: clock.Now})
	if _, err := st.UpsertThreadMessage(ctx, store.Thread{Key: "t1", Channel: "C0ALERTS", Cluster: "test", Status: "firing", Firing: 1}, []byte(`{"text":"alert"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: actions.DDLFreezeKind, Cluster: "test", ThreadKey: "t1", GroupKey: "g1",
		PlanHash: "h1", RequestedBy: "U0ALICE", RequestedVia: "slack", State: store.ReqPartial}); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	if err := st.CreateFreeze(ctx, store.FreezeRecord{ID: "f1", Cluster: "test", State: store.FreezePartial, Method: "grants", Targets: []string{"user app"},
		PlanHash: "h1", Duration: 30 * time.Minute, StartedAt: now, ExpiresAt: now.Add(30 * time.Minute), ReminderAt: now.Add(25 * time.Minute),
		Nodes: []store.FreezeNode{{Name: "ch-1", State: actions.NodeFrozen}, {Name: "ch-2", State: actions.NodeFailed, Error: "connection refused"}}}); err != nil {
		t.Fatal(err)
	}
	k := &FreezeKeeper{Store: st, Approvals: svc, Now: clock.Now}
	replies := func() []string {
		var out []string
		for id := int64(1); id < 20; id++ {
			e, err := st.OutboxEntry(ctx, id)
			if err == nil && e.Kind == store.KindReply {
				out = append(out, string(e.Body))
			}
		}
		return out
	}
	k.Step(ctx)
	k.Step(ctx)
	rs := replies()
	if len(rs) != 1 || !strings.Contains(rs[0], "Retry failed nodes") || !strings.Contains(rs[0], "Unfreeze all") || !strings.Contains(rs[0], "ch-2: failed") {
		t.Fatalf("after the partial freeze: %q", rs)
	}
	clock.Set(now.Add(26 * time.Minute))
	k.Step(ctx)
	k.Step(ctx)
	rs = replies()
	if len(rs) != 2 || !strings.Contains(rs[1], "Extend 30m") || !strings.Contains(rs[1], "chmedic:ddl_unfreeze:1") {
		t.Fatalf("after the reminder: %q", rs)
	}
	// The buttons carry offers of the thread.
	var msg struct {
		Blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	json.Unmarshal([]byte(rs[1]), &msg)
	kinds := map[string]string{}
	for _, b := range msg.Blocks {
		for _, e := range b.Elements {
			if e.ActionID == "" {
				continue // the context block's text
			}
			o, err := st.ActionRequestByID(ctx, e.Value)
			if err != nil || o.ThreadKey != "t1" || o.State != store.ActionOffered {
				t.Errorf("offer %s: %+v %v", e.Value, o, err)
			}
			kinds[o.Kind] = o.Params["duration"]
		}
	}
	if kinds[actions.DDLFreezeKind] != "30m0s" || len(kinds) != 2 {
		t.Errorf("offers %v", kinds)
	}
}

func TestFreezesCollector(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	st.CreateFreeze(ctx, store.FreezeRecord{ID: "f1", Cluster: "a", State: store.FreezePartial, StartedAt: now, ExpiresAt: now.Add(time.Hour)})
	cfg := &config.Config{Clusters: []config.Cluster{{Name: "a"}, {Name: "b"}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&freezesCollector{st: st, cfg: cfg, desc: prometheus.NewDesc("chmedic_ddl_freezes_open", "h", []string{"cluster", "state"}, nil)})
	want := `# HELP chmedic_ddl_freezes_open h
# TYPE chmedic_ddl_freezes_open gauge
chmedic_ddl_freezes_open{cluster="a",state="active"} 0
chmedic_ddl_freezes_open{cluster="a",state="applying"} 0
chmedic_ddl_freezes_open{cluster="a",state="partial"} 1
chmedic_ddl_freezes_open{cluster="b",state="active"} 0
chmedic_ddl_freezes_open{cluster="b",state="applying"} 0
chmedic_ddl_freezes_open{cluster="b",state="partial"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
