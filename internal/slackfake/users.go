package slackfake

import (
	"slices"
	"strings"
)

// User is a workspace member served by users.info.
type User struct {
	ID          string
	Name        string // the handle, e.g. "alice"
	RealName    string
	DisplayName string
	Email       string
	Title       string
	TZ          string // e.g. "Europe/Paris"
	IsAdmin     bool
	IsOwner     bool
	IsBot       bool
	Deleted     bool
	// IsRestricted and IsUltraRestricted mark multi- and single-channel
	// guests.
	IsRestricted      bool
	IsUltraRestricted bool
}

// AddUser adds or replaces a user. Once any user is added,
// chat.postEphemeral answers user_not_in_channel for users not added.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// AddUserGroup adds or replaces a user group (an ID such as "S0ONCALL",
// and its handle such as "oncall") with its members' user IDs.
func (s *Server) AddUserGroup(id, handle string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = &userGroup{id: id, handle: handle, members: slices.Clone(members)}
}

// DisableUserGroup disables a user group: usergroups.users.list then
// answers no_such_subteam unless include_disabled is set.
func (s *Server) DisableUserGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[id]; g != nil {
		g.disabled = true
	}
}

func (s *Server) userJSONLocked(u User) map[string]any {
	name := u.Name
	if name == "" {
		name = strings.ToLower(strings.ReplaceAll(u.RealName, " ", "."))
	}
	tz := cmp(u.TZ, "America/Los_Angeles")
	return map[string]any{
		"id":                  u.ID,
		"team_id":             s.opts.TeamID,
		"name":                name,
		"deleted":             u.Deleted,
		"real_name":           u.RealName,
		"tz":                  tz,
		"tz_label":            tz,
		"tz_offset":           0,
		"is_admin":            u.IsAdmin,
		"is_owner":            u.IsOwner,
		"is_primary_owner":    false,
		"is_restricted":       u.IsRestricted,
		"is_ultra_restricted": u.IsUltraRestricted,
		"is_bot":              u.IsBot,
		"is_app_user":         false,
		"updated":             1700000000,
		"is_email_confirmed":  u.Email != "",
		"profile": map[string]any{
			"real_name":               u.RealName,
			"real_name_normalized":    u.RealName,
			"display_name":            u.DisplayName,
			"display_name_normalized": u.DisplayName,
			"email":                   u.Email,
			"title":                   u.Title,
			"team":                    s.opts.TeamID,
		},
	}
}

func (s *Server) usersInfo(req *request) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[req.p.Get("user")]
	if !ok {
		return nil, errf("user_not_found")
	}
	return map[string]any{"user": s.userJSONLocked(u)}, nil
}

func (s *Server) usergroupsUsersList(req *request) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.p.Get("usergroup")
	if id == "" {
		return nil, errf("invalid_arguments", "missing required field: usergroup")
	}
	g, ok := s.groups[id]
	if !ok {
		return nil, errf("no_such_subteam")
	}
	if g.disabled && !isTrue(req.p.Get("include_disabled")) {
		return nil, errf("no_such_subteam")
	}
	return map[string]any{"users": slices.Clone(g.members)}, nil
}
