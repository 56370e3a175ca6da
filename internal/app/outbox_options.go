package app

import (
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
)

// outboxOptions applies the storm-proof output settings of the config
// (slack.coalesce_window, slack.post_burst) to the outbox options.
func outboxOptions(cfg *config.Config, o chslack.OutboxOptions) chslack.OutboxOptions {
	o.CoalesceWindow = cfg.Slack.CoalesceWindow
	if o.CoalesceWindow == 0 {
		o.CoalesceWindow = -1 // 0 in the config: no coalescing window
	}
	o.PostBurst = cfg.Slack.PostBurst
	return o
}
