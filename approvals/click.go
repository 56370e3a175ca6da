package approvals

import (
	"context"
	"time"
)

// Click is one button click on a chmedic message, as Slack delivered it
// (over HTTP or Socket Mode), after its signature was verified. Value is the
// button's value: an opaque request id, never a plan.
type Click struct {
	TeamID, UserID, UserName, ChannelID, MessageTS, ThreadTS, ActionID, Value, ResponseURL, TriggerID string
	ReceivedAt                                                                                        time.Time
}

// Reply is what the clicking user is told, privately (an ephemeral message);
// empty says nothing.
type Reply struct{ Ephemeral string }

// ClickHandler handles a click. It must be fast (Slack wants an answer
// within 3 s): it records what has to happen as a durable job and returns.
type ClickHandler interface {
	HandleClick(ctx context.Context, c Click) (Reply, error)
}

// GroupResolver returns the user ids of a Slack user group.
type GroupResolver interface {
	Members(ctx context.Context, groupID string) ([]string, error)
}
