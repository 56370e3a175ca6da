package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Approvals configures who may request and approve chmedic's actions
// (approvals). Fail closed: an action kind without a policy cannot be
// requested.
type Approvals struct {
	// TeamID is the Slack workspace (team) id whose clicks are accepted
	// (team_id); optional: when empty it is the bot token's workspace,
	// learned with auth.test at start. Clicks from any other team are
	// refused.
	TeamID string `yaml:"team_id"`
	// Policies are the policies per action kind (policies).
	Policies ApprovalPolicies `yaml:"policies"`
}

// ApprovalPolicies holds one optional policy per action kind; the yaml key
// is the kind name. A nil policy means the kind cannot be requested.
type ApprovalPolicies struct {
	// DDLFreeze (ddl_freeze).
	DDLFreeze *ApprovalPolicy `yaml:"ddl_freeze"`
	// DDLUnfreeze (ddl_unfreeze): lifting a freeze by hand; chmedic lifts
	// an expired freeze by itself without one.
	DDLUnfreeze *ApprovalPolicy `yaml:"ddl_unfreeze"`
	// RollingRestart (rolling_restart).
	RollingRestart *ApprovalPolicy `yaml:"rolling_restart"`
	// CollectLogs (collect_logs).
	CollectLogs *ApprovalPolicy `yaml:"collect_logs"`
}

// For returns the policy of an action kind, or false when there is none.
func (p *ApprovalPolicies) For(kind string) (*ApprovalPolicy, bool) {
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name == kind {
			pol := v.Field(i).Interface().(*ApprovalPolicy)
			return pol, pol != nil
		}
	}
	return nil, false
}

// Kinds lists the action kinds a policy can be configured for.
func (p *ApprovalPolicies) Kinds() []string {
	t := reflect.TypeFor[ApprovalPolicies]()
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, name)
	}
	return out
}

// ApprovalPolicy is who may request and approve one action kind.
type ApprovalPolicy struct {
	// Requesters may request the action (requesters): Slack user ids
	// (U…/W…), user groups (S…), or "*" for anyone in the workspace; at
	// least one.
	Requesters []string `yaml:"requesters"`
	// Approvers may approve or reject it (approvers): Slack user ids and
	// user groups; at least one.
	Approvers []string `yaml:"approvers"`
	// MinApprovals is how many distinct approvers must approve
	// (min_approvals) [1].
	MinApprovals int `yaml:"min_approvals"`
	// AllowSelfApproval lets the requester's own approval count
	// (allow_self_approval) [false].
	AllowSelfApproval bool `yaml:"allow_self_approval"`
	// ExpireAfter is how long a request waits for its approvals
	// (expire_after) [15m]; at most 24h.
	ExpireAfter time.Duration `yaml:"expire_after"`
	// Channels restricts where the action may be requested and approved
	// (channels): Slack channel ids (C…/G…); empty allows any channel.
	Channels []string `yaml:"channels"`
}

func (p *ApprovalPolicy) setDefaults() {
	p.MinApprovals = 1
	p.ExpireAfter = 15 * time.Minute
}

var (
	slackUserRE    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackGroupRE   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	slackChannelRE = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	slackTeamRE    = regexp.MustCompile(`^[TE][A-Z0-9]{2,}$`)
)

func (d *decoder) validateApprovals(a *Approvals) {
	if a.TeamID != "" && !slackTeamRE.MatchString(a.TeamID) {
		d.fail("approvals.team_id", "invalid Slack team id %q (want T… or E…)", a.TeamID)
	}
	for _, kind := range a.Policies.Kinds() {
		p, ok := a.Policies.For(kind)
		if !ok {
			continue
		}
		path := "approvals.policies." + kind
		d.principals(path+".requesters", p.Requesters, true)
		d.principals(path+".approvers", p.Approvers, false)
		d.atLeast(path+".min_approvals", p.MinApprovals, 1)
		if users := countUsers(p.Approvers); users == len(p.Approvers) && len(p.Approvers) > 0 && p.MinApprovals > users {
			d.fail(path+".min_approvals", "is %d but only %d approvers are listed: no request could ever be approved", p.MinApprovals, users)
		}
		if p.ExpireAfter <= 0 || p.ExpireAfter > 24*time.Hour {
			d.fail(path+".expire_after", "must be greater than 0 and at most 24h, got %s", fmtDuration(p.ExpireAfter))
		}
		for i, ch := range p.Channels {
			if !slackChannelRE.MatchString(ch) {
				d.fail(fmt.Sprintf("%s.channels[%d]", path, i), "invalid Slack channel id %q (give the id, C… or G…, not the name: clicks carry ids)", ch)
			}
		}
	}
}

func (d *decoder) principals(path string, list []string, wildcard bool) {
	if len(list) == 0 {
		d.fail(path, "at least one Slack user id or user group is required (fail closed: nobody else may act)")
		return
	}
	for i, s := range list {
		switch {
		case s == "*" && wildcard:
		case slackUserRE.MatchString(s), slackGroupRE.MatchString(s):
			if slices.Index(list, s) < i {
				d.fail(fmt.Sprintf("%s[%d]", path, i), "duplicate entry %q", s)
			}
		default:
			want := "a Slack user id (U…/W…) or user group id (S…)"
			if wildcard {
				want += ", or \"*\" for anyone"
			}
			d.fail(fmt.Sprintf("%s[%d]", path, i), "invalid entry %q: want %s", s, want)
		}
	}
}

func countUsers(list []string) int {
	n := 0
	for _, s := range list {
		if slackUserRE.MatchString(s) {
			n++
		}
	}
	return n
}
