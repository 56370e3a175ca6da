package slackfake

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits Slack applies to messages.
const (
	maxTextChars    = 40000
	maxMarkdownText = 12000
	maxAttachments  = 100
)

// Metadata is a message's metadata, as posted with the metadata argument.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Message is a message as the fake holds it now.
type Message struct {
	Channel string
	TS      string
	// ThreadTS is the parent's ts for a thread reply, "" for a top-level
	// message.
	ThreadTS string
	Text     string
	// MarkdownText is the markdown_text argument, if one was used.
	MarkdownText string
	// Blocks and Attachments are the JSON arrays as sent (nil if none).
	Blocks      json.RawMessage
	Attachments json.RawMessage
	Metadata    *Metadata
	// ReplyBroadcast reports a thread reply also sent to the channel.
	ReplyBroadcast bool
	// User is the recipient of an ephemeral message.
	User string
	// FileIDs lists the files shared with this message
	// (files.completeUploadExternal).
	FileIDs []string
	// Params are the arguments of the call that posted it, token removed.
	Params url.Values
	// Updated counts the chat.update calls applied; Edits holds, for each,
	// the content it replaced, oldest first.
	Updated int
	Edits   []Revision
	// EditedTS is the edited.ts Slack sets on the last update.
	EditedTS string
	PostedAt time.Time
}

// Revision is a message's content before one chat.update replaced it.
type Revision struct {
	Text       string
	Blocks     json.RawMessage
	Metadata   *Metadata
	EditTS     string    // edited.ts of the update that replaced it
	ReplacedAt time.Time // when that update happened
}

type message struct {
	channel, ts, threadTS string
	content
	broadcast bool
	user      string // ephemeral recipient
	fileIDs   []string
	params    url.Values
	edits     []revision
	editedTS  string
	posted    time.Time
	deleted   bool
}

type revision struct {
	text     string
	blocks   json.RawMessage
	metadata json.RawMessage
	editTS   string
	at       time.Time
}

// content is the renderable part of a message.
type content struct {
	text         string
	markdownText string
	blocks       json.RawMessage
	attachments  json.RawMessage
	metadata     json.RawMessage
}

func (m *message) public() Message {
	out := Message{
		Channel:        m.channel,
		TS:             m.ts,
		ThreadTS:       m.threadTS,
		Text:           m.text,
		MarkdownText:   m.markdownText,
		Blocks:         bytes.Clone(m.blocks),
		Attachments:    bytes.Clone(m.attachments),
		Metadata:       decodeMetadata(m.metadata),
		ReplyBroadcast: m.broadcast,
		User:           m.user,
		FileIDs:        slices.Clone(m.fileIDs),
		Params:         cloneValues(m.params),
		Updated:        len(m.edits),
		EditedTS:       m.editedTS,
		PostedAt:       m.posted,
	}
	for _, e := range m.edits {
		out.Edits = append(out.Edits, Revision{
			Text:       e.text,
			Blocks:     bytes.Clone(e.blocks),
			Metadata:   decodeMetadata(e.metadata),
			EditTS:     e.editTS,
			ReplacedAt: e.at,
		})
	}
	return out
}

func decodeMetadata(raw json.RawMessage) *Metadata {
	if len(raw) == 0 {
		return nil
	}
	var m Metadata
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return &m
}

// Messages returns the messages in channel (top-level messages and thread
// replies alike), in post order, as they are now. Deleted messages are left
// out; ephemeral messages are in Ephemerals.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages[normChannel(channel)] {
		if !m.deleted {
			out = append(out, m.public())
		}
	}
	return out
}

// Message returns the message with timestamp ts in channel.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findLocked(normChannel(channel), ts)
	if m == nil {
		return Message{}, false
	}
	return m.public(), true
}

// Replies returns the replies in the thread whose parent is threadTS, oldest
// first, without the parent.
func (s *Server) Replies(channel, threadTS string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages[normChannel(channel)] {
		if !m.deleted && m.threadTS == threadTS {
			out = append(out, m.public())
		}
	}
	return out
}

// Ephemerals returns the ephemeral messages posted, in order.
func (s *Server) Ephemerals() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.ephemerals))
	for i, m := range s.ephemerals {
		m.Blocks = bytes.Clone(m.Blocks)
		m.Attachments = bytes.Clone(m.Attachments)
		m.Params = cloneValues(m.Params)
		if m.Metadata != nil {
			md := *m.Metadata
			m.Metadata = &md
		}
		out[i] = m
	}
	return out
}

func (s *Server) findLocked(channel, ts string) *message {
	for _, m := range s.messages[channel] {
		if m.ts == ts && !m.deleted {
			return m
		}
	}
	return nil
}

// repliesLocked returns the live replies of the thread rooted at ts.
func (s *Server) repliesLocked(channel, ts string) []*message {
	var out []*message
	for _, m := range s.messages[channel] {
		if !m.deleted && m.threadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

// messageJSONLocked renders m as Slack's API renders a message object.
func (s *Server) messageJSONLocked(m *message, withMetadata bool) map[string]any {
	out := map[string]any{
		"type":   "message",
		"ts":     m.ts,
		"text":   m.text,
		"user":   s.opts.BotUserID,
		"bot_id": s.opts.BotID,
		"app_id": s.opts.AppID,
		"team":   s.opts.TeamID,
		"bot_profile": map[string]any{
			"id": s.opts.BotID, "app_id": s.opts.AppID, "name": s.opts.BotName,
			"team_id": s.opts.TeamID, "deleted": false,
		},
	}
	if len(m.blocks) > 0 {
		out["blocks"] = m.blocks
	}
	if len(m.attachments) > 0 {
		out["attachments"] = m.attachments
	}
	if m.threadTS != "" {
		out["thread_ts"] = m.threadTS
		out["parent_user_id"] = s.opts.BotUserID
		if m.broadcast {
			out["subtype"] = "thread_broadcast"
		}
	} else if replies := s.repliesLocked(m.channel, m.ts); len(replies) > 0 {
		out["thread_ts"] = m.ts
		out["reply_count"] = len(replies)
		out["reply_users_count"] = 1
		out["reply_users"] = []string{s.opts.BotUserID}
		out["latest_reply"] = replies[len(replies)-1].ts
		out["is_locked"] = false
		out["subscribed"] = false
	}
	if m.editedTS != "" {
		out["edited"] = map[string]any{"user": s.opts.BotUserID, "ts": m.editedTS}
	}
	if withMetadata && len(m.metadata) > 0 {
		out["metadata"] = m.metadata
	}
	if len(m.fileIDs) > 0 {
		var files []map[string]any
		for _, id := range m.fileIDs {
			if f := s.files[id]; f != nil {
				files = append(files, f.jsonLocked())
			}
		}
		out["files"] = files
		out["upload"] = true
		out["display_as_bot"] = false
	}
	return out
}

// readContent reads and validates the message content arguments shared by
// chat.postMessage, chat.update and chat.postEphemeral. present reports
// which of text, blocks, attachments and metadata were given at all.
func (s *Server) readContent(p url.Values) (c content, present map[string]bool, _ *apiError) {
	present = map[string]bool{}
	for _, k := range []string{"text", "blocks", "attachments", "metadata", "markdown_text"} {
		if _, ok := p[k]; ok && (k == "text" || strings.TrimSpace(p.Get(k)) != "") {
			present[k] = true
		}
	}
	c.text = p.Get("text")
	c.markdownText = p.Get("markdown_text")
	if present["markdown_text"] && (c.text != "" || present["blocks"]) {
		return c, present, errf("markdown_text_conflict")
	}
	if utf8.RuneCountInString(c.markdownText) > maxMarkdownText {
		return c, present, errf("msg_too_long")
	}
	if present["blocks"] {
		blocks, err := validateBlocks(p.Get("blocks"), s.opts.BlockScopedActionIDs)
		if err != nil {
			return c, present, err
		}
		c.blocks = blocks
	}
	if present["attachments"] {
		var atts []json.RawMessage
		if json.Unmarshal([]byte(p.Get("attachments")), &atts) != nil {
			return c, present, errf("invalid_attachments")
		}
		if len(atts) > maxAttachments {
			return c, present, errf("too_many_attachments")
		}
		if len(atts) > 0 {
			c.attachments = compact(p.Get("attachments"))
		}
	}
	if utf8.RuneCountInString(c.text) > maxTextChars {
		return c, present, errf("msg_too_long")
	}
	if present["metadata"] {
		md, err := validateMetadata(p.Get("metadata"))
		if err != nil {
			return c, present, err
		}
		c.metadata = md
	}
	return c, present, nil
}

// hasBody reports whether c has something to show.
func (c content) hasBody() bool {
	return c.text != "" || c.markdownText != "" || len(c.blocks) > 0 || len(c.attachments) > 0
}

func compact(s string) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(s)) != nil {
		return json.RawMessage(s)
	}
	return buf.Bytes()
}

// validateMetadata checks a metadata argument: a JSON object with a string
// event_type and an object event_payload. "{}" yields nil (no metadata).
func validateMetadata(s string) (json.RawMessage, *apiError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
		return nil, errf("invalid_metadata_format")
	}
	if len(obj) == 0 {
		return nil, nil
	}
	var eventType string
	if err := json.Unmarshal(obj["event_type"], &eventType); err != nil || eventType == "" {
		return nil, errf("invalid_metadata_schema", "missing required field: event_type [json-pointer:/metadata/event_type]")
	}
	var payload map[string]any
	if err := json.Unmarshal(obj["event_payload"], &payload); err != nil || payload == nil {
		return nil, errf("invalid_metadata_schema", "missing required field: event_payload [json-pointer:/metadata/event_payload]")
	}
	return compact(s), nil
}

func withoutToken(p url.Values) url.Values {
	out := cloneValues(p)
	out.Del("token")
	return out
}

// resolveThreadLocked finds the thread a reply to threadTS belongs in. It
// returns "" when the message is to be posted un-threaded.
func (s *Server) resolveThreadLocked(channel, threadTS string) (string, *apiError) {
	if threadTS == "" {
		return "", nil
	}
	parent := s.findLocked(channel, threadTS)
	if parent == nil {
		if s.opts.StrictThreads {
			return "", errf("thread_not_found")
		}
		// Slack posts a reply whose parent is missing or deleted as a
		// top-level message.
		return "", nil
	}
	if parent.threadTS != "" {
		// A reply's ts: the reply joins the same thread.
		return parent.threadTS, nil
	}
	return parent.ts, nil
}

func (s *Server) chatPostMessage(req *request) (map[string]any, *apiError) {
	p := req.p
	channel := normChannel(p.Get("channel"))
	c, _, aerr := s.readContent(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	if aerr != nil {
		return nil, aerr
	}
	if !c.hasBody() {
		return nil, errf("no_text")
	}
	threadTS, aerr := s.resolveThreadLocked(channel, p.Get("thread_ts"))
	if aerr != nil {
		return nil, aerr
	}
	m := &message{
		channel:   channel,
		ts:        s.nextTSLocked(),
		threadTS:  threadTS,
		content:   c,
		broadcast: threadTS != "" && isTrue(p.Get("reply_broadcast")),
		params:    withoutToken(p),
		posted:    time.Now(),
	}
	s.messages[channel] = append(s.messages[channel], m)
	return map[string]any{
		"channel": channel,
		"ts":      m.ts,
		"message": s.messageJSONLocked(m, true),
	}, nil
}

func (s *Server) chatUpdate(req *request) (map[string]any, *apiError) {
	p := req.p
	channel := normChannel(p.Get("channel"))
	c, present, aerr := s.readContent(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	m := s.findLocked(channel, p.Get("ts"))
	if m == nil {
		return nil, errf("message_not_found")
	}
	if aerr != nil {
		return nil, aerr
	}
	if !c.hasBody() {
		return nil, errf("no_text")
	}

	prev := revision{text: m.text, blocks: m.blocks, metadata: m.metadata}
	next := m.content
	if present["text"] {
		next.text = c.text
	}
	next.markdownText = c.markdownText
	// Slack keeps the previous blocks (and attachments) only when neither
	// they nor text are given.
	switch {
	case present["blocks"]:
		next.blocks = c.blocks
	case present["text"] || present["markdown_text"]:
		next.blocks = nil
	}
	switch {
	case present["attachments"]:
		next.attachments = c.attachments
	case present["text"] || present["markdown_text"]:
		next.attachments = nil
	}
	// Metadata is kept unless given; "{}" removes it.
	if present["metadata"] {
		next.metadata = c.metadata
	}
	m.content = next
	m.editedTS = s.nextTSLocked()
	prev.editTS, prev.at = m.editedTS, time.Now()
	m.edits = append(m.edits, prev)

	msg := s.messageJSONLocked(m, true)
	return map[string]any{
		"channel": channel,
		"ts":      m.ts,
		"text":    m.text,
		"message": msg,
	}, nil
}

func (s *Server) chatDelete(req *request) (map[string]any, *apiError) {
	p := req.p
	channel := normChannel(p.Get("channel"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	m := s.findLocked(channel, p.Get("ts"))
	if m == nil {
		return nil, errf("message_not_found")
	}
	m.deleted = true
	return map[string]any{"channel": channel, "ts": m.ts}, nil
}

func (s *Server) chatPostEphemeral(req *request) (map[string]any, *apiError) {
	p := req.p
	channel := normChannel(p.Get("channel"))
	user := p.Get("user")
	c, _, aerr := s.readContent(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	if user == "" {
		return nil, errf("user_not_in_channel")
	}
	if len(s.users) > 0 {
		if _, ok := s.users[user]; !ok {
			return nil, errf("user_not_in_channel")
		}
	}
	if aerr != nil {
		return nil, aerr
	}
	if !c.hasBody() {
		return nil, errf("no_text")
	}
	threadTS, aerr := s.resolveThreadLocked(channel, p.Get("thread_ts"))
	if aerr != nil {
		return nil, aerr
	}
	ts := s.nextTSLocked()
	s.ephemerals = append(s.ephemerals, (&message{
		channel:  channel,
		ts:       ts,
		threadTS: threadTS,
		content:  c,
		user:     user,
		params:   withoutToken(p),
		posted:   time.Now(),
	}).public())
	return map[string]any{"message_ts": ts}, nil
}

func (s *Server) authTest(*request) (map[string]any, *apiError) {
	return map[string]any{
		"url":                   "https://" + s.opts.TeamName + ".slack.com/",
		"team":                  s.opts.TeamName,
		"user":                  s.opts.BotName,
		"team_id":               s.opts.TeamID,
		"user_id":               s.opts.BotUserID,
		"bot_id":                s.opts.BotID,
		"is_enterprise_install": false,
	}, nil
}

func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b || v == "yes"
}
