package slack

import (
	"context"
	"errors"
	"time"

	"github.com/slack-go/slack"
)

// summaryStore is implemented by stores that batch incident summaries
// (*store.Store): the due ones are queued as replies before each step.
type summaryStore interface {
	FlushDueSummaries(ctx context.Context, now time.Time, limit int) (int, error)
}

// keyedReplyStore is implemented by stores that keep keyed replies
// (*store.Store): replies updated in place, such as an approval request's
// state or an execution's progress.
type keyedReplyStore interface {
	KeyedReplyTS(ctx context.Context, updateID int64) (string, error)
}

// updateReply sends a reply_update entry: chat.update of the reply it
// replaces. A reply that was never delivered cannot be updated; Slack's own
// answer for that, message_not_found, makes the entry fail for good.
func (ob *Outbox) updateReply(ctx context.Context, id int64, channel string, opts []slack.MsgOption) (string, string, error) {
	ks, ok := ob.store.(keyedReplyStore)
	if !ok {
		return "", "", errors.New("the outbox store keeps no keyed replies")
	}
	ts, err := ks.KeyedReplyTS(ctx, id)
	if err != nil {
		return "", "", err
	}
	if ts == "" {
		return "", "", slack.SlackErrorResponse{Err: "message_not_found"}
	}
	ch, ts, _, err := ob.api.UpdateMessageContext(ctx, channel, ts, opts...)
	return ch, ts, err
}
