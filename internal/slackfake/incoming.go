package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Incoming webhooks, as Alertmanager's slack_configs use them: a POST of a
// JSON message to a secret URL (https://hooks.slack.com/services/T/B/X) that
// posts into the one channel the webhook was created for. Alertmanager 0.25
// sends `{"channel","username","icon_emoji","link_names","attachments":[{
// "title","title_link","text","fallback","callback_id","footer","color",
// "mrkdwn_in",...}]}` with Content-Type application/json and reads only the
// HTTP status (2xx delivered, 5xx retried, anything else given up).
//
// Validated as Slack validates incoming webhooks
// (https://api.slack.com/messaging/webhooks#handling_errors), answering
// with Slack's plain-text bodies: 404 no_service (unknown URL), 405 for a
// non-POST, 400 invalid_payload (not a JSON object), 400 no_text (no text,
// attachments or blocks), 400 invalid_attachments (attachments not an array
// of objects), 400 invalid_blocks; 200 "ok" otherwise. The channel in the
// payload is ignored, as Slack ignores it for app webhooks: the message goes
// to the webhook's channel. A full outage (SetOutage) answers 503 here too.

// incomingPath prefixes incoming-webhook URLs.
const incomingPath = "/services/"

// IncomingWebhookMethod is the Call.Method recorded for a POST to an
// incoming-webhook URL.
const IncomingWebhookMethod = "incoming-webhook"

// IncomingWebhookURL returns a new incoming-webhook URL that posts into
// channel (created if Options.Channels is set and lacks it).
func (s *Server) IncomingWebhookURL(channel string) string {
	channel = normChannel(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channels != nil {
		s.channels[channel] = true
	}
	if s.incoming == nil {
		s.incoming = map[string]string{}
	}
	s.seq++
	path := fmt.Sprintf("%s%s/B%09d/%024x", incomingPath, s.opts.TeamID, s.seq, time.Now().UnixNano()+int64(s.seq))
	s.incoming[path] = channel
	return s.srv.URL + path
}

func (s *Server) serveIncoming(w http.ResponseWriter, r *http.Request) {
	call := Call{Method: IncomingWebhookMethod, HTTPMethod: r.Method, Time: time.Now()}
	call.ContentType, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))
	resp := s.incomingResponse(r, &call)
	s.finish(w, call, resp)
}

func (s *Server) incomingResponse(r *http.Request, call *Call) *response {
	s.mu.Lock()
	outage := s.outage
	channel, known := s.incoming[r.URL.Path]
	s.mu.Unlock()
	if outage {
		return htmlError(http.StatusServiceUnavailable)
	}
	if !known {
		return textResponse(http.StatusNotFound, "no_service")
	}
	if r.Method != http.MethodPost {
		return textResponse(http.StatusMethodNotAllowed, "invalid_method")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return textResponse(http.StatusBadRequest, "invalid_payload")
	}
	if call.ContentType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return textResponse(http.StatusBadRequest, "invalid_payload")
		}
		body = []byte(form.Get("payload"))
	}
	p, code := parseIncoming(body)
	call.Params, call.JSON = p, true
	if code != "" {
		return textResponse(http.StatusBadRequest, code)
	}
	var c content
	c.text = p.Get("text")
	if a := p.Get("attachments"); a != "" {
		c.attachments = json.RawMessage(a)
	}
	if b := p.Get("blocks"); b != "" {
		blocks, aerr := validateBlocks(b, s.opts.BlockScopedActionIDs)
		if aerr != nil {
			return textResponse(http.StatusBadRequest, "invalid_blocks")
		}
		c.blocks = blocks
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return textResponse(http.StatusNotFound, "channel_not_found")
	}
	m := &message{channel: channel, ts: s.nextTSLocked(), content: c, params: p, posted: time.Now()}
	s.messages[channel] = append(s.messages[channel], m)
	return textResponse(http.StatusOK, "ok")
}

// parseIncoming reads an incoming-webhook payload into parameters (as
// readParams does for a JSON body) and returns Slack's error code for one it
// refuses, or "".
func parseIncoming(body []byte) (url.Values, string) {
	p := url.Values{}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(body), &obj); err != nil || obj == nil {
		return p, "invalid_payload"
	}
	for k, raw := range obj {
		if v, ok := flattenJSON(raw); ok {
			p.Set(k, v)
		}
	}
	hasAttachments := false
	if raw, ok := obj["attachments"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		var atts []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &atts); err != nil {
			return p, "invalid_attachments"
		}
		for _, a := range atts {
			if a == nil {
				return p, "invalid_attachments"
			}
			if attachmentHasContent(a) {
				hasAttachments = true
			}
		}
	}
	if strings.TrimSpace(p.Get("text")) == "" && !hasAttachments && p.Get("blocks") == "" {
		return p, "no_text"
	}
	return p, ""
}

// attachmentHasContent reports whether a legacy attachment shows something
// (Slack drops attachments with none of these).
func attachmentHasContent(a map[string]json.RawMessage) bool {
	for _, k := range []string{"text", "fallback", "title", "pretext", "fields", "blocks", "image_url"} {
		if raw, ok := a[k]; ok {
			v := strings.TrimSpace(string(raw))
			if v != `""` && v != "null" && v != "[]" {
				return true
			}
		}
	}
	return false
}
