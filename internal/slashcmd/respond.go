package slashcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/chmedic/chmedic/approvals"
)

// HTTPResponder posts to a command's response_url as Slack documents:
// {"response_type": "in_channel" | "ephemeral", "replace_original": false,
// "text", "blocks"}. Only https URLs are used, or http to a loopback
// address (tests).
type HTTPResponder struct {
	Client *http.Client // default: a client with a 10 s timeout
}

// Respond posts r to responseURL.
func (p *HTTPResponder) Respond(ctx context.Context, responseURL string, r Response) error {
	body, err := responseBody(r)
	if err != nil {
		return err
	}
	return approvals.PostResponse(ctx, p.Client, responseURL, body)
}

// responseBody is the JSON posted for r.
func responseBody(r Response) ([]byte, error) {
	msg := r.Message
	msg.Plain, msg.Broadcast, msg.Previous = "", false, nil
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("response_url: encoding the message: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if bs, ok := m["blocks"].([]any); !ok || len(bs) == 0 {
		delete(m, "blocks")
	}
	m["response_type"] = "ephemeral"
	if r.InChannel {
		m["response_type"] = "in_channel"
	}
	m["replace_original"] = false
	return json.Marshal(m)
}
