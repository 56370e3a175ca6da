package approvals

import (
	"context"
	"time"
)

// Click is one verified button press (from HTTP interactivity or Socket Mode).
type Click struct {
	TeamID, UserID, UserName, ChannelID, MessageTS, ThreadTS, ActionID, Value, ResponseURL, TriggerID string
	ReceivedAt                                                                                        time.Time
}

// Reply is what the user sees at once (ephemeral) — empty for none.
type Reply struct{ Ephemeral string }

// ClickHandler handles a click; it must be fast (Slack's 3 s): record durably, then work from a job.
type ClickHandler interface {
	HandleClick(ctx context.Context, c Click) (Reply, error)
}

// GroupResolver resolves a Slack user group id (S…) to its members (cached by the transport).
type GroupResolver interface {
	Members(ctx context.Context, groupID string) ([]string, error)
}
