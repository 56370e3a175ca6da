package slackfake

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SlashCommandSpec describes a slash command a test's user types.
type SlashCommandSpec struct {
	// Command is the command typed [/chmedic]; Text what follows it.
	Command, Text string
	// UserID types it (required); UserName is its handle (default: the
	// added user's name, else the id).
	UserID, UserName string
	// ChannelID is where it is typed (required); ChannelName its name
	// (default: the id, lowercased).
	ChannelID, ChannelName string
	// TeamID is the user's workspace (default: the fake's).
	TeamID string
}

// SlashCommandForm returns the fields Slack posts to a slash command's
// request URL (application/x-www-form-urlencoded: token, team_id,
// team_domain, channel_id, channel_name, user_id, user_name, command, text,
// api_app_id, is_enterprise_install, response_url, trigger_id), with a fresh
// response_url served by the fake: ephemeral or in_channel replies (posted
// to the channel as the app) at most five times within 30 minutes, as
// Slack's; ResponsePosts records them.
func (s *Server) SlashCommandForm(c SlashCommandSpec) (url.Values, error) {
	if c.UserID == "" || c.ChannelID == "" {
		return nil, fmt.Errorf("slackfake: a slash command needs a user and a channel")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	team := cmp(c.TeamID, s.opts.TeamID)
	name := c.UserName
	if name == "" {
		if u, ok := s.users[c.UserID]; ok && u.Name != "" {
			name = u.Name
		} else {
			name = c.UserID
		}
	}
	channel := normChannel(c.ChannelID)
	hook := s.newIDLocked("H")
	s.hooks[hook] = &responseHook{channel: channel, user: c.UserID, expires: time.Now().Add(responseURLTTL)}
	return url.Values{
		"token":                 {"fake-verification-token"},
		"team_id":               {team},
		"team_domain":           {s.opts.TeamName},
		"channel_id":            {channel},
		"channel_name":          {cmp(c.ChannelName, strings.ToLower(channel))},
		"user_id":               {c.UserID},
		"user_name":             {name},
		"command":               {cmp(c.Command, "/chmedic")},
		"text":                  {c.Text},
		"api_app_id":            {s.opts.AppID},
		"is_enterprise_install": {"false"},
		"response_url":          {s.srv.URL + responsePath + team + "/" + hook},
		"trigger_id":            {fmt.Sprintf("%d.%s.%s", time.Now().Unix(), strings.TrimPrefix(team, "T"), hook)},
	}, nil
}

// SlashCommandRequest builds the signed POST Slack sends to a slash
// command's request URL target (see SlashCommandForm), signed now with
// signingSecret.
func (s *Server) SlashCommandRequest(target, signingSecret string, c SlashCommandSpec) (*http.Request, error) {
	form, err := s.SlashCommandForm(c)
	if err != nil {
		return nil, err
	}
	body := []byte(form.Encode())
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range Sign(signingSecret, time.Now(), body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	return req, nil
}

// SendCommand sends the slash command c as a Socket Mode slash_commands
// envelope (SendSlashCommand) with the fields of SlashCommandForm, whose
// response_url the fake serves.
func (s *Server) SendCommand(c SlashCommandSpec) (string, error) {
	form, err := s.SlashCommandForm(c)
	if err != nil {
		return "", err
	}
	fields := map[string]string{}
	for k := range form {
		fields[k] = form.Get(k)
	}
	return s.SendSlashCommand(fields)
}
