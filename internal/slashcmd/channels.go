package slashcmd

import (
	"strings"

	"github.com/chmedic/chmedic/internal/config"
)

// PostingChannels are the channels chmedic posts to: slack.channel, every
// cluster's slack_channel, every route's channel and every digest's
// channel (ids, or names with or without "#").
func PostingChannels(cfg *config.Config) []string {
	var out []string
	add := func(ch string) {
		if ch != "" {
			out = append(out, ch)
		}
	}
	add(cfg.Slack.Channel)
	for _, c := range cfg.Clusters {
		add(c.SlackChannel)
	}
	for _, r := range cfg.Slack.Routes {
		add(r.Channel)
	}
	for _, d := range cfg.Digests.Schedules {
		add(d.Channel)
	}
	return out
}

// InChannelOf returns the InChannel rule for a list of channels: a command
// typed in one of them (by id, or by the name the command carries) answers
// in the channel. The bot is a member of these, so a digest can be posted
// there as a message of its own, with buttons.
func InChannelOf(channels []string) func(channelID, channelName string) bool {
	ids, names := map[string]bool{}, map[string]bool{}
	for _, ch := range channels {
		if strings.HasPrefix(ch, "#") {
			names[strings.ToLower(strings.TrimPrefix(ch, "#"))] = true
			continue
		}
		ids[ch] = true
		names[strings.ToLower(ch)] = true
	}
	return func(id, name string) bool {
		if id != "" && ids[id] {
			return true
		}
		n := strings.ToLower(name)
		return n != "" && n != "directmessage" && n != "privategroup" && names[n]
	}
}
