package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/internal/testenv"
)

// rollConfig is a one-shard cluster of the environment's two real
// replicas whose rolling_restart restarts them through rs.
func rollConfig(t *testing.T, env *testenv.Env, rs *testenv.Restarter) *config.Config {
	t.Helper()
	cmd, _ := json.Marshal(rs.Command())
	a, b := env.ClickHouse[0], env.ClickHouse[1]
	src := fmt.Sprintf(`
clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: %s, address: '%s', shard: 1, replica: %s}
        - {name: %s, address: '%s', shard: 1, replica: %s}
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CH_ACTIONS_PW}
      rolling_restart:
        command: %s
        timeout: 60s
        poll_interval: 200ms
        timeouts: {before: 10s, drain: 10s, up: 30s, tables: 30s, catch_up: 30s}
`, a.Name, a.Addr(), a.Replica, b.Name, b.Addr(), b.Replica, env.ZooKeeper.Addr, env.AdminUser, cmd)
	path := filepath.Join(t.TempDir(), "chmedic.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	cfg, err := config.Parse(path, []byte(src), func(k string) (string, bool) { return env.AdminPassword, k == "CH_ACTIONS_PW" }, nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	return cfg
}

func serverStart(t *testing.T, c *testenv.ClickHouse) int64 {
	t.Helper()
	v, err := c.QueryInt(t.Context(), "SELECT toUInt64(now()) - uptime()")
	if err != nil {
		t.Fatalf("start time of %s: %v", c.Name, err)
	}
	return v
}

// latestRequestMessage is the newest body queued for the request's message.
func latestRequestMessage(t *testing.T, st *store.Store, id string) chslack.Message {
	t.Helper()
	var body []byte
	for i := int64(1); i < 1000; i++ {
		e, err := st.OutboxEntry(context.Background(), i)
		if err != nil {
			break
		}
		if (e.Kind == store.KindReply || e.Kind == store.KindReplyUpdate) && strings.Contains(string(e.Body), id) {
			body = e.Body
		}
	}
	var m chslack.Message
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("no message for request %s: %v", id, err)
	}
	return m
}

func queuedReply(st *store.Store, text string) bool {
	for i := int64(1); i < 1000; i++ {
		e, err := st.OutboxEntry(context.Background(), i)
		if err != nil {
			return false
		}
		if e.Kind == store.KindReply && strings.Contains(string(e.Body), text) {
			return true
		}
	}
	return false
}

// The whole flow on the real replicas: a rolling restart whose first node
// does not come back within the timeout stops there; the thread shows
// where and why with Resume / Abort; the node comes back; chmedic restarts
// (a new store handle, runner and service on the same file); a forged
// Resume click (bad signature) and a stranger's are refused; the
// approver's signed click on the message's Resume button resumes the roll,
// which does not restart the first node again (its start time unchanged
// by the resume) and restarts the second. Before: the roll ended partial,
// its message had no buttons and Resume was refused.
func TestStoppedRollResumedBySignedClickAfterRestart(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is needed by the restart command")
	}
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := env.StartRestarter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close(); env.WaitHealthy(context.Background()) })
	cfg := rollConfig(t, env, rs)
	reg, err := actions.NewRegistry(cfg, actions.Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pols := &config.ApprovalPolicies{RollingRestart: &config.ApprovalPolicy{Requesters: []string{"*"}, Approvers: []string{"UA"}, MinApprovals: 1, ExpireAfter: 15 * time.Minute}}
	path := filepath.Join(t.TempDir(), "chmedic.db")
	open := func(name string) (*store.Store, *Service) {
		st, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		runner := actions.NewRunner(st, reg, actions.RunnerOptions{Holder: name})
		return st, New(Options{Store: st, Policies: pols, TeamID: slackfake.DefaultTeamID, Planner: ActionsPlanner(reg), Executor: runner,
			Leases: nil, Name: name, Poll: 50 * time.Millisecond})
	}
	st, svc := open("server 1")
	if _, err := st.UpsertThreadMessage(ctx, store.Thread{Key: "g1", Channel: "C0INCIDENT", Cluster: "test", Status: "firing", Firing: 1}, []byte(`{"text":"alert"}`)); err != nil {
		t.Fatal(err)
	}
	a, b := env.ClickHouse[0], env.ClickHouse[1]
	r, plan, err := svc.Request(ctx, RequestInput{Kind: actions.RollingRestartKind, Cluster: "test", User: "UREQ", Via: "slack", Channel: "C0INCIDENT", ThreadKey: "g1",
		Params: map[string]string{"wait_healthy": "5s", "require_keeper_healthy": "false"}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Steps[1].Node != a.Name {
		a, b = b, a
	}
	before := map[string]int64{a.Name: serverStart(t, a), b.Name: serverStart(t, b)}
	if _, err := svc.Vote(ctx, VoteInput{RequestID: r.ID, User: "UA", Via: "slack", Channel: "C0INCIDENT", Approve: true}); err != nil {
		t.Fatal(err)
	}
	rs.HoldDown(a.Name, 9*time.Second)
	r, err = svc.Execute(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.ReqStopped {
		t.Fatalf("request %s: %s", r.State, r.Reason)
	}
	for _, w := range []string{`gate "up with a new start time" of ` + a.Name + " failed", "node 1 of 2 (" + a.Name + ") after its restart", "not touched: " + b.Name} {
		if !strings.Contains(r.Reason, w) {
			t.Errorf("reason %q lacks %q", r.Reason, w)
		}
	}
	m := latestRequestMessage(t, st, r.ID)
	if !hasButtons(m) || !strings.Contains(m.Plain+m.Text, "stopped at a failed step") {
		t.Errorf("the thread's request message: buttons %v, %q", hasButtons(m), m.Text)
	}
	if !queuedReply(st, "rolling_restart on test stopped") {
		t.Error("no notice of the stop in the thread")
	}
	t.Logf("stopped: %s", r.Reason)

	// The node comes back; chmedic restarts on the same store.
	rs.Wait()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	back := serverStart(t, a)
	if back < before[a.Name]+2 {
		t.Fatalf("%s did not come back restarted", a.Name)
	}
	st.Close()
	st, svc = open("server 2")
	svc.Step(ctx) // its first pass: a stopped request is not run by itself
	svc.Wait()
	if got, _ := st.ApprovalRequest(ctx, r.ID); got.State != store.ReqStopped {
		t.Fatalf("after the restart: %s", got.State)
	}

	// The request's message, as Slack shows it, holds the Resume button.
	slk := slackfake.New(t, slackfake.Options{})
	m = latestRequestMessage(t, st, r.ID)
	_, ts, err := slk.Client().PostMessage("C0INCIDENT", goslack.MsgOptionBlocks(m.Blocks.BlockSet...))
	if err != nil {
		t.Fatal(err)
	}
	disp := &Dispatcher{Clicks: svc, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	mux.Handle("POST /slack/interactions", (&HTTPHandler{Verifier: NewVerifier(interactionsSecret).WithReplayStore(st), Dispatcher: disp}).Interactions())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	click := func(secret, user string) (int, string) {
		req, err := slk.ClickRequest(srv.URL+"/slack/interactions", secret, slackfake.ClickSpec{Channel: "C0INCIDENT", TS: ts, ActionID: chslack.ActionResume, UserID: user})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		disp.Wait()
		return resp.StatusCode, string(body)
	}
	if code, body := click("not-the-signing-secret", "UA"); code != http.StatusUnauthorized {
		t.Errorf("forged click: %d %s, want 401", code, body)
	}
	if code, _ := click(interactionsSecret, "UZ"); code != http.StatusOK {
		t.Errorf("stranger's click: %d", code)
	}
	if got, _ := st.ApprovalRequest(ctx, r.ID); got.State != store.ReqStopped {
		t.Fatalf("after the forged and the stranger's clicks: %s", got.State)
	}
	if code, _ := click(interactionsSecret, "UA"); code != http.StatusOK {
		t.Fatalf("approver's click: %d", code)
	}
	eph := slk.Ephemerals()
	var texts []string
	for _, e := range eph {
		texts = append(texts, e.User+": "+e.Text)
	}
	all := strings.Join(texts, "\n")
	if !strings.Contains(all, "UZ: ") || !strings.Contains(all, "not an approver") || !strings.Contains(all, "UA: Resuming: chmedic first re-checks") {
		t.Errorf("ephemerals:\n%s", all)
	}
	r, err = svc.Execute(ctx, r.ID)
	if err != nil || r.State != store.ReqSucceeded {
		t.Fatalf("resumed: %s %v: %s", r.State, err, r.Reason)
	}
	if n := rs.Restarts(a.Name); n != 1 {
		t.Errorf("%s restarted %d times", a.Name, n)
	}
	if n := rs.Restarts(b.Name); n != 1 {
		t.Errorf("%s restarted %d times", b.Name, n)
	}
	if now := serverStart(t, a); now-back > 1 || back-now > 1 {
		t.Errorf("the resume changed %s's start time %d → %d", a.Name, back, now)
	}
	if now := serverStart(t, b); now < before[b.Name]+2 {
		t.Errorf("%s not restarted: %d → %d", b.Name, before[b.Name], now)
	}
	es, _ := st.Audit(ctx, time.Time{}, r.ID)
	var evs []string
	for _, e := range es {
		evs = append(evs, e.Event+":"+e.Actor)
	}
	ev := strings.Join(evs, " ")
	for _, w := range []string{"execution_stopped:server 1", "refused:UZ", "resumed:UA", "execution_finished:server 2"} {
		if !strings.Contains(ev, w) {
			t.Errorf("audit lacks %s: %s", w, ev)
		}
	}
}
