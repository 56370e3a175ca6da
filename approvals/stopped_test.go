package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
)

// stoppingAction is an action that stops (actions.StopResumer) at its
// failing step, refuses a resume while refuse is set, and cleans up.
type stoppingAction struct {
	mu       sync.Mutex
	failAt   string
	refuse   string
	executed []string
	cleaned  []string
}

func (a *stoppingAction) Kind() string { return "collect_logs" }
func (a *stoppingAction) Plan(context.Context, actions.Request) (actions.Plan, error) {
	return actions.Plan{}, fmt.Errorf("not used")
}
func (a *stoppingAction) Execute(_ context.Context, _ actions.Plan, step actions.Step, _ map[string]actions.StepResult) (actions.StepResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.executed = append(a.executed, step.ID)
	if step.ID == a.failAt {
		return actions.StepResult{}, fmt.Errorf("gate of %s failed: replica ch-2 is down: the run stopped at %s; not touched: ch-2", step.Node, step.Node)
	}
	return actions.StepResult{Output: "did " + step.ID}, nil
}
func (a *stoppingAction) Verify(context.Context, actions.Plan, actions.Step, actions.StepResult) error {
	return nil
}
func (a *stoppingAction) StopsAt(actions.Plan, actions.Step) bool { return true }
func (a *stoppingAction) ResumeCheck(context.Context, actions.Plan, actions.Step, json.RawMessage, map[string]actions.StepResult) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse != "" {
		return &actions.Refusal{Reason: a.refuse}
	}
	return nil
}
func (a *stoppingAction) Cleanup(_ context.Context, _ actions.Plan, step actions.Step, _ json.RawMessage, _ map[string]actions.StepResult) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cleaned = append(a.cleaned, step.ID)
	return "silence s1 had already ended; the roll ends at ch-1: ch-2 not touched", nil
}

func (h *harness) runnerService(name string, a *stoppingAction) {
	runner := actions.NewRunner(h.st, actions.Registry{"collect_logs": a}, actions.RunnerOptions{})
	h.svc = New(Options{Store: h.st, Policies: h.pols, TeamID: team, Groups: groups{"SSRE": {"UB"}}, Planner: h.planner, Executor: runner,
		Name: name, Now: h.clock.now, Poll: 50 * time.Millisecond})
}

func hasButtons(m chslack.Message) bool {
	b, _ := json.Marshal(m.Blocks)
	return strings.Contains(string(b), chslack.ActionResume) && strings.Contains(string(b), chslack.ActionAbort)
}

// A run that stops at a failed step (an action declaring StopResumer) is a
// stopped request: its message says where and why with Resume and Abort,
// the thread gets a notice; a Resume the action's re-check refuses keeps
// it stopped and says why; a stranger's Resume is refused; after a restart
// of chmedic (a new store handle and service) the Resume button still
// works and the run continues from the stopped step. Before: the request
// ended failed, with no buttons, and Resume was refused ("Only an
// interrupted execution …").
func TestStoppedRequestResume(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	a := &stoppingAction{failAt: "ch-1/logs"}
	h.runnerService("server 1", a)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.click("UA", chslack.ActionApprove, r.ID)
	h.step()
	r = h.only(store.ReqStopped)
	if !strings.Contains(r.Reason, "gate of ch-1 failed") || !strings.Contains(r.Reason, "not touched: ch-2") {
		t.Errorf("reason %q", r.Reason)
	}
	if m := h.requestMessage(r.ID); !hasButtons(m) || !strings.Contains(m.Text, "stopped at a failed step") {
		t.Fatalf("the stopped request's message: %s / buttons %v", m.Text, hasButtons(m))
	}
	if !h.replied("collect_logs on prod stopped: stopped at step ch-1/logs: gate of ch-1 failed") {
		t.Error("no notice of the stop in the thread")
	}

	a.refuse = "the gate before ch-1's restart still fails: replica ch-2 of shard 1 is down (connection refused)"
	if rep := h.click("UZ", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "not an approver") {
		t.Fatalf("stranger resumed: %q", rep.Ephemeral)
	}
	if rep := h.click("UA", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "re-checks the step where it stopped") {
		t.Fatalf("resume: %q", rep.Ephemeral)
	}
	h.step()
	r = h.only(store.ReqStopped)
	if !strings.HasPrefix(r.Reason, "resume refused: the gate before ch-1's restart still fails: replica ch-2 of shard 1 is down") {
		t.Errorf("reason after a refused resume: %q", r.Reason)
	}
	if !h.replied("Resume of collect_logs on prod refused, it stays stopped: the gate before ch-1") {
		t.Error("no notice of the refused resume")
	}
	if got := len(a.executed); got != 1 {
		t.Errorf("a refused resume ran steps: %v", a.executed)
	}
	if m := h.requestMessage(r.ID); !hasButtons(m) {
		t.Error("no Resume / Abort after the refused resume")
	}

	// chmedic restarts; the buttons of the message still work.
	h.open("server 2")
	h.runnerService("server 2", a)
	a.refuse, a.failAt = "", ""
	if rep := h.click("UA", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "Resuming") {
		t.Fatalf("resume after the restart: %q", rep.Ephemeral)
	}
	h.step()
	r = h.only(store.ReqSucceeded)
	if strings.Join(a.executed, ",") != "ch-1/logs,ch-1/logs,ch-2/logs" {
		t.Errorf("executed %v", a.executed)
	}
	ev := h.events(r.ID)
	for _, w := range []string{"step:server 1:failed execution_stopped:server 1:stopped", "resumed:UA:approved", "resume_refused:server 1:stopped", "execution_finished:server 2:succeeded"} {
		if !strings.Contains(ev, w) {
			t.Errorf("audit lacks %s: %s", w, ev)
		}
	}
}

// Abort of a stopped request ends it: the run's cleanup takes back what
// the stopped step recorded and the thread says what it did and what was
// left untouched; a Resume after it is refused.
func TestStoppedRequestAbort(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	a := &stoppingAction{failAt: "ch-1/logs"}
	h.runnerService("server 1", a)
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.click("UA", chslack.ActionApprove, r.ID)
	h.step()
	r = h.only(store.ReqStopped)
	if rep := h.click("UA", chslack.ActionAbort, r.ID); !strings.Contains(rep.Ephemeral, "Aborted") {
		t.Fatalf("abort: %q", rep.Ephemeral)
	}
	h.svc.Wait()
	h.only(store.ReqAborted)
	if strings.Join(a.cleaned, ",") != "ch-1/logs" {
		t.Errorf("cleaned %v", a.cleaned)
	}
	if !h.replied("ch-2 not touched") {
		t.Error("the thread was not told what the abort did")
	}
	e, _ := h.st.ApprovalExecutionOf(context.Background(), r.ID)
	if e.State != actions.ExecAborted {
		t.Errorf("execution %s", e.State)
	}
	if rep := h.click("UA", chslack.ActionResume, r.ID); !strings.Contains(rep.Ephemeral, "Only an interrupted execution") {
		t.Errorf("resume after abort: %q", rep.Ephemeral)
	}
}

// The interrupted notice names what the runner found at start-up of the
// commands the stopped process left running (actions.OrphanReaper, in the
// execution's error after actions.StartupNoteSep). Before, the notice only
// said chmedic had stopped.
func TestInterruptedNoticeNamesCommandLeftRunning(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	ctx := context.Background()
	r, _, _ := h.st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: "collect_logs", Cluster: "prod", ThreadKey: "g1", RequestedBy: "UREQ",
		RequestedVia: "slack", State: store.ReqRunning, Reason: claimPrefix + "server 0"})
	e, err := h.st.StartApprovalExecution(ctx, r.ID, "server 0")
	if err != nil {
		t.Fatal(err)
	}
	found := "ch-1: restart command pid 4242 still running, deadline 10:11:12 UTC"
	h.st.FinishExecution(ctx, e.ID, actions.ExecInterrupted, nil, "chmedic (server 0) stopped while this execution ran"+actions.StartupNoteSep+found)
	h.step()
	r = h.only(store.ReqInterrupted)
	if !strings.Contains(r.Reason, found) {
		t.Errorf("reason %q", r.Reason)
	}
	if !h.replied("Found at start-up: " + found) {
		t.Error("the interrupted notice does not name the command left running")
	}
}
