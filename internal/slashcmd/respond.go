package slashcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
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
	u, err := url.Parse(responseURL)
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname())) {
		return fmt.Errorf("response_url %s://%s: refusing a non-https URL", u.Scheme, u.Host)
	}
	body, err := responseBody(r)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	hc := p.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("response_url: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
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

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
