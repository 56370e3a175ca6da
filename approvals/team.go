package approvals

// TeamID is the Slack workspace whose clicks the flow accepts
// (approvals.team_id, else the bot token's from auth.test; "" when
// neither is known). The slash command accepts the same workspace.
func (s *Service) TeamID() string { return s.o.TeamID }
