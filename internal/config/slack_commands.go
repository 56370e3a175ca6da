package config

import (
	"fmt"
	"slices"
)

// SlackCommands is who may use the slash command (slack.commands). The
// command only reads (a diagnosis, a digest, the freezes list), so an empty
// policy lets anyone of the workspace the approvals accept
// (approvals.team_id, else the bot token's) use it; requests from any other
// workspace are always refused.
type SlackCommands struct {
	// AllowedChannels (allowed_channels): Slack channel ids (C…/G…/D…)
	// where the command may be used; empty allows any channel.
	AllowedChannels []string `yaml:"allowed_channels"`
	// AllowedUsers (allowed_users): Slack user ids (U…/W…) and user
	// groups (S…, resolved through usergroups.users.list) who may use it;
	// empty allows every user of the workspace.
	AllowedUsers []string `yaml:"allowed_users"`
}

func (d *decoder) validateSlackCommands(c *SlackCommands) {
	for i, ch := range c.AllowedChannels {
		p := fmt.Sprintf("slack.commands.allowed_channels[%d]", i)
		switch {
		case !slackChannelRE.MatchString(ch):
			d.fail(p, "invalid Slack channel id %q (give the id, C…, G… or D…, not the name: slash commands carry ids)", ch)
		case slices.Index(c.AllowedChannels, ch) < i:
			d.fail(p, "duplicate entry %q", ch)
		}
	}
	for i, u := range c.AllowedUsers {
		p := fmt.Sprintf("slack.commands.allowed_users[%d]", i)
		switch {
		case !slackUserRE.MatchString(u) && !slackGroupRE.MatchString(u):
			d.fail(p, "invalid entry %q: want a Slack user id (U…/W…) or user group id (S…); leave the list empty to allow everyone of the workspace", u)
		case slices.Index(c.AllowedUsers, u) < i:
			d.fail(p, "duplicate entry %q", u)
		}
	}
}
