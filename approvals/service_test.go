package approvals

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

// fakePlanner computes a plan from the nodes it is told the cluster has.
type fakePlanner struct {
	mu    sync.Mutex
	nodes []string
	err   error
	calls int
}

func (p *fakePlanner) Plan(_ context.Context, kind string, req actions.Request) (actions.Plan, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return actions.Plan{}, p.err
	}
	params, _ := json.Marshal(req.Params)
	plan := actions.Plan{Kind: kind, Cluster: req.Cluster, Params: params, Summary: "collect logs from " + strings.Join(p.nodes, ", "), ComputedAt: time.Now()}
	for _, n := range p.nodes {
		plan.Steps = append(plan.Steps, actions.Step{ID: n + "/logs", Node: n, Title: "Collect the server log", Command: []string{"ssh", n, "cat", "/var/log/clickhouse-server.log"}})
	}
	return plan, nil
}

func (p *fakePlanner) set(nodes ...string) {
	p.mu.Lock()
	p.nodes = nodes
	p.mu.Unlock()
}

// fakeExecutor records its runs; block, when set, holds a run until the
// context ends (a crash or a stop in the middle of a step).
type fakeExecutor struct {
	mu      sync.Mutex
	runs    []actions.Execution
	block   bool
	started chan struct{}
}

func (e *fakeExecutor) Run(ctx context.Context, exec actions.Execution, progress func(actions.Progress)) (actions.Outcome, error) {
	e.mu.Lock()
	e.runs = append(e.runs, exec)
	block := e.block
	e.mu.Unlock()
	out := actions.Outcome{State: actions.ExecSucceeded}
	for i, st := range exec.Plan.Steps {
		progress(actions.Progress{Index: i, Total: len(exec.Plan.Steps), Step: st, State: "running"})
		if block && i == 1 {
			if e.started != nil {
				close(e.started)
			}
			<-ctx.Done()
			return actions.Outcome{State: actions.ExecInterrupted}, ctx.Err()
		}
		out.Steps = append(out.Steps, actions.StepOutcome{Step: st, State: "done", Result: actions.StepResult{Output: "1 MiB from " + st.Node}})
		progress(actions.Progress{Index: i, Total: len(exec.Plan.Steps), Step: st, State: "done", Output: "1 MiB"})
	}
	return out, nil
}

func (e *fakeExecutor) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.runs)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t       *testing.T
	path    string
	st      *store.Store
	clock   *clock
	planner *fakePlanner
	exec    *fakeExecutor
	svc     *Service
	pols    *config.ApprovalPolicies
	offer   string
}

const team = "T0TEAM"

func newHarness(t *testing.T, pol *config.ApprovalPolicy) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "a.db"), clock: &clock{t: t0}, planner: &fakePlanner{nodes: []string{"ch-1", "ch-2"}},
		exec: &fakeExecutor{}, pols: &config.ApprovalPolicies{CollectLogs: pol}}
	h.open("server 1")
	ctx := context.Background()
	// The alert's message and its offered action, as the incident processor leaves them.
	if _, err := h.st.UpsertThreadMessage(ctx, store.Thread{Key: "g1", Channel: "C0ALERTS", Cluster: "prod", Status: "firing", Firing: 1}, []byte(`{"text":"alert"}`)); err != nil {
		t.Fatal(err)
	}
	id, err := h.st.OfferAction(ctx, store.ActionRequest{OfferKey: "n1/0", Kind: "collect_logs", Params: map[string]string{"window": "10m"}, Cluster: "prod", GroupKey: "g1", ThreadKey: "g1", AlertStart: t0})
	if err != nil {
		t.Fatal(err)
	}
	h.offer = id
	rep := &report.Report{Title: "ClickHouseReadonlyReplica", Status: "firing", Cluster: "prod", GroupKey: "g1", Firing: 1,
		Actions: []report.Action{{Kind: "collect_logs", Label: "Collect logs", RequestID: id}}, GeneratedAt: t0}
	if _, err := h.svc.SaveAndRender(ctx, "g1", rep); err != nil {
		t.Fatal(err)
	}
	return h
}

// open (re)opens the store and builds a service on it: a restart.
func (h *harness) open(name string) {
	if h.st != nil {
		h.st.Close()
	}
	st, err := store.Open(context.Background(), h.path, store.WithClock(h.clock.now))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	h.st = st
	h.svc = h.service(name)
}

func (h *harness) service(name string) *Service {
	return New(Options{Store: h.st, Policies: h.pols, TeamID: team, Groups: groups{"SSRE": {"UB"}}, Planner: h.planner, Executor: h.exec,
		Name: name, Now: h.clock.now, Poll: 50 * time.Millisecond})
}

func (h *harness) click(user, action, value string) Reply {
	h.t.Helper()
	r, err := h.svc.HandleClick(context.Background(), Click{TeamID: team, UserID: user, ChannelID: "C0ALERTS", ActionID: action, Value: value, ReceivedAt: h.clock.now()})
	if err != nil {
		h.t.Fatalf("click %s by %s: %v", action, user, err)
	}
	return r
}

func (h *harness) step() {
	h.svc.Step(context.Background())
	h.svc.Wait()
}

func (h *harness) only(state string) store.ApprovalRequest {
	h.t.Helper()
	rs, err := h.st.ApprovalRequests(context.Background(), nil, "", 10)
	if err != nil || len(rs) == 0 {
		h.t.Fatalf("requests: %v %v", rs, err)
	}
	if rs[0].State != state {
		h.t.Fatalf("request %s is %s (%s), want %s", rs[0].ID, rs[0].State, rs[0].Reason, state)
	}
	return rs[0]
}

func (h *harness) events(id string) string {
	es, _ := h.st.Audit(context.Background(), time.Time{}, id)
	var out []string
	for _, e := range es {
		out = append(out, e.Event+":"+e.Actor+":"+e.Outcome)
	}
	return strings.Join(out, " ")
}

// replyText is the latest body of the request's message in the thread.
func (h *harness) requestMessage(id string) chslack.Message {
	h.t.Helper()
	var m chslack.Message
	var body []byte
	// The reply (or its latest update) is the newest outbox entry under the key.
	for i := int64(1); i < 200; i++ {
		e, err := h.st.OutboxEntry(context.Background(), i)
		if err != nil {
			break
		}
		if (e.Kind == store.KindReply || e.Kind == store.KindReplyUpdate) && strings.Contains(string(e.Body), id) {
			body = e.Body
		}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		h.t.Fatalf("no message for request %s: %v", id, err)
	}
	return m
}

func (h *harness) alertPlain() string {
	var last []byte
	for i := int64(1); i < 200; i++ {
		e, err := h.st.OutboxEntry(context.Background(), i)
		if err != nil {
			break
		}
		if e.Kind == store.KindPost || e.Kind == store.KindUpdate {
			last = e.Body
		}
	}
	var m chslack.Message
	json.Unmarshal(last, &m)
	return m.Plain
}

var quorumOfOne = &config.ApprovalPolicy{Requesters: []string{"*"}, Approvers: []string{"UA", "UREQ", "SSRE"}, MinApprovals: 1, ExpireAfter: 15 * time.Minute}

// Click → plan in the thread → approval by a second user → execution of the
// stored plan → result in the thread and the audit; the alert message
// shows the request's state all along.
func TestClickApproveExecute(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	if r := h.click("UREQ", "chmedic:collect_logs:0", h.offer); !strings.Contains(r.Ephemeral, "computing the plan") {
		t.Fatalf("reply %q", r.Ephemeral)
	}
	// A double click does not request twice.
	if r := h.click("UREQ", "chmedic:collect_logs:0", h.offer); !strings.Contains(r.Ephemeral, "already requested") {
		t.Fatalf("double click: %q", r.Ephemeral)
	}
	r := h.only(store.ReqPlanning)
	if !strings.Contains(h.alertPlain(), "collect_logs requested by UREQ: computing the plan") {
		t.Errorf("alert message lacks the request state:\n%s", h.alertPlain())
	}
	h.step()
	r = h.only(store.ReqPending)
	if r.PlanHash == "" || !r.ExpiresAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("pending request %+v", r)
	}
	if m := h.requestMessage(r.ID); !strings.Contains(m.Plain, "awaiting approval (0 of 1)") {
		t.Fatalf("request message: %s", m.Plain)
	}
	// The requester cannot approve their own request.
	if rep := h.click("UREQ", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "another approver must approve") {
		t.Fatalf("self-approval: %q", rep.Ephemeral)
	}
	// Someone the policy does not name cannot either.
	if rep := h.click("UZ", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "not an approver") {
		t.Fatalf("stranger: %q", rep.Ephemeral)
	}
	// An approver through the user group.
	if rep := h.click("UB", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "Approved (1 of 1)") {
		t.Fatalf("approval: %q", rep.Ephemeral)
	}
	// A Slack retry of the same click.
	if rep := h.click("UB", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "already") {
		t.Fatalf("retry: %q", rep.Ephemeral)
	}
	h.step()
	r = h.only(store.ReqSucceeded)
	if h.exec.count() != 1 {
		t.Fatalf("%d executions", h.exec.count())
	}
	if got := h.exec.runs[0]; got.RequestID != r.ID || got.Plan.Hash() != r.PlanHash {
		t.Errorf("ran %+v, not the stored plan %s", got, r.PlanHash)
	}
	m := h.requestMessage(r.ID)
	for _, w := range []string{"done: succeeded", "1 MiB from ch-1", "1 MiB from ch-2"} {
		if !strings.Contains(m.Plain, w) {
			t.Errorf("result message lacks %q:\n%s", w, m.Plain)
		}
	}
	if !strings.Contains(h.alertPlain(), "collect_logs requested by UREQ: done: succeeded") {
		t.Errorf("alert message:\n%s", h.alertPlain())
	}
	want := "requested:UREQ:planning planned:chmedic:pending refused:UREQ:self-approval refused:UZ:not an approver vote_approve:UB: approved:chmedic:approved execution_started:server 1:running step:server 1:done step:server 1:done execution_finished:server 1:succeeded"
	if got := h.events(r.ID); got != want {
		t.Errorf("audit:\n got %s\nwant %s", got, want)
	}
	es, _ := h.st.Audit(context.Background(), time.Time{}, r.ID)
	last := es[len(es)-1]
	if strings.Join(last.Nodes, ",") != "ch-1,ch-2" || last.PlanHash != r.PlanHash || last.Cluster != "prod" {
		t.Errorf("audit entry %+v", last)
	}
	// Decided: a late click is refused and audited.
	if rep := h.click("UA", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "already decided: succeeded") {
		t.Fatalf("late click: %q", rep.Ephemeral)
	}
}

// The cluster changed between the approval and the execution: the
// re-computed plan's hash differs, nothing runs, the thread says what
// changed and offers a fresh request.
func TestPlanHashMismatchRefused(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.click("UA", chslack.ActionApprove, r.ID)
	h.planner.set("ch-1", "ch-3")
	h.step()
	r = h.only(store.ReqStale)
	if h.exec.count() != 0 {
		t.Fatal("a changed plan was executed")
	}
	for _, w := range []string{"step ch-3/logs added", "step ch-2/logs removed"} {
		if !strings.Contains(r.Reason, w) {
			t.Errorf("reason lacks %q: %s", w, r.Reason)
		}
	}
	m := h.requestMessage(r.ID)
	blocks, _ := json.Marshal(m.Blocks)
	if !strings.Contains(string(blocks), "What changed") || !strings.Contains(string(blocks), "Request again") {
		t.Errorf("message: %s", blocks)
	}
	if !h.replied("did not run: its plan, re-computed before running, differs from the approved one (the cluster or chmedic's configuration changed: summary") {
		t.Error("no notice in the thread")
	}
	if !strings.Contains(h.events(r.ID), "refused_plan_changed:server 1:stale") {
		t.Errorf("audit: %s", h.events(r.ID))
	}
	// The fresh offer is a new request with the new plan.
	offers, _ := h.st.ActionRequestByID(context.Background(), chslackReoffer(t, m))
	if offers.Kind != "collect_logs" || offers.ThreadKey != "g1" {
		t.Fatalf("reoffer %+v", offers)
	}
	h.click("UREQ", "chmedic:collect_logs:0", offers.ID)
	h.step()
	fresh := h.only(store.ReqPending)
	if fresh.ID == r.ID || !strings.Contains(string(fresh.Plan), "ch-3") {
		t.Fatalf("fresh request %+v", fresh)
	}
}

func chslackReoffer(t *testing.T, m chslack.Message) string {
	b, _ := json.Marshal(m.Blocks)
	var blocks []map[string]any
	json.Unmarshal(b, &blocks)
	for _, bl := range blocks {
		if bl["type"] != "actions" {
			continue
		}
		for _, el := range bl["elements"].([]any) {
			e := el.(map[string]any)
			if e["action_id"] == "chmedic:collect_logs:0" {
				return e["value"].(string)
			}
		}
	}
	t.Fatal("no reoffer button")
	return ""
}

func TestExpiredRequest(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.clock.add(16 * time.Minute)
	if rep := h.click("UA", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "expired at 03:15:00 UTC") {
		t.Fatalf("late approval: %q", rep.Ephemeral)
	}
	h.only(store.ReqExpired)
	if h.exec.count() != 0 {
		t.Fatal("expired request executed")
	}
	if got := h.events(r.ID); !strings.Contains(got, "expired:chmedic:expired refused:UA:request is expired") {
		t.Errorf("audit: %s", got)
	}
	// The worker also expires requests nobody clicks on.
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	h.only(store.ReqPending)
	h.clock.add(16 * time.Minute)
	h.step()
	h.only(store.ReqExpired)
}

func TestQuorumOfTwoAndRejection(t *testing.T) {
	two := *quorumOfOne
	two.MinApprovals = 2
	h := newHarness(t, &two)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	if rep := h.click("UA", chslack.ActionApprove, r.ID); !strings.Contains(rep.Ephemeral, "recorded: 1 of 2") {
		t.Fatalf("first approval: %q", rep.Ephemeral)
	}
	h.step()
	h.only(store.ReqPending)
	if rep := h.click("UB", chslack.ActionReject, r.ID); !strings.Contains(rep.Ephemeral, "Rejected") {
		t.Fatalf("rejection: %q", rep.Ephemeral)
	}
	h.step()
	h.only(store.ReqRejected)
	if h.exec.count() != 0 {
		t.Fatal("rejected request executed")
	}
}

func TestClicksRefused(t *testing.T) {
	h := newHarness(t, &config.ApprovalPolicy{Requesters: []string{"UREQ"}, Approvers: []string{"UA"}, MinApprovals: 1, ExpireAfter: time.Minute, Channels: []string{"C0ALERTS"}})
	ctx := context.Background()
	tests := []struct {
		name  string
		click Click
		want  string
		audit string
	}{
		{"another workspace", Click{TeamID: "T0OTHER", UserID: "UREQ", ChannelID: "C0ALERTS", ActionID: "chmedic:collect_logs:0", Value: h.offer}, "another Slack workspace", "other workspace"},
		{"not a requester", Click{TeamID: team, UserID: "UZ", ChannelID: "C0ALERTS", ActionID: "chmedic:collect_logs:0", Value: h.offer}, "not allowed to request collect_logs", "not a requester"},
		{"wrong channel", Click{TeamID: team, UserID: "UREQ", ChannelID: "C0RANDOM", ActionID: "chmedic:collect_logs:0", Value: h.offer}, "in this channel", "not a requester"},
		{"unknown offer", Click{TeamID: team, UserID: "UREQ", ChannelID: "C0ALERTS", ActionID: "chmedic:collect_logs:0", Value: "forged"}, "does not know this button", "unknown offer"},
		{"unknown request", Click{TeamID: team, UserID: "UA", ChannelID: "C0ALERTS", ActionID: chslack.ActionApprove, Value: "forged"}, "no request", "unknown request"},
		{"not our button", Click{TeamID: team, UserID: "UA", ChannelID: "C0ALERTS", ActionID: "other-app:x", Value: "x"}, "does not know this button", "malformed payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.st.Audit(ctx, time.Time{}, "")
			rep, err := h.svc.HandleClick(ctx, tc.click)
			if err != nil || !strings.Contains(rep.Ephemeral, tc.want) {
				t.Fatalf("reply %q err %v, want %q", rep.Ephemeral, err, tc.want)
			}
			after, _ := h.st.Audit(ctx, time.Time{}, "")
			if len(after) != len(before)+1 || after[len(after)-1].Event != EventRefused || after[len(after)-1].Outcome != tc.audit {
				t.Fatalf("audit: %+v", after[len(before):])
			}
		})
	}
	if rs, _ := h.st.ApprovalRequests(ctx, nil, "", 10); len(rs) != 0 {
		t.Fatalf("a refused click made a request: %+v", rs)
	}
	// A superseded offer (the message was replaced by a newer one).
	h.st.OfferAction(ctx, store.ActionRequest{OfferKey: "n2/0", Kind: "collect_logs", Cluster: "prod", ThreadKey: "g1"})
	rawExec(t, h.path, `UPDATE action_requests SET state = 'superseded' WHERE id = ?`, h.offer)
	if rep := h.click("UREQ", "chmedic:collect_logs:0", h.offer); !strings.Contains(rep.Ephemeral, "older version of the message (the offer is superseded)") {
		t.Fatalf("superseded: %q", rep.Ephemeral)
	}
}

func TestNoPolicyFailsClosed(t *testing.T) {
	h := newHarness(t, nil)
	rep := h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	if !strings.Contains(rep.Ephemeral, "No approval policy for collect_logs: it cannot be requested") {
		t.Fatalf("reply %q", rep.Ephemeral)
	}
	if rs, _ := h.st.ApprovalRequests(context.Background(), nil, "", 10); len(rs) != 0 {
		t.Fatal("requested without a policy")
	}
	if _, _, err := h.svc.Request(context.Background(), RequestInput{Kind: "collect_logs", Cluster: "prod", User: "UREQ", Via: "cli"}); !IsDenied(err) {
		t.Fatalf("CLI request without a policy: %v", err)
	}
}

// A restart between the request and its approval: a new process on the
// same store approves and executes it.
func TestRestartBetweenRequestAndApproval(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.open("server 2")
	h.click("UA", chslack.ActionApprove, r.ID)
	h.step()
	h.only(store.ReqSucceeded)
	if h.exec.count() != 1 {
		t.Fatalf("%d executions", h.exec.count())
	}
}

// A crash in the middle of an execution: at the next start it is marked
// interrupted and offered for Resume / Abort, never re-run by itself;
// Resume continues the same execution (the runner skips done steps).
func TestInterruptedExecutionResume(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	h.planner.set("ch-1", "ch-2", "ch-3")
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.click("UA", chslack.ActionApprove, r.ID)
	h.exec.block = true
	h.exec.started = make(chan struct{})
	ctx, crash := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.svc.Execute(ctx, r.ID) }()
	<-h.exec.started
	// The process dies: its execution stays "running" in the store.
	crashAndKeepRunning(t, h, crash, done, r.ID)

	h.exec.block = false
	h.open("server 2") // a new server instance: at its first step
	h.step()
	r = h.only(store.ReqInterrupted)
	if h.exec.count() != 1 {
		t.Fatal("an interrupted execution was re-run by itself")
	}
	m := h.requestMessage(r.ID)
	if b, _ := json.Marshal(m.Blocks); !strings.Contains(string(b), chslack.ActionResume) || !strings.Contains(string(b), chslack.ActionAbort) {
		t.Fatalf("no Resume / Abort: %s", b)
	}
	if !h.replied("collect_logs on prod was interrupted: server 1 stopped while it ran") {
		t.Error("no notice of the interruption in the thread")
	}
	first, _ := h.st.ApprovalExecutionOf(context.Background(), r.ID)
	// The plan changed since (its own steps ran): a resume does not re-plan.
	h.planner.set("ch-9")
	if rep := h.click("UZ", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "not an approver") {
		t.Fatalf("stranger resumed: %q", rep.Ephemeral)
	}
	if rep := h.click("UA", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "Resuming") {
		t.Fatalf("resume: %q", rep.Ephemeral)
	}
	h.step()
	r = h.only(store.ReqSucceeded)
	if h.exec.count() != 2 || h.exec.runs[1].ID != first.ID || h.exec.runs[1].Plan.Hash() != r.PlanHash {
		t.Fatalf("resume ran %+v (first execution %s)", h.exec.runs, first.ID)
	}
	if got := h.events(r.ID); !strings.Contains(got, "execution_started:server 1:running step:server 1:done execution_interrupted:chmedic:interrupted refused:UZ:not an approver resumed:UA:approved execution_started:server 2:running step:server 2:done step:server 2:done step:server 2:done execution_finished:server 2:succeeded") {
		t.Errorf("audit: %s", got)
	}
}

// crashAndKeepRunning stops the first process's goroutine without letting
// it record the interruption (a crash records nothing).
func crashAndKeepRunning(t *testing.T, h *harness, crash context.CancelFunc, done chan struct{}, id string) {
	t.Helper()
	// Simulate the crash: the store is closed under the running process, so
	// whatever it tries to record after this is lost.
	h.st.Close()
	crash()
	<-done
}

func TestAbortInterrupted(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	ctx := context.Background()
	r, _, _ := h.st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: "collect_logs", Cluster: "prod", ThreadKey: "g1", RequestedBy: "UREQ", RequestedVia: "slack", State: store.ReqInterrupted})
	if rep := h.click("UA", chslack.ActionAbort, r.ID); !strings.Contains(rep.Ephemeral, "Aborted") {
		t.Fatalf("abort: %q", rep.Ephemeral)
	}
	h.step()
	h.only(store.ReqAborted)
	if rep := h.click("UA", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "Only an interrupted execution") {
		t.Fatalf("resume after abort: %q", rep.Ephemeral)
	}
	if h.exec.count() != 0 {
		t.Fatal("aborted request executed")
	}
}

// Two processes (the server and a CLI break-glass run) execute one request
// once.
func TestOneExecutionPerRequestAcrossProcesses(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	r, _, err := h.svc.Request(context.Background(), RequestInput{Kind: "collect_logs", Cluster: "prod", User: "UREQ", Via: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Vote(context.Background(), VoteInput{RequestID: r.ID, User: "UA", Via: "cli", Approve: true}); err != nil {
		t.Fatal(err)
	}
	other := h.service("cli-1")
	var wg sync.WaitGroup
	for _, s := range []*Service{h.svc, other} {
		wg.Add(1)
		go func() { defer wg.Done(); s.Execute(context.Background(), r.ID) }()
	}
	wg.Wait()
	if h.exec.count() != 1 {
		t.Fatalf("%d executions", h.exec.count())
	}
	h.only(store.ReqSucceeded)
}

// A gate that says no at plan time refuses the request (CLI: an error; a
// click: a refused request in the thread).
func TestRefusedAtPlanTime(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	h.planner.err = &actions.Refusal{Reason: "coordination latency 2.1s > 100ms"}
	_, _, err := h.svc.Request(context.Background(), RequestInput{Kind: "collect_logs", Cluster: "prod", User: "UREQ", Via: "cli"})
	if !actions.IsRefusal(err) {
		t.Fatalf("err %v", err)
	}
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqRefused)
	if !strings.Contains(r.Reason, "coordination latency 2.1s") {
		t.Fatalf("reason %q", r.Reason)
	}
	if m := h.requestMessage(r.ID); !strings.Contains(m.Plain, "refused") {
		t.Fatalf("message %s", m.Plain)
	}
}

// rawExec changes the database behind the store's back (what another
// engineer's code or a crash leaves).
func rawExec(t *testing.T, path, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// Fail closed, visibly: the button of a kind without a policy says so.
func TestButtonWithoutPolicySaysSo(t *testing.T) {
	h := newHarness(t, nil)
	rep := &report.Report{Title: "X", Status: "firing", Cluster: "prod", GroupKey: "g1", GeneratedAt: t0,
		Actions: []report.Action{{Kind: "collect_logs", Label: "Collect logs", RequestID: h.offer}}}
	b, err := h.svc.SaveAndRender(context.Background(), "g1", rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Collect logs (no approval policy)") {
		t.Fatalf("button: %s", b)
	}
	// The stored report is the report, not the decoration.
	stored, _ := h.st.ThreadReport(context.Background(), "g1")
	if strings.Contains(string(stored), "no approval policy") {
		t.Fatal("decoration stored")
	}
}

// A newer version of the alert message offers the action under a new id:
// a click on it while a request is live does not request it twice.
func TestOneLiveRequestPerKindInAThread(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	newer, _ := h.st.OfferAction(context.Background(), store.ActionRequest{OfferKey: "n2/0", Kind: "collect_logs", Cluster: "prod", GroupKey: "g1", ThreadKey: "g1"})
	if r := h.click("UA", "chmedic:collect_logs:0", newer); !strings.Contains(r.Ephemeral, "already requested by <@UREQ> (planning)") {
		t.Fatalf("second request: %q", r)
	}
	if rs, _ := h.st.ApprovalRequests(context.Background(), nil, "g1", 10); len(rs) != 1 {
		t.Fatalf("%d requests", len(rs))
	}
}

// An execution a live CLI process runs is left alone; once its heartbeat
// is stale (the process died), it is marked interrupted.
func TestCLIExecutionInterruptedOnlyWhenItsProcessIsGone(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	ctx := context.Background()
	r, _, _ := h.st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: "collect_logs", Cluster: "prod", ThreadKey: "g1", RequestedBy: "UREQ", RequestedVia: "cli", State: store.ReqApproved})
	if err := h.st.TransitionRequest(ctx, r.ID, []string{store.ReqApproved}, store.ReqRunning, claimPrefix+"cli host:7"); err != nil {
		t.Fatal(err)
	}
	h.st.StartApprovalExecution(ctx, r.ID, "cli host:7")
	h.st.Heartbeat(ctx, "cli host:7")
	h.step()
	h.only(store.ReqRunning)
	h.clock.add(time.Minute)
	h.step()
	got := h.only(store.ReqInterrupted)
	if !strings.Contains(got.Reason, "cli host:7 stopped while it ran") {
		t.Fatalf("reason %q", got.Reason)
	}
	if e, _ := h.st.ApprovalExecutionOf(ctx, r.ID); e.State != actions.ExecInterrupted {
		t.Fatalf("execution %+v", e)
	}
}

// replied reports a plain reply in the thread containing text.
func (h *harness) replied(text string) bool {
	for i := int64(1); i < 500; i++ {
		e, err := h.st.OutboxEntry(context.Background(), i)
		if err != nil {
			return false
		}
		if e.Kind == store.KindReply && strings.Contains(string(e.Body), text) {
			return true
		}
	}
	return false
}
