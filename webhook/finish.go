package webhook

import (
	"context"

	"github.com/chmedic/chmedic/internal/store"
)

// FinishingProcessor is a Processor that records a notification's success
// itself, in the transaction of its own last write (one commit, one sync,
// fewer per notification; and a crash keeps the notification's effect and
// its "done" together or neither). When the queue's processor implements
// it, the queue calls ProcessAndFinish instead of Process and, when it
// returns nil, does not call FinishProcessed: the processor has marked
// the notification done and recorded mark as its group's last processed
// notification, exactly as FinishProcessed does. On an error nothing of
// the outcome is recorded and the queue retries or fails the notification
// as after Process.
type FinishingProcessor interface {
	Processor
	ProcessAndFinish(ctx context.Context, n store.Notification, m *Message, mark store.GroupMark) error
}
