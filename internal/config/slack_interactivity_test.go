package config

import (
	"strings"
	"testing"
)

func TestSlackInteractivity(t *testing.T) {
	files := map[string]string{"/run/app": "xapp-1-A1-abc", "/run/bot": "xoxb-1", "/run/sign": "s3cr3t"}
	tests := []struct {
		name string
		src  string
		want []string // substrings of the errors, in order; none: valid
	}{
		{"defaults", y("slack: {channel: '#x'}"), nil},
		{"http interactivity", y("slack:", "  channel: '#x'", "  public_url: https://chmedic.example.com/", "  signing_secret_file: /run/sign"), nil},
		{"public_url without a signing secret", y("slack:", "  channel: '#x'", "  public_url: https://chmedic.example.com"),
			[]string{"slack.signing_secret_file: is required with slack.public_url"}},
		{"public_url not a URL", y("slack:", "  channel: '#x'", "  public_url: chmedic", "  signing_secret_file: /run/sign"),
			[]string{`slack.public_url: invalid URL "chmedic"`}},
		{"public_url with a query", y("slack:", "  channel: '#x'", "  public_url: 'https://c.example.com/?a=1'", "  signing_secret_file: /run/sign"),
			[]string{"slack.public_url: must not have a query"}},
		{"socket mode", y("slack:", "  channel: '#x'", "  socket_mode: true", "  app_token_file: /run/app"), nil},
		{"socket mode without an app token", y("slack:", "  channel: '#x'", "  socket_mode: true"),
			[]string{"slack.app_token_file: is required with slack.socket_mode"}},
		{"a bot token as app token", y("slack:", "  channel: '#x'", "  socket_mode: true", "  app_token_file: /run/bot"),
			[]string{"slack.app_token_file: is not an app-level token"}},
		{"app token without socket mode", y("slack:", "  channel: '#x'", "  app_token_file: /run/app"),
			[]string{"slack.app_token_file: is only used with slack.socket_mode: true"}},
		{"slash command", y("slack:", "  channel: '#x'", "  slash_command: /chmedic"), nil},
		{"bad slash command", y("slack:", "  channel: '#x'", "  slash_command: chmedic"),
			[]string{`slack.slash_command: invalid slash command "chmedic"`}},
		{"app name and cache ttl", y("slack:", "  channel: '#x'", "  app_name: ''", "  usergroup_cache_ttl: 0s"),
			[]string{"slack.app_name: must be 1 to 35 characters", "slack.usergroup_cache_ttl: must be greater than 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("chmedic.yaml", []byte(tc.src+minimal), fakeEnv(nil), fakeFiles(files))
			got := errLines(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("errors %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %q, want it to contain %q", got[i], w)
				}
			}
		})
	}
	c := mustParse(t, y("slack:", "  channel: '#x'", "  public_url: https://chmedic.example.com/base/", "  signing_secret_file: /run/sign")+minimal, nil, files)
	if c.Slack.InteractionsURL() != "https://chmedic.example.com/base/slack/interactions" || c.Slack.CommandsURL() != "https://chmedic.example.com/base/slack/commands" {
		t.Errorf("urls %q %q", c.Slack.InteractionsURL(), c.Slack.CommandsURL())
	}
}
