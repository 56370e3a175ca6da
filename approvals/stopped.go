package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/store"
)

// Stopped executions: an action that resumes after a failure
// (actions.StopResumer, a rolling restart) stops at a failed gate or
// timeout instead of ending failed. Its request is stopped: the request's
// message says where and why with Resume and Abort (as an interrupted
// one), a reply in the thread notifies the channel, and nothing runs until
// an approver decides. A Resume is re-checked by the action; a refusal
// keeps it stopped and says so with the figures.

// EventStopped is the audit event of an execution stopped at a failed
// step (awaiting Resume or Abort); EventResumeRefused of a Resume the
// action's re-check refused.
const (
	EventStopped       = "execution_stopped"
	EventResumeRefused = "resume_refused"
)

// controlStates are the request states Resume and Abort apply to.
var controlStates = []string{store.ReqInterrupted, store.ReqStopped}

func controllable(state string) bool { return slices.Contains(controlStates, state) }

// stopped ends a run that stopped (or whose resume was refused): the
// request is stopped with where and why, audited and posted, with a notice
// in the thread.
func (s *Service) stopped(ctx context.Context, r store.ApprovalRequest, o actions.Outcome, runErr error) (store.ApprovalRequest, error) {
	reason := outcomeText(o)
	event := EventStopped
	var refused *actions.ResumeRefusedError
	if errors.As(runErr, &refused) {
		event = EventResumeRefused
		reason = fmt.Sprintf("resume refused: %v; %s", refused.Reason, reason)
	}
	out, err := s.end(ctx, r, store.ReqStopped, reason, event)
	if event == EventResumeRefused {
		s.notice(ctx, r, fmt.Sprintf(":no_entry: Resume of %s on %s refused, it stays stopped: %v. Resume again once this is fixed, or Abort it, in the request's message.",
			r.Kind, r.Cluster, refused.Reason))
		return out, err
	}
	s.notice(ctx, r, fmt.Sprintf(":octagonal_sign: %s on %s stopped: %s. Nothing more runs by itself: Resume (re-checks that step first; the steps done are not repeated) or Abort (undoes what the stopped step recorded, leaves the rest untouched) in the request's message.",
		r.Kind, r.Cluster, firstChars(o.Error, 1500)))
	return out, err
}
