package approvals

import (
	"context"

	"github.com/chmedic/chmedic/playbooks/report"
)

// Render renders a thread's report with the thread's request states into
// an outbox body, as SaveAndRender does, without storing the report: the
// incident processor stores it in the transaction that queues the message
// (store.ThreadChange.Report), one commit instead of two.
func (s *Service) Render(ctx context.Context, threadKey string, r *report.Report) ([]byte, error) {
	return s.encode(ctx, threadKey, r)
}
