package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

// stubActions plans one step per configured node and runs them all.
type stubActions struct {
	mu   sync.Mutex
	runs int
}

func (s *stubActions) Plan(_ context.Context, kind string, req actions.Request) (actions.Plan, error) {
	params, _ := json.Marshal(req.Params)
	return actions.Plan{Kind: kind, Cluster: req.Cluster, Params: params, Summary: "collect logs on ch-1",
		Steps: []actions.Step{{ID: "ch-1/logs", Node: "ch-1", Title: "Collect the server log", Command: []string{"cat", "server.log"}}}}, nil
}

func (s *stubActions) Run(_ context.Context, exec actions.Execution, progress func(actions.Progress)) (actions.Outcome, error) {
	s.mu.Lock()
	s.runs++
	s.mu.Unlock()
	st := exec.Plan.Steps[0]
	progress(actions.Progress{Index: 0, Total: 1, Step: st, State: "running"})
	return actions.Outcome{State: actions.ExecSucceeded, Steps: []actions.StepOutcome{{Step: st, State: "done", Result: actions.StepResult{Output: "3 KiB"}}}}, nil
}

// The runtime's wiring, in-process with the Slack fake: the alert's button
// → the plan in the thread → an approval by a second user → the stored
// plan runs → the request message and the alert message show it.
func TestApprovalFlowInTheRuntime(t *testing.T) {
	stub := &stubActions{}
	old := NewActionRuntime
	NewActionRuntime = func(*config.Config, *store.Store, *slog.Logger, RuntimeOptions) (*ActionRuntime, error) {
		return &ActionRuntime{Planner: stub, Executor: stub}, nil
	}
	t.Cleanup(func() { NewActionRuntime = old })

	slk := slackfake.New(t, slackfake.Options{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "slack-token"), []byte(slackfake.DefaultToken), 0o600)
	os.WriteFile(filepath.Join(dir, "chmedic.yaml"), []byte(`store: {path: chmedic.db}
diagnosis: {probe_timeout: 200ms, budget: 500ms}
clusters:
  - name: test
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:1"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:1"}]}
slack:
  bot_token_file: slack-token
  channel: C0CHMEDIC1
  api_url: `+slk.URL()+`
approvals:
  policies:
    collect_logs:
      requesters: ["*"]
      approvers: [U0BOB]
`), 0o600)
	cfg, err := config.Load(filepath.Join(dir, "chmedic.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for a.Addr() == "" {
		time.Sleep(5 * time.Millisecond)
	}

	body := `{"version":"4","groupKey":"g-approvals","status":"firing","receiver":"chmedic",
"alerts":[{"status":"firing","labels":{"alertname":"SomethingOdd"},"startsAt":"2026-11-23T03:00:00Z","fingerprint":"f1"}],
"groupLabels":{"alertname":"SomethingOdd"},"commonLabels":{"alertname":"SomethingOdd"},"commonAnnotations":{},"externalURL":"http://am"}`
	resp, err := http.Post("http://"+a.Addr()+"/webhook", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var top slackfake.Message
	slk.WaitFor(t, func() bool {
		ms := slk.Messages("C0CHMEDIC1")
		if len(ms) > 0 {
			top = ms[0]
		}
		return len(ms) > 0
	}, 20*time.Second)
	offer := buttonValue(t, top.Blocks, "chmedic:collect_logs:0")

	click := func(user, action, value string) string {
		t.Helper()
		r, err := a.Approvals.HandleClick(context.Background(), approvals.Click{TeamID: slackfake.DefaultTeamID, UserID: user, ChannelID: top.Channel,
			MessageTS: top.TS, ActionID: action, Value: value, ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return r.Ephemeral
	}
	if r := click("U0ALICE", "chmedic:collect_logs:0", offer); !strings.Contains(r, "computing the plan") {
		t.Fatalf("request: %q", r)
	}
	// From another workspace: refused, audited.
	r, _ := a.Approvals.HandleClick(context.Background(), approvals.Click{TeamID: "T0EVIL", UserID: "U0BOB", ActionID: "chmedic:collect_logs:0", Value: offer})
	if !strings.Contains(r.Ephemeral, "another Slack workspace") {
		t.Fatalf("other team: %q", r.Ephemeral)
	}

	var reply slackfake.Message
	waitReply := func(want string) {
		t.Helper()
		slk.WaitFor(t, func() bool {
			for _, m := range slk.Replies(top.Channel, top.TS) {
				if strings.Contains(m.Text, "collect_logs on test") {
					reply = m
					return strings.Contains(m.Text, want)
				}
			}
			return false
		}, 20*time.Second)
	}
	waitReply("awaiting approval (0 of 1)")
	id := buttonValue(t, reply.Blocks, chslack.ActionApprove)
	if r := click("U0BOB", chslack.ActionApprove, id); !strings.Contains(r, "Approved (1 of 1)") {
		t.Fatalf("approve: %q", r)
	}
	waitReply("done: succeeded")
	if !strings.Contains(string(reply.Blocks), "3 KiB") {
		t.Errorf("result: %s", reply.Blocks)
	}
	slk.WaitFor(t, func() bool {
		m, _ := slk.Message(top.Channel, top.TS)
		return strings.Contains(string(m.Blocks), "done: succeeded")
	}, 20*time.Second)
	if stub.runs != 1 {
		t.Fatalf("%d runs", stub.runs)
	}
	if n := len(slk.Replies(top.Channel, top.TS)); n != 1 {
		t.Errorf("%d replies: the request's message is updated in place", n)
	}
	mresp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(metrics), `chmedic_approval_requests{state="pending"} 0`) {
		t.Errorf("metrics lack chmedic_approval_requests")
	}
	es, _ := a.Store.Audit(context.Background(), time.Time{}, "")
	var evs []string
	for _, e := range es {
		evs = append(evs, e.Event)
	}
	// The plan is computed in the background while the other workspace's
	// click is refused: those two are audited in either order.
	got := strings.Join(evs, " ")
	if !strings.Contains(got, "requested refused planned vote_approve approved execution_started execution_finished") &&
		!strings.Contains(got, "requested planned refused vote_approve approved execution_started execution_finished") {
		t.Errorf("audit: %s", got)
	}
}

func buttonValue(t *testing.T, blocks json.RawMessage, actionID string) string {
	t.Helper()
	var bs []map[string]any
	json.Unmarshal(blocks, &bs)
	for _, b := range bs {
		els, _ := b["elements"].([]any)
		for _, el := range els {
			e, _ := el.(map[string]any)
			if e["action_id"] == actionID {
				return e["value"].(string)
			}
		}
	}
	t.Fatalf("no button %s in %s", actionID, blocks)
	return ""
}
