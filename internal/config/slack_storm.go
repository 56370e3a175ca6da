package config

import "time"

// Bounds of the storm-proof output settings: a window or interval longer
// than these would hide an incident's progress from the on-call engineer.
const (
	maxCoalesceWindow  = time.Minute
	maxSummaryInterval = time.Hour
	maxPostBurst       = 10
)

// validateSlackStorm checks slack.coalesce_window, slack.summary_interval
// and slack.post_burst.
func (d *decoder) validateSlackStorm(s *Slack) {
	d.nonNegative("slack.coalesce_window", s.CoalesceWindow)
	if s.CoalesceWindow > maxCoalesceWindow {
		d.fail("slack.coalesce_window", "must be at most %s, got %s", fmtDuration(maxCoalesceWindow), fmtDuration(s.CoalesceWindow))
	}
	d.nonNegative("slack.summary_interval", s.SummaryInterval)
	if s.SummaryInterval > maxSummaryInterval {
		d.fail("slack.summary_interval", "must be at most %s, got %s", fmtDuration(maxSummaryInterval), fmtDuration(s.SummaryInterval))
	}
	d.between("slack.post_burst", s.PostBurst, 1, maxPostBurst)
}
