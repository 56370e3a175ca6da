package config

import (
	"strings"
	"testing"
	"time"
)

func TestSlackStormSettings(t *testing.T) {
	c := mustParse(t, minimal, nil, nil)
	if c.Slack.CoalesceWindow != 3*time.Second || c.Slack.SummaryInterval != time.Minute || c.Slack.PostBurst != 3 {
		t.Errorf("defaults: coalesce_window %s summary_interval %s post_burst %d", c.Slack.CoalesceWindow, c.Slack.SummaryInterval, c.Slack.PostBurst)
	}
	c = mustParse(t, y("slack:", "  coalesce_window: 0s", "  summary_interval: 5m", "  post_burst: 1")+minimal, nil, nil)
	if c.Slack.CoalesceWindow != 0 || c.Slack.SummaryInterval != 5*time.Minute || c.Slack.PostBurst != 1 {
		t.Errorf("set: %+v", c.Slack)
	}
	_, err := Parse("chmedic.yaml", []byte(y("slack:", "  coalesce_window: 2m", "  summary_interval: -1s", "  post_burst: 0")+minimal), nil, nil)
	for _, want := range []string{
		"chmedic.yaml:2:20: slack.coalesce_window: must be at most 1m, got 2m",
		"chmedic.yaml:3:21: slack.summary_interval: must not be negative, got -1s",
		"chmedic.yaml:4:15: slack.post_burst: must be between 1 and 10, got 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
