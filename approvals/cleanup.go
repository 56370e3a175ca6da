package approvals

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/store"
)

// EventCleanup is the audit event of the cleanup after an abort (what the
// interrupted step left behind, taken back).
const EventCleanup = "cleanup_after_abort"

// CleanerUpper is implemented by an Executor that can take back what the
// interrupted step of an aborted execution left behind (*actions.Runner).
type CleanerUpper interface {
	CleanUp(ctx context.Context, executionID string) (actions.CleanupReport, error)
}

var _ CleanerUpper = (*actions.Runner)(nil)

// cleanupAfterAbort runs the executor's cleanup of an aborted request's
// execution in the background (a click is answered within seconds; a
// cleanup calls Alertmanager and ClickHouse), audits it and reports it in
// the thread. Wait waits for it.
func (s *Service) cleanupAfterAbort(ctx context.Context, r store.ApprovalRequest, execID string) {
	cu, ok := s.o.Executor.(CleanerUpper)
	if !ok || execID == "" {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		rep, err := cu.CleanUp(cctx, execID)
		if err == nil && len(rep.Lines) == 0 {
			return
		}
		detail := strings.Join(rep.Lines, "\n")
		outcome := "cleaned up"
		if err != nil {
			detail, outcome = err.Error(), "cleanup failed"
		} else if rep.Failed {
			outcome = "cleanup failed"
		}
		s.audit.append(cctx, store.AuditEntry{Actor: s.o.Name, Event: EventCleanup, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
			Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: outcome, Detail: firstChars(detail, 2000)})
		icon := ":broom:"
		if outcome != "cleaned up" {
			icon = ":warning:"
		}
		s.notice(cctx, r, fmt.Sprintf("%s %s on %s was aborted; %s:\n%s", icon, r.Kind, r.Cluster, outcome, detail))
	}()
}
