package config

import (
	"slices"
	"strings"
	"testing"
)

func TestSlackCommandsPolicy(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty: the workspace", y("slack:", "  channel: '#x'", "  slash_command: /chmedic"), nil},
		{"ids and groups", y("slack:", "  channel: '#x'", "  commands:", "    allowed_channels: [C0INC, G0PRIV]", "    allowed_users: [U0ALICE, W0BOB, S0ONCALL]"), nil},
		{"a channel name", y("slack:", "  channel: '#x'", "  commands:", "    allowed_channels: ['#incidents']"),
			[]string{`slack.commands.allowed_channels[0]: invalid Slack channel id "#incidents"`}},
		{"duplicate channel", y("slack:", "  channel: '#x'", "  commands:", "    allowed_channels: [C0INC, C0INC]"),
			[]string{`slack.commands.allowed_channels[1]: duplicate entry "C0INC"`}},
		{"a wildcard and a handle", y("slack:", "  channel: '#x'", "  commands:", "    allowed_users: ['*', '@alice']"),
			[]string{`slack.commands.allowed_users[0]: invalid entry "*"`, `slack.commands.allowed_users[1]: invalid entry "@alice"`}},
		{"duplicate user", y("slack:", "  channel: '#x'", "  commands:", "    allowed_users: [U0ALICE, U0ALICE]"),
			[]string{`slack.commands.allowed_users[1]: duplicate entry "U0ALICE"`}},
		{"unknown key", y("slack:", "  channel: '#x'", "  commands:", "    allowed_groups: [S0X]"),
			[]string{"allowed_groups"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("chmedic.yaml", []byte(tc.src+minimal), fakeEnv(nil), fakeFiles(nil))
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
	c := mustParse(t, y("slack:", "  channel: '#x'", "  commands:", "    allowed_channels: [C0INC]", "    allowed_users: [U0ALICE, S0ONCALL]")+minimal, nil, nil)
	if !slices.Equal(c.Slack.Commands.AllowedChannels, []string{"C0INC"}) || !slices.Equal(c.Slack.Commands.AllowedUsers, []string{"U0ALICE", "S0ONCALL"}) {
		t.Errorf("commands %+v", c.Slack.Commands)
	}
}
