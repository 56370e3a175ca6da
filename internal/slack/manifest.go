package slack

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/slack-go/slack"
	"gopkg.in/yaml.v3"

	"github.com/chmedic/chmedic/internal/config"
)

// Scope is one bot scope chmedic's Slack app requests, and why.
type Scope struct {
	Name, Why string
}

// BotScopes are the bot scopes chmedic uses with this configuration: what
// the outbox, the approvals and the actions call, and commands when a slash
// command is configured.
func BotScopes(s *config.Slack) []Scope {
	scopes := []Scope{
		{"chat:write", "post and update incident messages, thread replies, ephemeral replies"},
		{"channels:history", "find a message after a crash by its metadata (public channels)"},
		{"groups:history", "the same in private channels"},
		{"channels:read", "resolve channels given by name (public)"},
		{"groups:read", "resolve channels given by name (private)"},
		{"files:write", "upload collected logs to the alert's thread"},
		{"usergroups:read", "resolve approvers given as user groups (usergroups.users.list)"},
	}
	if s.SlashCommand != "" {
		scopes = append(scopes, Scope{"commands", "the " + s.SlashCommand + " slash command"})
	}
	return scopes
}

// Manifest is the Slack app manifest for this configuration: the bot user,
// the bot scopes chmedic uses, and interactivity over HTTP (request URL
// slack.public_url + /slack/interactions) or Socket Mode.
func Manifest(s *config.Slack) slack.Manifest {
	m := slack.Manifest{
		Metadata: slack.ManifestMetadata{MajorVersion: 1, MinorVersion: 1},
		Display: slack.Display{
			Name:            s.AppName,
			Description:     "Diagnoses ClickHouse / Keeper incidents live; actions run only when approved",
			BackgroundColor: "#1d2b3a",
		},
		Features: slack.Features{
			BotUser: slack.BotUser{DisplayName: s.AppName, AlwaysOnline: true},
		},
		Settings: slack.Settings{
			Interactivity:     &slack.Interactivity{IsEnabled: true},
			SocketModeEnabled: s.SocketMode,
		},
	}
	if !s.SocketMode {
		m.Settings.Interactivity.RequestUrl = s.InteractionsURL()
	}
	if s.SlashCommand != "" {
		cmd := slack.ManifestSlashCommand{Command: s.SlashCommand, Description: "Diagnose a cluster now, a health digest, the DDL freezes", UsageHint: "diagnose [cluster] | digest [cluster] | freezes | help"}
		if !s.SocketMode {
			cmd.Url = s.CommandsURL()
		}
		m.Features.SlashCommands = []slack.ManifestSlashCommand{cmd}
	}
	for _, sc := range BotScopes(s) {
		m.OAuthConfig.Scopes.Bot = append(m.OAuthConfig.Scopes.Bot, sc.Name)
	}
	return m
}

// ErrNoInteractivity: the config says neither where Slack should post
// clicks (slack.public_url) nor that they come over Socket Mode.
var ErrNoInteractivity = errors.New("slack.public_url or slack.socket_mode: true is required: Slack needs to know how to deliver button clicks")

// ManifestYAML renders Manifest as YAML (what Slack's "create from
// manifest" dialog accepts, as it does JSON).
func ManifestYAML(s *config.Slack) ([]byte, error) {
	if s.PublicURL == "" && !s.SocketMode {
		return nil, ErrNoInteractivity
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(Manifest(s)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ManifestJSON renders Manifest as indented JSON.
func ManifestJSON(s *config.Slack) ([]byte, error) {
	if s.PublicURL == "" && !s.SocketMode {
		return nil, ErrNoInteractivity
	}
	b, err := json.MarshalIndent(Manifest(s), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
