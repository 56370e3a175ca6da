package approvals

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
)

// busyExecutor refuses its first runs as the Runner does while another
// execution holds the cluster's lease (nothing ran), then runs.
type busyExecutor struct {
	fakeExecutor
	busy      int // runs refused (the lease taken between check and run)
	leaseBusy int // lease checks that see it held
}

func (e *busyExecutor) Run(ctx context.Context, exec actions.Execution, progress func(actions.Progress)) (actions.Outcome, error) {
	e.mu.Lock()
	if e.busy > 0 {
		e.busy--
		e.mu.Unlock()
		return actions.Outcome{}, &actions.LeaseHeldError{Lease: store.Lease{Cluster: "prod", Holder: "cli host:1", ExecutionID: "other", ExpiresAt: time.Now().Add(time.Minute)}}
	}
	e.mu.Unlock()
	return e.fakeExecutor.Run(ctx, exec, progress)
}

// LeaseHolder reports the other execution's lease while it is busy.
func (e *busyExecutor) LeaseHolder(context.Context, string) (string, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	held := e.leaseBusy > 0
	if held {
		e.leaseBusy--
	}
	return "cli host:1", held, nil
}

// One action at a time per cluster: an approved request that finds the
// cluster busy (another execution holds the lease) waits and runs once it
// is free, re-checked like any approved request. Before, it ended failed
// although nothing ran, and a Resume that found the cluster busy was lost
// the same way.
func TestApprovedRequestWaitsForABusyCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		busy *busyExecutor
	}{
		{"lease held", &busyExecutor{leaseBusy: 1}},
		{"lease taken before the run", &busyExecutor{busy: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) { testWaitsForABusyCluster(t, tc.busy) })
	}
}

func testWaitsForABusyCluster(t *testing.T, busy *busyExecutor) {
	h := newHarness(t, quorumOfOne)
	h.svc = New(Options{Store: h.st, Policies: h.pols, TeamID: team, Groups: groups{"SSRE": {"UB"}}, Planner: h.planner, Executor: busy, Leases: busy,
		Name: "server 1", Now: h.clock.now, Poll: 50 * time.Millisecond})
	h.click("UREQ", "chmedic:collect_logs:0", h.offer)
	h.step()
	r := h.only(store.ReqPending)
	h.click("UA", chslack.ActionApprove, r.ID)
	h.step()
	r = h.only(store.ReqApproved)
	if !strings.Contains(r.Reason, "busy") {
		t.Errorf("reason %q does not say the cluster is busy", r.Reason)
	}
	if m := h.requestMessage(r.ID); !strings.Contains(m.Plain, "busy") || strings.Contains(m.Plain, "starting") {
		t.Errorf("the request's message does not say it waits:\n%s", m.Plain)
	}
	if a := h.alertPlain(); !strings.Contains(a, "collect_logs requested by UREQ: approved (1 of 1), waiting for the cluster") {
		t.Errorf("the alert message does not say the request waits:\n%s", a)
	}
	plans := h.planner.calls
	h.step()
	r = h.only(store.ReqSucceeded)
	if busy.count() != 1 {
		t.Fatalf("%d runs, want 1", busy.count())
	}
	if h.planner.calls != plans+1 {
		t.Errorf("the retry was not re-checked (%d plans, want %d)", h.planner.calls, plans+1)
	}
	if ev := h.events(r.ID); strings.Count(ev, "waiting_for_cluster") != 1 || !strings.Contains(ev, "execution_finished:server 1:succeeded") {
		t.Errorf("audit: %s", ev)
	}
}
