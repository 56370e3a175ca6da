package approvals

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
)

// cleaningExecutor is a fakeExecutor that cleans up after aborts.
type cleaningExecutor struct {
	*fakeExecutor
	mu      sync.Mutex
	cleaned []string
}

func (c *cleaningExecutor) CleanUp(ctx context.Context, id string) (actions.CleanupReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleaned = append(c.cleaned, id)
	return actions.CleanupReport{Lines: []string{"ch-1/restart: aborted; cleaned up: silence s1 expired; merges started again on ch-1"}}, nil
}

// Abort of an interrupted request runs the executor's cleanup of its
// execution, audits it and says in the thread what it did. Before the
// fix the abort only marked the execution aborted.
func TestAbortRunsCleanup(t *testing.T) {
	h := newHarness(t, quorumOfOne)
	ctx := context.Background()
	ce := &cleaningExecutor{fakeExecutor: h.exec}
	h.svc = New(Options{Store: h.st, Policies: h.pols, TeamID: team, Groups: groups{"SSRE": {"UB"}}, Planner: h.planner, Executor: ce,
		Name: "server test", Now: h.clock.now, Poll: 50 * time.Millisecond})
	r, _, _ := h.st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: "collect_logs", Cluster: "prod", ThreadKey: "g1", RequestedBy: "UREQ", RequestedVia: "slack", State: store.ReqInterrupted})
	e, err := h.st.StartApprovalExecution(ctx, r.ID, "server old")
	if err != nil {
		t.Fatal(err)
	}
	h.st.FinishApprovalExecution(ctx, e.ID, actions.ExecInterrupted, nil)
	if rep := h.click("UA", chslack.ActionAbort, r.ID); !strings.Contains(rep.Ephemeral, "Aborted") {
		t.Fatalf("abort: %q", rep.Ephemeral)
	}
	h.svc.Wait()
	if len(ce.cleaned) != 1 || ce.cleaned[0] != e.ID {
		t.Fatalf("cleaned %v, want [%s]", ce.cleaned, e.ID)
	}
	if ev := h.events(r.ID); !strings.Contains(ev, EventAborted+":UA") || !strings.Contains(ev, EventCleanup+":server test:cleaned up") {
		t.Errorf("audit: %s", ev)
	}
	if !h.replied("merges started again on ch-1") {
		t.Error("the thread was not told what the cleanup did")
	}
}
