package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/app"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

// testActions stands in for the action framework until collect_logs and
// the runner are merged: a planner whose plan lists the cluster's nodes and
// refuses a window of 6h (a gate), and an executor that runs every step.
type testActions struct {
	mu   sync.Mutex
	runs []string
}

func (ta *testActions) Plan(_ context.Context, kind string, req actions.Request) (actions.Plan, error) {
	if req.Params["window"] == "6h" {
		return actions.Plan{}, &actions.Refusal{Reason: "window 6h: system.text_log keeps 1h on this cluster"}
	}
	params, _ := json.Marshal(req.Params)
	p := actions.Plan{Kind: kind, Cluster: req.Cluster, Params: params, Summary: "collect logs of the last " + req.Params["window"] + " before " + req.ReceivedAt.Format(time.RFC3339Nano)}
	for _, n := range []string{"ch-1", "ch-2"} {
		p.Steps = append(p.Steps, actions.Step{ID: n + "/logs", Node: n, Title: "Collect the server log", Command: []string{"cat", "/var/log/clickhouse-server/clickhouse-server.log"}})
	}
	return p, nil
}

func (ta *testActions) Run(_ context.Context, exec actions.Execution, progress func(actions.Progress)) (actions.Outcome, error) {
	ta.mu.Lock()
	ta.runs = append(ta.runs, exec.RequestID)
	ta.mu.Unlock()
	out := actions.Outcome{State: actions.ExecSucceeded}
	for _, st := range exec.Plan.Steps {
		out.Steps = append(out.Steps, actions.StepOutcome{Step: st, State: "done", Result: actions.StepResult{Output: "12 KiB"}})
	}
	return out, nil
}

func (ta *testActions) count() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return len(ta.runs)
}

func withTestActions(t *testing.T) *testActions {
	ta := &testActions{}
	old := app.NewActionRuntime
	app.NewActionRuntime = func(*config.Config, *store.Store, *slog.Logger, app.RuntimeOptions) (*app.ActionRuntime, error) {
		return &app.ActionRuntime{Planner: ta, Executor: ta}, nil
	}
	t.Cleanup(func() { app.NewActionRuntime = old })
	return ta
}

func approvalsConfig(t *testing.T) string {
	dir := t.TempDir()
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(`store: {path: chmedic.db}
clusters:
  - name: prod
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:9000"}, {name: ch-2, address: "127.0.0.1:9001"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2181"}]}
approvals:
  policies:
    collect_logs:
      requesters: ["*"]
      approvers: [U0ALICE, U0BOB]
    rolling_restart:
      requesters: [U0BOB]
      approvers: [U0ALICE]
`), 0o600)
	return path
}

func requestID(t *testing.T, out string) string {
	t.Helper()
	var r struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		PlanHash string `json:"plan_hash"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID == "" || r.State != "pending" || len(r.PlanHash) != 64 {
		t.Fatalf("request output %q: %+v %v", out, r, err)
	}
	return r.ID
}

func TestCLIRequestApproveAudit(t *testing.T) {
	ta := withTestActions(t)
	cfg := approvalsConfig(t)

	code, out, errOut := runCLI(t, "request", "--config", cfg, "--cluster", "prod", "--action", "collect_logs", "--as", "U0ALICE")
	if code != 0 {
		t.Fatalf("request: exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"pending", "plan hash: ", "step 1 ch-1/logs: Collect the server log on ch-1", "params: {\"sources\":\"clickhouse,keeper\",\"window\":\"10m\"}", "approve with: chmedic approve"} {
		if !strings.Contains(out, w) {
			t.Errorf("request output lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = runCLI(t, "request", "--config", cfg, "--cluster", "prod", "--action", "collect_logs", "--param", "window=5m", "--as", "U0ALICE", "--format", "json")
	if code != 0 {
		t.Fatalf("request json: exit %d", code)
	}
	id := requestID(t, out)

	// The requester cannot approve it herself.
	code, _, errOut = runCLI(t, "approve", "--config", cfg, id, "--as", "U0ALICE")
	if code != 1 || !strings.Contains(errOut, "another approver must approve") {
		t.Fatalf("self-approval: exit %d %s", code, errOut)
	}
	// Nor someone the policy does not name.
	code, _, errOut = runCLI(t, "approve", "--config", cfg, id, "--as", "U0MALLORY")
	if code != 1 || !strings.Contains(errOut, "not an approver of collect_logs") {
		t.Fatalf("stranger: exit %d %s", code, errOut)
	}
	// No server runs: the approval executes in this process.
	code, out, errOut = runCLI(t, "approve", "--config", cfg, id, "--as", "U0BOB", "--wait")
	if code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"Approved (1 of 1)", "no chmedic server is running: executing in this process", "request " + id + ": succeeded", "ch-2/logs ch-2: done: 12 KiB"} {
		if !strings.Contains(out, w) {
			t.Errorf("approve output lacks %q:\n%s", w, out)
		}
	}
	if ta.count() != 1 {
		t.Fatalf("%d executions", ta.count())
	}
	// Again: idempotent, nothing runs twice.
	code, out, _ = runCLI(t, "approve", "--config", cfg, id, "--as", "U0BOB")
	if code != 0 || !strings.Contains(out, "You already voted") || ta.count() != 1 {
		t.Fatalf("second approval: exit %d %s (%d runs)", code, out, ta.count())
	}

	code, out, _ = runCLI(t, "requests", "--config", cfg)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "succeeded") || !strings.Contains(out, "U0ALICE (cli)") || !strings.Contains(out, "window=5m") {
		t.Fatalf("requests: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "requests", "--config", cfg, "--state", "pending")
	if code != 0 || strings.Contains(out, id) || strings.Count(out, "pending") != 1 {
		t.Fatalf("requests --state pending: exit %d\n%s", code, out)
	}

	code, out, _ = runCLI(t, "audit", "--config", cfg)
	for _, w := range []string{"requested actor=U0ALICE via=cli request=" + id, "refused actor=U0ALICE via=cli request=" + id, `outcome="self-approval"`, `refused actor=U0MALLORY`,
		"vote_approve actor=U0BOB via=cli", "execution_finished actor=cli ", "nodes=ch-1,ch-2", `outcome="succeeded"`} {
		if !strings.Contains(out, w) {
			t.Errorf("audit lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = runCLI(t, "audit", "--config", cfg, "--format", "json", "--since", "1h")
	var es []store.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &es) != nil || len(es) < 8 {
		t.Fatalf("audit json: exit %d %d entries\n%s", code, len(es), out)
	}
}

func TestCLIRequestRefused(t *testing.T) {
	withTestActions(t)
	cfg := approvalsConfig(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no policy", []string{"--action", "ddl_freeze"}, "No approval policy for ddl_freeze: it cannot be requested"},
		{"not a requester", []string{"--action", "rolling_restart"}, "You are not allowed to request rolling_restart"},
		{"a gate says no", []string{"--action", "collect_logs", "--param", "window=6h"}, "refused: window 6h: system.text_log keeps 1h"},
		{"unknown parameter", []string{"--action", "collect_logs", "--param", "nodes=all"}, `collect_logs: unknown parameter "nodes"`},
		{"unknown cluster", []string{"--action", "collect_logs", "--cluster", "staging"}, `unknown cluster "staging" (configured: prod)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"request", "--config", cfg, "--as", "U0ALICE"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--cluster") {
				args = append(args, "--cluster", "prod")
			}
			code, out, errOut := runCLI(t, args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q\n%s", code, errOut, tc.want, out)
			}
		})
	}
}

func TestCLIReject(t *testing.T) {
	ta := withTestActions(t)
	cfg := approvalsConfig(t)
	_, out, _ := runCLI(t, "request", "--config", cfg, "--cluster", "prod", "--action", "collect_logs", "--as", "U0ALICE", "--format", "json")
	id := requestID(t, out)
	code, out, _ := runCLI(t, "reject", "--config", cfg, id, "--as", "U0BOB")
	if code != 0 || !strings.Contains(out, "Rejected: nothing will run") {
		t.Fatalf("reject: exit %d %s", code, out)
	}
	code, _, errOut := runCLI(t, "approve", "--config", cfg, id, "--as", "U0ALICE")
	if code != 1 || !strings.Contains(errOut, "was rejected") {
		t.Fatalf("approve after reject: exit %d %s", code, errOut)
	}
	if _, out, _ := runCLI(t, "requests", "--config", cfg, "--state", "rejected"); !strings.Contains(out, id) {
		t.Fatalf("requests --state rejected:\n%s", out)
	}
	if ta.count() != 0 {
		t.Fatal("a rejected request ran")
	}
}

// A running server executes what the CLI approves; `approve --wait` waits
// for it and prints the outcome.
func TestCLIApproveWithARunningServer(t *testing.T) {
	ta := withTestActions(t)
	cfgPath := approvalsConfig(t)
	_, out, _ := runCLI(t, "request", "--config", cfgPath, "--cluster", "prod", "--action", "collect_logs", "--as", "U0ALICE", "--format", "json")
	id := requestID(t, out)

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	server := approvals.New(approvals.Options{Store: st, Policies: &cfg.Approvals.Policies, Planner: ta, Executor: ta, Name: "server test:1", Poll: 100 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); server.Run(ctx) }()
	defer func() { stop(); <-done }()
	time.Sleep(200 * time.Millisecond) // its first heartbeat

	code, out, errOut := runCLI(t, "approve", "--config", cfgPath, id, "--as", "U0BOB", "--wait")
	if code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"the running server (server test:1) executes it within a few seconds", "request " + id + ": succeeded"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	e, err := st.ApprovalExecutionOf(context.Background(), id)
	if err != nil || e.Runner != "server test:1" || ta.count() != 1 {
		t.Fatalf("execution %+v %v (%d runs)", e, err, ta.count())
	}
}

// With the real action runtime, a cluster without actions credentials
// cannot be asked for collect_logs: the request is refused at plan time,
// naming the key, and nothing is stored as pending.
func TestCLIRequestWithoutActionsConfig(t *testing.T) {
	cfg := approvalsConfig(t)
	code, _, errOut := runCLI(t, "request", "--config", cfg, "--cluster", "prod", "--action", "collect_logs", "--as", "U0ALICE")
	if code != 1 || !strings.Contains(errOut, "set clusters[prod].actions.clickhouse.user") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, out, _ := runCLI(t, "requests", "--config", cfg, "--state", "pending"); strings.Contains(out, "collect_logs") {
		t.Fatalf("a refused request is pending:\n%s", out)
	}
	code, _, errOut = runCLI(t, "requests", "--config", cfg, "--state", "done")
	if code != 2 || !strings.Contains(errOut, `--state "done": want one of planning, pending`) {
		t.Fatalf("bad state: exit %d %s", code, errOut)
	}
}
