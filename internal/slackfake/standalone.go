package slackfake

import (
	"net/http"
	"time"
)

// Start starts a fake Slack server outside a test (cmd/chmedic-bench runs
// one beside the real environment); the caller must Close it. New is Start
// plus a Close when the test ends.
func Start(opts Options) *Server { return start(opts) }

// rateLimitedMethods are the methods SetRateLimited answers 429 for: every
// Web API method the fake serves.
func rateLimitedMethods() []string {
	out := make([]string, 0, len(handlers))
	for m := range handlers {
		out = append(out, m)
	}
	return out
}

// SetRateLimited makes every Web API method answer Slack's 429 with
// Retry-After (retryAfter, in whole seconds, at least 1) until
// ClearRateLimited: a workspace-wide rate limit after an outage.
func (s *Server) SetRateLimited(retryAfter time.Duration) {
	for _, m := range rateLimitedMethods() {
		s.FailAlways(m, Failure{Status: http.StatusTooManyRequests, RetryAfter: retryAfter})
	}
}

// ClearRateLimited undoes SetRateLimited (and any FailAlways or FailNext of
// the Web API methods).
func (s *Server) ClearRateLimited() {
	for _, m := range rateLimitedMethods() {
		s.ClearFailures(m)
	}
}

// BaseURL is the server's root URL ("http://127.0.0.1:port").
func (s *Server) BaseURL() string { return s.srv.URL }
