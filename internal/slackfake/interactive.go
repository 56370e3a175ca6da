package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Limits Slack applies to a response_url.
const (
	responseURLUses = 5
	responseURLTTL  = 30 * time.Minute
	responsePath    = "/actions/"
)

// ClickSpec describes a button click a test makes on a message the fake
// holds.
type ClickSpec struct {
	// Channel and TS identify the message (a top-level message or a thread
	// reply) holding the button.
	Channel, TS string
	// ActionID is the button's action_id; the click carries the button's
	// own value and block_id, as Slack's does.
	ActionID string
	// UserID clicks (required); UserName is its handle (default: the added
	// user's name, else the id).
	UserID, UserName string
	// TeamID is the clicking user's workspace (default: the fake's).
	TeamID string
}

// responseHook is a response_url the fake handed out with a click.
type responseHook struct {
	channel, threadTS, messageTS, user string
	uses                               int
	expires                            time.Time
}

// ResponsePost is one POST a test's app made to a response_url.
type ResponsePost struct {
	// Hook is the response_url's path id; User the clicker it answers.
	Hook, User, Channel string
	Body                map[string]any
	// Status is the HTTP status the fake answered.
	Status int
}

// BlockActions returns the JSON payload Slack sends to an app when a user
// clicks a button on a message: a block_actions interaction with the
// user, the team, the container (message ts, channel, thread_ts for a reply),
// the message as it is now, a fresh response_url served by the fake and
// trigger_id, and the action (action_id, block_id, value, text, style). The
// button must exist on the message, as only buttons that exist can be
// clicked; a test forging a click writes its payload by hand.
func (s *Server) BlockActions(c ClickSpec) ([]byte, error) {
	if c.UserID == "" {
		return nil, fmt.Errorf("slackfake: a click needs a user")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	channel := normChannel(c.Channel)
	m := s.findLocked(channel, c.TS)
	if m == nil {
		return nil, fmt.Errorf("slackfake: no message %s in %s", c.TS, channel)
	}
	blockID, button, ok := findButton(m.blocks, c.ActionID)
	if !ok {
		return nil, fmt.Errorf("slackfake: message %s has no button with action_id %q", c.TS, c.ActionID)
	}
	team := cmp(c.TeamID, s.opts.TeamID)
	name := c.UserName
	if name == "" {
		if u, ok := s.users[c.UserID]; ok && u.Name != "" {
			name = u.Name
		} else {
			name = c.UserID
		}
	}
	hook := s.newIDLocked("H")
	s.hooks[hook] = &responseHook{channel: channel, threadTS: m.threadTS, messageTS: m.ts, user: c.UserID, expires: time.Now().Add(responseURLTTL)}
	container := map[string]any{"type": "message", "message_ts": m.ts, "channel_id": channel, "is_ephemeral": false}
	message := map[string]any{
		"type": "message", "subtype": "bot_message", "text": m.text, "ts": m.ts,
		"bot_id": s.opts.BotID, "user": s.opts.BotUserID, "app_id": s.opts.AppID,
		"blocks": json.RawMessage(orNull(m.blocks)),
	}
	if m.threadTS != "" {
		container["thread_ts"] = m.threadTS
		message["thread_ts"] = m.threadTS
	}
	action := map[string]any{
		"action_id": c.ActionID, "block_id": blockID, "type": "button",
		"action_ts": formatTS(time.Now().UnixMicro()),
	}
	for _, k := range []string{"text", "value", "style"} {
		if raw, ok := button[k]; ok {
			action[k] = raw
		}
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": c.UserID, "username": name, "name": name, "team_id": team},
		"api_app_id":            s.opts.AppID,
		"token":                 "fake-verification-token",
		"container":             container,
		"trigger_id":            fmt.Sprintf("%d.%s.%s", time.Now().Unix(), strings.TrimPrefix(team, "T"), hook),
		"team":                  map[string]any{"id": team, "domain": s.opts.TeamName},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": channel, "name": channel},
		"message":               message,
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          s.srv.URL + responsePath + team + "/" + hook,
		"actions":               []any{action},
	}
	return json.Marshal(payload)
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// findButton finds the button with actionID in a message's blocks: in an
// actions block's elements or as a section's accessory.
func findButton(blocks json.RawMessage, actionID string) (string, obj, bool) {
	var bs []obj
	if json.Unmarshal(blocks, &bs) != nil {
		return "", nil, false
	}
	for _, b := range bs {
		var typ, blockID string
		_ = json.Unmarshal(b["type"], &typ)
		_ = json.Unmarshal(b["block_id"], &blockID)
		var candidates []obj
		switch typ {
		case "actions":
			_ = json.Unmarshal(b["elements"], &candidates)
		case "section":
			var acc obj
			if json.Unmarshal(b["accessory"], &acc) == nil && acc != nil {
				candidates = append(candidates, acc)
			}
		}
		for _, e := range candidates {
			var et, aid string
			_ = json.Unmarshal(e["type"], &et)
			_ = json.Unmarshal(e["action_id"], &aid)
			if et == "button" && aid == actionID {
				return blockID, e, true
			}
		}
	}
	return "", nil, false
}

// ClickRequest builds the signed POST Slack sends to an app's
// interactivity URL target for the click c (see BlockActions), signed now
// with signingSecret.
func (s *Server) ClickRequest(target, signingSecret string, c ClickSpec) (*http.Request, error) {
	payload, err := s.BlockActions(c)
	if err != nil {
		return nil, err
	}
	return InteractionRequest(target, signingSecret, payload)
}

// ResponsePosts returns what was posted to the response_urls handed out.
func (s *Server) ResponsePosts() []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ResponsePost(nil), s.responsePosts...)
}

// serveResponseURL handles a POST to a response_url as Slack does: JSON
// {text, blocks, response_type (ephemeral by default, or in_channel),
// replace_original, delete_original, thread_ts}; at most 5 uses within 30
// minutes of the click.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method_not_allowed", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, responsePath)
	_, id, _ := strings.Cut(rest, "/")
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	var msg map[string]any
	jsonErr := json.Unmarshal(body, &msg)

	s.mu.Lock()
	defer s.mu.Unlock()
	post := ResponsePost{Hook: id, Body: msg}
	answer := func(status int, text string) {
		post.Status = status
		s.responsePosts = append(s.responsePosts, post)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}
	h := s.hooks[id]
	switch {
	case h == nil:
		answer(http.StatusNotFound, "no_active_hooks")
		return
	case time.Now().After(h.expires):
		answer(http.StatusNotFound, "expired_url")
		return
	case h.uses >= responseURLUses:
		answer(http.StatusNotFound, "used_url")
		return
	case jsonErr != nil || msg == nil:
		answer(http.StatusBadRequest, "invalid_payload")
		return
	}
	h.uses++
	post.User, post.Channel = h.user, h.channel
	text, _ := msg["text"].(string)
	var blocks json.RawMessage
	if b, ok := msg["blocks"]; ok {
		blocks, _ = json.Marshal(b)
	}
	if del, _ := msg["delete_original"].(bool); del {
		if m := s.findLocked(h.channel, h.messageTS); m != nil {
			m.deleted = true
		}
		answer(http.StatusOK, "ok")
		return
	}
	if text == "" && len(blocks) == 0 {
		answer(http.StatusBadRequest, "no_text")
		return
	}
	if repl, _ := msg["replace_original"].(bool); repl {
		m := s.findLocked(h.channel, h.messageTS)
		if m == nil {
			answer(http.StatusNotFound, "message_not_found")
			return
		}
		m.edits = append(m.edits, revision{text: m.text, blocks: m.blocks, metadata: m.metadata, editTS: s.nextTSLocked(), at: time.Now()})
		m.text, m.blocks = text, blocks
		answer(http.StatusOK, "ok")
		return
	}
	ts := s.nextTSLocked()
	threadTS := h.threadTS
	if t, _ := msg["thread_ts"].(string); t != "" {
		threadTS = t
	}
	nm := &message{channel: h.channel, ts: ts, threadTS: threadTS, content: content{text: text, blocks: blocks}, posted: time.Now()}
	if rt, _ := msg["response_type"].(string); rt == "in_channel" {
		s.messages[h.channel] = append(s.messages[h.channel], nm)
	} else {
		nm.user = h.user
		s.ephemerals = append(s.ephemerals, nm.public())
	}
	answer(http.StatusOK, "ok")
}
