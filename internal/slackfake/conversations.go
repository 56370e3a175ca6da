package slackfake

import (
	"encoding/base64"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

const (
	defaultHistoryLimit = 100
	defaultRepliesLimit = 1000
	maxPageLimit        = 1000
)

// page selects messages by the oldest, latest, inclusive, limit and cursor
// arguments, as conversations.history and conversations.replies do.
type page struct {
	oldest, latest int64
	inclusive      bool
	limit          int
	cursor         int64 // 0: from the start
	hasCursor      bool
	withMetadata   bool
}

func readPage(req *request, defaultLimit int) (page, *apiError) {
	p := req.p
	pg := page{latest: math.MaxInt64, limit: defaultLimit}
	if v := p.Get("oldest"); v != "" {
		n, ok := parseTS(v)
		if !ok {
			return pg, errf("invalid_ts_oldest")
		}
		pg.oldest = n
	}
	if v := p.Get("latest"); v != "" {
		n, ok := parseTS(v)
		if !ok {
			return pg, errf("invalid_ts_latest")
		}
		pg.latest = n
	}
	pg.inclusive = isTrue(p.Get("inclusive"))
	pg.withMetadata = isTrue(p.Get("include_all_metadata"))
	if v := p.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return pg, errf("invalid_limit")
		}
		if n > 0 {
			pg.limit = min(n, maxPageLimit)
		}
	}
	if v := p.Get("cursor"); v != "" {
		n, ok := decodeCursor(v)
		if !ok {
			return pg, errf("invalid_cursor")
		}
		pg.cursor, pg.hasCursor = n, true
	}
	return pg, nil
}

func (pg page) inRange(micro int64) bool {
	if pg.inclusive {
		return micro >= pg.oldest && micro <= pg.latest
	}
	// Without inclusive, a given bound excludes the message at that ts;
	// the defaults (0 and now) exclude nothing that exists.
	return (micro > pg.oldest || pg.oldest == 0) && (micro < pg.latest || pg.latest == math.MaxInt64)
}

// Slack's cursors are opaque base64 strings such as
// base64("next_ts:1512085861000543"); the fake makes them the same way.
func encodeCursor(micro int64) string {
	return base64.StdEncoding.EncodeToString([]byte("next_ts:" + strconv.FormatInt(micro, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(string(b), "next_ts:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

func micros(m *message) int64 {
	n, _ := parseTS(m.ts)
	return n
}

func (s *Server) conversationsHistory(req *request) (map[string]any, *apiError) {
	channel := normChannel(req.p.Get("channel"))
	pg, aerr := readPage(req, defaultHistoryLimit)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	if aerr != nil {
		return nil, aerr
	}
	// Newest first: top-level messages and replies also sent to the channel.
	var selected []*message
	all := s.messages[channel]
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if m.deleted || (m.threadTS != "" && !m.broadcast) {
			continue
		}
		t := micros(m)
		if !pg.inRange(t) || (pg.hasCursor && t > pg.cursor) {
			continue
		}
		selected = append(selected, m)
	}
	out := map[string]any{
		"pin_count":             0,
		"channel_actions_ts":    nil,
		"channel_actions_count": 0,
	}
	if v := req.p.Get("latest"); v != "" {
		out["latest"] = v
	}
	s.paginateLocked(out, selected, pg)
	return out, nil
}

func (s *Server) conversationsReplies(req *request) (map[string]any, *apiError) {
	channel := normChannel(req.p.Get("channel"))
	ts := req.p.Get("ts")
	pg, aerr := readPage(req, defaultRepliesLimit)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	if aerr != nil {
		return nil, aerr
	}
	m := s.findLocked(channel, ts)
	if m == nil {
		return nil, errf("thread_not_found")
	}
	root := m
	if m.threadTS != "" {
		// ts may name any message of the thread.
		if p := s.findLocked(channel, m.threadTS); p != nil {
			root = p
		}
	}
	var selected []*message
	for _, r := range append([]*message{root}, s.repliesLocked(channel, root.ts)...) {
		t := micros(r)
		if !pg.inRange(t) || (pg.hasCursor && t < pg.cursor) {
			continue
		}
		selected = append(selected, r)
	}
	out := map[string]any{}
	s.paginateLocked(out, selected, pg)
	return out, nil
}

// paginateLocked puts one page of selected into out, with has_more and
// response_metadata.next_cursor.
func (s *Server) paginateLocked(out map[string]any, selected []*message, pg page) {
	hasMore := len(selected) > pg.limit
	pageMsgs := selected[:min(len(selected), pg.limit)]
	msgs := make([]map[string]any, 0, len(pageMsgs))
	for _, m := range pageMsgs {
		msgs = append(msgs, s.messageJSONLocked(m, pg.withMetadata))
	}
	out["messages"] = msgs
	out["has_more"] = hasMore
	if hasMore {
		out["response_metadata"] = map[string]any{"next_cursor": encodeCursor(micros(selected[pg.limit]))}
	}
}

// conversationsList lists the known channels (Options.Channels, or every
// channel posted to). The fake has no separate channel IDs: a channel's ID
// is its name. Pagination: limit and an opaque cursor (an offset).
func (s *Server) conversationsList(req *request) (map[string]any, *apiError) {
	limit := 100
	if v := req.p.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, errf("invalid_limit")
		}
		limit = min(n, 1000)
	}
	offset := 0
	if c := req.p.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "off:"))
		if err != nil || n < 0 {
			return nil, errf("invalid_cursor")
		}
		offset = n
	}
	s.mu.Lock()
	var names []string
	if s.channels != nil {
		for c := range s.channels {
			names = append(names, c)
		}
	} else {
		for c := range s.messages {
			names = append(names, c)
		}
	}
	s.mu.Unlock()
	sort.Strings(names)
	var out []map[string]any
	for i := offset; i < len(names) && len(out) < limit; i++ {
		out = append(out, map[string]any{"id": names[i], "name": names[i], "is_channel": true, "is_member": true})
	}
	next := ""
	if offset+len(out) < len(names) {
		next = fmt.Sprintf("off:%d", offset+len(out))
	}
	return map[string]any{"channels": out, "response_metadata": map[string]any{"next_cursor": next}}, nil
}
