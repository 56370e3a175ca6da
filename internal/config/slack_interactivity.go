package config

import (
	"net/url"
	"regexp"
	"strings"
)

// slashCommandRE is Slack's rule for a slash command's name: a leading "/",
// then up to 31 lowercase letters, digits, '-' or '_'.
var slashCommandRE = regexp.MustCompile(`^/[a-z0-9_-]{1,31}$`)

// appNameRE: Slack allows up to 35 characters for an app name.
const maxAppName = 35

// InteractionsPath and CommandsPath are where chmedic serves Slack's
// requests (relative to slack.public_url).
const (
	InteractionsPath = "/slack/interactions"
	CommandsPath     = "/slack/commands"
)

// InteractionsURL is the interactivity request URL Slack is given, "" when
// public_url is not set.
func (s *Slack) InteractionsURL() string {
	if s.PublicURL == "" {
		return ""
	}
	return s.PublicURL + InteractionsPath
}

// CommandsURL is the slash command request URL, "" when public_url is not
// set.
func (s *Slack) CommandsURL() string {
	if s.PublicURL == "" {
		return ""
	}
	return s.PublicURL + CommandsPath
}

func (d *decoder) validateSlackInteractivity(s *Slack) {
	if s.PublicURL != "" {
		s.PublicURL = strings.TrimRight(s.PublicURL, "/")
		if msg := checkHTTPURL(s.PublicURL); msg != "" {
			d.fail("slack.public_url", "%s", msg)
		} else if u, _ := url.Parse(s.PublicURL); u.RawQuery != "" || u.Fragment != "" {
			d.fail("slack.public_url", "must not have a query or a fragment")
		}
		if !s.SocketMode && !s.SigningSecret.IsSet() && !d.secretGiven("slack.signing_secret") {
			d.fail("slack.signing_secret_file", "is required with slack.public_url: Slack's requests are verified with it (or set slack.socket_mode)")
		}
	}
	switch {
	case s.SocketMode && !s.AppToken.IsSet() && !d.secretGiven("slack.app_token"):
		d.fail("slack.app_token_file", "is required with slack.socket_mode (an app-level token, xapp-...)")
	case s.AppToken.IsSet() && !strings.HasPrefix(s.AppToken.Value(), "xapp-"):
		d.fail("slack.app_token_file", "is not an app-level token (it must start with xapp-)")
	case s.AppToken.IsSet() && !s.SocketMode:
		d.fail("slack.app_token_file", "is only used with slack.socket_mode: true")
	}
	if s.SlashCommand != "" && !slashCommandRE.MatchString(s.SlashCommand) {
		d.fail("slack.slash_command", "invalid slash command %q (a leading / then up to 31 lowercase letters, digits, - or _)", s.SlashCommand)
	}
	if s.AppName == "" || len(s.AppName) > maxAppName {
		d.fail("slack.app_name", "must be 1 to %d characters", maxAppName)
	}
	d.positive("slack.usergroup_cache_ttl", s.UserGroupCacheTTL)
}
