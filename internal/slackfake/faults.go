package slackfake

import "strings"

// Faults an operator causes, for exercising how a client lives with them:
// a token revoked or rotated, a channel deleted or not yet created, a scope
// missing. Each lasts until undone.

// RevokeToken makes every authenticated call answer code (Slack answers
// "token_revoked" for a revoked token, "invalid_auth" for a rotated one)
// until RestoreToken. An empty code means "token_revoked".
func (s *Server) RevokeToken(code string) {
	if code == "" {
		code = "token_revoked"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = code
}

// RestoreToken undoes RevokeToken.
func (s *Server) RestoreToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = ""
}

// AddChannel makes a conversation known (a channel created, or the bot
// invited). With Options.Channels empty every channel exists already, and
// AddChannel starts the list.
func (s *Server) AddChannel(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channels == nil {
		s.channels = map[string]bool{}
	}
	s.channels[normChannel(name)] = true
}

// RemoveChannel makes a conversation unknown (deleted): posting to it or
// reading it answers channel_not_found.
func (s *Server) RemoveChannel(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channels == nil {
		s.channels = map[string]bool{}
		for ch := range s.messages {
			s.channels[ch] = true
		}
	}
	delete(s.channels, normChannel(name))
}

// FailAlways makes every call of method fail as f describes (before any
// FailNext queue) until ClearFailures: a missing scope
// (Failure{Error: "missing_scope"}), a long outage of one method.
func (s *Server) FailAlways(method string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.always == nil {
		s.always = map[string]Failure{}
	}
	s.always[method] = f
}

// ClearFailures removes the failures set with FailAlways and queued with
// FailNext for method.
func (s *Server) ClearFailures(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.always, method)
	delete(s.failures, method)
}

// chatGetPermalink answers chat.getPermalink: the message's permalink in
// Slack's form, https://<team>.slack.com/archives/<channel>/p<ts digits>
// (with thread_ts and cid for a thread reply).
func (s *Server) chatGetPermalink(req *request) (map[string]any, *apiError) {
	channel := normChannel(req.p.Get("channel"))
	ts := req.p.Get("message_ts")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.channelExistsLocked(channel) {
		return nil, errf("channel_not_found")
	}
	m := s.findLocked(channel, ts)
	if m == nil {
		return nil, errf("message_not_found")
	}
	link := "https://" + s.opts.TeamName + ".slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
	if m.threadTS != "" {
		link += "?thread_ts=" + m.threadTS + "&cid=" + channel
	}
	return map[string]any{"channel": channel, "permalink": link}, nil
}
